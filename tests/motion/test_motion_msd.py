"""MSD per track and ensemble: equal to trackpy, properties, drift, α."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynacell.errors import InvalidInputError
from dynacell.motion.msd import (
    compute_drift,
    ensemble_msd,
    fit_alpha,
    subtract_drift,
    track_msd,
)
from dynacell.motion.simulate import brownian_tracks, directed_tracks, fbm_tracks
from dynacell.motion.tracks import tracks_from_dataframe


def _table(x_um, px=0.2, rng=None, gaps=False, ragged=False, offset=True):
    rng = rng or np.random.default_rng(0)
    rows = []
    for i in range(x_um.shape[0]):
        L = x_um.shape[1] if not ragged else int(rng.integers(2, x_um.shape[1] + 1))
        fr = np.arange(L) + (int(rng.integers(0, 5)) if offset else 0)
        keep = np.ones(L, bool)
        if gaps and L > 4:
            keep[rng.choice(np.arange(1, L - 1), size=2, replace=False)] = False
        rows.append(pd.DataFrame({"frame": fr[keep], "particle": i, "y": x_um[i, :L, 0][keep] / px + 50,
                                  "x": x_um[i, :L, 1][keep] / px + 50}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("gaps,ragged", [
    pytest.param(False, False, marks=pytest.mark.slow), pytest.param(False, True, marks=pytest.mark.slow),
    (True, True)])
def test_equal_to_trackpy_emsd_and_imsd(gaps, ragged):
    tp = pytest.importorskip("trackpy")
    df = _table(brownian_tracks(30, 25, 0.5, 0.1, seed=1), gaps=gaps, ragged=ragged)
    tr = tracks_from_dataframe(df, 0.2, 0.1)
    df = df[df["particle"].isin(tr.table["track_id"].unique())]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        e_tp = tp.emsd(df, 0.2, 10.0, max_lagtime=100)
        i_tp = tp.imsd(df, 0.2, 10.0, max_lagtime=100)
    e = ensemble_msd(tr, 100)
    np.testing.assert_allclose(e["msd_um2"].to_numpy(), e_tp.to_numpy()[: len(e)], rtol=1e-9)
    np.testing.assert_allclose(e["lag_s"].to_numpy(), e_tp.index.to_numpy()[: len(e)], rtol=1e-12)
    im = track_msd(tr).pivot(index="lag", columns="track_id", values="msd_um2").reindex(columns=i_tp.columns)
    a = i_tp.to_numpy()[: im.shape[0]]
    np.testing.assert_allclose(im.to_numpy(), a, rtol=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 12), st.integers(1, 4), st.integers(0, 10_000), st.floats(0.05, 5.0))
def test_msd_matches_direct_definition_and_scales(T, n, seed, scale):
    rng = np.random.default_rng(seed)
    xy = rng.normal(size=(n, T, 2)).cumsum(1)
    df = pd.DataFrame({"t": np.tile(np.arange(T), n), "track_id": np.repeat(np.arange(n), T),
                       "y": xy[:, :, 0].ravel(), "x": xy[:, :, 1].ravel()})
    tr = tracks_from_dataframe(df, 1.0, 1.0)
    m = track_msd(tr)
    for (tid, lag), v in m.set_index(["track_id", "lag"])["msd_um2"].items():
        p = xy[tid]
        assert v == pytest.approx(np.mean(np.sum((p[lag:] - p[:-lag]) ** 2, axis=1)), rel=1e-9, abs=1e-9)
    # MSD scales with the square of the pixel size and is invariant to a translation
    tr2 = tracks_from_dataframe(df.assign(y=df["y"] + 7.5, x=df["x"] - 3.0), scale, 1.0)
    np.testing.assert_allclose(track_msd(tr2)["msd_um2"], m["msd_um2"] * scale ** 2, rtol=1e-8, atol=1e-9)
    e = ensemble_msd(tr, None, weights="displacements")
    assert (e["msd_um2"] >= 0).all()


def test_standard_error_covers_truth():
    D, dt = 0.5, 0.1
    hits = 0
    for s in range(25):
        x = brownian_tracks(30, 20, D, dt, seed=200 + s)
        e = ensemble_msd(tracks_from_dataframe(_table(x, 1.0), 1.0, dt), 3)
        z = (e["msd_um2"].iloc[0] - 4 * D * dt) / e["se_um2"].iloc[0]
        hits += abs(z) < 1.96
    assert 21 <= hits <= 25


def test_alpha_of_fbm_brownian_directed():
    dt = 0.1
    for alpha in (0.5, 1.0, 1.5):
        x = fbm_tracks(300, 50, alpha, 0.2, dt, seed=3)
        fit = fit_alpha(ensemble_msd(tracks_from_dataframe(_table(x, 1.0), 1.0, dt), 10))
        assert fit["alpha"] == pytest.approx(alpha, abs=0.05)
    x = directed_tracks(200, 50, 0.01, 1.0, dt, seed=4)
    assert fit_alpha(ensemble_msd(tracks_from_dataframe(_table(x, 1.0), 1.0, dt), 20))["alpha"] > 1.7


def test_drift_subtraction_restores_brownian():
    dt = 0.1
    x = brownian_tracks(300, 40, 0.2, dt, seed=5)
    drift = np.array([0.3, -0.2]) * np.arange(40)[:, None] * dt * 10  # 3 µm/s and -2 µm/s
    tr = tracks_from_dataframe(_table(x + drift[None], 1.0, offset=False), 1.0, dt)
    dr = compute_drift(tr)
    assert dr.iloc[-1].to_numpy() == pytest.approx(drift[-1], abs=0.2)
    fixed = fit_alpha(ensemble_msd(subtract_drift(tr, dr), 10))
    raw = fit_alpha(ensemble_msd(tr, 10))
    assert raw["alpha"] > 1.3
    assert fixed["alpha"] == pytest.approx(1.0, abs=0.1)


def test_fit_alpha_needs_two_lags():
    with pytest.raises(InvalidInputError):
        fit_alpha(pd.DataFrame({"lag": [1], "lag_s": [0.1], "msd_um2": [1.0]}))
