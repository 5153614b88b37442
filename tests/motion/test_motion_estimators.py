"""Diffusion estimators on simulated trajectories with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.motion import estimators as est
from dynacell.motion.simulate import brownian_tracks, directed_tracks


def _exact_msd_cov(n_steps, max_lag, D, s2, dt, R):
    """Cov of the 1D time-averaged MSD computed directly: 2·tr(A_a Σ A_b Σ) for Gaussian steps."""
    a = 2 * D * dt * (1 - 2 * R) + 2 * s2
    b = 2 * R * D * dt - s2
    sig = np.diag(np.full(n_steps, a)) + np.diag(np.full(n_steps - 1, b), 1) + np.diag(np.full(n_steps - 1, b), -1)
    A = []
    for n in range(1, max_lag + 1):
        m = n_steps - n + 1
        S = np.zeros((m, n_steps))
        for i in range(m):
            S[i, i:i + n] = 1
        A.append(S.T @ S / m)
    return np.array([[2 * np.trace(Ai @ sig @ Aj @ sig) for Aj in A] for Ai in A])


@pytest.mark.parametrize("D,s2,R", [(1.0, 0.0, 0.0), (0.4, 0.3, 0.0), (0.7, 0.2, 1 / 6)])
def test_msd_covariance_closed_form_matches_direct_computation(D, s2, R):
    n_steps, L, dt = 11, 7, 0.5
    K_bb, K_ab, K_aa = est._msd_cov_terms(n_steps, L)
    b = 2 * D * dt
    a = 2 * (s2 - 2 * R * D * dt)
    closed = b ** 2 * K_bb + a * b * K_ab + a ** 2 * K_aa
    np.testing.assert_allclose(closed, _exact_msd_cov(n_steps, L, D, s2, dt, R), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", ["cve", "mle", "msd_fit_optimal"])
def test_pooled_estimators_unbiased_and_cover_95pct(method):
    """Brownian + localisation noise + blur: z-scores over 120 seeds have mean ~0, SD ~1."""
    fn = getattr(est, method)
    D, dt, sigma, tE = 0.5, 0.1, 0.1, 0.1
    z = []
    for s in range(120):
        x = brownian_tracks(10, 30, D, dt, sigma_um=sigma, exposure_s=tE, seed=1000 + s)
        e = fn(list(x), dt, exposure_s=tE)
        z.append((e.D_um2_per_s - D) / e.D_se_um2_per_s)
    z = np.array(z)
    assert abs(z.mean()) < 0.3, z.mean()
    assert 0.8 < z.std() < 1.2, z.std()
    assert 0.9 <= np.mean(np.abs(z) < 1.96) <= 0.99


def test_many_variants_are_unbiased_on_short_tracks():
    D, dt, sigma, tE = 0.5, 0.1, 0.1, 0.1
    x = brownian_tracks(3000, 16, D, dt, sigma_um=sigma, exposure_s=tE, seed=3)
    for fn in (est.cve_many, est.mle_many, est.msd_fit_optimal_many):
        e = fn(x, dt, exposure_s=tE)
        assert len(e) == 3000
        se_mean = np.std(e.D_um2_per_s) / np.sqrt(len(e))
        assert abs(e.D_um2_per_s.mean() - D) < 4 * se_mean, fn.__name__
        # reported SE matches the spread (within 20 %)
        assert 0.8 < np.nanmedian(e.D_se_um2_per_s) / np.std(e.D_um2_per_s) < 1.25, fn.__name__
    # σ recovered by CVE on average (blur from 32 sub-instants: slightly below R = 1/6)
    assert abs(est.cve_many(x, dt, exposure_s=tE).sigma_um.mean() - sigma) < 0.02


def test_single_and_many_agree():
    x = brownian_tracks(5, 40, 0.3, 0.05, sigma_um=0.03, seed=4)
    many = est.cve_many(x, 0.05)
    for i in range(5):
        one = est.cve(x[i], 0.05)
        assert one.D_um2_per_s == pytest.approx(many.D_um2_per_s[i], rel=1e-12)
        assert one.D_se_um2_per_s == pytest.approx(many.D_se_um2_per_s[i], rel=1e-12)
    one = est.msd_fit_optimal(x[2], 0.05)
    assert one.D_um2_per_s == pytest.approx(est.msd_fit_optimal_many(x, 0.05).D_um2_per_s[2], rel=1e-12)
    assert one.lags_used[0] == 1 and one.method == "msd_fit_optimal" and one.n_displacements == 39


def test_known_sigma_removes_noise_bias():
    D, dt, sigma = 0.2, 0.02, 0.08  # x = 1.6: localisation noise dominates
    x = brownian_tracks(2000, 20, D, dt, sigma_um=sigma, seed=5)
    seed = est.msd_slope_seed_many(x, dt, pixel_size_um=1.0)
    # the seed baseline is biased upward by the noise (4σ² added at every lag)
    assert seed.D_um2_per_s.mean() - D > 4 * np.std(seed.D_um2_per_s) / np.sqrt(len(seed))
    for fn in (est.cve_many, est.msd_fit_optimal_many, est.mle_many):
        e = fn(x, dt, sigma_um=sigma)
        assert abs(e.D_um2_per_s.mean() - D) < 0.05 * D, fn.__name__


def test_cve_beats_seed_and_approaches_cramer_rao_on_16_frames():
    D, dt = 1.0, 0.1
    sigma = np.sqrt(0.2 * D * dt)  # x = 0.2
    x = brownian_tracks(4000, 16, D, dt, sigma_um=sigma, seed=6)
    rmse = lambda e: np.sqrt(np.mean((e.D_um2_per_s - D) ** 2)) / D
    r_cve = rmse(est.cve_many(x, dt))
    r_seed = rmse(est.msd_slope_seed_many(x, dt, pixel_size_um=1.0))
    crb = est.cramer_rao_relative_sd(15, 0.2, 2)
    assert r_cve < r_seed
    assert r_cve < 1.10 * crb, (r_cve, crb)


def test_cramer_rao_exact_tends_to_asymptotic():
    for x in (0.0, 1 / 3, 1.0, 3.0):
        a = est.cramer_rao_relative_sd(4000, x, 2)
        e = est.cramer_rao_relative_sd(4000, x, 2, exact=True)
        assert e == pytest.approx(a, rel=0.02)
    assert est.cramer_rao_relative_sd(15, 0.0, 2, sigma_known=True) == pytest.approx(np.sqrt(2 / 30))


def test_seed_baseline_is_the_through_origin_fit_over_all_lags():
    rng = np.random.default_rng(7)
    px = np.cumsum(rng.normal(size=(16, 2)), axis=0)
    T = 16
    msd = [np.mean(np.sum((px[n:] - px[:T - n]) ** 2, axis=1)) for n in range(T)]
    tau = np.arange(T) * 0.5
    slope = np.sum(tau * msd) / np.sum(tau ** 2)
    e = est.msd_slope_seed(px, 0.5, pixel_size_um=0.2)
    assert e.D_um2_per_s == pytest.approx(slope / 4 * 0.2 ** 2, rel=1e-12)
    assert e.lags_used == tuple(range(1, 16))


def test_directed_motion_inflates_diffusive_estimates():
    x = directed_tracks(200, 50, 0.1, 0.5, 0.1, seed=8)
    e = est.msd_fit_optimal(list(x), 0.1)
    assert e.D_um2_per_s > 0.1 + 5 * e.D_se_um2_per_s  # drift must be handled before, not silently absorbed


@pytest.mark.parametrize("bad,match", [
    (np.array([[0.0, 0.0], [np.nan, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]), "NaN"),
    (np.zeros((2, 2)), "at least"),
    (np.zeros((5,)), "shape"),
])
def test_bad_positions_raise(bad, match):
    with pytest.raises(InvalidInputError, match=match):
        est.cve(bad, 0.1)


def test_bad_units_raise():
    x = np.zeros((10, 2))
    with pytest.raises(InvalidInputError, match="frame_interval_s"):
        est.cve(x, 0.0)
    with pytest.raises(InvalidInputError, match="exposure_s"):
        est.cve(x, 0.1, exposure_s=0.2)
    with pytest.raises(InvalidInputError, match="sigma_um"):
        est.mle(x, 0.1, sigma_um=-1)
    with pytest.raises(InvalidInputError, match="pixel_size_um"):
        est.msd_slope_seed(x, 0.1, pixel_size_um=None)


def test_estimate_to_dict_is_json_safe():
    import json

    e = est.msd_slope_seed(np.cumsum(np.ones((6, 2)), axis=0), 1.0, pixel_size_um=1.0)
    json.dumps(e.to_dict())
    assert e.to_dict()["sigma_um"] is None


@pytest.mark.parametrize("method", ["cve", "mle", "msd_fit_optimal"])
def test_pooled_tracks_of_different_lengths(method):
    fn = getattr(est, method)
    x = [*brownian_tracks(40, 10, 0.5, 0.1, seed=9), *brownian_tracks(40, 23, 0.5, 0.1, seed=10)]
    e = fn(x, 0.1)
    assert e.n_displacements == 40 * 9 + 40 * 22
    assert abs(e.D_um2_per_s - 0.5) < 4 * e.D_se_um2_per_s


def test_per_track_diffusion_with_ragged_and_gapped_tracks():
    import pandas as pd

    from dynacell.motion.analysis import per_track_diffusion
    from dynacell.motion.tracks import tracks_from_dataframe

    x = brownian_tracks(300, 20, 0.5, 0.1, sigma_um=0.05, seed=12)
    rows = []
    for i in range(300):
        L = 4 + i % 17
        keep = np.ones(L, bool)
        if i % 10 == 0 and L > 12:
            keep[6] = False  # a gap: two runs of consecutive frames
        rows.append(pd.DataFrame({"t": np.arange(L)[keep], "track_id": i, "y": x[i, :L, 0][keep],
                                  "x": x[i, :L, 1][keep]}))
    d = per_track_diffusion(tracks_from_dataframe(pd.concat(rows), 1.0, 0.1))
    assert set(d["track_id"]) == {i for i in range(300) if 4 + i % 17 >= 5}
    gapped = d[d["track_id"] % 10 == 0]
    assert np.isfinite(gapped["D_cve_um2_per_s"]).all()
    assert abs(d["D_cve_um2_per_s"].mean() - 0.5) < 0.06 and abs(d["D_mle_um2_per_s"].mean() - 0.5) < 0.06
