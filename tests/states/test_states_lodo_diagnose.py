"""Tests of the LODO diagnosis helpers (benchmarks/states_lodo_diagnose.py)."""

from __future__ import annotations

import numpy as np

from _helpers import load_benchmark


def _module():
    return load_benchmark("states_lodo_diagnose")


def test_geometry_features_of_a_nucleus_splitting_at_t_plus_1() -> None:
    x = np.zeros((1, 6, 10, 10), np.float32)
    x[0, 3, 2:6, 2:6] = 1.0                 # nucleus at t: 16 px
    x[0, 4, 2:6, 2:8] = 1.0                 # t-1: one larger object (24 px, 8 outside the nucleus)
    x[0, 5, 2:6, 2:4] = 1.0                 # t+1: two daughters, 8 px each inside the nucleus
    x[0, 5, 2:6, 4:6] = 0.5
    f = _module().geometry_features(x)[0]
    a = 17.0                                # area + 1
    np.testing.assert_allclose(f, [17.0, 24 / a, 0, 16 / a, 0, 8 / a, 8 / a, 8 / a, 8 / a, 8 / a, 0])


def test_variants_change_one_input_each() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 6, 8, 8)).astype(np.float32)
    v = dict(_module().variants(x))
    assert np.array_equal(v["as built"], x)
    np.testing.assert_allclose(v["raw inverted"][:, :3], 1 - x[:, :3])
    assert np.array_equal(v["raw inverted"][:, 3:], x[:, 3:])
    assert not v["raw zeroed"][:, :3].any() and np.array_equal(v["raw zeroed"][:, 3:], x[:, 3:])
    assert np.array_equal(v["t±1 := t"][:, 0], x[:, 1]) and np.array_equal(v["t±1 := t"][:, 2], x[:, 1])
    assert np.array_equal(v["context := mask"][:, 4], x[:, 3]) and np.array_equal(v["context := mask"][:, :4], x[:, :4])
