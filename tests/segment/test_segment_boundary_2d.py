"""Tests of the outline diagnosis helpers (benchmarks/segment_boundary_2d.py)."""

from __future__ import annotations

import numpy as np

from _helpers import load_benchmark


def _module():
    return load_benchmark("segment_boundary_2d")


def test_shrink_labels_removes_one_ring_also_between_touching_objects() -> None:
    mod = _module()
    lab = np.zeros((12, 12), np.int32)
    lab[2:10, 2:6] = 1
    lab[2:10, 6:10] = 2  # touching along x = 5 | 6
    out = mod.shrink_labels(lab, 1)
    assert (out == 1).sum() == 6 * 2 and (out == 2).sum() == 6 * 2
    assert not out[:, 5].any() and not out[:, 6].any()  # the shared edge is gone from both
    assert out.dtype == lab.dtype and (lab == 1).sum() == 32  # input untouched


def test_per_object_area_ratio_merge_split_and_miss() -> None:
    mod = _module()
    ref = np.zeros((20, 40), np.int32)
    ref[2:8, 2:8] = 1  # matched by a 1-px larger square
    ref[2:8, 12:16] = 2
    ref[2:8, 16:20] = 3  # 2 and 3 merged in one prediction
    ref[12:18, 2:8] = 4  # split in two halves: neither covers > half
    ref[12:18, 30:36] = 5  # missed
    pred = np.zeros_like(ref)
    pred[2:9, 2:9] = 7
    pred[2:8, 12:20] = 8
    pred[12:18, 2:5] = 9
    pred[12:18, 5:8] = 10
    rows = mod.per_object(ref, pred)
    assert rows[0]["area_ratio"] == 49 / 36 and rows[0]["jaccard"] == 36 / 49 and rows[0]["inside"] == 36 / 49
    assert rows[1]["merged"] == 2 and rows[2]["merged"] == 2 and rows[1]["jaccard"] == 0.5
    assert rows[3]["pieces"] == 2 and rows[3]["jaccard"] == 0.0 and np.isnan(rows[3]["area_ratio"])
    assert rows[4]["jaccard"] == 0.0 and rows[4]["covered"] == 0.0 and rows[4]["pieces"] == 0
