"""The vectorised linking cost (``_LinkCost.pairwise``) gives the per-pair values laptrack used to loop over."""

from __future__ import annotations

import numpy as np

from dynacell.track.linking import _count_pairs, _fast_cdist, _link_metric


def _rows(rng: np.random.Generator, frames: list[int], n: int) -> np.ndarray:
    """Rows ``[i, label, z, y, x, vz, vy, vx]`` of ``n`` nuclei spread over ``frames``."""
    keys = np.array([(i, lab) for i in frames for lab in range(1, 6)], dtype=float)  # (frame, label) unique
    keys = keys[rng.choice(len(keys), size=n, replace=False)]
    return np.column_stack([keys, rng.normal(size=(n, 3)) * 5, rng.normal(size=(n, 3))])


def test_pairwise_equals_the_scalar_metric_in_both_time_orders():
    rng = np.random.default_rng(0)
    fraction = {(ia, la, ib, lb): float(rng.random()) for ia in range(4) for ib in range(ia + 1, 4)
                for la in range(1, 6) for lb in range(1, 6) if rng.random() < 0.5}
    for power in (1, 2):
        cost = _link_metric(fraction, power=power)
        xa, xb = _rows(rng, [0, 1, 2], 7), _rows(rng, [1, 2, 3], 9)  # earlier, later and same-frame pairs mixed
        expected = np.array([[cost(a, b) for b in xb] for a in xa])
        np.testing.assert_allclose(cost.pairwise(xa, xb), expected, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(_fast_cdist(xa, xb, metric=cost), expected, rtol=1e-12, atol=1e-12)


def test_fast_cdist_leaves_other_metrics_to_scipy():
    from scipy.spatial.distance import cdist

    a, b = np.arange(6.0).reshape(3, 2), np.ones((2, 2))
    np.testing.assert_array_equal(_fast_cdist(a, b, metric="sqeuclidean"), cdist(a, b, "sqeuclidean"))


def test_count_pairs_small_and_huge_ids_agree():
    la = np.array([1, 1, 2, 1, 2], np.int64)
    lb = np.array([3, 3, 3, 4, 3], np.int64)
    a, b, c = _count_pairs(la, lb)
    assert list(zip(a.tolist(), b.tolist(), c.tolist())) == [(1, 3, 2), (1, 4, 1), (2, 3, 2)]
    big = np.int64(2 ** 62)
    a2, b2, c2 = _count_pairs(la + big, lb + big)  # cannot be packed into one int64: column-wise route
    assert list(zip((a2 - big).tolist(), (b2 - big).tolist(), c2.tolist())) == [(1, 3, 2), (1, 4, 1), (2, 3, 2)]
