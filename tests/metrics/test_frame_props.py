"""The tracking metrics' per-frame detections (``_frame_props``) equal skimage's regionprops_table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.measure import regionprops_table

from dynacell.errors import InvalidInputError
from dynacell.io.objects import nucleus_centroids
from dynacell.metrics.tracking import _frame_props


def _labels(ndim: int, seed: int, big: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (6, 30, 34)[3 - ndim:]
    lab = np.zeros(shape, np.int64)
    for k in range(1, 9):
        lo = [int(rng.integers(0, s - 4)) for s in shape]
        lab[tuple(slice(a, a + int(rng.integers(1, 5))) for a in lo)] = k + big
    return lab


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("big", [0, 2**40])  # dense find_objects route and sparse route
def test_frame_props_equal_regionprops(ndim: int, big: int) -> None:
    lab = _labels(ndim, seed=ndim, big=big)
    got = _frame_props(lab, "test")
    ids, inv = np.unique(lab, return_inverse=True)  # regionprops on sequential ids (as the earlier code did)
    ref = pd.DataFrame(regionprops_table(inv.reshape(lab.shape), properties=("label", "centroid", "bbox")))
    ref["label"] = ids[ref["label"].to_numpy()]
    assert list(got.columns) == list(ref.columns)
    assert got["label"].tolist() == ref["label"].tolist()
    bbox = [c for c in ref.columns if c.startswith("bbox")]
    assert (got[bbox].to_numpy() == ref[bbox].to_numpy()).all()
    cen = [c for c in ref.columns if c.startswith("centroid")]
    np.testing.assert_allclose(got[cen].to_numpy(), ref[cen].to_numpy(), rtol=0, atol=1e-9)


def test_nucleus_centroids_boxes_and_errors() -> None:
    lab = np.zeros((5, 6), np.uint16)
    lab[1:3, 2:5] = 4
    ids, cen, sizes, boxes = nucleus_centroids(lab, return_sizes=True, return_boxes=True)
    assert ids.tolist() == [4] and sizes.tolist() == [6] and boxes.tolist() == [[1, 2, 3, 5]]
    ids, cen, boxes = nucleus_centroids(np.zeros((3, 3), np.uint8), return_boxes=True)
    assert boxes.shape == (0, 4) and ids.size == 0
    with pytest.raises(InvalidInputError, match="integer"):
        _frame_props(np.zeros((3, 3), float), "test")
    with pytest.raises(InvalidInputError, match="negative"):
        _frame_props(-np.ones((3, 3), np.int32), "test")
