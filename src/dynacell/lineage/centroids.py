"""Nucleus centroids of a label image: the one centroid function of dynacell (no torch).

Every part of dynacell that needs the position of a nucleus from its mask — the lineage builders
(centroids of CTC / KLB masks), the crops of the state classifier, the linker, the label scan of
``dynacell run`` and the tracking metrics — calls :func:`nucleus_centroids`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dynacell.errors import InvalidInputError

__all__ = ["nucleus_centroids", "label_sizes", "track_displacements"]

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

    Returns
    -------
    label_ids : numpy.ndarray, int64, shape (N,)
    sizes : numpy.ndarray, int64, shape (N,)
    """
    ids, _, sizes = nucleus_centroids(labels_t, source=source, return_sizes=True)
    return ids, sizes


def track_displacements(lineage, *, voxel_size_um=None, k_neighbours: int = 8
                        ) -> dict[tuple[int, int], tuple[np.ndarray | None, np.ndarray | None]]:
    """Where each nucleus's track is one frame before and after, as pixel offsets from the nucleus.

    The state classifier's context frames ``t−1`` / ``t+1`` are cut around these positions
    (:func:`dynacell.samples.crops.crop_windows`, ``neighbour_offsets_px``) so that motion of the
    whole specimen (a tumbling embryo moves 5–10 µm a frame) does not move the nucleus out of its
    context, while a division keeps the geometry the classifier was trained on.

    Parameters
    ----------
    lineage : dynacell.lineage.Lineage
        Nodes ``(t, label)`` with centroids ``z, y, x`` (pixels); edges parent → child.
    voxel_size_um : sequence of float, optional
        ``([Z,] Y, X)`` µm per pixel, used only to find the nearest neighbours (default: pixels).
    k_neighbours : int
        Neighbours whose motion is the local drift (default 8).

    Returns
    -------
    dict
        ``{(t, label): (offset_prev, offset_next)}``, each a float64 ``(3,)`` ``(z, y, x)`` vector in
        pixels or None (no estimate: the box stays at ``t``). Rules:

        * a **one-to-one link** (the parent at ``t−1`` has this one child; the child at ``t+1`` is
          the only child and has this one parent): the linked nucleus − this nucleus;
        * a **division** (mother at ``t`` with daughters at ``t+1``; daughter at ``t`` with its
          mother at ``t−1``): the motion of the family, daughters' midpoint − mother (forward for
          the mother, backward for each daughter), so the division keeps the geometry of a still
          specimen, as in the classifier's training data;
        * otherwise (a track start or end, a gap): the **local drift**, the median of the
          displacements above (in that direction) of the ``k_neighbours`` nearest nuclei of the
          same frame that have one;
        * None where the frame has no such displacement in that direction, or a centroid is unknown.

    Examples
    --------
    >>> from dynacell.lineage import Lineage
    >>> lin = Lineage(n_frames=2, ndim=2)
    >>> lin.add_node((0, 1), (10.0, 10.0)); lin.add_node((1, 5), (10.0, 17.0)); lin.add_edge((0, 1), (1, 5))
    >>> track_displacements(lin)[(0, 1)][1].tolist()
    [0.0, 0.0, 7.0]
    """
    from scipy.spatial import cKDTree

    g = lineage.graph
    nodes = list(g.nodes)
    if not nodes:
        return {}
    cen = np.array([[g.nodes[n].get("z", 0.0), g.nodes[n].get("y", np.nan), g.nodes[n].get("x", np.nan)]
                    for n in nodes], dtype=float)
    known = np.isfinite(cen).all(axis=1)
    row = {n: i for i, n in enumerate(nodes)}
    scale = np.ones(3)
    if voxel_size_um is not None:
        vs = np.asarray(voxel_size_um, dtype=float)
        scale[3 - vs.size:] = vs
    plain = [np.full((len(nodes), 3), np.nan), np.full((len(nodes), 3), np.nan)]  # prev, next
    family = [np.full((len(nodes), 3), np.nan), np.full((len(nodes), 3), np.nan)]
    for a in g.nodes:
        kids = [b for b in g.successors(a) if b[0] == a[0] + 1 and g.in_degree(b) == 1]
        ia = row[a]
        if not kids or not known[ia] or not all(known[row[b]] for b in kids):
            continue
        if len(kids) == 1 and g.out_degree(a) == 1:
            ib = row[kids[0]]
            plain[1][ia] = cen[ib] - cen[ia]
            plain[0][ib] = cen[ia] - cen[ib]
        elif len(kids) >= 2:  # a division: the motion of the family (daughters' midpoint - mother)
            motion = np.mean([cen[row[b]] for b in kids], axis=0) - cen[ia]
            family[1][ia] = motion
            for b in kids:
                family[0][row[b]] = -motion
    for side in (0, 1):
        div = np.isfinite(family[side]).all(axis=1)
        plain[side][div] = family[side][div]
    frame_of = np.array([n[0] for n in nodes])
    for side in (0, 1):
        est = plain[side]
        for t in np.unique(frame_of):
            rows = np.flatnonzero((frame_of == t) & known)
            have = rows[np.isfinite(est[rows]).all(axis=1)]
            need = rows[~np.isfinite(est[rows]).all(axis=1)]
            if have.size == 0 or need.size == 0:
                continue
            kk = min(int(k_neighbours), have.size)
            _, nn = cKDTree(cen[have] * scale).query(cen[need] * scale, k=kk)
            nn = np.asarray(nn).reshape(need.size, kk)
            est[need] = np.median(est[have][nn], axis=1)
    out: dict[tuple[int, int], tuple[np.ndarray | None, np.ndarray | None]] = {}
    for i, n in enumerate(nodes):
        out[n] = tuple(est[i].copy() if np.isfinite(est[i]).all() else None for est in plain)
    return out
