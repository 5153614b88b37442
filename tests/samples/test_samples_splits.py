"""Tests of grouped splits: no group ever crosses train / val / test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError
from dynacell.lineage import Lineage
from dynacell.samples import group_labels, grouped_split


def _meta(n_trees=20, per_tree=7, datasets=("a", "b")):
    rows = []
    for d in datasets:
        for tree in range(1, n_trees + 1):
            for k in range(per_tree):
                rows.append({"dataset": d, "tree_id": tree, "t": tree * 3 + k, "label": k + 1})
    return pd.DataFrame(rows)


def _sides(parts, n):
    side = np.full(n, "", dtype=object)
    for name, idx in parts.items():
        assert np.all(side[idx] == "")  # disjoint
        side[idx] = name
    assert np.all(side != "")  # covering
    return side


@pytest.mark.parametrize("by,kw", [("tree", {}), ("sequence", {}), ("time", {"time_block": 10})])
def test_no_group_crosses_a_split(by, kw):
    meta = _meta(datasets=("a", "b", "c", "d"))
    parts = grouped_split(meta, by=by, fractions=(0.5, 0.25, 0.25), seed=3, **kw)
    side = _sides(parts, len(meta))
    groups = group_labels(meta, by=by, **kw)
    for g in np.unique(groups):
        assert len(set(side[groups == g])) == 1, g
    assert all(len(v) > 0 for v in parts.values())


def test_tree_split_keeps_mother_and_daughters_together():
    # (0,1) ── (1,1) ─┬─ (2,2) ── (3,2)      tree 1
    #                 └─ (2,3) ── (3,3)
    # (0,5) ── (1,5) ── (2,5) ── (3,5)       tree 2, and 8 single-node trees
    lin = Lineage(n_frames=4)
    for n in [(0, 1), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (0, 5), (1, 5), (2, 5), (3, 5)]:
        lin.add_node(n, (0, 1, 1))
    for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 3)), ((2, 2), (3, 2)), ((2, 3), (3, 3)),
              ((0, 5), (1, 5)), ((1, 5), (2, 5)), ((2, 5), (3, 5))]:
        lin.add_edge(*e)
    for k in range(8):
        lin.add_node((k % 4, 20 + k), (0, 1, 1))
    tree = lin.tree_ids()
    nodes = sorted(tree)
    meta = pd.DataFrame({"dataset": "x", "t": [n[0] for n in nodes], "label": [n[1] for n in nodes],
                         "tree_id": [tree[n] for n in nodes]})
    for seed in range(10):
        side = _sides(grouped_split(meta, by="tree", fractions=(0.6, 0.2, 0.2), seed=seed), len(meta))
        fam = [nodes.index(n) for n in [(1, 1), (2, 2), (2, 3)]]
        assert len(set(side[fam])) == 1


def test_seed_is_deterministic_and_matters():
    meta = _meta(n_trees=40)
    a = grouped_split(meta, seed=1)
    b = grouped_split(meta, seed=1)
    c = grouped_split(meta, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_fractions_count_groups_and_zero_fraction_is_empty():
    meta = _meta(n_trees=50, datasets=("a",))
    parts = grouped_split(meta, fractions=(0.7, 0.3, 0.0), seed=0)
    assert parts["test"].size == 0
    n_val_groups = np.unique(meta["tree_id"].to_numpy()[parts["val"]]).size
    assert n_val_groups == 15


def test_split_errors():
    meta = _meta(n_trees=2, datasets=("a",))
    with pytest.raises(InvalidInputError, match="sum"):
        grouped_split(meta, fractions=(0.5, 0.5, 0.5))
    with pytest.raises(InvalidInputError, match="group"):
        grouped_split(meta, by="tree")
    with pytest.raises(InvalidInputError, match="unknown"):
        grouped_split(meta, by="random")
    with pytest.raises(InvalidInputError, match="time_block"):
        grouped_split(meta, by="time")
    no_lineage = meta.assign(tree_id=-1)
    with pytest.raises(InvalidInputError, match="no lineage tree"):
        grouped_split(no_lineage, by="tree")


def test_datasets_sorted_after_keep_the_sides_of_the_others():
    """configs/nuclei-2d-sim.yaml relies on this: rendered sets (``sim2d-…``) added to the real ones leave
    every real tree on its side (datasets are split in sorted order with one generator), while a dataset
    sorted *before* them would move them."""
    from dynacell.samples.splits import SplitConfig, assign_split

    rng = np.random.default_rng(0)

    def sets(name: str, n_trees: int) -> pd.DataFrame:
        trees = rng.integers(0, n_trees, 400)
        return pd.DataFrame({"dataset": name, "t": rng.integers(0, 30, 400), "tree_id": trees})

    real = pd.concat([sets("bacteria", 30), sets("hela", 40)], ignore_index=True)
    spec = SplitConfig(by="tree", fractions=(0.6, 0.2, 0.2), seed=0)
    base = assign_split(real, spec)
    after = assign_split(pd.concat([real, sets("sim2d-0", 25)], ignore_index=True), spec)
    assert (after[: len(real)] == base).all()
    before = assign_split(pd.concat([sets("aaa", 25), real], ignore_index=True), spec)
    assert (before[400:] != base).any()
