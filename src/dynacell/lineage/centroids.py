"""Nucleus centroids for lineages: the one centroid function (re-exported) and track displacements (no torch).

:func:`nucleus_centroids` and :func:`label_sizes` live in :mod:`dynacell.io.objects` (the bottom layer,
so that the label scan in ``io`` need not import upwards) and are re-exported here for the lineage
builders, the crops, the linker and the tracking metrics. :func:`track_displacements` is defined here.
"""

from __future__ import annotations

import numpy as np

from dynacell.io.objects import label_sizes, nucleus_centroids

__all__ = ["nucleus_centroids", "label_sizes", "track_displacements"]


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
