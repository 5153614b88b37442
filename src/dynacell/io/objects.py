"""Nucleus centroids, sizes and bounding boxes of a label image: the one centroid function of dynacell.

It lives in ``io`` (the bottom layer, no torch) because every layer that reads masks needs it: the
label scan of ``dynacell run`` (:mod:`dynacell.io.scan`), the lineage builders (centroids of CTC / KLB
masks), the crops of the state classifier, the linker and the tracking metrics all call
:func:`nucleus_centroids`. :mod:`dynacell.lineage.centroids` re-exports it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dynacell.errors import InvalidInputError

__all__ = ["nucleus_centroids", "label_sizes", "boxes_cover_little"]

#: Largest id for which the dense, one-pass bounding-box route is used (beyond: sparse route).
_DENSE_ID_LIMIT = 1 << 20


def _check(labels_t: np.ndarray, source: str) -> None:
    if labels_t.dtype.kind not in "iub":
        raise InvalidInputError(
            f"label image {source}: expected an integer instance image, found dtype {labels_t.dtype}; "
            "pass the label masks (man_trackTTT.tif / maskTTT.tif), not the intensity images")
    if labels_t.dtype.kind == "i" and labels_t.size and labels_t.min() < 0:
        raise InvalidInputError(f"label image {source}: negative label ids found; ids must be >= 0 (0 = background)")


def nucleus_centroids(labels_t: np.ndarray, *, source: str = "",
                      return_sizes: bool = False, return_boxes: bool = False) -> tuple[np.ndarray, ...]:
    """Label ids and centroids (centre of each label's pixels) of one label image.

    Parameters
    ----------
    labels_t : numpy.ndarray, integer, shape ``([Z,] Y, X)``
        Instance label image of one frame; 0 is background. Any legal id works (up to 2**63−1):
        ids are handled sparsely, memory is O(pixels + number of objects), never O(largest id).
    source : str
        File and frame, for error messages.
    return_sizes : bool
        Also return the number of pixels of each label.
    return_boxes : bool
        Also return each label's bounding box.

    Returns
    -------
    label_ids : numpy.ndarray, int64, shape (N,)
        Sorted ids present (background excluded).
    centroids : numpy.ndarray, float64, shape (N, 3)
        ``(z, y, x)`` in pixels (array-index units); ``z = 0`` in 2D.
    sizes : numpy.ndarray, int64, shape (N,)
        Pixels per label (only with ``return_sizes``).
    boxes : numpy.ndarray, int64, shape (N, 2 * ndim)
        Bounding boxes ``(lo_0, ..., lo_{d-1}, hi_0, ..., hi_{d-1})`` in the image's own axes, ``hi``
        exclusive (the ``bbox`` of :func:`skimage.measure.regionprops`); only with ``return_boxes``,
        returned last.

    Raises
    ------
    InvalidInputError
        If the image is not an integer (or boolean) image or holds negative ids.

    Notes
    -----
    Small ids (≤ 2**20): one C pass of :func:`scipy.ndimage.find_objects` for bounding boxes,
    then each centroid inside its own box (fast on large, mostly empty 3D frames). Larger ids:
    :func:`numpy.unique` with ``return_inverse`` on the foreground and :func:`numpy.bincount`.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((4, 4), np.uint16); lab[0:2, 0:2] = 7
    >>> ids, cen = nucleus_centroids(lab)
    >>> ids.tolist(), cen.tolist()
    ([7], [[0.0, 0.5, 0.5]])
    """
    labels_t = np.asarray(labels_t)
    _check(labels_t, source)
    if labels_t.dtype == bool:
        labels_t = labels_t.astype(np.uint8)
    def _out(ids, com, sizes, boxes):
        return (ids, com) + ((sizes,) if return_sizes else ()) + ((boxes,) if return_boxes else ())

    no_boxes = np.zeros((0, 2 * labels_t.ndim), np.int64)
    if labels_t.size == 0:
        return _out(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0, np.int64), no_boxes)
    top = int(labels_t.max())
    if top == 0:
        return _out(np.zeros(0, np.int64), np.zeros((0, 3)), np.zeros(0, np.int64), no_boxes)
    if top <= max(_DENSE_ID_LIMIT, labels_t.size) and top <= _DENSE_ID_LIMIT * 64:
        boxes = ndimage.find_objects(labels_t)
        ids_l, com_l, size_l, box_l = [], [], [], []
        for i, box in enumerate(boxes):
            if box is None:
                continue
            inside = np.nonzero(labels_t[box] == i + 1)
            ids_l.append(i + 1)
            com_l.append([idx.mean() + sl.start for idx, sl in zip(inside, box)])
            size_l.append(inside[0].size)
            if return_boxes:
                box_l.append([sl.start for sl in box] + [sl.stop for sl in box])
        ids = np.asarray(ids_l, dtype=np.int64)
        com = np.asarray(com_l, dtype=float).reshape(ids.size, labels_t.ndim)
        sizes = np.asarray(size_l, dtype=np.int64)
        bbox = np.asarray(box_l, dtype=np.int64).reshape(-1, 2 * labels_t.ndim) if return_boxes else None
    else:
        coords = np.nonzero(labels_t)
        values = labels_t[coords]
        u, inv = np.unique(values, return_inverse=True)
        ids = u.astype(np.int64)
        sizes = np.bincount(inv, minlength=u.size).astype(np.int64)
        com = np.column_stack([np.bincount(inv, weights=c, minlength=u.size) / sizes for c in coords])
        bbox = None
        if return_boxes:  # per-label min / max of each coordinate over the label's pixels, grouped by one sort
            order = np.argsort(inv, kind="stable")
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            lo = [np.minimum.reduceat(c[order], starts) for c in coords]
            hi = [np.maximum.reduceat(c[order], starts) + 1 for c in coords]
            bbox = np.column_stack(lo + hi).astype(np.int64)
    if labels_t.ndim == 2:
        com = np.column_stack([np.zeros(ids.size), com])
    return _out(ids, com, sizes, bbox)


def label_sizes(labels_t: np.ndarray, *, source: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Label ids and pixel counts of one label image (sparse in the ids, like :func:`nucleus_centroids`).

    Parameters
    ----------
    labels_t : numpy.ndarray
        One integer label frame, 0 = background.
    source : str
        Name of the input, for messages.

    Returns
    -------
    label_ids : numpy.ndarray, int64, shape (N,)
    sizes : numpy.ndarray, int64, shape (N,)
    """
    ids, _, sizes = nucleus_centroids(labels_t, source=source, return_sizes=True)
    return ids, sizes


def boxes_cover_little(shape: tuple[int, ...], boxes, n_ids: int) -> bool:
    """Whether a label frame of ``shape`` is cheaper to visit box by box than pixel by pixel.

    True when ``boxes`` (the ``return_boxes`` rows of :func:`nucleus_centroids`) has one row of ``2 * ndim``
    per id, the boxes' volume together is at most a quarter of the frame and there is at most one id per
    4,096 pixels (each box costs a few NumPy calls). GOWT1 01's 1024² track masks: ~25 nuclei in boxes of
    ~8 % of the frame. Used by the CTC writer and the linker's flow-compensated overlaps of ``dynacell run``.

    Parameters
    ----------
    shape : tuple of int
        The frame's shape.
    boxes : numpy.ndarray or None
        ``(n, 2 * ndim)`` box rows (starts, then stops), or None.
    n_ids : int
        Number of ids in the frame.

    Returns
    -------
    bool
        True when visiting the boxes is the cheaper way.
    """
    if boxes is None or len(shape) == 0:
        return False
    boxes = np.asarray(boxes)
    size = int(np.prod(shape))
    nd = len(shape)
    if boxes.ndim != 2 or boxes.shape != (n_ids, 2 * nd) or n_ids > size // 4096:
        return False
    return int(np.prod(boxes[:, nd:] - boxes[:, :nd], axis=1).sum()) <= size // 4
