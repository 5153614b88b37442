"""The per-class and smoothly varying weights of ``benchmarks/forecast_mc_local.py`` (a tried, not kept variant)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("forecast_mc_local")


def _problem(seed=0, n_maps=5, n_pix=4000):
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(n_maps, n_pix)).astype(np.float32)
    cls = rng.integers(0, 3, n_pix)
    # each class mixes the maps differently, weights summing to 1
    true_w = np.array([[1.0, 0, 0, 0, 0], [0, 0.5, 0.5, 0, 0], [0.2, 0.2, 0.2, 0.2, 0.2]])
    target = np.einsum("pi,ip->p", true_w[cls], maps) + 0.01 * rng.normal(size=n_pix)
    a = np.concatenate([maps, np.ones((1, n_pix), np.float32), target[None].astype(np.float32)]).astype(np.float64)
    return a, cls, true_w


def test_per_class_weights_recover_each_class_mix_and_score_is_the_mean_squared_error(bench):
    a, cls, true_w = _problem()
    grams = bench.class_grams(a, cls, 3)
    np.testing.assert_allclose(grams.sum(axis=0), a @ a.T / a.shape[1], rtol=1e-10)
    w = bench.solve_classes(grams)
    np.testing.assert_allclose(w[:, :-1], true_w, atol=0.01)
    np.testing.assert_allclose(w[:, :-1].sum(axis=1), 1.0, atol=1e-9)
    pred = np.einsum("pi,ip->p", w[cls, :-1], a[:-2])
    mse = np.mean((pred - a[-1]) ** 2)
    assert bench.score_classes(w, grams) == pytest.approx(mse, rel=1e-6)
    # one class for all pixels cannot fit three mixes
    one = bench.class_grams(a, np.zeros_like(cls), 1)
    assert bench.score_classes(bench.solve_classes(one), one) > 10 * mse


def test_modulated_weights_sum_to_one_on_the_maps_only(bench):
    a, _, _ = _problem(seed=1)
    rng = np.random.default_rng(2)
    z = rng.uniform(-1, 1, a.shape[1])
    maps = a[:-2]
    # target = Σ (w + u z) m with w summing to 1 and u free
    w_true, u_true = np.array([0.6, 0.4, 0, 0, 0]), np.array([0, 0, 0.3, -0.2, 0])
    target = (w_true @ maps) + z * (u_true @ maps)
    ext = np.concatenate([maps, maps * z, np.ones((1, a.shape[1])), target[None]])
    w = bench.solve_modulated(ext @ ext.T / ext.shape[1], len(maps))
    np.testing.assert_allclose(w[:5], w_true, atol=1e-4)
    np.testing.assert_allclose(w[5:10], u_true, atol=1e-4)
    assert w[-1] == 0.0
