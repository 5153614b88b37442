"""Nucleus centroids of a label image: the one centroid function of dynacell (no torch).

Every part of dynacell that needs the position of a nucleus from its mask — the lineage builders
(centroids of CTC / KLB masks), the crops of the state classifier, the linker, the label scan of
``dynacell run`` and the tracking metrics — calls :func:`nucleus_centroids`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dynacell.errors import InvalidInputError

__all__ = ["nucleus_centroids", "label_sizes"]

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
                      return_sizes: bool = False) -> tuple[np.ndarray, ...]:
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

    Returns
    -------
    label_ids : numpy.ndarray, int64, shape (N,)
        Sorted ids present (background excluded).
    centroids : numpy.ndarray, float64, shape (N, 3)
        ``(z, y, x)`` in pixels (array-index units); ``z = 0`` in 2D.
    sizes : numpy.ndarray, int64, shape (N,)
        Pixels per label (only with ``return_sizes``).

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
    empty = (np.zeros(0, np.int64), np.zeros((0, 3)))
    if labels_t.size == 0:
        return (*empty, np.zeros(0, np.int64)) if return_sizes else empty
    top = int(labels_t.max())
    if top == 0:
        return (*empty, np.zeros(0, np.int64)) if return_sizes else empty
    if top <= max(_DENSE_ID_LIMIT, labels_t.size) and top <= _DENSE_ID_LIMIT * 64:
        boxes = ndimage.find_objects(labels_t)
        ids_l, com_l, size_l = [], [], []
        for i, box in enumerate(boxes):
            if box is None:
                continue
            inside = np.nonzero(labels_t[box] == i + 1)
            ids_l.append(i + 1)
            com_l.append([idx.mean() + sl.start for idx, sl in zip(inside, box)])
            size_l.append(inside[0].size)
        ids = np.asarray(ids_l, dtype=np.int64)
        com = np.asarray(com_l, dtype=float).reshape(ids.size, labels_t.ndim)
        sizes = np.asarray(size_l, dtype=np.int64)
    else:
        coords = np.nonzero(labels_t)
        values = labels_t[coords]
        u, inv = np.unique(values, return_inverse=True)
        ids = u.astype(np.int64)
        sizes = np.bincount(inv, minlength=u.size).astype(np.int64)
        com = np.column_stack([np.bincount(inv, weights=c, minlength=u.size) / sizes for c in coords])
    if labels_t.ndim == 2:
        com = np.column_stack([np.zeros(ids.size), com])
    return (ids, com, sizes) if return_sizes else (ids, com)


def label_sizes(labels_t: np.ndarray, *, source: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Label ids and pixel counts of one label image (sparse in the ids, like :func:`nucleus_centroids`).

    Returns
    -------
    label_ids : numpy.ndarray, int64, shape (N,)
    sizes : numpy.ndarray, int64, shape (N,)
    """
    ids, _, sizes = nucleus_centroids(labels_t, source=source, return_sizes=True)
    return ids, sizes
