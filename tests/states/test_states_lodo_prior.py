"""Tests of the LODO prior-adaptation variants (benchmarks/states_lodo_prior.py)."""

from __future__ import annotations

import numpy as np
import pytest

from _helpers import load_benchmark


def _module():
    return load_benchmark("states_lodo_prior")


def test_variants_of_one_movie() -> None:
    mod = _module()
    p = np.array([[0.4, 0.3, 0.3], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    src, freq = np.full(3, 1 / 3), np.array([0.8, 0.1, 0.1])
    np.testing.assert_allclose(mod.adapted(p, "none", src, freq), p)
    tf = mod.adapted(p, "train-freq", src, freq)  # Bayes' rule to the training frequencies
    np.testing.assert_allclose(tf[0], np.array([0.32, 0.03, 0.03]) / 0.38)
    half, full = mod.adapted(p, "em0.5", src, freq), mod.adapted(p, "em", src, freq)
    assert np.all(np.abs(half - p) <= np.abs(full - p) + 1e-12)
    with pytest.raises(ValueError):
        mod.adapted(p, "bogus", src, freq)


def test_score_and_groups() -> None:
    mod = _module()
    classes = ["stable", "mitotic", "new_daughter"]
    y = np.array([0, 0, 1, 2])
    s = mod.score(y, np.eye(3)[[0, 1, 1, 2]], classes)
    assert s["recall_stable"] == 0.5 and s["f1_new_daughter"] == 1.0 and 0 < s["macro_f1"] < 1
    assert [mod.movie_of(d) for d in ("hela02", "sim2d-lead-3", "rods2d-fast-1")] == ["hela02", "rendered", "rendered"]
