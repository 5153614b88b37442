"""Synthetic movies and tracks for the forecasting tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def blob_movie(n_frames: int = 8, size: int = 48, speed_px: float = 1.0, sigma: float = 3.0) -> np.ndarray:
    """A Gaussian spot moving along x by ``speed_px`` per frame, float32 (T, size, size)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    return np.stack([np.exp(-((yy - size / 2) ** 2 + (xx - 12 - speed_px * t) ** 2) / (2 * sigma**2))
                     for t in range(n_frames)]).astype(np.float32)


def cv_tracks(n_tracks: int = 6, n_frames: int = 12, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Tracks moving at constant velocity (pixels), plus optional Gaussian position noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for tid in range(1, n_tracks + 1):
        p0, v = rng.uniform(0, 100, 2), rng.normal(0, 2, 2)
        for t in range(n_frames):
            y, x = p0 + t * v + rng.normal(0, noise, 2)
            rows.append({"t": t, "track_id": tid, "y": y, "x": x})
    return pd.DataFrame(rows)


@pytest.fixture
def make_blob():
    """Factory of moving-spot movies (:func:`blob_movie`)."""
    return blob_movie


@pytest.fixture
def make_tracks():
    """Factory of constant-velocity track tables (:func:`cv_tracks`)."""
    return cv_tracks
