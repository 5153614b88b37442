"""Tests of the label-consistency helper (benchmarks/mouse8_label_consistency.py)."""

from __future__ import annotations

import numpy as np

from _helpers import load_benchmark


def _module():
    return load_benchmark("mouse8_label_consistency")


def _two_boxes(shift=(0, 0, 0), grow=0):
    lab = np.zeros((12, 40, 40), np.int32)
    s = shift
    lab[2 + s[0]:6 + s[0], 4 + s[1]:12 + s[1] + grow, 4 + s[2]:12 + s[2]] = 1
    lab[3 + s[0]:8 + s[0], 24 + s[1]:34 + s[1], 22 + s[2]:30 + s[2]] = 2
    return lab


def test_moved_but_identical_outlines_score_one_and_are_paired_by_centroid():
    mod = _module()
    a = _two_boxes()
    b = np.where(_two_boxes(shift=(1, 3, -2)) == 1, 2, np.where(_two_boxes(shift=(1, 3, -2)) == 2, 1, 0))  # ids swapped
    scores = mod.paired_outline_scores(a, b)
    assert len(scores) == 2 and all(abs(j - 1) < 1e-9 and abs(v - 1) < 1e-9 for j, v in scores)


def test_a_grown_outline_lowers_the_jaccard_and_reports_its_volume():
    mod = _module()
    scores = dict(enumerate(mod.paired_outline_scores(_two_boxes(), _two_boxes(grow=4))))
    j, v = scores[0]
    assert v == 1.5 and 0.6 < j < 0.7  # 8 x 12 box against 8 x 8, centred to the voxel
    assert scores[1] == (1.0, 1.0)
    assert mod.paired_outline_scores(np.zeros((2, 2, 2), int), _two_boxes()) == []
