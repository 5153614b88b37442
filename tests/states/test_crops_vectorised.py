"""The vectorised crop function gives the crops of the per-nucleus reference (map_coordinates + context_mask).

The reference below is the earlier per-nucleus loop of :func:`dynacell.samples.crop_windows`
(one :func:`scipy.ndimage.map_coordinates` call per nucleus and channel, one
:func:`dynacell.samples.crops.context_mask` per nucleus), kept here as the specification.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dynacell.samples import crop_windows
from dynacell.samples.crops import PERCENTILES, context_mask, normalize_crops, nucleus_centroids


def _reference_normalize(raw, valid):
    """Per crop: numpy.percentile of the in-bounds raw values (the normalisation rule, one crop at a time)."""
    out = np.zeros(raw.shape, np.float32)
    for i in range(raw.shape[0]):
        v = np.broadcast_to(valid[i], raw.shape[1:])
        vals = raw[i][v]
        lo, hi = np.percentile(vals, PERCENTILES) if vals.size else (0.0, 0.0)
        scale = 1.0 / (hi - lo) if hi > lo else 0.0
        out[i] = np.clip((raw[i] - np.float32(lo)) * np.float32(scale), 0.0, 1.0)
        out[i][~v] = 0.0
    return out


def _reference(frames, lab, ids, cen, size, scale, ctx_labels):
    cur = frames[1]
    ndim = cur.ndim
    n = len(ids)
    raw = np.zeros((n, 3, *size), np.float32)
    mask = np.zeros((n, *size), bool)
    valid = np.zeros((n, *size), bool)
    ctx = np.zeros((n, 2, *size), np.float32)
    offsets = [(np.arange(s) - s // 2) * f for s, f in zip(size, scale)]
    for i in range(n):
        centre = np.floor(cen[i] + 0.5)
        axes = [centre[a] + offsets[a] for a in range(ndim)]
        v = np.ones(size, bool)
        for a, ax in enumerate(axes):
            v &= ((ax >= 0) & (ax <= cur.shape[a] - 1)).reshape([-1 if b == a else 1 for b in range(ndim)])
        valid[i] = v
        coords = np.stack(np.meshgrid(*axes, indexing="ij"))
        for c in range(3):
            raw[i, c] = ndimage.map_coordinates(frames[c], coords, order=1, mode="constant", cval=0.0,
                                                prefilter=False, output=np.float32)
        nearest = [np.clip(np.floor(ax + 0.5).astype(int), 0, cur.shape[a] - 1) for a, ax in enumerate(axes)]
        grid = np.ix_(*nearest)
        mask[i] = (lab[grid] == ids[i]) & v
        for k, lc in enumerate(ctx_labels):
            ctx[i, k] = context_mask(np.where(v, lc[grid], 0), mask[i])
    out = np.empty((n, 6, *size), np.float32)
    out[:, :3] = _reference_normalize(raw, valid)
    out[:, 3] = mask
    out[:, 4:] = ctx
    return out


def _scene(ndim, seed, shape=None):
    rng = np.random.default_rng(seed)
    shape = shape or ((60, 70) if ndim == 2 else (9, 40, 44))
    frames = [rng.gamma(2.0, 50.0, shape).astype(np.float32) for _ in range(3)]
    labs = []
    for _ in range(3):
        lab = np.zeros(shape, np.int32)
        for j in range(12):
            c = [rng.uniform(0, s) for s in shape]
            grid = np.indices(shape)
            d = sum(((g - cc) / (1.5 if a == 0 and ndim == 3 else 5.0)) ** 2 for a, (g, cc) in enumerate(zip(grid, c)))
            lab[d <= 1] = rng.integers(1, 40)
        labs.append(lab)
    return frames, labs


# anisotropic steps; shallow frames (fewer z-planes / rows than a box's source window: read whole and
# interpolated per box, as CHO's 5-plane frames) beside deep ones
@pytest.mark.parametrize("ndim,scale,shape", [(2, (1.0, 1.0), None), (2, (1.7, 1.7), None), (2, (0.6, 0.8), None),
                                               (2, (3.2, 2.6), None), (2, (1.7, 2.6), (9, 70)),
                                               (3, (0.5, 1.3, 1.3), None), (3, (1.1, 5.6, 5.6), None),
                                               (3, (1.1, 5.6, 5.6), (4, 40, 44)), (3, (0.5, 1.3, 1.3), (3, 40, 44)),
                                               (3, (1.6, 1.6, 1.6), (5, 23, 41))])
@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_crops_equal_the_per_nucleus_reference(ndim, scale, shape, seed):
    frames, (lp, lab, ln) = _scene(ndim, seed, shape)
    ids, cen = nucleus_centroids(lab)
    cen = cen if ndim == 3 else cen[:, 1:]
    size = (12, 10) if ndim == 2 else (5, 8, 9)
    ref = _reference(frames, lab, ids, cen, size, scale, (lp, ln))
    resample = not np.allclose(scale, 1.0)
    got = crop_windows(frames, lab, ids, cen, size=size,
                       voxel_size_um=(1.0,) * ndim if resample else None,
                       target_voxel_um=scale if resample else None, context_labels=(lp, ln))
    assert got.shape == ref.shape
    np.testing.assert_array_equal(got[:, 3:], ref[:, 3:])  # mask and context channels exactly
    np.testing.assert_allclose(got[:, :3], ref[:, :3], atol=2e-5)  # interpolation: float rounding only
    assert ids.size >= 5 and got[:, 4:].max() == 1.0  # the scene has overlapping objects at t±1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normalize_crops_equals_numpy_percentile_per_crop(seed):
    """The one-sort percentiles give numpy.percentile's numbers per crop, with border (partly valid),
    empty and flat crops and integer-valued data (ties)."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(2.0, 40.0, (9, 3, 7, 11)).astype(np.float32)
    raw[::2] = np.round(raw[::2])
    raw[5] = 7.0  # flat
    valid = rng.random((9, 7, 11)) < rng.uniform(0.2, 1.0, (9, 1, 1))
    valid[0] = True
    valid[1] = False  # nothing inside the frame
    got = normalize_crops(raw, valid)
    np.testing.assert_array_equal(got, _reference_normalize(raw, valid))
    np.testing.assert_array_equal(normalize_crops(raw), _reference_normalize(raw, np.ones((9, 7, 11), bool)))
    assert got[1].max() == 0.0 and got[5].max() == 0.0 and got[0].max() == 1.0
