"""Position baselines, the batched Kalman filter, history windows and predicted next positions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError
from dynacell.forecast.positions import (
    KalmanParams,
    PRWParams,
    baseline_positions,
    constant_position,
    constant_velocity,
    fit_kalman,
    fit_prw_kalman,
    history_windows,
    kalman_forecast,
    predict_next_positions,
    prw_kalman_forecast,
    segments,
    tracks_from_lineage,
)
from dynacell.lineage import Lineage


def _filterpy_two_steps(past, F, Q, p):
    """filterpy's KalmanFilter run per history and axis: ``(i, axis, forecast 1 ahead, forecast 2 ahead)``."""
    from filterpy.kalman import KalmanFilter

    for i in range(len(past)):
        for ax in range(past.shape[2]):
            kf = KalmanFilter(dim_x=2, dim_z=1)
            kf.F = np.array(F, dtype=float)
            kf.H = np.array([[1.0, 0.0]])
            kf.R *= p.r_um2
            kf.Q = np.array(Q, dtype=float)
            kf.P = np.diag([p.r_um2, p.p0_um2])
            kf.x = np.array([[past[i, 0, ax]], [0.0]])
            for z in past[i, 1:, ax]:
                kf.predict()
                kf.update(z)
            kf.predict()
            first = kf.x[0, 0]
            kf.predict()
            yield i, ax, first, kf.x[0, 0]


def test_constant_velocity_is_exact_on_straight_tracks(make_tracks):
    win = history_windows(make_tracks(), history=5, horizon=3)
    assert win["past"].shape == (6 * (12 - 5 - 3 + 1), 5, 2)
    np.testing.assert_allclose(constant_velocity(win["past"], 3), win["future"], atol=1e-9)
    assert np.abs(constant_position(win["past"], 3) - win["future"]).max() > 0.1


def test_batched_kalman_equals_filterpy_per_track(make_tracks):
    from filterpy.common import Q_discrete_white_noise

    past = history_windows(make_tracks(noise=0.5), history=5, horizon=1)["past"][:7]
    p = KalmanParams(q_um2=0.3, r_um2=0.5, p0_um2=4.0)
    got = kalman_forecast(past, horizon=2, params=p)
    for i, ax, first, second in _filterpy_two_steps(past, [[1.0, 1.0], [0.0, 1.0]],
                                                    Q_discrete_white_noise(dim=2, dt=1.0, var=p.q_um2), p):
        assert got[i, 0, ax] == pytest.approx(first)
        assert got[i, 1, ax] == pytest.approx(second)


def test_fitted_kalman_beats_both_naive_baselines_on_noisy_motion(make_tracks):
    win = history_windows(make_tracks(n_tracks=40, n_frames=30, noise=1.0, seed=1), history=5, horizon=1)
    n = len(win["past"]) // 2
    kp = fit_kalman(win["past"][:n], win["future"][:n])
    test_p, test_f = win["past"][n:], win["future"][n:, 0]

    def err(pred):
        return np.linalg.norm(pred[:, 0] - test_f, axis=1).mean()

    e_k = err(kalman_forecast(test_p, 1, kp))
    assert e_k < err(constant_velocity(test_p)) and e_k < err(constant_position(test_p))


def test_batched_prw_kalman_equals_filterpy_per_track(make_tracks):
    past = history_windows(make_tracks(noise=0.5), history=5, horizon=1)["past"][:5]
    p = PRWParams(q_pos_um2=0.2, q_vel_um2=0.4, persistence=0.6, r_um2=0.3, p0_um2=2.0)
    got = prw_kalman_forecast(past, horizon=2, params=p)
    for i, ax, first, second in _filterpy_two_steps(past, [[1.0, 1.0], [0.0, 0.6]], np.diag([0.2, 0.4]), p):
        assert got[i, 0, ax] == pytest.approx(first)
        assert got[i, 1, ax] == pytest.approx(second)


def test_prw_kalman_contains_constant_position_and_velocity(make_tracks):
    past = history_windows(make_tracks(noise=0.5), history=5, horizon=1)["past"]
    still = PRWParams(q_pos_um2=1.0, q_vel_um2=1e-12, persistence=0.0, r_um2=1e-12, p0_um2=1e-12)
    np.testing.assert_allclose(prw_kalman_forecast(past, 2, still), constant_position(past, 2), atol=1e-6)
    moving = PRWParams(q_pos_um2=1e-12, q_vel_um2=1.0, persistence=1.0, r_um2=1e-12, p0_um2=1e6)
    np.testing.assert_allclose(baseline_positions("kalman_prw", past, 2, prw=moving), constant_velocity(past, 2),
                               atol=1e-5)


def _prw_tracks(n_tracks: int, n_frames: int, phi: float, q_vel: float, r: float, seed: int) -> pd.DataFrame:
    """Persistent random walks (Ornstein–Uhlenbeck velocity) with white measurement noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for tid in range(1, n_tracks + 1):
        v = rng.normal(0, np.sqrt(q_vel / (1 - phi ** 2)), 2)
        p = rng.uniform(0, 100, 2)
        for t in range(n_frames):
            z = p + rng.normal(0, np.sqrt(r), 2)
            rows.append({"t": t, "track_id": tid, "y": z[0], "x": z[1]})
            p = p + v
            v = phi * v + rng.normal(0, np.sqrt(q_vel), 2)
    return pd.DataFrame(rows)


def test_maximum_likelihood_prw_fit_recovers_persistence_and_beats_the_grid_kalman():
    win = history_windows(_prw_tracks(60, 30, phi=0.7, q_vel=1.0, r=0.05, seed=3), history=5, horizon=1)
    n = len(win["past"]) // 2
    prw = fit_prw_kalman(win["past"][:n], win["future"][:n])
    assert prw.persistence == pytest.approx(0.7, abs=0.12)
    assert prw.q_vel_um2 + prw.q_pos_um2 == pytest.approx(1.0, rel=0.3)
    kp = fit_kalman(win["past"][:n], win["future"][:n])
    test_p, test_f = win["past"][n:], win["future"][n:, 0]

    def err(pred):
        return np.linalg.norm(pred[:, 0] - test_f, axis=1).mean()

    e_prw = err(prw_kalman_forecast(test_p, 1, prw))
    assert e_prw < err(kalman_forecast(test_p, 1, kp))
    assert e_prw < min(err(constant_velocity(test_p)), err(constant_position(test_p)))


def test_predict_next_positions_fits_the_random_walk_on_the_table_itself():
    df = _prw_tracks(12, 12, phi=0.7, q_vel=1.0, r=0.05, seed=4)
    got = predict_next_positions(df, method="kalman_prw").sort_values("track_id")
    own = history_windows(df, history=5, horizon=1)
    prw = fit_prw_kalman(own["past"], own["future"])
    last = np.stack([g[["y", "x"]].to_numpy()[-5:] for _, g in df.sort_values(["track_id", "t"]).groupby("track_id")])
    np.testing.assert_allclose(got[["y", "x"]].to_numpy(), prw_kalman_forecast(last, 1, prw)[:, 0], atol=1e-9)
    assert not np.allclose(got[["y", "x"]].to_numpy(), prw_kalman_forecast(last, 1, PRWParams())[:, 0])


def test_segments_break_at_gaps_and_scale_to_um():
    df = pd.DataFrame({"t": [0, 1, 2, 4, 5], "track_id": 1, "y": [0.0, 1, 2, 4, 5], "x": 0.0})
    seg = segments(df, scale_zyx=(1.0, 0.5, 0.5))
    assert [s[1].tolist() for s in seg] == [[0, 1, 2], [4, 5]]
    np.testing.assert_allclose(seg[0][2][:, 0], [0, 0.5, 1.0])
    assert len(history_windows(df, history=2, horizon=1)["past"]) == 1 + 0


def test_a_division_ends_the_mother_track():
    lin = Lineage(n_frames=6)
    for t in range(3):
        lin.add_node((t, 1), y=float(t), x=0.0)
    for t in range(3, 6):
        lin.add_node((t, 2), y=10.0 + t, x=5.0)
        lin.add_node((t, 3), y=-10.0 - t, x=5.0)
    for t in range(2):
        lin.add_edge((t, 1), (t + 1, 1))
    lin.add_edge((2, 1), (3, 2))
    lin.add_edge((2, 1), (3, 3))
    for t in range(3, 5):
        lin.add_edge((t, 2), (t + 1, 2))
        lin.add_edge((t, 3), (t + 1, 3))
    df = tracks_from_lineage(lin)
    assert df["track_id"].nunique() == 3
    win = history_windows(df, history=2, horizon=1)
    # no window mixes the mother (x = 0) and a daughter (x = 5)
    for p, f in zip(win["past"], win["future"], strict=True):
        assert len(set(np.r_[p[:, 1], f[:, 1]].tolist())) == 1


def test_predict_next_positions_in_pixels_and_um():
    df = pd.DataFrame({"t": [0, 1, 2, 0, 1], "track_id": [1, 1, 1, 2, 2],
                       "y": [0.0, 2.0, 4.0, 10.0, 10.0], "x": [0.0, 0.0, 0.0, 0.0, 1.0]})
    out = predict_next_positions(df, method="constant_velocity", scale_zyx=(1.0, 0.5, 0.5))
    one = out.set_index("track_id")
    assert one.loc[1, "t"] == 3 and one.loc[1, "y"] == pytest.approx(6.0) and one.loc[1, "y_um"] == pytest.approx(3.0)
    assert one.loc[2, "x"] == pytest.approx(2.0)
    at1 = predict_next_positions(df, method="constant_position", at_frame=1)
    assert sorted(at1["track_id"]) == [1, 2] and at1.set_index("track_id").loc[1, "y"] == pytest.approx(2.0)
    two = predict_next_positions(df, method="kalman", horizon=2)
    assert len(two) == 4
    with pytest.raises(InvalidInputError, match="model"):
        predict_next_positions(df, method="model")
    with pytest.raises(InvalidInputError, match="baseline"):
        predict_next_positions(df, method="psychic")
