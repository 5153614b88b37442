"""Vectorised track structure of a lineage (chains of single-child links), shared by builders and events."""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from dynacell.lineage.graph import Lineage, Node

__all__ = ["TrackIndex", "track_index", "assign_track_ids"]


@dataclass
class TrackIndex:
    """Arrays over the nodes of a lineage sorted by ``(t, label)``.

    Attributes
    ----------
    nodes : list of tuple
        The nodes, sorted.
    t : numpy.ndarray of int64, shape (N,)
        Frame of each node.
    parent : numpy.ndarray of int64, shape (N,)
        Index of the parent (-1 for roots).
    n_children : numpy.ndarray of int64, shape (N,)
        Number of children.
    track : numpy.ndarray of int64, shape (N,)
        Track of each node, ``0 .. n_tracks-1`` in order of each track's first node.
    """

    nodes: list[Node]
    t: np.ndarray
    parent: np.ndarray
    n_children: np.ndarray
    track: np.ndarray

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.track.max()) + 1 if self.track.size else 0


def track_index(lineage: Lineage, *, break_at_gaps: bool = False) -> TrackIndex:
    """Tracks of ``lineage``: a track starts at a root, at a child of a node with ≠ 1 children, at a
    node with several parents (a merge), and — with ``break_at_gaps`` (the CTC track definition) — at
    the child of a gap edge (``t_child > t_parent + 1``).

    This is the one track definition of dynacell: :meth:`Lineage.assign_tracks`, the seed's
    ``Node.track_ancestor`` (``break_at_gaps=False``) and the CTC track ids of
    :func:`dynacell.track.assign_ctc_tracks` (``break_at_gaps=True``). Track numbers follow each
    track's first ``(t, label)``. O(N) after one sort.
    """
    g = lineage.graph
    nodes = sorted(g.nodes)
    n = len(nodes)
    index = {node: i for i, node in enumerate(nodes)}
    t = np.fromiter((node[0] for node in nodes), dtype=np.int64, count=n)
    parent = np.full(n, -1, dtype=np.int64)
    n_children = np.zeros(n, dtype=np.int64)
    n_parents = np.zeros(n, dtype=np.int64)
    if g.number_of_edges():
        u, v = zip(*g.edges)
        iu = np.fromiter((index[x] for x in u), dtype=np.int64, count=len(u))
        iv = np.fromiter((index[x] for x in v), dtype=np.int64, count=len(v))
        parent[iv] = iu
        n_children = np.bincount(iu, minlength=n).astype(np.int64)
        n_parents = np.bincount(iv, minlength=n).astype(np.int64)
    track = np.empty(n, dtype=np.int64)
    n_tracks = 0
    par = parent.tolist()
    nch = n_children.tolist()
    npar = n_parents.tolist()
    ts = t.tolist()
    tr = [0] * n
    for i in range(n):
        p = par[i]
        if p >= 0 and nch[p] == 1 and npar[i] == 1 and (not break_at_gaps or ts[i] == ts[p] + 1):
            tr[i] = tr[p]
        else:
            tr[i] = n_tracks
            n_tracks += 1
    track[:] = tr
    return TrackIndex(nodes, t, parent, n_children, track)


def assign_track_ids(lineage: Lineage, *, break_at_gaps: bool = False) -> dict:
    """Set ``track_id`` (1, 2, ...) on every node (see :func:`track_index`); return ``{node: track_id}``."""
    ti = track_index(lineage, break_at_gaps=break_at_gaps)
    mapping = dict(zip(ti.nodes, (ti.track + 1).tolist()))
    nx.set_node_attributes(lineage.graph, mapping, "track_id")
    return mapping
