"""Tests of build_sample_set: lineage states → crops, streaming, skipped nodes."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage import Lineage
from dynacell.lineage.events import EventRules, label_events
from dynacell.samples import build_sample_set, grouped_split


def _scene(T=24):
    """A synthetic 2D movie and its lineage.

    ::

        label 1:  t0 ─────────── t11 ─┬─ label 2: t12 ──── t23
                                      └─ label 3: t12 ──── t23
        label 4:  t0 ──────────────────────────────────── t23   (stable)
        label 5:  t0 ──────── t9                                (track end: death)
    """
    shape = (64, 96)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 50, (T, *shape)).astype(np.uint16)
    lab = np.zeros((T, *shape), np.uint16)
    lin = Lineage(n_frames=T)
    boxes = {1: (10, 20), 2: (6, 16), 3: (16, 26), 4: (40, 60), 5: (45, 15)}
    for t in range(T):
        present = [1, 4, 5] if t < 12 else [2, 3, 4]
        if t > 9:
            present = [p for p in present if p != 5]
        for lb in present:
            y, x = boxes[lb]
            lab[t, y:y + 6, x:x + 6] = lb
            lin.add_node((t, lb), (y + 2.5, x + 2.5))
            if t > 0:
                prev = 1 if lb in (2, 3) and t == 12 else lb
                lin.add_edge((t - 1, prev), (t, lb))
    img[lab > 0] += 400
    return Movie(img, "TYX", source="synthetic"), Movie(lab, "TYX", source="synthetic-labels"), lin


def test_states_match_label_events_and_unknown_is_skipped():
    images, labels, lin = _scene()
    s = build_sample_set(images, labels, lin, "seed", size=16, dataset="syn")
    events = label_events(lin, EventRules.seed())
    expected = {n for n, st in events.items() if st != "unknown"}
    got = set(zip(s.meta["t"], s.meta["label"]))
    assert got == expected
    for row in s.meta.itertuples():
        assert row.state == events[(row.t, row.label)]
    assert s.meta.loc[s.meta.state == "mitotic", ["t", "label"]].values.tolist() == [[11, 1]]
    assert sorted(s.meta.loc[s.meta.state == "new_daughter", "label"]) == [2, 3]
    assert s.meta.loc[s.meta.state == "death", ["t", "label"]].values.tolist() == [[9, 5]]
    assert s.x.shape == (len(s), 4, 16, 16)
    # the mother and daughters share a tree; the other nuclei are in their own trees
    trees = s.meta.groupby("label")["tree_id"].unique()
    assert trees[2][0] == trees[3][0] and trees[4][0] != trees[2][0]
    assert s.attrs["rules"]["stable_window"] == 8 and s.attrs["seed"] == 0
    assert s.meta[["y", "x"]].notna().all().all()


def test_max_per_class_is_random_and_seeded():
    images, labels, lin = _scene()
    a = build_sample_set(images, labels, lin, size=8, states=("stable",), max_per_class=5, seed=1)
    b = build_sample_set(images, labels, lin, size=8, states=("stable",), max_per_class=5, seed=1)
    c = build_sample_set(images, labels, lin, size=8, states=("stable",), max_per_class=5, seed=2)
    assert len(a) == 5 and a.counts() == {"stable": 5}
    assert a.meta[["t", "label"]].equals(b.meta[["t", "label"]])
    assert not a.meta[["t", "label"]].equals(c.meta[["t", "label"]])
    # random, not "the first N": some pick beyond the first frames
    full = build_sample_set(images, labels, lin, size=8, states=("stable",))
    assert a.meta["t"].max() > full.meta["t"].sort_values().iloc[4]


def test_nodes_absent_from_masks_or_frames_are_counted(caplog):
    images, labels, lin = _scene()
    lab = np.asarray(labels.data).copy()
    lab[5][lab[5] == 4] = 0  # node (5, 4) has no pixel
    keep = [t for t in range(24) if t != 7]  # no label image at frame 7
    sparse = Movie(lab[keep], "TYX", frame_indices=tuple(keep), source="tra")
    short = Movie(np.asarray(images.data)[:20], "TYX", source="img")  # images for frames 0-19 only
    with caplog.at_level(logging.WARNING):
        s = build_sample_set(short, sparse, lin, size=8, states=("stable", "mitotic", "new_daughter", "death"))
    sk = s.attrs["skipped"]
    events = label_events(lin)
    labelled = {n for n, st in events.items() if st != "unknown"}
    assert sk["absent_from_mask"] == int((5, 4) in labelled)
    assert sk["no_label_image"] == sum(1 for n in labelled if n[0] == 7)
    assert sk["no_image"] == sum(1 for n in labelled if n[0] >= 20)
    assert len(s) == len(labelled) - sum(sk.values())
    assert "frame 5" in caplog.text and "[4]" in caplog.text
    assert s.meta["t"].max() <= 19


def test_without_lineage_every_nucleus_gets_the_assumed_state():
    images, labels, _ = _scene(T=6)
    s = build_sample_set(images, labels, None, size=8, dataset="noline", assume_state="stable", frames=range(2, 5))
    n_expected = sum(np.unique(labels.frame(t)).size - 1 for t in range(2, 5))
    assert len(s) == n_expected and s.counts() == {"stable": n_expected}
    assert (s.meta["track_id"] == -1).all() and (s.meta["tree_id"] == -1).all()
    u = build_sample_set(images, labels, None, size=8)
    assert set(u.meta["state"]) == {"unknown"}
    parts = grouped_split(u.meta.assign(dataset=np.where(u.meta["t"] < 3, "a", "b")), by="sequence",
                          fractions=(0.5, 0.5, 0.0))
    assert len(parts["train"]) + len(parts["val"]) == len(u)


def test_build_errors():
    images, labels, lin = _scene(T=6)
    with pytest.raises(InvalidInputError, match="mitosis"):
        build_sample_set(images, labels, lin, states=("mitosis",))
    with pytest.raises(InvalidInputError, match="max_per_class"):
        build_sample_set(images, labels, lin, max_per_class=0)
    with pytest.raises(InvalidInputError, match="preset"):
        build_sample_set(images, labels, lin, rules="nonsense")
    lin3 = Lineage(n_frames=6, ndim=3)
    with pytest.raises(InvalidInputError, match="3D"):
        build_sample_set(images, labels, lin3)
