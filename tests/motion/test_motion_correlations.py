"""Velocity correlations, displacement moments, λ(q), van Hove."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynacell.motion.correlations import (
    bilinear_fit,
    displacement_moments,
    max_extent_um,
    moment_scaling,
    spatial_velocity_correlation,
    temporal_velocity_correlation,
    van_hove,
)
from dynacell.motion.simulate import brownian_tracks, directed_tracks
from dynacell.motion.tracks import tracks_from_dataframe


def _tracks(x, dt=1.0, start=None):
    n, T, _ = x.shape
    t = np.tile(np.arange(T), n) if start is None else (np.arange(T)[None] + np.asarray(start)[:, None]).ravel()
    df = pd.DataFrame({"t": t, "track_id": np.repeat(np.arange(n), T), "y": x[:, :, 0].ravel(),
                       "x": x[:, :, 1].ravel()})
    return tracks_from_dataframe(df, 1.0, dt)


def test_lambda_brownian_is_q_over_2_and_directed_is_q():
    q = (1.0, 1.5, 2.0, 2.5, 3.0)
    tr = _tracks(brownian_tracks(400, 40, 0.5, 1.0, seed=1))
    mom, R0 = displacement_moments(tr, q)
    lam = moment_scaling(mom, q)
    np.testing.assert_allclose(lam["lambda"], np.array(q) / 2, atol=0.05)
    assert R0 > 0 and (mom["n_tracks"] == 400).all()
    fit = bilinear_fit(lam["q"], lam["lambda"])
    assert fit["slope_low"] == pytest.approx(0.5, abs=0.05) and fit["slope_high"] == pytest.approx(0.5, abs=0.05)
    tr = _tracks(directed_tracks(200, 40, 0.001, 1.0, 1.0, seed=2))
    lam = moment_scaling(displacement_moments(tr, q)[0], q, lag_range=(5, 39))
    np.testing.assert_allclose(lam["lambda"], q, atol=0.05)


def test_bilinear_fit_finds_break():
    q = np.array([1.0, 1.5, 2.0, 2.5, 3.0])
    lam = np.where(q < 2, 0.5 * q, 1.0 + 0.9 * (q - 2))
    fit = bilinear_fit(q, lam)
    assert fit["slope_low"] == pytest.approx(0.5, abs=1e-6)
    assert fit["slope_high"] == pytest.approx(0.9, abs=1e-6)
    assert fit["q_break"] == pytest.approx(2.0, abs=0.02)


def test_moments_follow_the_definition_with_staggered_starts():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 6, 2)).cumsum(1)
    tr = _tracks(x, start=[0, 3, 1, 7, 2])
    mom, R0 = displacement_moments(tr, (1.0, 2.0))
    for lag in range(1, 6):
        d = np.linalg.norm(x[:, lag] - x[:, 0], axis=1)
        row = mom[mom["lag"] == lag].iloc[0]
        assert row["m_q1_um"] == pytest.approx(d.mean())
        assert row["m_q2_um"] == pytest.approx((d ** 2).mean())
    ext = [max(np.linalg.norm(p[:, None] - p[None], axis=2).ravel()) for p in x]
    assert R0 == pytest.approx(np.mean(ext))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 60), st.integers(0, 1000))
def test_max_extent_hull_equals_brute_force(T, seed):
    p = np.random.default_rng(seed).normal(size=(T, 2)).cumsum(0)
    brute = np.max(np.linalg.norm(p[:, None] - p[None], axis=2))
    assert max_extent_um(p) == pytest.approx(brute)
    p3 = np.random.default_rng(seed).normal(size=(T + 50, 3))
    assert max_extent_um(p3) == pytest.approx(np.max(np.linalg.norm(p3[:, None] - p3[None], axis=2)))


@settings(max_examples=12, deadline=None)
@given(st.integers(3, 15), st.integers(1, 5), st.integers(0, 1000), st.floats(0.1, 10.0))
def test_moments_scale_as_length_to_the_q(T, n, seed, s):
    x = np.random.default_rng(seed).normal(size=(n, T, 2)).cumsum(1)
    m1, r1 = displacement_moments(_tracks(x), (1.0, 2.5))
    m2, r2 = displacement_moments(_tracks(x * s), (1.0, 2.5))
    np.testing.assert_allclose(m2["m_q2.5_um"], m1["m_q2.5_um"] * s ** 2.5, rtol=1e-9)
    np.testing.assert_allclose(m2["m_q2.5_norm"], m1["m_q2.5_norm"], rtol=1e-9)  # scale-free after R0
    assert r2 == pytest.approx(r1 * s)


def test_temporal_correlation_brownian_vs_persistent():
    b = temporal_velocity_correlation(_tracks(brownian_tracks(300, 30, 0.5, 1.0, seed=4)), 5)
    assert b["C_v"].iloc[0] == pytest.approx(1.0)
    assert abs(b["C_v"].iloc[2]) < 0.05
    d = temporal_velocity_correlation(_tracks(directed_tracks(300, 30, 0.01, 1.0, 1.0, seed=5)), 5)
    assert d["C_v"].iloc[3] > 0.9


def test_spatial_correlation_flow_vs_independent():
    rng = np.random.default_rng(6)
    start = rng.uniform(0, 100, (200, 1, 2))
    ind = _tracks(start + brownian_tracks(200, 10, 1.0, 1.0, seed=7))
    c = spatial_velocity_correlation(ind, max_distance_um=50, n_bins=5)
    assert np.all(np.abs(c["C_v_norm"]) < 0.1)
    flow = start + np.arange(10)[None, :, None] * np.array([1.0, 0.5]) + brownian_tracks(200, 10, 0.01, 1.0, seed=8)
    c = spatial_velocity_correlation(_tracks(flow), max_distance_um=50, n_bins=5)
    assert np.all(c["C_v_norm"] > 0.9)
    assert c["C_v_um2_per_s2"].iloc[0] == pytest.approx(1.25, rel=0.05)


def test_van_hove_is_gaussian_for_brownian():
    D = 0.5
    vh = van_hove(_tracks(brownian_tracks(500, 20, D, 1.0, seed=9)), lags=(1, 4))
    for lag, g in vh.groupby("lag"):
        w = np.diff(g["dx_um"]).mean()
        var = np.sum(g["dx_um"] ** 2 * g["density_per_um"]) * w
        assert var == pytest.approx(2 * D * lag, rel=0.1)
