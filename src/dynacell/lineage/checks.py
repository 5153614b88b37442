"""Consistency of a lineage with a label movie: every node's id in its frame, every id a node."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.lineage.formats._common import progress
from dynacell.lineage.graph import Lineage

__all__ = ["LabelCheck", "as_mask_ids", "check_against_labels", "check_lineage", "match_spots_to_masks",
           "position_scale", "positions_px"]

logger = logging.getLogger(__name__)


@dataclass
class LabelCheck:
    """Result of :func:`check_against_labels`.

    Attributes
    ----------
    source : str
        ``"<lineage source> vs <labels source>"``.
    nodes_missing_from_labels : dict of int to list of int
        Frame → label ids of lineage nodes that the label image of that frame lacks.
    labels_missing_from_lineage : dict of int to list of int
        Frame → label ids present in the label image with no lineage node at that frame.
    frames_without_labels : list of int
        Frames that hold lineage nodes but are not in the label movie (not an error: e.g.
        CTC HeLa TRA masks exist for some frames only).
    frames_checked : int
        Number of frames compared.
    """

    source: str
    nodes_missing_from_labels: dict[int, list[int]] = field(default_factory=dict)
    labels_missing_from_lineage: dict[int, list[int]] = field(default_factory=dict)
    frames_without_labels: list[int] = field(default_factory=list)
    frames_checked: int = 0

    @property
    def ok(self) -> bool:
        """True when every checked frame matches exactly."""
        return not self.nodes_missing_from_labels and not self.labels_missing_from_lineage

    def message(self, max_frames: int = 5) -> str:
        """A readable multi-line report naming frames and ids.

        Parameters
        ----------
        max_frames : int
            At most this many frames listed for each kind of mismatch (10 ids per frame).

        Returns
        -------
        str
            The report; its first line names the lineage and label sources.
        """
        lines = [f"{self.source}: {self.frames_checked} frames checked"]
        for title, d in (("lineage nodes absent from the labels", self.nodes_missing_from_labels),
                         ("label ids absent from the lineage", self.labels_missing_from_lineage)):
            if d:
                n = sum(map(len, d.values()))
                lines.append(f"{n} {title} in {len(d)} frames:")
                for t in sorted(d)[:max_frames]:
                    ids = d[t]
                    more = f" (+{len(ids) - 10} more)" if len(ids) > 10 else ""
                    lines.append(f"  frame {t}: ids {ids[:10]}{more}")
                if len(d) > max_frames:
                    lines.append(f"  ... and {len(d) - max_frames} more frames")
        if self.frames_without_labels:
            lines.append(f"{len(self.frames_without_labels)} lineage frames have no label image "
                         f"(first: {self.frames_without_labels[:10]})")
        return "\n".join(lines)

    def raise_if_mismatch(self) -> None:
        """Raise :class:`InvalidInputError` with :meth:`message` unless :attr:`ok`.

        Raises
        ------
        InvalidInputError
            If any checked frame does not match.
        """
        if not self.ok:
            raise InvalidInputError(
                self.message() + "\nUse the label images the lineage was made from, or rebuild the lineage "
                "from these labels (dynacell tracks)."
            )


def check_against_labels(lineage: Lineage, labels, *, strict: bool = False, show_progress: bool = False) -> LabelCheck:
    """Compare lineage nodes with the ids of a label movie, frame by frame (streaming).

    Parameters
    ----------
    lineage : Lineage
        Nodes ``(t, label)``.
    labels : dynacell.io.Movie
        Integer label movie, shape ``(T, [Z,] Y, X)``; its ``frame_indices`` give each
        frame's number ``t``. Frames are read one at a time.
    strict : bool
        Raise on any mismatch instead of returning the report.
    show_progress : bool
        Progress bar over frames.

    Returns
    -------
    LabelCheck
        Per-frame ids missing on either side; frames of the lineage the movie lacks.

    Raises
    ------
    InvalidInputError
        If the movie is not an integer image, or (``strict``) on any mismatch.
    """
    if np.dtype(labels.dtype).kind not in "iu":
        raise InvalidInputError(
            f"labels {labels.source}: expected an integer label movie, found dtype {labels.dtype}; "
            "pass the label masks, not the intensity images"
        )
    by_frame: dict[int, set[int]] = {}
    for t, label in lineage.graph.nodes:
        by_frame.setdefault(int(t), set()).add(int(label))
    report = LabelCheck(source=f"{lineage.source or 'lineage'} vs {labels.source or 'labels'}")
    movie_frames = set(int(t) for t in labels.frame_indices)
    report.frames_without_labels = sorted(set(by_frame) - movie_frames)
    for t in progress(labels.frame_indices, enabled=show_progress, desc="check labels", total=labels.n_frames):
        frame = np.asarray(labels.frame(t))
        if frame.size and frame.min() < 0:
            raise InvalidInputError(
                f"labels {labels.source}, frame {t}: negative label id {int(frame.min())}; ids must be >= 0 (0 = background)"
            )
        present = set(np.unique(frame).tolist()) - {0}  # sparse in the ids: any legal id, O(objects) memory
        expected = by_frame.get(int(t), set())
        missing = sorted(expected - present)
        extra = sorted(present - expected)
        if missing:
            report.nodes_missing_from_labels[int(t)] = missing
        if extra:
            report.labels_missing_from_lineage[int(t)] = extra
        report.frames_checked += 1
    if not report.ok:
        logger.warning("%s", report.message())
        if strict:
            report.raise_if_mismatch()
    return report


def check_lineage(lineage: Lineage, ids: dict[int, np.ndarray], source: str, labels=None) -> Lineage:
    """Check that a given lineage names only nuclei present in the label images.

    Nodes at frames that are not in the movie are dropped (logged): a lineage may cover a longer
    experiment than the movie. Nuclei of the masks that the lineage lacks become single-node
    tracks (logged), so that every nucleus gets a state and a CTC track.

    Parameters
    ----------
    lineage : Lineage
        The lineage, nodes ``(t, label)``.
    ids : dict of int to numpy.ndarray
        Label ids of each movie frame (from :func:`scan_labels`).
    source : str
        Where the lineage came from (for messages).
    labels : dynacell.io.Movie, optional
        The label images, to compute the centroids of nuclei the lineage lacks.

    Returns
    -------
    Lineage
        The lineage restricted to the movie's frames (a copy when nodes were dropped or added); when the
        check changed it, ``graph.graph["check"]`` holds ``nodes_outside_movie_ignored``,
        ``nuclei_added_as_single_node_tracks``, ``spots_matched_to_mask_ids`` (the nodes of a
        TrackMate file renamed by :func:`match_spots_to_masks`) and ``spots_matched_to_nearest_nucleus``
        (of those, the spots on background given the nearest nucleus).

    Raises
    ------
    InvalidInputError
        If a node at a movie frame names a label absent from that frame's label image, no node is
        left, or a TrackMate file's spots cannot be matched to the masks (:func:`match_spots_to_masks`).
    """
    matched = nearest = 0
    if lineage.graph.graph.get("node_labels") == "spot order":
        if labels is None:
            raise InvalidInputError(
                f"lineage {source}: its nodes are TrackMate spots numbered per frame, not label ids of the masks; "
                "the label images are needed to match each spot to the nucleus under it")
        lineage = match_spots_to_masks(lineage, labels, source, frames=ids)
        matched = sum(1 for n in lineage.graph.nodes if n[0] in ids)
        nearest = int(lineage.graph.graph.get("spots_matched_to_nearest_nucleus", 0))
    outside = [n for n in lineage.graph.nodes if n[0] not in ids]
    if outside:
        logger.warning("lineage %s: %d node(s) at frames outside the movie are ignored", source, len(outside))
        lineage = lineage.copy()
        lineage.graph.remove_nodes_from(outside)
        lineage.n_frames = max(ids) + 1
    absent = sorted(n for n in lineage.graph.nodes if not np.isin(n[1], ids[n[0]]))
    if absent:
        t, lab = absent[0]
        raise InvalidInputError(
            f"lineage {source}: {len(absent)} node(s) name labels absent from the masks, first frame {t} label {lab} "
            f"(frame {t} has labels {ids[t][:12].tolist()}{'...' if len(ids[t]) > 12 else ''}); give the lineage "
            f"that was made from these label images"
        )
    if len(lineage) == 0:
        raise InvalidInputError(f"lineage {source}: no node at any frame of the movie; check the lineage file")
    lacking = {t: np.setdiff1d(u, [n[1] for n in lineage.nodes_at(t)]) for t, u in ids.items()}
    n_lacking = sum(len(v) for v in lacking.values())
    if n_lacking:
        from dynacell.io.objects import nucleus_centroids

        logger.warning("lineage %s lacks %d nucleus/nuclei of the masks; they become single-node tracks",
                       source, n_lacking)
        lineage = lineage.copy() if not outside else lineage
        for t, missing in lacking.items():
            if not len(missing):
                continue
            cents: list = [None] * len(missing)
            if labels is not None:
                all_ids, all_cen = nucleus_centroids(labels.frame(t), source=f"{labels.source} frame {t}")
                cents = [tuple(c) for c in all_cen[np.searchsorted(all_ids, missing)]]
            for lab, c in zip(missing.tolist(), cents):
                lineage.add_node((t, int(lab)), centroid=c)
    if outside or n_lacking or matched:  # what the check changed, for the run's record (lineage_for_run)
        lineage.graph.graph["check"] = {"nodes_outside_movie_ignored": len(outside),
                                        "nuclei_added_as_single_node_tracks": int(n_lacking),
                                        "spots_matched_to_mask_ids": matched,
                                        "spots_matched_to_nearest_nucleus": nearest}
    return lineage


def as_mask_ids(lineage: Lineage, labels, source: str, frames=None) -> Lineage:
    """The lineage with nodes named by the label ids of ``labels``: matched when its nodes are points.

    ``evaluate`` and ``extract`` call this when they pair a read lineage with label images
    (``dynacell run`` does the same in :func:`check_lineage`): a lineage whose nodes are already label ids (CTC,
    GEFF, a TrackMate
    file written by dynacell) is returned as it is; one whose nodes are TrackMate spots numbered per
    frame (``graph.graph["node_labels"] == "spot order"``) goes through :func:`match_spots_to_masks`.

    Parameters
    ----------
    lineage : Lineage
        Any lineage.
    labels : dynacell.io.Movie
        The label images it goes with.
    source : str
        Where the lineage came from, for messages.
    frames : iterable of int, optional
        Frame numbers to match (default: every frame of ``labels``).

    Returns
    -------
    Lineage
        ``lineage`` itself, or the matched copy.

    Raises
    ------
    InvalidInputError
        As :func:`match_spots_to_masks`.
    """
    if lineage.graph.graph.get("node_labels") != "spot order":
        return lineage
    return match_spots_to_masks(lineage, labels, source, frames=frames)


def position_scale(lineage: Lineage, voxel_size_um, source: str) -> np.ndarray | None:
    """Pixels of the masks per unit of the lineage's positions, per axis, or None when they are in pixels.

    Parameters
    ----------
    lineage : Lineage
        Positions in pixels, or in µm when ``graph.graph["position_um_per_unit"]`` is set (a GEFF whose
        axes are in a length unit).
    voxel_size_um : sequence of float or None
        ``(Y, X)`` or ``(Z, Y, X)`` µm of the masks the positions go with.
    source : str
        Where the lineage came from, for messages.

    Returns
    -------
    numpy.ndarray or None
        float ``(D,)``: ``position_um_per_unit / voxel_size_um``; None for positions in pixels.

    Raises
    ------
    InvalidInputError
        If the positions are in µm and ``voxel_size_um`` is None.
    """
    um_per_unit = lineage.graph.graph.get("position_um_per_unit")
    if not um_per_unit:
        return None
    if voxel_size_um is None:
        raise InvalidInputError(f"lineage {source}: its positions are in µm but the voxel size of the masks is "
                                "unknown; give --voxel-size-um so that each spot can be matched to its mask")
    return float(um_per_unit) / np.asarray(voxel_size_um, dtype=float)


def positions_px(lineage: Lineage, nodes: list, ndim: int, scale: np.ndarray | None, source: str) -> np.ndarray:
    """The positions of ``nodes`` in pixels of the masks.

    Parameters
    ----------
    lineage : Lineage
        Nodes with ``z, y, x`` (a missing ``z`` is 0).
    nodes : list
        Node keys ``(t, label)``.
    ndim : {2, 3}
        Spatial dimensions of the masks: ``(y, x)`` or ``(z, y, x)``.
    scale : numpy.ndarray or None
        :func:`position_scale` of the lineage.
    source : str
        Where the lineage came from, for messages.

    Returns
    -------
    numpy.ndarray
        float64 ``(len(nodes), ndim)``.

    Raises
    ------
    InvalidInputError
        Naming the first node without a position (no ``y`` or ``x``, or not finite).
    """
    cols = ["z", "y", "x"][-ndim:]
    pos = np.array([[lineage.graph.nodes[n].get(c, 0.0 if c == "z" else np.nan) for c in cols] for n in nodes],
                   dtype=float).reshape(len(nodes), ndim)
    if scale is not None:
        pos = pos * scale[-ndim:]
    if not np.all(np.isfinite(pos)):
        bad = nodes[int(np.flatnonzero(~np.all(np.isfinite(pos), axis=1))[0])]
        raise InvalidInputError(f"lineage {source}: node {bad} has no position, so it cannot be matched to a "
                                "mask; every spot needs its position")
    return pos


def match_spots_to_masks(lineage: Lineage, labels, source: str, frames=None) -> Lineage:
    """Rename each node of a point lineage (TrackMate spots) to the label id of the nucleus under it.

    A TrackMate file numbers its spots per frame; the nucleus a spot stands for is the label of the
    mask at the spot's position (rounded to the nearest pixel or voxel), read once per frame. This
    is how TrackMate's label-image detector and Cellpose/StarDist detectors place a spot (at the
    object's centre), so for convex nuclei each spot falls inside its own mask. The centre of a bent
    or crescent-shaped object can lie outside it: a spot on background takes the nearest nucleus
    when it is at most half the frame's median nucleus diameter away (counted in
    ``graph.graph["spots_matched_to_nearest_nucleus"]``).

    Parameters
    ----------
    lineage : Lineage
        Nodes ``(t, n)`` with centroids ``z, y, x`` in pixels of ``labels``.
    labels : dynacell.io.Movie
        The label images, ``(T, [Z,] Y, X)`` integer ids, 0 = background.
    source : str
        Where the lineage came from, for messages.
    frames : iterable of int, optional
        Frame numbers to match (default: every frame of ``labels``); nodes at other frames are
        left as they are (:func:`check_lineage` drops them).

    Returns
    -------
    Lineage
        A copy with nodes ``(t, label id)``, the same edges and attributes, and
        ``graph.graph["node_labels"] = "mask ids"``.

    Raises
    ------
    InvalidInputError
        If a spot lies outside the image or farther than that from every nucleus, or two spots of one
        frame fall on one nucleus; the message names the count, the first frame and position, and
        what to do.
    """
    import networkx as nx

    keep = set(frames) if frames is not None else set(labels.frame_indices)
    scale = position_scale(lineage, labels.voxel_size_um, source)
    mapping: dict = {}
    outside, background, shared = [], [], []
    near_count = 0
    nodes_by_t: dict[int, list] = {}
    for n in lineage.graph.nodes:
        if n[0] in keep:
            nodes_by_t.setdefault(n[0], []).append(n)
    for t in sorted(nodes_by_t):
        img = labels.frame(t)
        nodes = nodes_by_t[t]
        pos = positions_px(lineage, nodes, img.ndim, scale, source)
        idx = np.rint(pos).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < np.array(img.shape)), axis=1)
        ids = np.zeros(len(nodes), dtype=np.int64)
        ids[ok] = img[tuple(idx[ok].T)]
        off = np.flatnonzero(ok & (ids == 0))
        if len(off):  # the centre of a bent or crescent nucleus lies outside it: take the nearest one, if near
            ids[off], far = _nearest_label(img, idx[off])
            near_count += int(np.sum(~far))
            ids[off[far]] = 0
        outside += [(n, p) for n, p, o in zip(nodes, pos, ok) if not o]
        background += [(n, p) for n, p, o, i in zip(nodes, pos, ok, ids) if o and i == 0]
        uniq, counts = np.unique(ids[ids > 0], return_counts=True)
        shared += [(t, int(u)) for u in uniq[counts > 1]]
        mapping.update({n: (t, int(i)) for n, i in zip(nodes, ids) if i > 0})

    def where(item):
        n, p = item
        return f"frame {n[0]} at {', '.join(f'{c}={v:.1f}' for c, v in zip(['z', 'y', 'x'][-len(p):], p))} px"

    if outside:
        raise InvalidInputError(f"lineage {source}: {len(outside)} spot(s) lie outside the label images, first "
                                f"{where(outside[0])}; was the TrackMate file made on this movie (same size)?")
    if background:
        raise InvalidInputError(f"lineage {source}: {len(background)} spot(s) fall on background of the masks, far "
                                "from any nucleus, first "
                                f"{where(background[0])}; were the spots detected on these masks (TrackMate's "
                                "label-image detector) and saved with the image's calibration?")
    if shared:
        t, lab = shared[0]
        raise InvalidInputError(f"lineage {source}: two or more spots fall on one nucleus in {len(shared)} case(s), "
                                f"first frame {t} label {lab}; dynacell needs one spot per nucleus")
    out = lineage.copy()
    out.graph = nx.relabel_nodes(lineage.graph, mapping, copy=True)
    out.graph.graph["node_labels"] = "mask ids"
    out.graph.graph["spots_matched_to_nearest_nucleus"] = near_count
    return out


def _nearest_label(img: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label of the nearest nucleus pixel to each position, and whether it is too far to be its nucleus.

    Too far: more than half the median equivalent diameter of the frame's nuclei (pixels).
    """
    from scipy import ndimage

    counts = np.bincount(img.ravel().astype(np.int64))[1:]
    sizes = counts[counts > 0]
    if not len(sizes):
        return np.zeros(len(idx), np.int64), np.ones(len(idx), bool)
    if img.ndim == 2:
        diameter = 2.0 * np.sqrt(np.median(sizes) / np.pi)
    else:
        diameter = 2.0 * np.cbrt(3.0 * np.median(sizes) / (4.0 * np.pi))
    dist, near = ndimage.distance_transform_edt(img == 0, return_indices=True)
    at = tuple(idx.T)
    nearest = tuple(near[(k, *at)] for k in range(img.ndim))
    return img[nearest].astype(np.int64), dist[at] > 0.5 * diameter

