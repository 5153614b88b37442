"""benchmarks/run_wormguides.py: merged nuclei and the mask scores of a run's CTC masks."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from _helpers import load_benchmark


def _reference() -> np.ndarray:
    """Three cubes of 4³ voxels (ids 1-3) in a 6 × 20 × 20 volume."""
    ref = np.zeros((6, 20, 20), np.int32)
    ref[1:5, 2:6, 2:6], ref[1:5, 2:6, 7:11], ref[1:5, 12:16, 12:16] = 1, 2, 3
    return ref


def test_merged_nuclei_counts_the_nuclei_of_objects_covering_two_or_more():
    bench = load_benchmark("run_wormguides")
    ref = _reference()
    assert bench.merged_nuclei(ref, ref) == 0
    merged = ref.copy()
    merged[1:5, 2:6, 2:11] = 1  # nuclei 1 and 2 in one object
    assert bench.merged_nuclei(ref, merged) == 2
    half = ref.copy()
    half[1:5, 2:6, 4:6] = 0  # nucleus 1 half covered by nothing: no merge
    half[1:5, 2:6, 2:4] = 2
    assert bench.merged_nuclei(ref, half) == 0


def test_mask_scores_reads_the_run_masks_against_the_reference(tmp_path):
    bench = load_benchmark("run_wormguides")
    ref = _reference()
    gt, run = tmp_path / "TRA", tmp_path / "run"
    (run / "ctc").mkdir(parents=True)
    gt.mkdir()
    pred = ref.copy()
    pred[1:5, 2:6, 2:11] = 1  # one merge in frame 1
    for t, p in enumerate((ref, pred)):
        tifffile.imwrite(gt / f"man_track{t:03d}.tif", ref.astype(np.uint16))
        tifffile.imwrite(run / "ctc" / f"mask{t:03d}.tif", p.astype(np.uint16))
    s = bench.mask_scores(run, gt)
    assert s["ref_per_frame"] == 3 and s["objects_per_frame"] == 2.5 and s["merged_nuclei"] == 2
    # frame 0 perfect; in frame 1 nuclei 1 and 2 (64 voxels each) share the merged object of 144 voxels
    assert s["SEG"] == pytest.approx((4 + 2 * 64 / 144) / 6)
