"""Forecasting on the real data beside the checkout (skipped where ../shared/data is absent)."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.forecast import history_windows, load_frames, read_tracks_csv
from dynacell.forecast.positions import (
    constant_position,
    constant_velocity,
    fit_kalman,
    kalman_forecast,
)


@pytest.mark.data
@pytest.mark.slow
def test_mdck_tracks_kalman_beats_naive_baselines_on_other_tracks(shared_data):
    tracks = read_tracks_csv(str(shared_data / "tracks" / "btrack-mdck" / "tracks.csv"))
    assert tracks["track_id"].nunique() == 409
    win = history_windows(tracks, history=5, horizon=1)
    ids = np.unique(win["track_id"])
    train = np.isin(win["track_id"], ids[::2])
    kp = fit_kalman(win["past"][train], win["future"][train])
    past, fut = win["past"][~train], win["future"][~train, 0]

    def err(pred):
        return float(np.linalg.norm(pred[:, 0] - fut, axis=1).mean())

    e_k, e_cv, e_cp = err(kalman_forecast(past, 1, kp)), err(constant_velocity(past)), err(constant_position(past))
    assert e_k < min(e_cv, e_cp)
    assert 0.5 < e_k < 5.0  # pixels per frame: migrating cells, not noise


@pytest.mark.data
@pytest.mark.slow
def test_mouse_embryo_projection_keeps_the_pixel_size(shared_data):
    frames, px, info = load_frames(shared_data / "embryo3d" / "mouse-8cell" / "images", z="max",
                                   voxel_size_um=(2.0, 0.208, 0.208), max_frames=3)
    assert frames.shape == (3, 180, 247) and px == pytest.approx(0.208) and info["z"] == "max"
    half, px2, _ = load_frames(shared_data / "embryo3d" / "mouse-8cell" / "images", z=10,
                               voxel_size_um=(2.0, 0.208, 0.208), downsample=2, max_frames=3)
    assert half.shape == (3, 90, 124) and px2 == pytest.approx(0.416)
