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


def test_adabn_variant_names() -> None:
    mod = _module()
    assert mod.split_variant("adabn") == ((1.0, False), "none")
    assert mod.split_variant("adabn0.5+train-freq") == ((0.5, False), "train-freq")
    assert mod.split_variant("adabnbal0.25") == ((0.25, True), "none")
    assert mod.split_variant("em0.5") == (None, "em0.5")
    assert all(mod.valid_variant(v) == v for v in (*mod.VARIANTS, *mod.ADABN_VARIANTS))
    for bad in ("adabn2", "adabn+bogus", "bogus", "adabnx"):
        with pytest.raises(Exception, match="unknown variant"):
            mod.valid_variant(bad)


def test_movie_proba_adapts_each_movie_on_its_own_crops() -> None:
    """With alpha, each movie's crops go through a network adapted to that movie alone."""
    from types import SimpleNamespace

    import torch

    from dynacell.models import build_model
    from dynacell.states.registry import StateClassifier

    mod = _module()
    torch.manual_seed(0)
    card = SimpleNamespace(name="dcnet", architecture="dcnet", temperature=1.0,
                           classes=["stable", "mitotic", "new_daughter"], ndim=2, crop_size_px=[16, 16], model_channels=[0, 1, 2, 3], target_voxel_um=None)
    clf = StateClassifier(build_model("dcnet", 2, in_channels=4, n_classes=3, width=4).eval(), card, path=None)
    rng = np.random.default_rng(0)
    a, b = rng.random((20, 4, 16, 16)), 5 + 3 * rng.random((30, 4, 16, 16))
    x = np.concatenate([a, b]).astype(np.float32)
    ds = np.array(["a"] * 20 + ["b"] * 30)
    np.testing.assert_allclose(mod.movie_proba(clf, x, ds, None), clf.predict_proba(x), rtol=1e-6)
    p = mod.movie_proba(clf, x, ds, 1.0)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    alone = mod.movie_proba(clf, x[20:], ds[20:], 1.0)  # movie b's figures do not depend on movie a
    np.testing.assert_allclose(p[20:], alone, rtol=1e-5, atol=1e-6)
    assert np.abs(p - clf.predict_proba(x)).max() > 1e-3
    pb = mod.movie_proba(clf, x, ds, (1.0, True))  # balanced by the model's own calls
    np.testing.assert_allclose(pb.sum(1), 1.0, rtol=1e-5)
