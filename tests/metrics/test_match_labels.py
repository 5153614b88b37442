"""Tests of dynacell.metrics.states.match_labels (CTC matching rule, packed-key counting)."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.metrics.states import match_labels


def _match_reference(pred: np.ndarray, gt: np.ndarray) -> dict[int, int]:
    """The earlier implementation (column-wise unique, a Python loop over the pairs)."""
    fg = gt > 0
    g, p = gt[fg].astype(np.int64), pred[fg].astype(np.int64)
    if g.size == 0:
        return {}
    pairs, counts = np.unique(np.stack([g, p]), axis=1, return_counts=True)
    g_ids, g_sizes = np.unique(g, return_counts=True)
    size_of = dict(zip(g_ids.tolist(), g_sizes.tolist()))
    out: dict[int, int] = {}
    for (gi, pi), c in zip(pairs.T.tolist(), counts.tolist()):
        if pi > 0 and c > 0.5 * size_of[gi]:
            out[int(pi)] = int(gi)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_match_labels_equals_the_reference_implementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (4, 20, 24) if seed % 2 else (40, 48)
    # blocky labels so that matches exist, plus noise so that some do not
    gt = np.kron(rng.integers(0, 9, size=tuple(s // 4 for s in shape)), np.ones((4,) * len(shape), np.int64))
    pred = np.where(rng.random(shape) < 0.2, rng.integers(0, 40, size=shape), gt * 3 + 1)
    pred[gt == 0] = 0
    assert match_labels(pred, gt) == _match_reference(pred, gt)
    # a prediction covering two references keeps the larger id, as before
    gt2 = np.zeros((4, 8), np.int64)
    gt2[:, :4], gt2[:, 4:] = 2, 5
    assert match_labels(np.ones_like(gt2), gt2) == _match_reference(np.ones_like(gt2), gt2) == {1: 5}


def test_match_labels_large_ids_and_bad_input() -> None:
    gt = np.zeros((6, 6), np.uint64)
    gt[:3], gt[3:] = 2**62, 7
    pred = np.zeros((6, 6), np.int64)
    pred[:3], pred[3:] = 9, 2**40
    assert match_labels(pred.astype(np.uint64), gt) == _match_reference(pred.astype(np.uint64), gt)
    assert match_labels(np.zeros((2, 2), int), np.zeros((2, 2), int)) == {}
    with pytest.raises(InvalidInputError, match=">= 0"):
        match_labels(-np.ones((2, 2), int), np.ones((2, 2), int))
