"""The one crop function of dynacell, used by training and inference alike.

A *sample* for nucleus ``label`` at frame ``t`` is a 4-channel window
``[t−1, t, t+1, mask]``: the same box cut from the images of frames ``t−1``, ``t`` and
``t+1`` and the binary mask of that nucleus in the label image of frame ``t``
(the seed state classifier, "4ncnn" input). The box has a fixed size in pixels, is centred
on the nucleus centroid rounded to the nearest pixel and is **zero-padded** where it leaves
the frame (the seed shifted windows at borders instead: a defect not repeated here).

Rules, identical for every caller (:func:`crop_window`, :func:`crop_windows`,
:func:`crops_for_frame`, :func:`iter_frame_crops`, :func:`dynacell.samples.build_sample_set`):

* **Box.** For an axis of size ``s`` and rounded centroid ``c`` the box covers pixels
  ``c - s//2 .. c - s//2 + s - 1`` (for ``s = 32``: ``c-16 .. c+15``; the centroid pixel is at
  index ``s//2`` of the crop). Rounding is half-up (``floor(c + 0.5)``).
* **First / last frame.** A neighbour frame that does not exist (``t−1`` before the first
  frame, ``t+1`` after the last, or a frame missing from the movie) is replaced by frame
  ``t``: the nucleus then looks static on that side.
* **Normalisation** (:func:`normalize_crops`). Per crop, the 1st and 99.8th percentiles of
  the three raw channels taken *jointly* over the in-bounds voxels (padding excluded) map to
  0 and 1; values are clipped to ``[0, 1]``; padding is 0; a flat crop becomes 0. The mask
  channel is 0/1. The same rule holds whatever the crop size, so training and inference
  cannot disagree (the seed normalised 65³ crops in training but 32³ in inference).
* **Physical box (optional, 3D).** With ``target_voxel_um`` the output voxel is
  ``target_voxel_um`` µm; the source is sampled at
  ``c + (k - s//2) * target_voxel_um / voxel_size_um`` (linear interpolation for the images,
  nearest neighbour for the mask, :func:`scipy.ndimage.map_coordinates`), so anisotropic voxels
  (e.g. z 2.0 µm vs xy 0.208 µm in BlastoSPIM) become isotropic in the crop.
* **Track context (optional).** With ``neighbour_offsets_px`` (from a lineage,
  :func:`dynacell.lineage.centroids.track_displacements`) the boxes of ``t−1`` and ``t+1`` are
  centred where the nucleus's track is in those frames instead of at its position at ``t``, so a
  nucleus in a moving embryo (5–10 µm a frame) stays in the middle of its context channels; a
  nucleus without a linked neighbour keeps the box at ``t``. The mask channel is always at ``t``.
* **Segmentation context (optional, 6 channels).** With ``context=True`` two channels are
  appended, ``[seg t−1, seg t+1]``: the label images of frames ``t−1`` and ``t+1`` cut with
  the same box, keeping only the objects that overlap the nucleus's mask at ``t``
  (:func:`context_mask`): 1.0 on the object with the largest overlap, 0.5 on any other object
  covering ≥ 10 % of the mask, 0 elsewhere. A mother at ``t−1`` (new daughter), two daughters
  at ``t+1`` (mitosis) or nothing at ``t+1`` (death, loss) become visible from the
  segmentation alone — no lineage is read. A neighbour label frame that does not exist is
  replaced by the mask at ``t`` (the nucleus looks static on that side, as for the images).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from dynacell.io.objects import nucleus_centroids
from dynacell.errors import InvalidInputError

__all__ = [
    "CHANNELS",
    "CONTEXT_CHANNELS",
    "NORMALIZATION",
    "context_mask",
    "FrameCrops",
    "crop_window",
    "crop_windows",
    "crops_for_frame",
    "edge_and_size",
    "iter_frame_crops",
    "normalize_crops",
    "frame_source",
    "offsets_for_frame",
    "nucleus_centroids",
    "resolve_size",
]

logger = logging.getLogger(__name__)

#: Percentiles mapped to 0 and 1 by :func:`normalize_crops`.
PERCENTILES: tuple[float, float] = (1.0, 99.8)

#: Channel names of the 4-channel window (the seed's 4ncnn input).
CHANNELS: tuple[str, ...] = ("t-1", "t", "t+1", "mask")

#: Channel names of the 6-channel window with segmentation context (``context=True``).
CONTEXT_CHANNELS: tuple[str, ...] = (*CHANNELS, "seg t-1", "seg t+1")

#: Fraction of the nucleus's mask an object at t±1 must cover to enter the context channel
#: (besides the object of largest overlap, which always does).
CONTEXT_MIN_OVERLAP: float = 0.1

#: Description of the normalisation, recorded in sample sets and model cards.
NORMALIZATION: dict = {
    "method": "percentile",
    "percentiles": list(PERCENTILES),
    "channels": "t-1, t, t+1 jointly; mask channel 0/1; seg t-1 / seg t+1 (if present) 0 / 0.5 / 1",
    "over": "in-bounds voxels of each crop (zero padding excluded)",
    "clip": [0.0, 1.0],
    "padding": 0.0,
}


class FrameCrops(NamedTuple):
    """Crops of every nucleus of one frame, yielded by :func:`iter_frame_crops`.

    Attributes
    ----------
    t : int
        Frame number.
    x : numpy.ndarray
        float32 ``(N, 4, *size)``, channels ``[t−1, t, t+1, mask]`` (``(N, 6, *size)`` with
        segmentation context, :data:`CONTEXT_CHANNELS`).
    label_ids : numpy.ndarray
        int64 ``(N,)``, label of each nucleus in the label image of frame ``t``.
    centroids : numpy.ndarray
        float64 ``(N, 3)``, centroid ``(z, y, x)`` in pixels (``z = 0`` in 2D).
    frame_label_ids : numpy.ndarray or None
        int64, sorted: every label id present in the label image of frame ``t`` (background 0
        excluded), before any ``label_ids`` selection; lets callers compare the frame with a
        lineage without reading it again.
    edge_px : numpy.ndarray or None
        float64 ``(N,)``: pixels between each nucleus's bounding box and the nearest image edge
        in Y or X (0 = touches the edge).
    size_px : numpy.ndarray or None
        float64 ``(N,)``: largest Y/X extent of each nucleus's bounding box, pixels.
    """

    t: int
    x: np.ndarray
    label_ids: np.ndarray
    centroids: np.ndarray
    frame_label_ids: np.ndarray | None = None
    edge_px: np.ndarray | None = None
    size_px: np.ndarray | None = None


def resolve_size(size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    """Crop size per spatial axis.

    Parameters
    ----------
    size : int or sequence of int
        One size for every axis, or one per spatial axis (``(Y, X)`` or ``(Z, Y, X)``), pixels.
    ndim : {2, 3}
        Number of spatial axes.

    Returns
    -------
    tuple of int
        ``ndim`` positive sizes.

    Raises
    ------
    InvalidInputError
        If a size is not a positive integer or the number of sizes is not ``ndim``.
    """
    if np.isscalar(size):
        sizes = (size,) * ndim
    else:
        sizes = tuple(size)
    if len(sizes) != ndim:
        raise InvalidInputError(
            f"crop size {size!r}: expected one size or {ndim} sizes (one per spatial axis), got {len(sizes)}"
        )
    out = []
    for s in sizes:
        if isinstance(s, bool) or int(s) != s or int(s) < 1:
            raise InvalidInputError(f"crop size {size!r}: every size must be a positive integer, got {s!r}")
        out.append(int(s))
    return tuple(out)


def _resolve_scale(
    ndim: int,
    voxel_size_um: Sequence[float] | None,
    target_voxel_um: float | Sequence[float] | None,
) -> np.ndarray | None:
    """Source pixels per output pixel for each axis, or None for a plain pixel crop."""
    if target_voxel_um is None:
        return None
    if voxel_size_um is None:
        raise InvalidInputError(
            "target_voxel_um was given but voxel_size_um is unknown: pass voxel_size_um "
            "(µm per pixel, spatial axes order) or leave target_voxel_um unset for a pixel crop"
        )
    vs = np.atleast_1d(np.asarray(voxel_size_um, dtype=float))
    tg = np.atleast_1d(np.asarray(target_voxel_um, dtype=float))
    if tg.size == 1:
        tg = np.repeat(tg, ndim)
    if vs.size != ndim or tg.size != ndim:
        raise InvalidInputError(
            f"voxel_size_um {tuple(vs)} and target_voxel_um {tuple(tg)} need {ndim} values (spatial axes order)"
        )
    if not (np.all(np.isfinite(vs)) and np.all(vs > 0) and np.all(np.isfinite(tg)) and np.all(tg > 0)):
        raise InvalidInputError(
            f"voxel_size_um {tuple(vs)} and target_voxel_um {tuple(tg)} must be positive finite numbers (µm)"
        )
    scale = tg / vs
    if np.allclose(scale, 1.0):
        return None
    return scale


def _as_zyx(centroids: np.ndarray, ndim: int) -> np.ndarray:
    """Centroids ``(N, ndim)`` in spatial axis order from ``(N, 2)`` or ``(N, 3)`` input."""
    c = np.asarray(centroids, dtype=float)
    if c.ndim == 1:
        c = c[None, :]
    if c.ndim != 2 or c.shape[1] not in (2, 3):
        raise InvalidInputError(
            f"centroids must have shape (N, 2) or (N, 3) (pixels, (z,) y, x), got {np.shape(centroids)}"
        )
    if ndim == 2 and c.shape[1] == 3:
        c = c[:, 1:]
    elif ndim == 3 and c.shape[1] == 2:
        raise InvalidInputError(f"3D frames need centroids (z, y, x), got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise InvalidInputError("centroids contain NaN or infinite values; every nucleus needs a centroid")
    return c


def normalize_crops(raw: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Map raw intensities to ``[0, 1]`` per crop (the dynacell normalisation).

    The 1st and 99.8th percentiles of the crop's raw channels, taken jointly over its
    in-bounds voxels, map to 0 and 1; the result is clipped to ``[0, 1]``; out-of-bounds
    (padding) voxels are set to 0; a crop whose percentiles coincide (flat) becomes 0.

    Parameters
    ----------
    raw : numpy.ndarray
        ``(N, C, *size)`` raw crops (any real dtype), usually ``C = 3`` (``t−1, t, t+1``).
    valid : numpy.ndarray of bool, optional
        ``(N, *size)`` (or broadcastable to ``raw``) True where the voxel lies inside the frame.
        Default: every voxel is valid.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, C, *size)`` in ``[0, 1]``.

    Notes
    -----
    Robust percentile scaling as in CSBDeep / StarDist ``normalize`` (1, 99.8), applied per crop.
    """
    raw = np.asarray(raw, dtype=np.float32)
    n = raw.shape[0]
    if valid is None:
        valid_full = None
    else:
        valid_full = np.broadcast_to(np.asarray(valid, dtype=bool)[:, None], raw.shape) \
            if np.ndim(valid) == raw.ndim - 1 else np.broadcast_to(valid, raw.shape)
    flat = raw.reshape(n, -1)
    vflat = None if valid_full is None else valid_full.reshape(n, -1)
    full = np.ones(n, bool) if vflat is None else vflat.all(axis=1)
    lo, hi = _percentiles(flat, vflat, full)
    span = hi - lo
    scale = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
    shape = (n,) + (1,) * (raw.ndim - 1)
    out = np.subtract(raw, lo.reshape(shape).astype(np.float32))
    np.multiply(out, scale.reshape(shape).astype(np.float32), out=out)
    np.clip(out, 0.0, 1.0, out=out)
    if not full.all():
        out[~valid_full] = 0.0
    return out.astype(np.float32, copy=False)


def _percentiles(flat: np.ndarray, vflat: np.ndarray | None, full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:data:`PERCENTILES` of each row of ``flat`` over its valid entries, for every row at once.

    Parameters
    ----------
    flat : numpy.ndarray
        float32 ``(N, M)`` values.
    vflat : numpy.ndarray of bool or None
        ``(N, M)`` True where an entry counts (None: all count).
    full : numpy.ndarray of bool
        ``(N,)`` True where every entry of the row counts.

    Returns
    -------
    lo, hi : numpy.ndarray
        float64 ``(N,)``; 0 for a row without valid entries.

    Notes
    -----
    One sort of all rows (invalid entries moved to the end as +inf), then numpy's ``"linear"``
    percentile rule (virtual index ``(k − 1) q``, its ``_lerp``) on each row's ``k`` valid values:
    the same numbers as :func:`numpy.percentile` of each row's valid values, bit for bit (tested),
    at a third of the cost of a partition per row (numpy's SIMD sort). Rows holding NaN fall back
    to :func:`numpy.percentile`.
    """
    n = flat.shape[0]
    if n == 0:
        return np.zeros(0), np.zeros(0)
    if full.all():
        srt = np.sort(flat, axis=1)
        counts = np.full(n, flat.shape[1], dtype=np.intp)
    else:
        srt = np.sort(np.where(vflat, flat, np.float32(np.inf)), axis=1)
        counts = vflat.sum(axis=1).astype(np.intp)
    q = np.asarray(PERCENTILES, dtype=np.float64) / 100
    virt = (counts.astype(np.float64)[None, :] - 1) * q[:, None]  # (2, N) virtual indexes, numpy's "linear"
    prev = np.floor(virt)
    gamma = virt - prev
    prev = np.clip(prev.astype(np.intp), 0, None)
    nxt = np.minimum(prev + 1, np.maximum(counts - 1, 0)[None, :])
    rows = np.arange(n)[None, :]
    a, b = srt[rows, prev], srt[rows, nxt]
    a[:, counts == 0] = 0.0  # no valid entry (all +inf): percentiles 0
    b[:, counts == 0] = 0.0
    diff = b - a
    res = np.add(a, diff * gamma)  # numpy's _lerp
    np.subtract(b, diff * (1 - gamma), out=res, where=gamma >= 0.5)
    for i in np.flatnonzero(np.isnan(srt[:, -1])):  # NaN sorts last: numpy.percentile's own NaN handling
        vals = flat[i] if vflat is None else flat[i][vflat[i]]
        res[:, i] = np.percentile(vals, PERCENTILES) if vals.size else 0.0
    return res[0], res[1]


def context_mask(labels_ctx: np.ndarray, own_mask: np.ndarray,
                 min_overlap: float = CONTEXT_MIN_OVERLAP) -> np.ndarray:
    """Segmentation-context channel: the objects of a neighbour frame that overlap a nucleus.

    Parameters
    ----------
    labels_ctx : numpy.ndarray
        Integer label image of frame ``t−1`` or ``t+1`` cut to the crop box, ``([Z,] Y, X)``;
        0 = background. Ids need not match those of frame ``t`` (any segmentation works).
    own_mask : numpy.ndarray
        bool, same shape: the nucleus's mask at ``t`` in the same box.
    min_overlap : float
        Fraction of ``own_mask`` that an object other than the largest-overlap one must cover
        to be kept (default 0.1).

    Returns
    -------
    numpy.ndarray
        float32, same shape: 1.0 on the object of ``labels_ctx`` with the largest overlap with
        ``own_mask``, 0.5 on every other object covering ≥ ``min_overlap`` of it, 0 elsewhere
        (all 0 when nothing overlaps: the nucleus is not segmented in that frame).

    Notes
    -----
    dynacell's own channel (no seed counterpart): at ``t−1`` a new daughter overlaps its
    mother, which extends over the sister; at ``t+1`` a mitotic nucleus overlaps two
    daughters; a dying or lost nucleus overlaps nothing.

    Examples
    --------
    >>> import numpy as np
    >>> ctx = np.array([[0, 3, 3, 4]]); own = np.array([[False, True, True, True]])
    >>> context_mask(ctx, own).tolist()
    [[0.0, 1.0, 1.0, 0.5]]
    """
    out = np.zeros(own_mask.shape, np.float32)
    hit = labels_ctx[own_mask]
    hit = hit[hit != 0]
    if hit.size == 0:
        return out
    ids, counts = np.unique(hit, return_counts=True)
    primary = ids[np.argmax(counts)]
    others = ids[(ids != primary) & (counts >= max(1.0, min_overlap * float(own_mask.sum())))]
    if others.size:
        out[np.isin(labels_ctx, others)] = 0.5
    out[labels_ctx == primary] = 1.0
    return out


def _check_context(context_labels, shape) -> tuple | None:
    if context_labels is None:
        return None
    if len(context_labels) != 2:
        raise InvalidInputError(
            f"context_labels must be the 2 label images of t-1 and t+1 (None where missing); got {len(context_labels)}")
    out = []
    for name, lab in zip(("t-1", "t+1"), context_labels):
        if lab is None:
            out.append(None)
            continue
        lab = np.asarray(lab)
        if lab.shape != tuple(shape):
            raise InvalidInputError(
                f"label image at {name} (context) has shape {lab.shape} but frame t has {tuple(shape)}; "
                "give the segmentation of these images")
        if not np.issubdtype(lab.dtype, np.integer):
            raise InvalidInputError(f"label image at {name} (context) must be integer, got dtype {lab.dtype}")
        out.append(lab)
    return tuple(out)


def _outer_index(per_axis: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """Index arrays ``(N, *size)`` for a box per nucleus from per-axis indices ``(N, s_a)`` (broadcast)."""
    nd = len(per_axis)
    return tuple(ix.reshape((ix.shape[0],) + tuple(-1 if b == a else 1 for b in range(nd)))
                 for a, ix in enumerate(per_axis))


def _outer_prod(per_axis: list[np.ndarray]) -> np.ndarray:
    """Product ``(N, *size)`` of per-axis factors ``(N, s_a)``."""
    out = None
    for v in _outer_index(per_axis):
        out = v if out is None else out * v
    return out


def _outer_and(per_axis: list[np.ndarray]) -> np.ndarray:
    """Logical AND ``(N, *size)`` of per-axis flags ``(N, s_a)``."""
    out = None
    for v in _outer_index(per_axis):
        out = v if out is None else out & v
    return np.ascontiguousarray(np.broadcast_to(out, np.broadcast_shapes(*(x.shape for x in _outer_index(per_axis)))))


def _flat_index(shape: Sequence[int], per_axis: list[np.ndarray]) -> np.ndarray:
    """Flat (C-order) indices ``(N, *L)`` into an array of ``shape`` of a box per nucleus.

    ``per_axis[a]`` is intp ``(N or 1, L_a)``, indices along axis ``a`` (in bounds). One
    :func:`numpy.take` with these indices reads the boxes 2–4× faster than numpy's multi-array
    fancy indexing, and the indices serve every frame of the same shape.
    """
    strides = np.cumprod((1,) + tuple(shape[:0:-1]))[::-1]
    out = None
    for v, st in zip(_outer_index(per_axis), strides):
        term = v * np.intp(st)
        out = term if out is None else out + term
    return out


def _resample_linear(frames: Sequence[np.ndarray], centres: np.ndarray,
                     offsets: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Linear interpolation of frames at ``centre + offset`` for a batch of boxes.

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        ``([Z,] Y, X)`` images of one shape, any real dtype (the same boxes are cut from each).
    centres : numpy.ndarray
        intp ``(N, ndim)`` box centres, pixels.
    offsets : sequence of numpy.ndarray
        Per axis, float ``(s_a,)`` sample offsets from the centre in source pixels (shared by every box).

    Returns
    -------
    list of numpy.ndarray
        One float32 ``(N, *s)`` per frame: the values of :func:`scipy.ndimage.map_coordinates`
        (``order=1``) at ``centre + offset``, to float32 rounding, wherever that point lies inside
        the frame (``0 <= coordinate <= size − 1`` on every axis); other samples hold arbitrary
        finite values and are for the caller to zero.

    Notes
    -----
    Separable and two taps per axis: every box shares the fractional offsets (its centre is a
    whole pixel), so each axis is reduced by one gather of the two neighbouring source rows and
    one weighted sum, the most shrinking axis first. An axis of the frame no longer than the
    source window a box needs (the 5 z-planes of a CHO frame against a 28-plane window) is read
    whole — only its real planes — and interpolated per box last, by one small matrix per box;
    the other axes are read as a window around each centre: strided copies of sliding windows for
    boxes inside the frame, one flat index clipped to the frame (shared by the frames) for boxes
    crossing its border. No per-box Python loop.
    """
    shape = frames[0].shape
    nd = len(shape)
    n = centres.shape[0]
    floors = [np.floor(o).astype(np.intp) for o in offsets]
    fracs = [(np.asarray(o) - f).astype(np.float32) for o, f in zip(offsets, floors)]
    rel = [np.unique(np.concatenate([f, f + 1])) for f in floors]  # source offsets each axis reads
    whole = [shape[a] <= rel[a].size for a in range(nd)]  # read every plane of this axis
    # source window of each box: rows centre + rel (a window axis) or every plane (a whole axis)
    span = [shape[a] if whole[a] else int(rel[a][-1] - rel[a][0]) + 1 for a in range(nd)]
    start = [np.zeros(n, np.intp) if whole[a] else centres[:, a] + rel[a][0] for a in range(nd)]
    inside = np.ones(n, bool)
    for a in range(nd):
        inside &= (start[a] >= 0) & (start[a] + span[a] <= shape[a])
    interior, border = np.flatnonzero(inside), np.flatnonzero(~inside)
    gaps = [a for a in range(nd) if not whole[a] and rel[a].size < span[a]]  # rows of the window never read
    # boxes crossing the border: a flat index clipped to the frame. A sample inside the frame
    # (0 <= coordinate <= size - 1) has both taps inside it, or a weight-0 tap one past the last pixel, so
    # clipped indices give its exact value; samples outside the frame are zeroed by the caller.
    index = None
    if border.size:
        index = _flat_index(shape, [np.arange(shape[a])[None, :] if whole[a]
                                    else np.clip(centres[border, a, None] + rel[a][None, :], 0, shape[a] - 1)
                                    for a in range(nd)])
        index = np.broadcast_to(index, (border.size,) + index.shape[1:])
    dims = tuple(shape[a] if whole[a] else rel[a].size for a in range(nd))
    # most shrinking window axis first, whole axes (interpolated per box) last
    order = sorted(range(nd), key=lambda a: (whole[a], -dims[a] / max(offsets[a].size, 1)))
    plans = []
    for a in order:
        ax = 1 + a
        if not whole[a]:  # the same two source rows and weights for every box
            plans.append((ax, np.searchsorted(rel[a], floors[a]), np.searchsorted(rel[a], floors[a] + 1),
                          fracs[a].reshape(tuple(-1 if b == a else 1 for b in range(nd)))))
        else:  # per box: a (s_a, size_a) weight matrix over the real planes (clipped taps never matter)
            p0 = np.clip(centres[:, a, None] + floors[a][None, :], 0, shape[a] - 1)
            p1 = np.clip(centres[:, a, None] + floors[a][None, :] + 1, 0, shape[a] - 1)
            wmat = np.zeros((n, floors[a].size, shape[a]), np.float32)
            rows = np.arange(floors[a].size)[None, :]
            boxes = np.arange(n)[:, None]
            wmat[boxes, rows, p0] += 1.0 - fracs[a]
            wmat[boxes, rows, p1] += fracs[a]
            plans.append((ax, wmat, None, None))
    out = []
    for frame in frames:
        box = np.empty((n,) + dims, np.float32) if border.size else None
        if interior.size:  # boxes inside the frame: strided copies of sliding windows, no index arrays
            win = np.lib.stride_tricks.sliding_window_view(frame, span)[tuple(st[interior] for st in start)]
            for a in gaps:
                win = np.take(win, rel[a] - rel[a][0], axis=1 + a)
            if box is None:
                box = win.astype(np.float32, copy=False)
            else:
                box[interior] = win
        if border.size:
            box[border] = np.take(np.ascontiguousarray(frame).reshape(-1), index)
        for ax, i0, i1, w in plans:
            if i1 is None:  # whole axis: (N, s, size) @ (N, size, rest)
                moved = np.moveaxis(box, ax, 1)
                res = i0 @ moved.reshape(n, moved.shape[1], -1)
                box = np.moveaxis(res.reshape((n, i0.shape[1]) + moved.shape[2:]), 1, ax)
                continue
            b0 = np.take(box, i0, axis=ax)
            b1 = np.take(box, i1, axis=ax)
            b0 *= 1.0 - w
            b1 *= w
            box = b0 + b1
        out.append(box)
    return out


def _context_masks(labels_ctx: np.ndarray, own: np.ndarray, min_overlap: float = CONTEXT_MIN_OVERLAP) -> np.ndarray:
    """:func:`context_mask` for a batch of boxes at once: ``labels_ctx`` int and ``own`` bool, ``(N, *size)``.

    Same result as calling :func:`context_mask` on each box (ties between objects of equal
    overlap go to the smaller id, as :func:`numpy.argmax` over sorted ids does).
    """
    n = own.shape[0]
    out = np.zeros(own.shape, np.float32)
    lab = labels_ctx.astype(np.int64, copy=False)
    hit = own & (lab != 0)
    if not hit.any():
        return out
    box = np.nonzero(hit)[0]
    ids = lab[hit]
    # (box, id) pairs with their overlap counts, sorted by box then id
    order = np.lexsort((ids, box))
    box, ids = box[order], ids[order]
    new = np.ones(box.size, bool)
    new[1:] = (box[1:] != box[:-1]) | (ids[1:] != ids[:-1])
    starts = np.flatnonzero(new)
    counts = np.diff(np.append(starts, box.size))
    pb, pid = box[starts], ids[starts]
    # primary object per box: largest count, smallest id among ties
    first = np.lexsort((pid, -counts, pb))
    is_first = np.ones(first.size, bool)
    is_first[1:] = pb[first][1:] != pb[first][:-1]
    prim = np.zeros(n, np.int64)
    prim[pb[first][is_first]] = pid[first][is_first]
    own_sum = own.reshape(n, -1).sum(axis=1).astype(float)
    keep = (pid != prim[pb]) & (counts >= np.maximum(1.0, min_overlap * own_sum[pb]))
    nd = own.ndim - 1
    if keep.any():
        ob, oid = pb[keep], pid[keep]
        width = int(lab.max()) + 1
        other_key = ob * width + oid
        key = np.arange(n, dtype=np.int64).reshape((n,) + (1,) * nd) * width + lab
        if n * width <= max(key.size, 1 << 20):  # a lookup table of every (box, id): one gather, no sort
            is_other = np.zeros(n * width, bool)
            is_other[other_key] = True
            out[is_other[key] & (lab != 0)] = 0.5
        else:
            out[np.isin(key, other_key) & (lab != 0)] = 0.5
    has = np.zeros(n, bool)
    has[pb] = True
    out[(lab == prim.reshape((n,) + (1,) * nd)) & has.reshape((n,) + (1,) * nd)] = 1.0
    return out


def _check_offsets(offsets, n: int, ndim: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validated ``neighbour_offsets_px`` of :func:`crop_windows`: two ``(n, ndim)`` float arrays or None.

    NaN rows (no linked position) become 0 (the box at ``t``); an all-zero array becomes None.
    """
    if offsets is None:
        return None, None
    if len(offsets) != 2:
        raise InvalidInputError(
            f"neighbour_offsets_px must be the pair (t-1, t+1) of (N, 3) offsets (None where absent); got "
            f"{len(offsets)} items")
    out = []
    for name, off in zip(("t-1", "t+1"), offsets):
        if off is None:
            out.append(None)
            continue
        off = np.asarray(off, dtype=float).reshape(n, -1)
        if off.shape[1] == 3 and ndim == 2:
            off = off[:, 1:]
        if off.shape[1] != ndim:
            raise InvalidInputError(f"neighbour offsets at {name}: expected (N, {ndim}) or (N, 3), got {off.shape}")
        off = np.where(np.isfinite(off).all(axis=1, keepdims=True), off, 0.0)
        out.append(off if off.any() else None)
    return out[0], out[1]


class BoxCache:
    """Resampled image boxes of recent frames, reused by the crops of the next frames (track context).

    With track context (``neighbour_offsets_px``) the ``t−1`` box of a nucleus linked one-to-one is centred on
    its parent's rounded centroid at ``t−1`` — the box that parent's own ``t`` channel was cut from one frame
    earlier — and its ``t+1`` box is where its child's ``t`` channel will be cut one frame later. A box is a
    function of the frame, its integer centre and the sample offsets only (:func:`_resample_linear` treats
    every box alike, whichever others share its call), so :func:`crop_windows` takes a box from here when the
    same frame and centre were resampled before and stores the ones it makes: the same numbers, about a third
    of the resampling on a movie of one-to-one links. :func:`iter_frame_crops` keeps one per call, holding
    the frames of the current ``t−1, t, t+1`` window only.
    """

    def __init__(self) -> None:
        self._offs: tuple | None = None
        self._frames: dict[int, dict[tuple[int, ...], np.ndarray]] = {}
        self.hits = 0
        self.misses = 0

    def keep(self, frames) -> None:
        """Forget the boxes of every frame number not in ``frames``."""
        wanted = set(frames)
        for f in [f for f in self._frames if f not in wanted]:
            del self._frames[f]

    def boxes(self, frame_no: int, frame: np.ndarray, centres: np.ndarray, offs: Sequence[np.ndarray],
              valid: np.ndarray) -> np.ndarray:
        """float32 ``(N, *s)`` boxes of ``frame`` (number ``frame_no``) at intp ``centres`` ``(N, ndim)``, zero
        where ``valid`` ``(N, *s)`` is False: those stored, the others resampled now (and stored)."""
        sig = tuple((o.dtype.str, o.tobytes()) for o in (np.asarray(x) for x in offs)) + (frame.shape,)
        if sig != self._offs:  # other sample offsets or frame shape: nothing stored applies
            self._frames.clear()
            self._offs = sig
        store = self._frames.setdefault(int(frame_no), {})
        keys = [tuple(c) for c in centres.tolist()]
        miss = [i for i, k in enumerate(keys) if k not in store]
        out = np.empty((len(keys), *(o.size for o in offs)), np.float32)
        if miss:
            miss_a = np.asarray(miss, dtype=np.intp)
            made = _resample_linear([frame], centres[miss_a], offs)[0]
            made[~valid[miss_a]] = 0.0
            for j, i in enumerate(miss):
                store[keys[i]] = made[j]
        for i, k in enumerate(keys):
            out[i] = store[k]
        self.misses += len(miss)
        self.hits += len(keys) - len(miss)
        return out


def crop_windows(
    frames: Sequence[np.ndarray | None],
    labels_t: np.ndarray,
    label_ids: Sequence[int] | np.ndarray,
    centroids: np.ndarray,
    *,
    size: int | Sequence[int] = 32,
    voxel_size_um: Sequence[float] | None = None,
    target_voxel_um: float | Sequence[float] | None = None,
    context_labels: Sequence[np.ndarray | None] | None = None,
    neighbour_offsets_px: Sequence[np.ndarray | None] | None = None,
    box_cache: BoxCache | None = None,
    frame_numbers: Sequence[int] | None = None,
) -> np.ndarray:
    """Crop ``[t−1, t, t+1, mask]`` windows for several nuclei of one frame (batch of :func:`crop_window`).

    Parameters
    ----------
    frames : sequence of 3 numpy.ndarray (or None)
        Images of frames ``t−1, t, t+1``, each ``([Z,] Y, X)``, any real dtype. ``None`` for
        a neighbour that does not exist: it is replaced by frame ``t`` (first/last frame rule).
    labels_t : numpy.ndarray
        Integer label image of frame ``t``, same shape as the frames; 0 = background.
    label_ids : sequence of int
        ``(N,)`` labels of the nuclei to crop (``>= 1``).
    centroids : numpy.ndarray
        float ``(N, 3)`` ``(z, y, x)`` or ``(N, 2)`` ``(y, x)``, pixels. In 2D a 3-column
        input's ``z`` is ignored.
    size : int or tuple of int
        Output crop size per spatial axis in pixels (default 32).
    voxel_size_um : tuple of float, optional
        Voxel size of the frames in µm (spatial axes order); needed with ``target_voxel_um``.
    target_voxel_um : float or tuple of float, optional
        Voxel size of the crop in µm: resample to a physical box of ``size * target_voxel_um`` µm.
        Default: no resampling (a pixel box).
    context_labels : pair of numpy.ndarray (or None), optional
        Integer label images of frames ``t−1`` and ``t+1`` (any segmentation of the same frames;
        ``None`` for a missing one: the mask at ``t`` is used). With them two segmentation-context
        channels :func:`context_mask` are appended. Default None: 4 channels.
    neighbour_offsets_px : pair of numpy.ndarray (or None), optional
        Track context: float ``(N, 3)`` ``(z, y, x)`` (or ``(N, 2)`` in 2D) displacements in pixels
        of the boxes of frames ``t−1`` and ``t+1`` from the nucleus's centroid at ``t``
        (:func:`dynacell.lineage.centroids.track_displacements`: where the same track is at
        ``t±1``). The image channel and the segmentation-context channel of that frame are cut
        around ``centroid + offset`` (rounded half-up); NaN rows, or None for a frame, keep the
        box at ``t`` (the default, as the seed did). The mask channel is always the box at ``t``.
    box_cache : BoxCache, optional
        With ``frame_numbers``, resampled boxes (``target_voxel_um`` given) are taken from and stored in it
        whenever the three image channels have their own boxes (track context): the same crops, less
        resampling over consecutive frames (:class:`BoxCache`; :func:`iter_frame_crops` passes one).
    frame_numbers : sequence of 3 int, optional
        Frame numbers of ``frames`` (a missing neighbour: the number of ``t``), the keys of ``box_cache``.

    Returns
    -------
    numpy.ndarray
        float32 ``(N, 4, *size)``: channels ``[t−1, t, t+1, mask]``, raw channels normalised
        by :func:`normalize_crops`, mask in ``{0, 1}``, zero padding outside the frame; with
        ``context_labels`` ``(N, 6, *size)``, channels :data:`CONTEXT_CHANNELS`.

    Raises
    ------
    InvalidInputError
        If the frames and label image differ in shape, are not 2D/3D, or sizes, ids or
        centroids are malformed.

    Notes
    -----
    The seed state classifier (dineshchhantyal/3d-cnn-classification) (4ncnn input), without its defects: zero padding instead of
    shifted windows, one normalisation for training and inference. Vectorised over nuclei: the
    boxes of all nuclei are gathered with one fancy index per channel; resampling is separable
    linear interpolation (the values of :func:`scipy.ndimage.map_coordinates` with ``order=1``,
    ``mode="constant"``), the mask and context channels nearest-neighbour.
    """
    if len(frames) != 3:
        raise InvalidInputError(f"crop needs the 3 frames t-1, t, t+1; got {len(frames)}")
    cur = frames[1]
    if cur is None:
        raise InvalidInputError("crop needs frame t (the middle of the three frames); got None")
    cur = np.asarray(cur)
    prev = cur if frames[0] is None else np.asarray(frames[0])
    nxt = cur if frames[2] is None else np.asarray(frames[2])
    labels_t = np.asarray(labels_t)
    ndim = cur.ndim
    if ndim not in (2, 3):
        raise InvalidInputError(f"frames must be 2D (Y, X) or 3D (Z, Y, X); got shape {cur.shape}")
    for name, arr in (("frame t-1", prev), ("frame t+1", nxt), ("label image at t", labels_t)):
        if arr.shape != cur.shape:
            raise InvalidInputError(
                f"{name} has shape {arr.shape} but frame t has {cur.shape}; images and labels must match"
            )
    if not np.issubdtype(labels_t.dtype, np.integer):
        raise InvalidInputError(
            f"label image at t must be integer (instance labels), got dtype {labels_t.dtype}; "
            "pass a label image, not a probability or intensity image"
        )
    ctx_labels = _check_context(context_labels, cur.shape)
    size_t = resolve_size(size, ndim)
    ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
    cen = _as_zyx(centroids, ndim) if ids.size else np.zeros((0, ndim))
    if cen.shape[0] != ids.size:
        raise InvalidInputError(f"{ids.size} label ids but {cen.shape[0]} centroids; give one centroid per id")
    scale = _resolve_scale(ndim, voxel_size_um, target_voxel_um)
    n = ids.size
    step = np.ones(ndim) if scale is None else np.asarray(scale, dtype=float)
    # box centre per channel t-1, t, t+1: the centroid at t, moved by the track's offset when given
    offsets = _check_offsets(neighbour_offsets_px, n, ndim)
    centres = [np.floor(cen + (0.0 if off is None else off) + 0.5) for off in (offsets[0], None, offsets[1])]
    # source coordinate of every crop pixel, per axis: (N, s_a) = rounded centre + (k - s//2) * step
    axes_c = [[c[:, a, None] + ((np.arange(sz) - sz // 2) * step[a])[None, :] for a, sz in enumerate(size_t)]
              for c in centres]
    shared = offsets[0] is None and offsets[1] is None  # one box per nucleus for every channel
    valid_c = [_outer_and([(ax >= 0) & (ax <= cur.shape[a] - 1) for a, ax in enumerate(axes)])
               if c == 1 or not shared else None for c, axes in enumerate(axes_c)]
    valid = valid_c[1]
    if shared:
        valid_c = [valid] * 3
    stack = (prev, cur, nxt)
    groups = [(0, 1, 2)] if shared else [(0,), (1,), (2,)]  # channels cut with the same boxes
    raw = np.zeros((n, 3, *size_t), dtype=np.float32)
    if scale is None:  # integer positions: a plain gather (zero padding outside the frame)
        for group in groups:
            index = _flat_index(cur.shape, [np.clip(ax.astype(np.intp), 0, cur.shape[a] - 1)
                                            for a, ax in enumerate(axes_c[group[0]])])
            for c in group:
                raw[:, c] = np.take(np.ascontiguousarray(stack[c]).reshape(-1), index)
    else:  # linear interpolation (map_coordinates order=1, mode="constant"), separable per axis
        offs = [(np.arange(sz) - sz // 2) * step[a] for a, sz in enumerate(size_t)]
        cached = box_cache is not None and frame_numbers is not None and not shared
        for group in groups:
            if cached:  # one channel per group: its boxes from the cache where that frame and centre were made
                (c,) = group
                raw[:, c] = box_cache.boxes(frame_numbers[c], stack[c], centres[c].astype(np.intp), offs, valid_c[c])
                continue
            boxes = _resample_linear([stack[c] for c in group], centres[group[0]].astype(np.intp), offs)
            for c, box in zip(group, boxes):
                raw[:, c] = box
                raw[:, c][~valid_c[c]] = 0.0
    nearest = {}
    for group in groups:
        nearest[group] = _flat_index(cur.shape, [np.clip(np.floor(ax + 0.5).astype(np.intp), 0, cur.shape[a] - 1)
                                                 for a, ax in enumerate(axes_c[group[0]])])
    nearest_c = [next(v for g, v in nearest.items() if c in g) for c in range(3)]
    lab_box = np.take(np.ascontiguousarray(labels_t).reshape(-1), nearest_c[1])
    mask = (lab_box == ids.reshape((n,) + (1,) * ndim)) & valid
    ctx = None
    if ctx_labels is not None:
        ctx = np.zeros((n, 2, *size_t), dtype=np.float32)
        for k, (lab, c) in enumerate(zip(ctx_labels, (0, 2))):
            if lab is None:
                ctx[:, k] = mask
                continue
            box = np.take(np.ascontiguousarray(lab).reshape(-1), nearest_c[c])
            ctx[:, k] = _context_masks(box if valid_c[c].all() else np.where(valid_c[c], box, 0), mask)
    raw_valid = valid if all(o is None for o in offsets) else np.stack(valid_c, axis=1)
    out = np.empty((n, 4 if ctx is None else 6, *size_t), dtype=np.float32)
    out[:, :3] = normalize_crops(raw, raw_valid)
    out[:, 3] = mask
    if ctx is not None:
        out[:, 4:] = ctx
    return out


def crop_window(
    frames: Sequence[np.ndarray | None],
    labels_t: np.ndarray,
    label: int,
    centroid: Sequence[float],
    *,
    size: int | Sequence[int] = 32,
    voxel_size_um: Sequence[float] | None = None,
    target_voxel_um: float | Sequence[float] | None = None,
    context_labels: Sequence[np.ndarray | None] | None = None,
) -> np.ndarray:
    """Crop the ``[t−1, t, t+1, mask]`` window of one nucleus (the one crop function).

    Parameters
    ----------
    frames : sequence of 3 numpy.ndarray (or None)
        Images of frames ``t−1, t, t+1``, each ``([Z,] Y, X)``. ``None`` (a neighbour before
        the first or after the last frame) is replaced by frame ``t``.
    labels_t : numpy.ndarray
        Integer label image of frame ``t``, shape ``([Z,] Y, X)``; 0 = background.
    label : int
        Label of the nucleus in ``labels_t``; its binary mask is channel 3.
    centroid : sequence of float
        ``(z, y, x)`` or ``(y, x)`` in pixels; rounded half-up to the box centre.
    size : int or tuple of int
        Crop size per spatial axis, pixels (default 32, i.e. ``32×32`` or ``32³``).
    voxel_size_um, target_voxel_um : tuple of float, optional
        Resample to a physical box (see :func:`crop_windows`).
    context_labels : pair of numpy.ndarray (or None), optional
        Label images of ``t−1`` and ``t+1``: append the two segmentation-context channels
        (see :func:`crop_windows`, :func:`context_mask`).

    Returns
    -------
    numpy.ndarray
        float32 ``(4, *size)`` with channels ``[t−1, t, t+1, mask]``, normalised to ``[0, 1]``
        per crop (percentiles 1 and 99.8 of the raw channels jointly), zero-padded at borders;
        ``(6, *size)`` with ``context_labels`` (:data:`CONTEXT_CHANNELS`).

    Raises
    ------
    InvalidInputError
        On mismatched shapes, non-integer labels or malformed sizes.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.arange(100, dtype=np.uint16).reshape(10, 10)
    >>> lab = np.zeros((10, 10), np.uint16); lab[0:3, 0:3] = 5
    >>> x = crop_window((None, img, img), lab, 5, (1.0, 1.0), size=8)
    >>> x.shape, x.dtype, float(x[3].sum()), float(x[:, 0, 0].max())
    ((4, 8, 8), dtype('float32'), 9.0, 0.0)
    """
    return crop_windows(
        frames, labels_t, [label], np.asarray(centroid, dtype=float)[None, :],
        size=size, voxel_size_um=voxel_size_um, target_voxel_um=target_voxel_um,
        context_labels=context_labels,
    )[0]


def _neighbours(movie, t: int) -> tuple[int | None, int | None]:
    """Frame numbers of t−1 and t+1 if present in ``movie``, else None (replaced by t)."""
    prev = t - 1 if movie.has_frame(t - 1) else None
    nxt = t + 1 if movie.has_frame(t + 1) else None
    return prev, nxt


def _check_pair(images, labels) -> None:
    if images.frame_shape != labels.frame_shape:
        raise InvalidInputError(
            f"images {images.source or '(array)'} have frames of shape {images.frame_shape} but labels "
            f"{labels.source or '(array)'} have {labels.frame_shape}; give the labels of these images"
        )


def _target_voxel(images, voxel_size_um, target_voxel_um):
    if target_voxel_um is None:
        return None
    return voxel_size_um if voxel_size_um is not None else images.voxel_size_um


def crops_for_frame(
    images,
    labels,
    t: int,
    *,
    size: int | Sequence[int] = 32,
    voxel_size_um: Sequence[float] | None = None,
    target_voxel_um: float | Sequence[float] | None = None,
    label_ids: Sequence[int] | None = None,
    context: bool = False,
    context_labels=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops of every nucleus of frame ``t`` (reads only frames ``t−1, t, t+1``).

    Parameters
    ----------
    images : dynacell.io.Movie
        Intensities, ``(T, [Z,] Y, X)``.
    labels : dynacell.io.Movie
        Integer labels of the same frame shape; frame numbers match ``images.frame_indices``.
    t : int
        Frame number (as in ``Movie.frame_indices``).
    size : int or tuple of int
        Crop size per spatial axis, pixels.
    voxel_size_um : tuple of float, optional
        Overrides ``images.voxel_size_um`` (µm, spatial axes order) when resampling.
    target_voxel_um : float or tuple of float, optional
        Resample to this voxel size (µm), see :func:`crop_windows`.
    label_ids : sequence of int, optional
        Only these nuclei (ids absent from the frame are skipped with a warning).
        Default: every nucleus (background 0 excluded).
    context : bool
        Append the segmentation-context channels ``[seg t−1, seg t+1]`` (:func:`context_mask`).
    context_labels : dynacell.io.Movie, optional
        Segmentation read for the context channels (default ``labels``); e.g. a full automatic
        segmentation when ``labels`` holds some frames only.

    Returns
    -------
    x : numpy.ndarray
        float32 ``(N, 4, *size)``, channels ``[t−1, t, t+1, mask]`` (see :mod:`dynacell.samples.crops`);
        ``(N, 6, *size)`` with ``context`` (:data:`CONTEXT_CHANNELS`).
    label_ids : numpy.ndarray
        int64 ``(N,)``.
    centroids : numpy.ndarray
        float64 ``(N, 3)``, ``(z, y, x)`` pixels, centre of mass of each mask.

    Raises
    ------
    InvalidInputError
        If frame ``t`` is missing from the images or the labels, shapes differ, or the label image holds a
        negative id (the message names the label file and frame).

    Notes
    -----
    An empty label frame gives ``N = 0`` and a logged warning naming the frame.
    """
    _check_pair(images, labels)
    t = int(t)
    if not images.has_frame(t):
        raise InvalidInputError(f"images {images.source or '(array)'}: frame {t} is missing; choose a frame present")
    if not labels.has_frame(t):
        raise InvalidInputError(
            f"labels {labels.source or '(array)'}: no label image for frame {t}; choose a frame that has labels"
        )
    prev_t, next_t = _neighbours(images, t)
    cur = images.frame(t)
    frames = (None if prev_t is None else images.frame(prev_t), cur, None if next_t is None else images.frame(next_t))
    ctx = None
    if context:
        cl = labels if context_labels is None else context_labels
        _check_pair(images, cl)
        ctx = tuple(None if f is None or not cl.has_frame(f) else cl.frame(f) for f in (prev_t, next_t))
    x, ids, cen, *_ = _crop_frame(t, frames, labels.frame(t), size=size,
                                 voxel_size_um=_target_voxel(images, voxel_size_um, target_voxel_um),
                                 target_voxel_um=target_voxel_um, label_ids=label_ids,
                                 source=frame_source(labels, t), context=context, context_labels=ctx)
    return x, ids, cen


def frame_source(movie, t: int) -> str:
    """Where frame ``t`` of ``movie`` comes from, for messages: its file (per-frame formats) or the movie.

    Parameters
    ----------
    movie : dynacell.io.Movie
        A movie whose ``metadata["files"]`` (if any) lists one file per frame.
    t : int
        Frame number.

    Returns
    -------
    str
        ``"<file> (frame t)"`` when the movie is a folder of frame files, else
        ``"<source> (frame t)"``.
    """
    files = (getattr(movie, "metadata", None) or {}).get("files")
    if files and movie.has_frame(t):
        return f"{files[movie.index_of(t)]} (frame {t})"
    return f"{getattr(movie, 'source', '') or '(array)'} (frame {t})"


def edge_and_size(lab: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the image edge and size of nuclei, from their bounding boxes in Y and X.

    Parameters
    ----------
    lab : numpy.ndarray
        Integer label image ``([Z,] Y, X)``, 0 = background.
    ids : numpy.ndarray
        ``(N,)`` ids present in ``lab``.

    Returns
    -------
    edge_px : numpy.ndarray
        float64 ``(N,)``: pixels between the bounding box and the nearest Y/X edge (0 = touching).
    size_px : numpy.ndarray
        float64 ``(N,)``: largest Y/X extent of the bounding box, pixels.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((10, 10), np.uint8); lab[0:3, 4:6] = 1; lab[5:7, 5:7] = 2
    >>> edge, size = edge_and_size(lab, np.array([1, 2]))
    >>> edge.tolist(), size.tolist()
    ([0.0, 3.0], [3.0, 2.0])

    Raises
    ------
    InvalidInputError
        If an id is not in ``lab``.
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    all_ids, _, boxes = nucleus_centroids(np.asarray(lab), return_boxes=True)
    pos = np.searchsorted(all_ids, ids)
    if ids.size and (np.any(pos >= all_ids.size) or np.any(all_ids[np.minimum(pos, all_ids.size - 1)] != ids)):
        raise InvalidInputError(f"edge_and_size: ids {np.setdiff1d(ids, all_ids).tolist()[:10]} are not in the label image")
    return _edge_and_size_from_boxes(boxes[pos], np.shape(lab))


def _edge_and_size_from_boxes(boxes: np.ndarray, shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`edge_and_size` from bounding boxes ``(N, 2 * ndim)`` (``lo..., hi...``, as
    :func:`dynacell.io.objects.nucleus_centroids` returns them) of an image of ``shape``."""
    nd = len(shape)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 2 * nd)
    if boxes.shape[0] == 0:
        return np.zeros(0), np.zeros(0)
    lo = boxes[:, nd - 2:nd].astype(np.float64)
    hi = boxes[:, 2 * nd - 2:].astype(np.float64)
    edge = np.minimum(lo, np.asarray(shape[-2:], dtype=np.float64) - hi).min(axis=1)
    return edge, (hi - lo).max(axis=1)


def offsets_for_frame(offsets, t: int, label_ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """Box offsets of the nuclei of frame ``t`` for :func:`crop_windows` from a per-node mapping.

    Parameters
    ----------
    offsets : Mapping or None
        ``{(t, label): (offset t−1, offset t+1)}``, each a float ``(3,)`` ``(z, y, x)`` pixel vector or
        None (:func:`dynacell.lineage.centroids.track_displacements`).
    t : int
        Frame number.
    label_ids : numpy.ndarray
        ``(N,)`` nuclei of frame ``t``.

    Returns
    -------
    pair of numpy.ndarray or None
        float64 ``(N, 3)`` offsets for ``t−1`` and ``t+1`` (NaN rows where a nucleus has none, i.e.
        the box at ``t``), or None when ``offsets`` is None.
    """
    if offsets is None:
        return None
    out = (np.full((len(label_ids), 3), np.nan), np.full((len(label_ids), 3), np.nan))
    for k, lab in enumerate(np.asarray(label_ids).tolist()):
        pair = offsets.get((int(t), int(lab)))
        if pair is None:
            continue
        for side in (0, 1):
            if pair[side] is not None:
                out[side][k] = pair[side]
    return out


def _crop_frame(t, frames, lab, *, size, voxel_size_um, target_voxel_um, label_ids=None, source="",
                context=False, context_labels=None, neighbour_offsets_px=None, objects=None, box_cache=None,
                frame_numbers=None):
    """Centroids + crops of one frame given its 3 image frames and label image.

    Returns ``(x, ids, centroids, all_ids, edge_px, size_px)``; ``all_ids`` are the ids present before
    selection, ``edge_px`` / ``size_px`` those of :func:`edge_and_size` for ``ids`` (from the same boxes).
    ``source`` names the label frame (file and frame) in messages. With ``context``,
    ``context_labels`` is the pair of label images of ``t−1, t+1`` (None where missing).
    ``neighbour_offsets_px`` maps a node ``(t, label)`` to its pair of box offsets (see
    :func:`offsets_for_frame`). ``objects`` (:func:`dynacell.io.scan.frame_objects`) may already hold
    the frame's ids, centroids and boxes. ``box_cache`` / ``frame_numbers``: see :func:`crop_windows`.
    """
    from dynacell.io.scan import frame_objects

    where = source or f"(array) (frame {t})"
    lab = np.asarray(lab)
    if lab.dtype.kind == "i" and lab.size and int(lab.min()) < 0:
        raise InvalidInputError(
            f"labels {where}: negative label id {int(lab.min())}; ids must be >= 0 (0 = background) — "
            "relabel the segmentation (e.g. skimage.segmentation.relabel_sequential)"
        )
    ids, cen, _, boxes = frame_objects(lab, t, objects, source=where)
    all_ids = ids
    ndim = np.ndim(frames[1])
    size_t = resolve_size(size, ndim)
    if ids.size == 0:
        logger.warning("labels %s: empty label image (no nucleus); no crops from this frame", where)
    if label_ids is not None:
        want = np.asarray(label_ids, dtype=np.int64).reshape(-1)
        missing = np.setdiff1d(want, ids)
        if missing.size:
            logger.warning("labels %s: no nucleus with id(s) %s in this label image; skipped",
                           where, missing.tolist()[:20])
        keep = np.isin(ids, want)
        ids, cen, boxes = ids[keep], cen[keep], boxes[keep]
    edge, extent = _edge_and_size_from_boxes(boxes, lab.shape)
    if ids.size == 0:
        return np.zeros((0, 6 if context else 4, *size_t), np.float32), ids, cen, all_ids, edge, extent
    x = crop_windows(frames, lab, ids, cen, size=size_t, voxel_size_um=voxel_size_um,
                     target_voxel_um=target_voxel_um,
                     context_labels=(context_labels or (None, None)) if context else None,
                     neighbour_offsets_px=offsets_for_frame(neighbour_offsets_px, t, ids),
                     box_cache=box_cache, frame_numbers=frame_numbers)
    return x, ids, cen, all_ids, edge, extent


def iter_frame_crops(
    images,
    labels,
    frames: Sequence[int] | None = None,
    *,
    size: int | Sequence[int] = 32,
    voxel_size_um: Sequence[float] | None = None,
    target_voxel_um: float | Sequence[float] | None = None,
    label_ids: dict[int, Sequence[int]] | None = None,
    progress: bool = False,
    context: bool = False,
    context_labels=None,
    neighbour_offsets_px=None,
    objects: dict | None = None,
) -> Iterator[FrameCrops]:
    """Stream the crops of every nucleus, frame by frame, keeping only 3 frames in memory.

    Parameters
    ----------
    images, labels : dynacell.io.Movie
        Intensities and integer labels, ``(T, [Z,] Y, X)``, same frame shape.
    frames : sequence of int, optional
        Frame numbers to crop, visited in increasing order. Default: every frame of ``images``.
        Frames without a label image are skipped with a warning (e.g. CTC HeLa TRA masks
        exist for some frames only); frames without an image raise.
    size, voxel_size_um, target_voxel_um
        As in :func:`crops_for_frame`.
    label_ids : dict, optional
        ``{t: ids}``: crop only these nuclei at frame ``t`` (default every nucleus).
    progress : bool
        Show a tqdm progress bar.
    context : bool
        Append the segmentation-context channels ``[seg t−1, seg t+1]`` (:func:`context_mask`);
        ``x`` is then ``(N, 6, *size)``.
    context_labels : dynacell.io.Movie, optional
        Segmentation read for the context channels (default ``labels``), e.g. a full automatic
        segmentation of every frame when ``labels`` covers some frames only (CTC HeLa TRA).
    neighbour_offsets_px : Mapping, optional
        Track context: ``{(t, label): (offset t−1, offset t+1)}`` pixel offsets ``(z, y, x)`` (or None)
        of the ``t±1`` boxes (:func:`dynacell.lineage.centroids.track_displacements`, see
        :func:`crop_windows`). Default: every box at the nucleus's position at ``t``.
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of ``labels``' frames already measured
        (:func:`dynacell.io.scan.scan_labels` with ``objects=``); frames missing from it are measured
        here. The same crops either way.

    Yields
    ------
    FrameCrops
        ``(t, x (N, 4, *size) float32, label_ids (N,) int64, centroids (N, 3) float64,
        frame_label_ids (M,) int64)`` — the last field lists every id of the label image, also
        those not selected by ``label_ids``. An empty label frame yields ``N = 0`` (with a warning
        naming the label file and frame).

    Raises
    ------
    InvalidInputError
        If a requested frame has no image, image and label shapes differ, or a label image holds a
        negative id (the message names the label file and frame).

    Notes
    -----
    Memory is flat in ``T``: the images of ``t−1, t, t+1`` and one label image are held at a
    time (frames are read through ``Movie.frame``, lazily from disk).
    """
    from tqdm.auto import tqdm

    _check_pair(images, labels)
    todo = sorted({int(f) for f in (images.frame_indices if frames is None else frames)})
    for t in todo:
        if not images.has_frame(t):
            raise InvalidInputError(
                f"images {images.source or '(array)'}: frame {t} is missing (frames "
                f"{images.frame_indices[0]}..{images.frame_indices[-1]}); choose frames that have images"
            )
    no_labels = [t for t in todo if not labels.has_frame(t)]
    if no_labels:
        logger.warning("labels %s: no label image for %d frame(s) that have images (%s); skipped",
                       labels.source or "(array)", len(no_labels), _fmt_frames(no_labels))
    todo = [t for t in todo if labels.has_frame(t)]
    vs = _target_voxel(images, voxel_size_um, target_voxel_um)
    ctx_movie = (labels if context_labels is None else context_labels) if context else None
    if ctx_movie is not None and ctx_movie is not labels:
        _check_pair(images, ctx_movie)
    shared = ctx_movie is labels  # context read from `labels`: frame t comes from the same cache
    cache: dict[int, np.ndarray] = {}
    ctx_cache: dict[int, np.ndarray] = {}
    boxes = BoxCache() if neighbour_offsets_px is not None else None  # track context: boxes shared by frames
    from dynacell.io.movie import Movie

    # a 3-D TIFF frame is decoded only in the Z planes its crops read (the nuclei measured beforehand)
    planes = _planes_needed(images, todo, objects, neighbour_offsets_px, size, vs, target_voxel_um) \
        if isinstance(images, Movie) else {}
    for t in tqdm(todo, desc="crops", unit="frame", disable=not progress):
        prev_t, next_t = _neighbours(images, t)
        _slide(cache, images, {f for f in (prev_t, t, next_t) if f is not None}, planes)
        numbers = (t if prev_t is None else prev_t, t, t if next_t is None else next_t)
        if boxes is not None:
            boxes.keep(numbers)
        window = (cache.get(prev_t) if prev_t is not None else None, cache[t],
                  cache.get(next_t) if next_t is not None else None)
        ids = None if label_ids is None else label_ids.get(t, [])
        ctx = None
        if ctx_movie is None:
            lab_t = labels.frame(t)
        else:
            want = {f for f in (prev_t, next_t) if f is not None and ctx_movie.has_frame(f)}
            _slide(ctx_cache, ctx_movie, want | ({t} if shared else set()))
            lab_t = ctx_cache[t] if shared else labels.frame(t)
            ctx = (ctx_cache.get(prev_t) if prev_t is not None else None,
                   ctx_cache.get(next_t) if next_t is not None else None)
        x, ids_out, cen, all_ids, edge, extent = _crop_frame(t, window, lab_t, size=size, voxel_size_um=vs,
                                               target_voxel_um=target_voxel_um, label_ids=ids,
                                               source=frame_source(labels, t), context=context,
                                               context_labels=ctx, neighbour_offsets_px=neighbour_offsets_px,
                                               objects=objects, box_cache=boxes, frame_numbers=numbers)
        yield FrameCrops(t, x, ids_out, cen, all_ids, edge, extent)


def _slide(cache: dict[int, np.ndarray], movie, wanted: set[int], planes: dict | None = None) -> None:
    """Keep exactly the frames ``wanted`` of ``movie`` in ``cache`` (drop the others, read the missing ones);
    a frame in ``planes`` is read with its Z planes (``Movie.frame(t, planes=...)``)."""
    for f in list(cache):
        if f not in wanted:
            del cache[f]
    for f in wanted:
        if f not in cache:
            cache[f] = movie.frame(f) if not planes or f not in planes else movie.frame(f, planes=planes[f])


def _planes_needed(images, todo: Sequence[int], objects: dict | None, neighbour_offsets_px, size,
                   voxel_size_um, target_voxel_um) -> dict[int, tuple[int, int]]:
    """``{frame: (z0, z1)}``: the Z planes of each 3-D image frame that the crops of frames ``todo`` read.

    Every box cut from a frame — its own nuclei's ``t`` channel and the ``t±1`` channels of the nuclei of the
    frames beside it, centred as :func:`crop_windows` centres them (track offsets included) — reads source planes
    ``centre + rel`` along Z, ``rel`` the offsets of its two-tap (or plain) samples; the range covers them all with
    one plane to spare on each side. Empty (read every frame whole) for a 2-D movie, when a frame of ``todo`` is
    not measured in ``objects``, or when the crops read the whole Z axis (a few planes, as CHO's 5).
    """
    if getattr(images, "ndim_spatial", None) != 3 or not objects or any(int(t) not in objects for t in todo):
        return {}
    n_z = int(images.frame_shape[0])
    s = resolve_size(size, 3)[0]
    try:
        scale = _resolve_scale(3, voxel_size_um, target_voxel_um)
    except InvalidInputError:
        return {}  # crop_windows reports it
    if scale is None:
        lo_rel, hi_rel = -(s // 2), s - 1 - s // 2
    else:
        floors = np.floor((np.arange(s) - s // 2) * scale[0]).astype(np.intp)
        rel = np.unique(np.concatenate([floors, floors + 1]))
        if n_z <= rel.size:
            return {}  # the crops read every plane (_resample_linear's whole axis)
        lo_rel, hi_rel = int(rel[0]), int(rel[-1])
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    for t in todo:
        ids, cen = objects[int(t)][0], objects[int(t)][1]
        n = len(ids)
        if n == 0:
            continue
        cen = np.asarray(cen, dtype=float).reshape(n, -1)
        prev_t, next_t = _neighbours(images, int(t))
        pair = offsets_for_frame(neighbour_offsets_px, int(t), np.asarray(ids)) or (None, None)
        off_prev, off_next = _check_offsets(pair, n, 3)
        for f, off in ((int(t) if prev_t is None else prev_t, off_prev), (int(t), None),
                       (int(t) if next_t is None else next_t, off_next)):
            z = np.floor(cen[:, 0] + (0.0 if off is None else off[:, 0]) + 0.5)
            a, b = int(z.min()) + lo_rel - 1, int(z.max()) + hi_rel + 2  # z1 exclusive, one plane spare each side
            lo[f], hi[f] = min(lo.get(f, a), a), max(hi.get(f, b), b)
    return {f: (max(0, lo[f]), min(n_z, hi[f])) for f in lo}


def _fmt_frames(frames: Sequence[int], limit: int = 12) -> str:
    s = ", ".join(str(f) for f in frames[:limit])
    return s + (f", ... ({len(frames)} in all)" if len(frames) > limit else "")
