"""Per-frame Gaussian fits: the batched fit is scipy's least squares, and it is accurate."""

import numpy as np
import pytest
from scipy import optimize

from dynacell.diffusion.localise import _fit_windows, localise_stacks
from dynacell.errors import InvalidInputError
from dynacell.simulate.particles import simulate_stacks


def _scipy_fit(win, p0):
    yy, xx = np.mgrid[:win.shape[0], :win.shape[1]]

    def res(p):
        y0, x0, a, s, b = p
        return (b + a * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * s * s)) - win).ravel()

    return optimize.least_squares(res, p0, method="lm").x


def test_batched_fit_matches_scipy():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:9, :9]
    wins, p0s, refs = [], [], []
    for _ in range(6):
        y0, x0, a, s, b = rng.uniform(3, 5), rng.uniform(3, 5), rng.uniform(20, 80), rng.uniform(0.8, 1.6), 10.0
        w = b + a * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * s * s)) + rng.normal(0, 3, (9, 9))
        p0 = np.array([4.0, 4.0, w.max() - 10, 1.0, 10.0])
        wins.append(w)
        p0s.append(p0)
        refs.append(_scipy_fit(w, p0))
    p, ok = _fit_windows(np.array(wins), np.array(p0s))
    assert ok.all()
    np.testing.assert_allclose(p[:, :2], np.array(refs)[:, :2], atol=1e-3)


def test_localisation_error_small_at_high_snr():
    sim = simulate_stacks(np.full(20, 0.05), n_frames=4, snr=30.0, seed=0)
    loc = localise_stacks(sim.stacks, psf_sigma_px=1.06)
    true = sim.positions_um[:, 0].reshape(-1, 2) / 0.1 - 0.5
    err = loc[["y_px", "x_px"]].to_numpy() - true
    assert loc["fit_ok"].all()
    assert np.sqrt(np.mean(err**2)) < 0.05
    assert loc["sigma_px"].median() == pytest.approx(np.sqrt(1.06**2 + 1 / 12), rel=0.1)


def test_bad_input():
    with pytest.raises(InvalidInputError):
        localise_stacks(np.zeros((2, 3, 4)))
    with pytest.raises(InvalidInputError, match="window"):
        localise_stacks(np.zeros((1, 3, 5, 5)), half_window_px=4)
