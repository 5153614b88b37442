"""The :class:`Lineage` type: a cell lineage as a directed graph forward in time.

Nodes are keyed by ``(t, label)``: ``t`` is the frame index and ``label`` the value of
that nucleus in the label image of frame ``t`` (for formats without label images, a
per-frame id). Node attributes:

``z, y, x`` (float, pixels; ``z`` is 0.0 for 2D data)
    Centroid in array-index units.
``track_id`` (int)
    The track (chain of single-child edges) the node belongs to; assigned by
    :meth:`Lineage.assign_tracks` when a builder does not give it.
``death`` (bool, optional)
    True where the source explicitly annotates the node as a cell death
    (e.g. WormGUIDES ``CellDeaths.csv``), never guessed.
``name`` (str, optional), ``diameter_px`` (float, optional)
    Format-specific extras (AceTree cell name, nucleus diameter).

Edges go parent → child with ``t_child > t_parent`` (gaps allowed). A division is a
node with two or more children.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = ["Lineage", "Node"]

Node = tuple[int, int]


class Lineage:
    """A cell lineage: nodes ``(t, label)`` with centroids, edges parent → child.

    Parameters
    ----------
    n_frames : int, optional
        Number of frames of the movie the lineage describes (frames ``0 .. n_frames-1``).
        Event rules use it to tell a track that ends before the last frame from one that
        reaches it. Default: one past the last frame that holds a node.
    ndim : {2, 3}
        Spatial dimensionality of the data the centroids refer to.
    source : str
        Where the lineage was read from (file path or description), for reports.

    Notes
    -----
    The graph is a :class:`networkx.DiGraph` (``Lineage.graph``); use it directly for
    graph algorithms. The class adds validation, time indexing and tables.

    Examples
    --------
    A division at frame 1 (ASCII picture: time runs to the right)::

        (0,1) ── (1,1) ─┬─ (2,2)
                        └─ (2,3)

    >>> lin = Lineage(n_frames=3)
    >>> for n in [(0, 1), (1, 1), (2, 2), (2, 3)]:
    ...     lin.add_node(n)
    >>> lin.add_edge((0, 1), (1, 1)); lin.add_edge((1, 1), (2, 2)); lin.add_edge((1, 1), (2, 3))
    >>> lin.divisions()
    [(1, 1)]
    """

    def __init__(self, n_frames: int | None = None, ndim: int = 2, source: str = "") -> None:
        if ndim not in (2, 3):
            raise InvalidInputError(f"Lineage ndim must be 2 or 3, got {ndim!r}")
        self.graph: nx.DiGraph = nx.DiGraph()
        self._n_frames = n_frames
        self.ndim = ndim
        self.source = source

    # ------------------------------------------------------------------ building
    def add_node(
        self,
        node: Node,
        centroid: Iterable[float] | None = None,
        **attrs: Any,
    ) -> None:
        """Add nucleus ``node = (t, label)``.

        Parameters
        ----------
        node : tuple of int
            ``(t, label)``, ``t >= 0``, ``label >= 1``.
        centroid : sequence of float, optional
            ``(z, y, x)`` or ``(y, x)`` in pixels.
        **attrs
            Extra attributes (``track_id``, ``death``, ``name``, ...).

        Raises
        ------
        InvalidInputError
            If ``t < 0`` or ``label < 1`` (0 is background).
        """
        t, label = int(node[0]), int(node[1])
        if t < 0 or label < 1:
            raise InvalidInputError(
                f"lineage node (t={t}, label={label}): t must be >= 0 and label >= 1 (0 is background)"
            )
        if centroid is not None:
            c = [float(v) for v in centroid]
            if len(c) == 2:
                c = [0.0, *c]
            if len(c) != 3:
                raise InvalidInputError(f"centroid of node {(t, label)} must have 2 or 3 values, got {len(c)}")
            attrs["z"], attrs["y"], attrs["x"] = c
        self.graph.add_node((t, label), **attrs)

    def add_edge(self, parent: Node, child: Node) -> None:
        """Add the edge ``parent → child``.

        Raises
        ------
        InvalidInputError
            If a node is missing or the edge does not go forward in time.
        """
        parent = (int(parent[0]), int(parent[1]))
        child = (int(child[0]), int(child[1]))
        for n in (parent, child):
            if n not in self.graph:
                raise InvalidInputError(f"edge {parent} -> {child}: node {n} is not in the lineage")
        if child[0] <= parent[0]:
            raise InvalidInputError(
                f"edge {parent} -> {child} goes backward or stays in time; edges must go forward"
            )
        self.graph.add_edge(parent, child)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return self.graph.number_of_nodes()

    def __contains__(self, node: object) -> bool:
        return node in self.graph

    def __iter__(self) -> Iterator[Node]:
        return iter(sorted(self.graph.nodes))

    @property
    def n_frames(self) -> int:
        """Number of frames (``max t + 1`` unless given at construction)."""
        if self._n_frames is not None:
            return int(self._n_frames)
        if len(self.graph) == 0:
            return 0
        return int(max(t for t, _ in self.graph.nodes)) + 1

    @n_frames.setter
    def n_frames(self, value: int | None) -> None:
        self._n_frames = value

    @property
    def first_frame(self) -> int:
        """The first frame that holds a node (0 for an empty lineage)."""
        return int(min((t for t, _ in self.graph.nodes), default=0))

    def children(self, node: Node) -> list[Node]:
        """Children of ``node``, sorted."""
        return sorted(self.graph.successors(node))

    def parents(self, node: Node) -> list[Node]:
        """Parents of ``node`` (zero or one in a valid lineage), sorted."""
        return sorted(self.graph.predecessors(node))

    def nodes_at(self, t: int) -> list[Node]:
        """Nodes of frame ``t``, sorted by label."""
        return sorted(n for n in self.graph.nodes if n[0] == t)

    def labels_at(self, t: int) -> set[int]:
        """Label ids present at frame ``t``."""
        return {n[1] for n in self.graph.nodes if n[0] == t}

    def divisions(self) -> list[Node]:
        """Nodes with two or more children (the last frame of a mother), sorted."""
        return sorted(n for n in self.graph.nodes if self.graph.out_degree(n) >= 2)

    def explicit_deaths(self) -> list[Node]:
        """Nodes whose ``death`` attribute is True (an explicit annotation), sorted."""
        return sorted(n for n, d in self.graph.nodes(data=True) if d.get("death"))

    def centroid(self, node: Node) -> np.ndarray:
        """Centroid ``(z, y, x)`` of ``node`` in pixels, float64, shape (3,).

        Raises
        ------
        InvalidInputError
            If the node has no centroid.
        """
        d = self.graph.nodes[node]
        if "y" not in d:
            raise InvalidInputError(f"lineage node {node} has no centroid")
        return np.array([d.get("z", 0.0), d["y"], d["x"]], dtype=float)

    # ------------------------------------------------------------------ tracks
    def assign_tracks(self, overwrite: bool = False) -> None:
        """Give every node a ``track_id``: one id per chain of single-child edges.

        A track starts at a root, or at a child of a division, and continues while a
        node has exactly one child whose only parent it is. Ids are 1, 2, ... in order of
        each track's first (t, label). Existing ids are kept unless ``overwrite``.
        """
        g = self.graph
        if not overwrite and all("track_id" in d for _, d in g.nodes(data=True)):
            return
        from dynacell.lineage._tracks import assign_track_ids

        assign_track_ids(self)

    def tracks(self) -> pd.DataFrame:
        """One row per track: ``track_id, start, end, parent_track_id, n_nodes``.

        ``parent_track_id`` is 0 for tracks without a parent (CTC convention).
        """
        self.assign_tracks()
        g = self.graph
        rows: dict[int, dict[str, int]] = {}
        for (t, label), d in g.nodes(data=True):
            tid = int(d["track_id"])
            r = rows.setdefault(tid, {"track_id": tid, "start": t, "end": t, "parent_track_id": 0, "n_nodes": 0})
            r["start"] = min(r["start"], t)
            r["end"] = max(r["end"], t)
            r["n_nodes"] += 1
        first: dict[int, Node] = {}
        for n, d in g.nodes(data=True):
            tid = int(d["track_id"])
            if tid not in first or n < first[tid]:
                first[tid] = n
        for tid, r in rows.items():
            preds = list(g.predecessors(first[tid]))
            if preds:
                r["parent_track_id"] = int(g.nodes[preds[0]]["track_id"])
        return pd.DataFrame(sorted(rows.values(), key=lambda r: r["track_id"]),
                            columns=["track_id", "start", "end", "parent_track_id", "n_nodes"])

    def tree_ids(self) -> dict[Node, int]:
        """Map each node to the id (1, 2, ...) of its lineage tree (weakly connected component).

        Used for grouped splits: a mother and both daughters share a tree id.
        """
        out: dict[Node, int] = {}
        comps = sorted(nx.weakly_connected_components(self.graph), key=min)
        for i, comp in enumerate(comps, start=1):
            for n in comp:
                out[n] = i
        return out

    def to_dataframe(self) -> pd.DataFrame:
        """Node table with columns ``t, label, track_id, parent_track_id, z, y, x`` (+ extras).

        Positions are in pixels. Sorted by ``(t, label)``.
        """
        self.assign_tracks()
        tr = self.tracks().set_index("track_id")["parent_track_id"].to_dict()
        rows = []
        for (t, label), d in sorted(self.graph.nodes(data=True)):
            row = {"t": t, "label": label, "track_id": d.get("track_id", 0),
                   "parent_track_id": tr.get(d.get("track_id", 0), 0),
                   "z": d.get("z", np.nan), "y": d.get("y", np.nan), "x": d.get("x", np.nan)}
            for k, v in d.items():
                if k not in row:
                    row[k] = v
            rows.append(row)
        cols = ["t", "label", "track_id", "parent_track_id", "z", "y", "x"]
        df = pd.DataFrame(rows)
        if df.empty:
            return pd.DataFrame(columns=cols)
        return df[cols + [c for c in df.columns if c not in cols]]

    def to_networkx(self) -> nx.DiGraph:
        """A copy of the graph as a :class:`networkx.DiGraph` (nodes ``(t, label)``)."""
        return self.graph.copy()

    def copy(self) -> Lineage:
        """A deep copy."""
        new = Lineage(self._n_frames, self.ndim, self.source)
        new.graph = self.graph.copy()
        return new

    def validate(self) -> None:
        """Check the lineage is a forest going forward in time.

        Raises
        ------
        InvalidInputError
            If a node has more than one parent or an edge does not go forward.
        """
        for n in self.graph.nodes:
            if self.graph.in_degree(n) > 1:
                raise InvalidInputError(f"lineage node {n} has {self.graph.in_degree(n)} parents; expected at most 1")
        for u, v in self.graph.edges:
            if v[0] <= u[0]:
                raise InvalidInputError(f"lineage edge {u} -> {v} does not go forward in time")

    def __repr__(self) -> str:
        return (f"Lineage(nodes={len(self)}, edges={self.graph.number_of_edges()}, "
                f"frames={self.n_frames}, divisions={len(self.divisions())}, ndim={self.ndim})")
