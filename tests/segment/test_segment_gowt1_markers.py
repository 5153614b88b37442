"""Tests of the GOWT1 fresh-frame marker check (benchmarks/segment_gowt1_markers.py)."""

from __future__ import annotations

import numpy as np
import pytest

from _helpers import load_benchmark


def test_marker_detection_counts_hits_merges_misses_and_unmarked_objects() -> None:
    mod = load_benchmark("segment_gowt1_markers")
    markers = np.zeros((40, 60), np.int32)
    markers[5:8, 5:8] = 1  # hit
    markers[5:8, 20:23] = 2  # 2 and 3 in one predicted object: merged
    markers[5:8, 28:31] = 3
    markers[25:28, 5:8] = 4  # missed (no object)
    markers[25:28, 20:24] = 5  # only a third covered: missed
    pred = np.zeros_like(markers)
    pred[3:10, 3:10] = 1
    pred[3:10, 18:33] = 2
    pred[25:28, 20:21] = 3
    pred[30:38, 40:50] = 4  # no marker
    c = mod.marker_detection(pred, markers)
    assert c == {"markers": 5, "hit": 1, "merged": 2, "merge_objects": 1, "missed": 2, "no_marker": 2, "objects": 4}
    assert c["hit"] + c["merged"] + c["missed"] == c["markers"]
    empty = mod.marker_detection(np.zeros_like(pred), markers)
    assert empty["missed"] == 5 and empty["objects"] == 0 and empty["hit"] == 0


def test_fresh_frames_are_in_no_split() -> None:
    from dynacell.train.segment import DEFAULT_DATA, SPLITS

    g = DEFAULT_DATA / "ctc" / "Fluo-N2DH-GOWT1" / "01_GT"
    if not g.is_dir():
        pytest.skip("shared GOWT1 data not found beside the checkout")
    mod = load_benchmark("segment_gowt1_markers")
    fresh = mod.frame_set("fresh", DEFAULT_DATA)
    seg = {int(p.stem[7:]) for p in (g / "SEG").glob("man_seg*.tif")}
    assert len(fresh) == 49 and not set(fresh) & seg and min(fresh) >= 32
    assert all(SPLITS["gowt1"]["test"](t) for t in fresh)  # the test time block, but no outline there
    assert mod.frame_set("seg-test", DEFAULT_DATA) == sorted(t for t in seg if t >= 32)
