"""Tests of dynacell.forecast.positions.motion_predictor (the linker's motion prior)."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.forecast.positions import motion_predictor


def cv_histories(n: int = 40, length: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity 2D histories (N, L, 2) and their true next positions (N, 2)."""
    rng = np.random.default_rng(seed)
    p0, v = rng.uniform(0, 100, (n, 1, 2)), rng.normal(0, 3, (n, 1, 2))
    steps = np.arange(length + 1).reshape(1, -1, 1)
    track = p0 + steps * v
    return track[:, :-1], track[:, -1]


@pytest.mark.parametrize("name", ["velocity", "kalman"])
def test_baseline_priors_extrapolate_constant_velocity(name):
    past, nxt = cv_histories()
    pred = motion_predictor(name, ndim=2)
    assert pred.history == 5
    out = pred.predict(past, np.full(len(past), 5))
    assert out.shape == (40, 2)
    np.testing.assert_allclose(out, nxt, atol=0.5 if name == "kalman" else 1e-9)


def test_kalman_prior_without_enough_full_histories_still_predicts():
    past, _ = cv_histories(n=3)
    out = motion_predictor("kalman", ndim=2).predict(past, np.full(3, 2))
    assert out.shape == (3, 2) and np.isfinite(out).all()


def test_unknown_prior_is_refused():
    with pytest.raises(InvalidInputError, match="unknown motion prior"):
        motion_predictor("teleport", ndim=2)


@pytest.mark.slow
def test_frame_model_is_refused():
    with pytest.raises(InvalidInputError, match="next-frame model"):
        motion_predictor("frames-tinycnn", ndim=2)
