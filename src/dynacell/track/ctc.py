"""Cell Tracking Challenge (CTC) track ids for a :class:`~dynacell.lineage.Lineage`.

In the CTC result format (Maška et al. 2014, *Bioinformatics* 30:1609; Ulman et al. 2017,
*Nat. Methods* 14:1141) every mask value is a *track* ``L`` that exists in every frame
from its begin ``B`` to its end ``E`` with no gap, and ``res_track.txt`` lists
``L B E P`` with ``P`` the parent track (0 = none). A track therefore ends at a division
*and* at a gap: the part after the gap is a new track whose parent is the part before.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage, Node

__all__ = ["TrackRelabel", "assign_ctc_tracks", "lineage_to_ctc_tracks"]

logger = logging.getLogger(__name__)

CTC_TRACK_COLUMNS = ["label", "begin", "end", "parent"]


@dataclass(frozen=True)
class TrackRelabel:
    """Map the nuclei ``(t, label)`` of a label movie to consistent track ids.

    Parameters
    ----------
    track_ids : dict of (int, int) to int
        ``(t, label) -> track_id`` (``track_id >= 1``).

    Notes
    -----
    Labels of a frame that are not in the mapping become background (0).

    Examples
    --------
    >>> import numpy as np
    >>> r = TrackRelabel({(0, 5): 1, (0, 9): 2})
    >>> r.relabel_frame(0, np.array([[0, 5], [9, 9]])).tolist()
    [[0, 1], [2, 2]]
    """

    track_ids: dict[Node, int] = field(default_factory=dict)

    @cached_property
    def _by_frame(self) -> dict[int, list[tuple[int, int]]]:
        out: dict[int, list[tuple[int, int]]] = {}
        for (t, label), tid in self.track_ids.items():
            out.setdefault(int(t), []).append((int(label), int(tid)))
        return out

    @property
    def dtype(self) -> np.dtype:
        """``uint16`` if every track id fits (the usual CTC mask type), else ``uint32``."""
        top = max(self.track_ids.values(), default=0)
        return np.dtype(np.uint16) if top <= np.iinfo(np.uint16).max else np.dtype(np.uint32)

    def relabel_frame(self, t: int, labels_frame: np.ndarray) -> np.ndarray:
        """Relabel one frame by track id.

        Parameters
        ----------
        t : int
            Frame number of ``labels_frame``.
        labels_frame : numpy.ndarray
            Label image ``((Z,) Y, X)``, integer dtype.

        Returns
        -------
        numpy.ndarray
            Same shape, dtype :attr:`dtype`, each nucleus painted with its track id.
        """
        from skimage.util import map_array

        frame = np.asarray(labels_frame)
        items = self._by_frame.get(int(t), [])
        if not items:
            return np.zeros(frame.shape, dtype=self.dtype)
        src = np.array([a for a, _ in items], dtype=frame.dtype)
        dst = np.array([b for _, b in items], dtype=self.dtype)
        return map_array(frame, src, dst).astype(self.dtype, copy=False)

    def frames(self, labels: Movie, *, progress: bool = True) -> Iterator[np.ndarray]:
        """Yield the frames of ``labels`` relabelled by track id, one at a time.

        Parameters
        ----------
        labels : Movie
            The label movie the mapping was built from, ``(T, (Z), Y, X)``.
        progress : bool
            Show a progress bar.

        Yields
        ------
        numpy.ndarray
            ``((Z,) Y, X)`` frames of dtype :attr:`dtype`, in the order of
            ``labels.frame_indices``.
        """
        for i, t in enumerate(tqdm(labels.frame_indices, desc="relabelling", unit="frame", disable=not progress)):
            yield self.relabel_frame(t, np.asarray(labels.data[i]))


def assign_ctc_tracks(lineage: Lineage) -> TrackRelabel:
    """Give every node a CTC ``track_id`` (overwriting any) and return the mapping.

    A track starts at a node without a parent, at a daughter of a division, at the
    child of a gap edge (``t_child > t_parent + 1``), and after a merge; it continues
    while the node has exactly one child, one frame later, whose only parent it is.
    Ids are 1, 2, ... in the order of each track's first ``(t, label)``.

    Parameters
    ----------
    lineage : Lineage
        Modified in place (node attribute ``track_id``).

    Returns
    -------
    TrackRelabel
        ``(t, label) -> track_id`` for every node.

    Examples
    --------
    A gap between frames 1 and 3 starts a new track (ASCII, time to the right)::

        (0,4) ── (1,2) ······ (3,1)
          track 1 ─────┘   track 2 (parent 1)
    """
    from dynacell.lineage._tracks import assign_track_ids

    return TrackRelabel(assign_track_ids(lineage, break_at_gaps=True))


def lineage_to_ctc_tracks(lineage: Lineage) -> pd.DataFrame:
    """The CTC track table (``L B E P``) of a lineage whose ``track_id`` are CTC tracks.

    Parameters
    ----------
    lineage : Lineage
        Every node must carry a ``track_id`` such that each track is a chain of nodes in
        consecutive frames (as set by :func:`assign_ctc_tracks` or
        :func:`~dynacell.track.link_labels`).

    Returns
    -------
    pandas.DataFrame
        The CTC columns ``L B E P`` named as in :func:`dynacell.io.read_ctc_tracks` and
        :func:`dynacell.io.write_ctc_result`: ``label`` (track id = mask value), ``begin``
        (first frame), ``end`` (last frame), ``parent`` (parent track id, 0 = none); int64,
        one row per track sorted by ``label``.

    Raises
    ------
    InvalidInputError
        If a node has no ``track_id``, a track skips a frame or holds two nodes in one
        frame, a track's first node has several parents, or a parent track does not end
        before its child begins. Call :func:`assign_ctc_tracks` first to fix the ids.
    """
    g = lineage.graph
    hint = "call dynacell.track.assign_ctc_tracks(lineage) to give it CTC track ids"
    by_track: dict[int, list[Node]] = {}
    for n, d in g.nodes(data=True):
        if "track_id" not in d:
            raise InvalidInputError(f"lineage {lineage.source}: node {n} has no track_id; {hint}")
        by_track.setdefault(int(d["track_id"]), []).append(n)
    rows = []
    for tid, nodes in sorted(by_track.items()):
        nodes.sort()
        ts = [t for t, _ in nodes]
        if ts != list(range(ts[0], ts[0] + len(ts))):
            raise InvalidInputError(
                f"lineage {lineage.source}: track {tid} is not one node per consecutive frame "
                f"(frames {ts[:10]}{' ...' if len(ts) > 10 else ''}); {hint}"
            )
        for a, b in zip(nodes[:-1], nodes[1:], strict=True):
            if not g.has_edge(a, b):
                raise InvalidInputError(f"lineage {lineage.source}: track {tid} has no edge {a} -> {b}; {hint}")
        preds = list(g.predecessors(nodes[0]))
        if len(preds) > 1:
            raise InvalidInputError(
                f"lineage {lineage.source}: node {nodes[0]} (start of track {tid}) has {len(preds)} parents; "
                f"the CTC format allows one"
            )
        parent = int(g.nodes[preds[0]]["track_id"]) if preds else 0
        rows.append((tid, ts[0], ts[-1], parent))
    df = pd.DataFrame(rows, columns=CTC_TRACK_COLUMNS, dtype=np.int64)
    ends = dict(zip(df["label"], df["end"], strict=True))
    for row in df.itertuples(index=False):
        if row.parent and ends[row.parent] >= row.begin:
            raise InvalidInputError(
                f"lineage {lineage.source}: parent track {row.parent} ends at frame {ends[row.parent]}, not before "
                f"its child track {row.label} begins at frame {row.begin}; {hint}"
            )
    return df
