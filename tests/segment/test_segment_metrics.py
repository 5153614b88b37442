"""Segmentation metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.metrics.segmentation import (
    ctc_seg,
    live_dead_confusion,
    object_scores,
    overlap_matrix,
    pixel_scores,
    segmentation_report,
)


def _two_squares():
    ref = np.zeros((10, 10), np.int32)
    ref[0:4, 0:4] = 1  # 16 px
    ref[6:10, 6:10] = 2  # 16 px
    pred = np.zeros_like(ref)
    pred[0:4, 0:2] = 7  # half of object 1: not > half -> SEG 0 for it
    pred[6:10, 6:10] = 3  # perfect
    pred[0:2, 8:10] = 9  # a false positive
    return ref, pred


def test_ctc_seg_needs_more_than_half_coverage():
    ref, pred = _two_squares()
    seg, n = ctc_seg(ref, pred)
    assert n == 2
    assert seg == pytest.approx(0.5)  # (0 + 1) / 2
    pred[0:4, 0:3] = 7  # 12 of 16 px covered, IoU 12/16
    assert ctc_seg(ref, pred)[0] == pytest.approx((0.75 + 1) / 2)


def test_ctc_seg_empty_cases():
    ref = np.zeros((5, 5), np.int32)
    assert np.isnan(ctc_seg(ref, ref)[0])
    ref[1:3, 1:3] = 4
    assert ctc_seg(ref, np.zeros_like(ref)) == (0.0, 1)


def test_object_scores_and_ap():
    ref, pred = _two_squares()
    s = object_scores(ref, pred, thresholds=(0.5, 0.9))
    assert s["n_reference"] == 2 and s["n_predicted"] == 3
    assert s["tp@0.5"] == 2 and s["tp@0.9"] == 1  # the half-covered square has IoU exactly 0.5
    pred2 = pred.copy()
    pred2[0:4, 0:2] = 0
    s2 = object_scores(ref, pred2, thresholds=(0.5,))
    assert s2["tp@0.5"] == 1 and s2["precision@0.5"] == pytest.approx(0.5) and s2["recall@0.5"] == pytest.approx(0.5)
    assert s2["ap@0.5"] == pytest.approx(1 / 3)
    assert s["ap@0.5:0.9"] == pytest.approx(np.mean([s["ap@0.5"], s["ap@0.9"]]))


def test_overlap_matrix_iou():
    ref, pred = _two_squares()
    rid, pid, _, iou = overlap_matrix(ref, pred)
    assert list(rid) == [1, 2] and list(pid) == [3, 7, 9]
    assert iou[1, 0] == 1.0 and iou[0, 1] == pytest.approx(8 / 16)


def test_pixel_scores_with_probability_and_valid_mask():
    ref = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 1, 0]])
    s = pixel_scores(ref, pred, probability=np.array([[0.9, 0.6, 0.4, 0.1]]))
    assert s["iou"] == pytest.approx(1 / 3) and s["f1"] == pytest.approx(0.5) and s["roc_auc"] == 1.0
    s = pixel_scores(ref, pred, valid=np.array([[1, 1, 0, 1]], bool))
    assert s["precision"] == 1.0 and s["recall"] == 0.5


def test_live_dead_confusion_dominant_class():
    lab = np.zeros((4, 6), np.int32)
    lab[:, 0:2], lab[:, 2:4], lab[:, 4:6] = 1, 2, 3
    cls = np.zeros_like(lab)
    cls[:, 0:2] = 1  # live -> live
    cls[:, 2:4] = 2  # dead -> dead
    cls[:3, 4:6] = 2  # live nucleus 3 mostly predicted dead
    t = live_dead_confusion(lab, {2}, cls)
    assert t.loc["live", "live"] == 1 and t.loc["dead", "dead"] == 1 and t.loc["live", "dead"] == 1
    assert int(t.to_numpy().sum()) == 3


def test_shape_mismatch_and_float_labels_raise():
    with pytest.raises(InvalidInputError, match="shape"):
        ctc_seg(np.zeros((3, 3), int), np.zeros((3, 4), int))
    with pytest.raises(InvalidInputError, match="integers"):
        ctc_seg(np.zeros((3, 3)), np.zeros((3, 3), int))


def test_report_full_vs_sparse():
    ref, pred = _two_squares()
    assert "f1@0.5" in segmentation_report(ref, pred)
    assert "f1@0.5" not in segmentation_report(ref, pred, full_reference=False)
