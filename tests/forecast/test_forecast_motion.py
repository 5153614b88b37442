"""The motion-compensated linear next-frame forecast (``frames-mc-linear``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from _helpers import run_main

from dynacell.errors import InvalidInputError
from dynacell.forecast import MotionCompensatedForecaster, resolve_model
from dynacell.forecast.frames import baseline_forecast, make_windows
from dynacell.forecast.motion import align_window


def _noisy_blob(make_blob, n_frames=11, noise=0.08, seed=0):
    clean = make_blob(n_frames=n_frames, size=32, speed_px=1.0, sigma=3.0)
    rng = np.random.default_rng(seed)
    return clean, (clean + rng.normal(0, noise, clean.shape)).astype(np.float32)


def test_beats_persistence_and_smoothing_on_a_noisy_moving_blob(make_blob):
    clean, movie = _noisy_blob(make_blob)
    mc = MotionCompensatedForecaster().fit(movie, range(4, 8))  # the past only
    targets = [8, 9, 10]
    x, y = make_windows(movie, mc.k, targets)
    err = {"mc": np.mean((mc.predict(x) - y) ** 2)}
    for b in ("persistence", "smoothed_persistence", "flow"):
        err[b] = np.mean((baseline_forecast(b, x) - y) ** 2)
    # the noise of the target (0.08² = 6.4e-3) is left; persistence adds the last frame's noise and the motion
    # (measured: 6.7e-3 against 1.41e-2 for persistence, 8.5e-3 smoothed persistence, 9.9e-3 flow)
    assert err["mc"] < 0.7 * err["persistence"]
    assert err["mc"] < min(err["smoothed_persistence"], err["flow"])
    # and against the noise-free next frame it is closer than the noise itself
    assert np.mean((mc.predict(x) - clean[targets]) ** 2) < 0.08**2


def test_align_window_moves_past_frames_onto_the_last(make_blob):
    movie = make_blob(n_frames=3, size=40, speed_px=1.5, sigma=3.0)
    aligned, flows = align_window(movie)
    assert aligned.shape == (3, 40, 40) and flows.shape == (2, 2, 40, 40)
    before = np.abs(movie[0] - movie[2]).mean()
    assert np.abs(aligned[2] - movie[2]).mean() < 0.3 * before  # two steps back, moved by ~3 px
    assert flows[0][1, 20, 20] == pytest.approx(-1.5, abs=0.3)  # frame t−1 sits 1.5 px to the left


def test_static_noise_free_movie_is_forecast_exactly():
    rng = np.random.default_rng(1)
    scene = rng.random((24, 24)).astype(np.float32)
    movie = np.stack([scene] * 8)
    mc = MotionCompensatedForecaster(k=2, sigmas_px=(0.0, 1.0), unaligned=False, extrapolate=False)
    assert mc.n_features == 4
    mc.fit(movie, range(2, 6))
    np.testing.assert_allclose(mc.predict(movie[None, 5:7])[0], scene, atol=1e-3)


def test_errors_and_resolution_by_name():
    mc = resolve_model("frames-mc-linear")
    assert isinstance(mc, MotionCompensatedForecaster) and mc.weights is None and mc.k == 4
    window = np.zeros((4, 16, 16), np.float32)
    assert mc.features(window).shape == (mc.n_features, 16, 16)
    with pytest.raises(InvalidInputError, match="not fitted"):
        mc.predict(window[None])
    with pytest.raises(InvalidInputError, match="K=4"):
        mc.features(window[:3])
    with pytest.raises(InvalidInputError, match="no target"):
        mc.fit(np.zeros((4, 8, 8), np.float32), [4])
    with pytest.raises(InvalidInputError):
        MotionCompensatedForecaster(k=1)


@pytest.mark.slow
def test_cli_evaluate_and_predict_with_the_method(tmp_path, monkeypatch, capsys, make_blob):
    _, movie = _noisy_blob(make_blob, n_frames=12)
    tifffile.imwrite(tmp_path / "m.tif", (np.clip(movie, 0, None) * 1000).astype(np.uint16))
    code, out, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "m.tif", "--axes", "TYX",
                              "--model", "frames-mc-linear", "--test-fraction", "0.25")
    assert code == 0, err
    res = json.loads(out)
    assert res["model"] == "frames-mc-linear" and res["fitted_on_targets"] == [4, 8]
    assert res["mse"] < res["mse_persistence"]
    code, out, err = run_main(monkeypatch, capsys, "forecast", "predict", tmp_path / "m.tif", "--axes", "TYX",
                              "-o", tmp_path / "pred", "--model", "frames-mc-linear", "--steps", "2")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["forecast.json", "pred012.tif", "pred013.tif"]


def test_sum_to_one_fit_keeps_the_centre_of_mass_on_a_noisy_moving_blob(make_blob):
    from dynacell.metrics.forecasting import center_of_mass_error

    _, movie = _noisy_blob(make_blob, noise=0.1, seed=1)
    movie = movie + np.float32(0.2)  # a bright background: on a zero one the target's centre is the noise's
    ms = MotionCompensatedForecaster(sum_to_one=True).fit(movie, range(4, 8))  # the past only
    assert ms.weights[-1] == 0.0
    assert np.isclose(ms.weights[:-1].sum(), 1.0, atol=1e-9)
    x, y = make_windows(movie, ms.k, [8, 9, 10])
    com = center_of_mass_error(ms.predict(x), y)["com_error_px"]
    # measured: 0.19 px against 0.31 px for persistence
    assert com <= center_of_mass_error(baseline_forecast("persistence", x), y)["com_error_px"]
    # the unconstrained fit of the same normal matrix has weights that need not sum to 1
    mc = MotionCompensatedForecaster().fit(movie, range(4, 8))
    assert not np.array_equal(mc.weights, ms.weights)
