"""traccuracy is imported without numba compilation; the numpy box overlap replaces its kernels with the same values."""

from __future__ import annotations

import numpy as np

from dynacell.metrics.tracking import _bbox_overlap, _traccuracy


def _reference(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """traccuracy's loop (Fast R-CNN convention, +1 per side), in any dimension."""
    d = boxes.shape[1] // 2
    out = np.zeros((len(boxes), len(query)))
    for n, a in enumerate(boxes):
        for k, b in enumerate(query):
            side = [min(a[d + i], b[d + i]) - max(a[i], b[i]) + 1 for i in range(d)]
            if all(s > 0 for s in side):
                inter = np.prod(side)
                out[n, k] = inter / (np.prod(a[d:] - a[:d] + 1) + np.prod(b[d:] - b[:d] + 1) - inter)
    return out


def test_bbox_overlap_matches_the_loop_in_2d_and_3d():
    rng = np.random.default_rng(1)
    for d in (2, 3):
        lo_a, lo_b = rng.integers(0, 20, size=(12, d)), rng.integers(0, 20, size=(9, d))
        boxes = np.hstack([lo_a, lo_a + rng.integers(1, 8, size=(12, d))]).astype(float)
        query = np.hstack([lo_b, lo_b + rng.integers(1, 8, size=(9, d))]).astype(float)
        np.testing.assert_allclose(_bbox_overlap(boxes, query), _reference(boxes, query), rtol=1e-12)


def test_traccuracy_uses_the_numpy_overlap():
    _traccuracy()
    from traccuracy.matchers import _compute_overlap

    assert _compute_overlap.compute_overlap is _bbox_overlap
    assert _compute_overlap.compute_overlap_3D is _bbox_overlap
