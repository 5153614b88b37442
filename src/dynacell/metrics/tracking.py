"""Tracking metrics: thin wrappers over traccuracy for CTC-format results.

Measures (traccuracy; definitions from Matula et al. 2015, *PLoS ONE* 10:e0144959 and
Ulman et al. 2017, *Nat. Methods* 14:1141):

- ``TRA``, ``DET``, ``LNK``: the CTC tracking / detection / linking scores from the
  AOGM graph edit distance, with the CTC matcher (a result mask matches a reference
  marker when it covers more than half of it);
- ``division_precision``, ``division_recall``, ``division_f1``: a division is correct when
  the mother and both daughters match, allowing the division frame to be off by
  ``frame_buffer`` frames (default 1);
- edge error counts: ``fp_edges``, ``fn_edges``, ``ws_edges`` (wrong semantic: a link
  that is a division in one graph and a continuation in the other), and node error
  counts ``fp_nodes``, ``fn_nodes``, ``ns_nodes`` (non-split: one mask over several
  reference nuclei).

Sparse ground truth (e.g. HeLa ``02_GT/TRA`` holds markers for some frames only) is
evaluated on the frames that have ground-truth masks inside the result's frames (from its
first to its last frame, counting both its mask files and the tracks of its track file):
both lineages are contracted onto those frames (an edge joins a node to its first
descendant in an evaluated frame), and the evaluated frames are renumbered 0, 1, ... so
frame distances (the division frame buffer) count evaluated frames.

Nothing missing from a result is dropped from the score: a reference frame inside the
result's frames without a result mask is scored as a frame where every nucleus is missed,
and a track-file node without pixels is not a detection (a warning names the frames). The
returned dict records which frames were evaluated, which result frames were missing and
which reference frames lie outside the result (not scored, with a warning).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from dynacell.errors import FormatError, InvalidInputError

__all__ = ["CTCData", "evaluate_point_tracks", "evaluate_tracks", "find_ctc_folder", "is_ctc_result",
           "read_ctc_data"]

logger = logging.getLogger(__name__)

#: Keys of :func:`evaluate_tracks` results, in print order.
RESULT_KEYS = (
    "TRA", "DET", "LNK",
    "division_precision", "division_recall", "division_f1",
    "fp_edges", "fn_edges", "ws_edges", "fp_nodes", "fn_nodes", "ns_nodes",
    "gt_divisions", "pred_divisions", "tp_divisions", "fp_divisions", "fn_divisions",
)


def _track_files(folder: Path) -> list[Path]:
    """The ``*_track.txt`` files of a folder, sorted, without hidden ones (macOS '._res_track.txt' companions)."""
    return sorted(f for f in folder.glob("*_track.txt") if not f.name.startswith("."))


def find_ctc_folder(path: str | Path) -> Path:
    """The CTC folder (masks + ``*_track.txt``) inside ``path``.

    Parameters
    ----------
    path : str or Path
        One of: a CTC result folder (``maskTTT.tif`` + ``res_track.txt``), a TRA folder
        (``man_trackTTT.tif`` + ``man_track.txt``), a ground-truth folder ``NN_GT`` holding
        ``TRA/``, or a ``dynacell run`` output folder holding ``ctc/``; or the track file
        itself.

    Returns
    -------
    Path
        The folder holding the masks and the track file.

    Raises
    ------
    InvalidInputError
        If no track file is found, or several.
    """
    p = Path(path)
    if p.is_file() and p.name.endswith("_track.txt"):
        return p.parent
    if not p.is_dir():
        raise InvalidInputError(f"{p}: not found; expected a CTC folder with masks and res_track.txt/man_track.txt")
    for sub in (p, p / "ctc", p / "TRA"):
        if sub.is_dir() and len(_track_files(sub)) == 1:
            return sub
    found = [str(f) for f in _track_files(p)]
    raise InvalidInputError(
        f"{p}: expected one res_track.txt or man_track.txt here or in {p / 'ctc'} or {p / 'TRA'}, "
        f"found {found or 'none'}; pass the CTC result (RES) or TRA folder"
    )


def is_ctc_result(path: str | Path) -> bool:
    """Whether ``path`` is (or holds) a CTC folder with masks and one track file (:func:`find_ctc_folder`).

    Parameters
    ----------
    path : str or Path
        Anything ``dynacell evaluate-tracks`` is given.

    Returns
    -------
    bool
        False for a TrackMate file, a GEFF store or any other point tracks.
    """
    try:
        find_ctc_folder(path)
    except InvalidInputError:
        return False
    return True


def _bbox_overlap(boxes: np.ndarray, query_boxes: np.ndarray) -> np.ndarray:
    """IoU ``(N, K)`` float64 of bounding boxes ``(N, 2d)`` and ``(K, 2d)`` (``lo..., hi...``, pixels).

    The values of traccuracy's ``compute_overlap`` / ``compute_overlap_3D`` (the Fast R-CNN
    convention: a box spans ``hi - lo + 1`` pixels per axis), vectorised with numpy.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    query_boxes = np.asarray(query_boxes, dtype=np.float64)
    d = boxes.shape[1] // 2
    lo_a, hi_a = boxes[:, None, :d], boxes[:, None, d:]
    lo_b, hi_b = query_boxes[None, :, :d], query_boxes[None, :, d:]
    side = np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b) + 1
    inter = np.where((side > 0).all(axis=-1), np.prod(np.clip(side, 0, None), axis=-1), 0.0)
    union = np.prod(hi_a - lo_a + 1, axis=-1) + np.prod(hi_b - lo_b + 1, axis=-1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _traccuracy():
    """Import traccuracy without compiling its numba kernels (returns the module).

    traccuracy compiles two bounding-box overlap kernels with numba when it is imported (about
    4 CPU-s, 8–14 s on a shared machine: most of the time of ``dynacell run --gt``). They are
    imported here with numba's JIT off and replaced by :func:`_bbox_overlap`, the same values
    computed with numpy in a few milliseconds per frame.
    """
    import sys

    if "traccuracy" not in sys.modules:
        try:
            from numba.core import config as numba_config
        except ImportError:  # traccuracy then uses its own numpy fallback
            numba_config = None
        old = getattr(numba_config, "DISABLE_JIT", None)
        if numba_config is not None:
            numba_config.DISABLE_JIT = True
        try:
            import traccuracy  # noqa: F401
            from traccuracy.matchers import _compute_overlap
        finally:
            if numba_config is not None:
                numba_config.DISABLE_JIT = old
        _compute_overlap.compute_overlap = _bbox_overlap
        _compute_overlap.compute_overlap_3D = _bbox_overlap
    return sys.modules["traccuracy"]


class _FrameStack:
    """Array-like ``(K, (Z), Y, X)`` view of chosen frames of a label movie, read on access.

    traccuracy's matchers only index ``segmentation[i]``; this keeps memory at one frame.
    """

    def __init__(self, movie: Any, frames: Sequence[int]) -> None:
        self.movie = movie
        self.frames = list(frames)
        self.offset = 0
        self.dtype = movie.dtype
        self.shape = (len(self.frames), *movie.frame_shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, (int, np.integer)):
            raise TypeError("only integer frame indexing is supported")
        t = self.frames[int(i) + self.offset]
        if not self.movie.has_frame(t):  # a result frame without a mask: no detections (every nucleus missed)
            return np.zeros(self.movie.frame_shape, dtype=self.dtype)
        return self.movie.frame(t)


class CTCData:
    """A CTC tracking result or reference read for evaluation (frames read lazily).

    Parameters
    ----------
    folder : Path
        The CTC folder (masks + track file).
    tracks : pandas.DataFrame
        The track table, columns ``label, begin, end, parent``.
    masks : Movie
        The label masks ``(T, (Z), Y, X)``; ``masks.frame_indices`` are the frame numbers
        present (sparse for gappy ground truth).
    """

    def __init__(self, folder: Path, tracks: pd.DataFrame, masks: Any) -> None:
        self.folder = folder
        self.tracks = tracks
        self.masks = masks
        self.track_file_name = Path(str(tracks.attrs.get("source", "track file"))).name

    @property
    def frames(self) -> list[int]:
        """Frame numbers that have a mask file."""
        return [int(t) for t in self.masks.frame_indices]

    def dense_graph(self) -> nx.DiGraph:
        """The lineage of the track table: nodes ``(t, L)`` for ``t`` in ``[B, E]``, edges forward."""
        g = nx.DiGraph()
        for row in self.tracks.itertuples(index=False):
            nodes = [(t, int(row.label)) for t in range(int(row.begin), int(row.end) + 1)]
            g.add_nodes_from(nodes)
            g.add_edges_from(zip(nodes[:-1], nodes[1:], strict=True))
        ends = {int(r.label): int(r.end) for r in self.tracks.itertuples(index=False)}
        for row in self.tracks.itertuples(index=False):
            if int(row.parent):
                g.add_edge((ends[int(row.parent)], int(row.parent)), (int(row.begin), int(row.label)))
        return g


def read_ctc_data(path: str | Path, masks: Any = None) -> CTCData:
    """Read a CTC result / reference folder: the track table, and the masks (into memory once when they fit 1 GiB).

    Parameters
    ----------
    path : str or Path
        See :func:`find_ctc_folder`.
    masks : dynacell.io.Movie, optional
        The folder's masks already opened (e.g. read into memory by the caller); default: opened here.

    Returns
    -------
    CTCData

    Raises
    ------
    InvalidInputError, FormatError
        If the folder, track file or masks cannot be read (from :mod:`dynacell.io`).
    """
    from dynacell.io import open_labels, read_ctc_tracks
    from dynacell.io.movie import load_in_memory

    folder = find_ctc_folder(path)
    track_file = _track_files(folder)[0]
    tracks = read_ctc_tracks(track_file)
    if masks is None:
        masks = load_in_memory(open_labels(folder))  # read once: detections and matching visit every frame
    return CTCData(folder, tracks, masks)


def _frame_props(frame: np.ndarray, source: str) -> pd.DataFrame:
    """``label``, ``centroid-i`` and ``bbox-i`` of every label of one frame, in O(number of labels) memory.

    The columns of :func:`skimage.measure.regionprops_table` (``properties=("label", "centroid",
    "bbox")``), measured by :func:`dynacell.io.objects.nucleus_centroids` (one
    :func:`scipy.ndimage.find_objects` pass; sparse in the ids, so a legal id of any size costs
    nothing extra): the same boxes, centroids equal to rounding (they are not used by the CTC
    measures, which match masks).
    """
    from dynacell.io.objects import nucleus_centroids

    frame = np.asarray(frame)
    if frame.dtype.kind not in "iub":
        raise InvalidInputError(f"{source}: masks must be integer label images, found dtype {frame.dtype}")
    ids, com, boxes = nucleus_centroids(frame, source=source, return_boxes=True)  # raises on negative ids
    ndim = frame.ndim
    props: dict[str, np.ndarray] = {"label": ids}
    for i in range(ndim):
        props[f"centroid-{i}"] = com[:, 3 - ndim + i]
    for i in range(2 * ndim):
        props[f"bbox-{i}"] = boxes[:, i]
    return pd.DataFrame(props)


def _detections(data: CTCData, frames: Sequence[int], progress: bool, what: str) -> pd.DataFrame:
    rows = []
    for t in tqdm(frames, desc=f"reading {what} masks", unit="frame", disable=not progress):
        if not data.masks.has_frame(t):
            continue  # no mask for this frame: no detections (scored as misses)
        tab = _frame_props(data.masks.frame(t), f"{data.folder} (frame {t})")
        tab["t"] = int(t)
        rows.append(tab)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _contracted_graph(data: CTCData, frames: Sequence[int], progress: bool, what: str):
    """traccuracy TrackingGraph of ``data`` on ``frames`` (renumbered 0..K-1), and the segmentation view."""
    TrackingGraph = _traccuracy().TrackingGraph

    ndim = len(data.masks.frame_shape)
    det = _detections(data, frames, progress, what)
    dense = data.dense_graph()
    index_of = {t: k for k, t in enumerate(frames)}
    g = nx.DiGraph()
    node_id: dict[tuple[int, int], int] = {}
    loc_cols = [f"centroid-{i}" for i in range(ndim)]
    loc_keys = ("z", "y", "x")[3 - ndim:]
    bbox_cols = [f"bbox-{i}" for i in range(2 * ndim)]
    for d in det.to_dict("records"):
        key = (int(d["t"]), int(d["label"]))
        if key not in dense:
            raise FormatError(
                f"{data.folder}: frame {key[0]} holds label {key[1]} in its mask but the track file has no track "
                f"{key[1]} spanning frame {key[0]}; the result is not valid CTC (fix the track file or the masks)"
            )
        nid = len(node_id) + 1
        node_id[key] = nid
        attrs = {"t": index_of[key[0]], "segmentation_id": key[1],
                 "bbox": [int(d[c]) for c in bbox_cols]}
        attrs.update({k: float(d[c]) for k, c in zip(loc_keys, loc_cols, strict=True)})
        g.add_node(nid, **attrs)
    missing = [n for n in dense if n[0] in index_of and n not in node_id]
    if missing:
        logger.warning("%s: %d track-file nodes have no mask in evaluated frames (e.g. frame %d label %d); "
                       "they are skipped over", data.folder, len(missing), *missing[0])
    _contract_edges(g, dense, node_id, frames[-1])
    seg = _FrameStack(data.masks, frames)
    tg = TrackingGraph(g, segmentation=seg, frame_key="t", label_key="segmentation_id",
                       location_keys=loc_keys, name=str(data.folder))
    return tg, seg


def _contract_edges(g: nx.DiGraph, dense: nx.DiGraph, node_id: dict, last_frame: int) -> None:
    """Add to ``g`` an edge from each kept node to its first descendants among the kept nodes (``node_id``)."""
    for key, nid in node_id.items():
        todo = deque(dense.successors(key))
        seen = set()
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            if n in node_id:
                g.add_edge(nid, node_id[n])
            elif n[0] <= last_frame:
                todo.extend(dense.successors(n))


def _point_graph(lineage: Any, frames: Sequence[int], ndim: int, scale: np.ndarray | None):
    """traccuracy TrackingGraph of a point lineage on ``frames`` (renumbered 0..K-1); positions in pixels."""
    TrackingGraph = _traccuracy().TrackingGraph

    from dynacell.lineage.checks import positions_px

    index_of = {t: k for k, t in enumerate(frames)}
    loc_keys = ("z", "y", "x")[3 - ndim:]
    g = nx.DiGraph()
    node_id: dict = {}
    nodes = [n for n in sorted(lineage.graph.nodes) if n[0] in index_of]
    for n, pos in zip(nodes, positions_px(lineage, nodes, ndim, scale, str(lineage.source)), strict=True):
        node_id[n] = len(node_id) + 1
        g.add_node(node_id[n], t=index_of[n[0]], **dict(zip(loc_keys, pos.tolist(), strict=True)))
    _contract_edges(g, lineage.graph, node_id, frames[-1])
    return TrackingGraph(g, frame_key="t", location_keys=loc_keys, name=str(lineage.source))


def _nearest_point_one_to_one(matched: Any) -> list[tuple[int, int]]:
    """Restrict a point-in-mask matching to one-to-one: a reference nucleus keeps the point nearest its centroid."""
    gt_nodes, pred_nodes = matched.gt_graph.graph.nodes, matched.pred_graph.graph.nodes
    keys = [k for k in ("z", "y", "x") if k in next(iter(gt_nodes.values()), {})]
    mapping = []
    for gt, preds in matched.gt_pred_map.items():
        c = np.array([gt_nodes[gt][k] for k in keys])
        best = min(preds, key=lambda p: (float(np.sum((np.array([pred_nodes[p][k] for k in keys]) - c) ** 2)), p))
        mapping.append((gt, best))
    return mapping


def evaluate_point_tracks(lineage: Any, gt_ctc_folder: str | Path, *, frame_buffer: int = 1, progress: bool = True,
                          voxel_size_um: Sequence[float] | None = None) -> dict[str, Any]:
    """Score point tracks (TrackMate, GEFF ...: a position per nucleus, no masks) against a CTC reference.

    A point matches the reference nucleus whose mask holds it (traccuracy's ``PointSegMatcher``);
    where several points fall in one nucleus, the one nearest its centroid is kept and the others are
    false positives. TRA, DET and LNK are then the CTC measures of that matching (not of masks:
    ``"matching"`` says so), division measures as in :func:`evaluate_tracks`. Frames: the reference
    frames inside the lineage's first to last frame, renumbered 0.. as there.

    Parameters
    ----------
    lineage : dynacell.lineage.Lineage
        The tracks; node positions ``z, y, x`` in pixels of the reference masks (or in µm with
        ``graph.graph["position_um_per_unit"]`` and ``voxel_size_um``).
    gt_ctc_folder : str or Path
        The reference: a CTC ``NN_GT`` folder (holding ``TRA/``) or the TRA folder.
    frame_buffer : int
        Division frame tolerance (frames), default 1.
    progress : bool
        Show progress bars.
    voxel_size_um : sequence of float, optional
        ``(Y, X)`` / ``(Z, Y, X)`` µm of the reference masks, for a lineage with positions in µm.

    Returns
    -------
    dict
        The keys of :func:`evaluate_tracks`, with ``matching`` naming the point matching.

    Raises
    ------
    InvalidInputError
        If no reference frame lies in the lineage's frames, a node has no position, or positions in
        µm come without ``voxel_size_um``.
    """
    _traccuracy()
    from traccuracy.matchers import PointSegMatcher
    from traccuracy.matchers._matched import Matched
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    from dynacell.lineage.checks import position_scale

    gt = read_ctc_data(gt_ctc_folder)
    ndim = len(gt.masks.frame_shape)
    scale = position_scale(lineage, voxel_size_um, str(lineage.source))
    times = [n[0] for n in lineage.graph.nodes]
    if not times:
        raise InvalidInputError(f"{lineage.source}: the lineage has no nodes")
    first, last = min(times), max(times)
    frames = [t for t in gt.frames if first <= t <= last]
    if not frames:
        raise InvalidInputError(f"no reference frame of {gt.folder} (frames {gt.frames[0]}..{gt.frames[-1]}) lies in "
                                f"the frames of {lineage.source} ({first}..{last})")
    skipped = [t for t in gt.frames if not first <= t <= last]
    gt_graph, gt_seg = _contracted_graph(gt, frames, progress, "reference")
    pred_graph = _point_graph(lineage, frames, ndim, scale)
    gt_seg.offset = gt_graph.start_frame or 0
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        inside = PointSegMatcher().compute_mapping(gt_graph, pred_graph)
        matched = Matched(inside.gt_graph, inside.pred_graph, _nearest_point_one_to_one(inside),
                          {"name": "PointSegMatcher, one point per reference nucleus (the nearest its centroid)"})
        ctc = CTCMetrics().compute(matched).results
        div = DivisionMetrics(max_frame_buffer=frame_buffer).compute(matched).results[f"Frame Buffer {frame_buffer}"]
    return _results(ctc, div, frame_buffer=frame_buffer, frames=frames, skipped=skipped, pred=str(lineage.source),
                    gt=str(gt.folder), missing=sorted(set(frames) - set(times)),
                    matching="points: a point in a reference mask matches it (one per nucleus; CTC measures of "
                             "points, not masks)")


def _results(ctc: dict, div: dict, *, frame_buffer: int, matching: str, frames: list, missing: list, skipped: list,
             pred: str, gt: str) -> dict[str, Any]:
    """The result dict of :func:`evaluate_tracks` / :func:`evaluate_point_tracks` from traccuracy's results."""
    out = {
        "TRA": ctc["TRA"], "DET": ctc["DET"], "LNK": ctc["LNK"],
        "division_precision": div["Division Precision"], "division_recall": div["Division Recall"],
        "division_f1": div["Division F1"],
        "fp_edges": ctc["fp_edges"], "fn_edges": ctc["fn_edges"], "ws_edges": ctc["ws_edges"],
        "fp_nodes": ctc["fp_nodes"], "fn_nodes": ctc["fn_nodes"], "ns_nodes": ctc["ns_nodes"],
        "gt_divisions": div["Total GT Divisions"], "pred_divisions": div["Total Predicted Divisions"],
        "tp_divisions": div["True Positive Divisions"], "fp_divisions": div["False Positive Divisions"],
        "fn_divisions": div["False Negative Divisions"],
        "AOGM": ctc["AOGM"],
        "frame_buffer": int(frame_buffer),
        "matching": matching,
        "frames_evaluated": frames,
        "pred_frames_missing": missing,
        "gt_frames_not_evaluated": skipped,
        "pred": pred, "gt": gt,
    }
    return {k: _clean(v) for k, v in out.items()}


def _result_span(data: CTCData) -> tuple[int, int]:
    """First and last frame a result claims: its mask files and the extent of its track file's tracks."""
    frames = data.frames
    lo = [frames[0]] if frames else []
    hi = [frames[-1]] if frames else []
    if len(data.tracks):
        lo.append(int(data.tracks["begin"].min()))
        hi.append(int(data.tracks["end"].max()))
    return min(lo), max(hi)


def _one_to_one(matched: Any) -> list[tuple[int, int]]:
    """Restrict a many-to-one CTC matching to one-to-one: each result node keeps the reference node it overlaps most."""
    mapping = []
    for pred, gts in matched.pred_gt_map.items():
        if len(gts) == 1:
            mapping.append((gts[0], pred))
            continue
        pattrs = matched.pred_graph.graph.nodes[pred]
        k = pattrs["t"]
        gt_frame = matched.gt_graph.segmentation[k - matched.gt_graph.start_frame]
        pred_frame = matched.pred_graph.segmentation[k - matched.gt_graph.start_frame]
        inside = pred_frame == pattrs["segmentation_id"]
        best = max(gts, key=lambda g: (np.count_nonzero(gt_frame[inside] == matched.gt_graph.graph.nodes[g]
                                                        ["segmentation_id"]), -g))
        mapping.append((best, pred))
    return mapping


def _clean(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(float(v)) else float(v)
    return v


def evaluate_tracks(pred_ctc_folder: str | Path, gt_ctc_folder: str | Path, *, frame_buffer: int = 1,
                    progress: bool = True, gt_masks: Any = None) -> dict[str, Any]:
    """Score a CTC tracking result against a CTC reference with traccuracy.

    Parameters
    ----------
    pred_ctc_folder : str or Path
        The result: a CTC RES folder (``maskTTT.tif`` + ``res_track.txt``) or a
        ``dynacell run`` output folder holding ``ctc/``.
    gt_ctc_folder : str or Path
        The reference: a CTC ``NN_GT`` folder (holding ``TRA/``) or the TRA folder.
    frame_buffer : int
        Division frame tolerance (frames; traccuracy ``max_frame_buffer``), default 1.
    progress : bool
        Show progress bars while reading masks.
    gt_masks : dynacell.io.Movie, optional
        The reference's masks already opened (:func:`dynacell.metrics.states.evaluate_against_gt`
        passes the ones it read), so they are not read twice.

    Returns
    -------
    dict
        ``TRA, DET, LNK`` (float in [0, 1]), ``division_precision, division_recall,
        division_f1`` (float, None when undefined), edge and node error counts
        ``fp_edges, fn_edges, ws_edges, fp_nodes, fn_nodes, ns_nodes`` (int), division
        counts ``gt_divisions, pred_divisions, tp_divisions, fp_divisions, fn_divisions``,
        ``AOGM``, and the context: ``frames_evaluated`` (frame numbers),
        ``pred_frames_missing`` (evaluated frames without a result mask, scored as misses),
        ``gt_frames_not_evaluated`` (reference frames outside the result's frames),
        ``matching`` (CTC matching type), ``frame_buffer``, ``pred``, ``gt`` (folders).

    Raises
    ------
    InvalidInputError
        If a folder is not a CTC folder, the mask shapes differ, or no reference frame
        has a result mask.
    FormatError
        If masks and track file disagree.

    Notes
    -----
    Division measures need a one-to-one matching; where the CTC matching is many-to-one
    (one result mask over several reference markers), each result node keeps the reference
    node it overlaps most for the division measures only; TRA/DET use the CTC matching.
    """
    _traccuracy()
    from traccuracy.matchers import CTCMatcher
    from traccuracy.matchers._matched import Matched
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    pred = read_ctc_data(pred_ctc_folder)
    gt = read_ctc_data(gt_ctc_folder, masks=gt_masks)
    if tuple(pred.masks.frame_shape) != tuple(gt.masks.frame_shape):
        raise InvalidInputError(
            f"result {pred.folder} has frames of shape {pred.masks.frame_shape} but the reference {gt.folder} has "
            f"{gt.masks.frame_shape}; evaluate a result against the reference of the same sequence"
        )
    pred_frames = set(pred.frames)
    if not any(t in pred_frames for t in gt.frames):
        raise InvalidInputError(
            f"no reference frame of {gt.folder} (frames {gt.frames[0]}..{gt.frames[-1]}) has a result mask in "
            f"{pred.folder} (frames {pred.frames[0] if pred.frames else '-'}..{pred.frames[-1] if pred.frames else '-'})"
        )
    first, last = _result_span(pred)
    frames = [t for t in gt.frames if first <= t <= last]
    missing = [t for t in frames if t not in pred_frames]
    if missing:
        logger.warning(
            "%s: %d reference frame(s) inside the result's frames %d..%d have no result mask (first: %s); they are "
            "scored as frames where every nucleus is missed", pred.folder, len(missing), first, last, missing[:10])
    skipped = [t for t in gt.frames if not first <= t <= last]
    if skipped:
        logger.warning(
            "%s: the result covers frames %d..%d only (masks and %s); %d reference frame(s) outside it are not "
            "scored (first: %s)", pred.folder, first, last, pred.track_file_name, len(skipped), skipped[:10])
    gt_graph, gt_seg = _contracted_graph(gt, frames, progress, "reference")
    pred_graph, pred_seg = _contracted_graph(pred, frames, progress, "result")
    gt_seg.offset = pred_seg.offset = gt_graph.start_frame or 0

    # traccuracy draws its own tqdm bars on stderr; without progress they go to a buffer.
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
    with quiet:
        matched = CTCMatcher().compute_mapping(gt_graph, pred_graph)
        ctc = CTCMetrics().compute(matched).results
        matching = matched.matching_type
        if matching != "one-to-one":
            matched = Matched(matched.gt_graph, matched.pred_graph, _one_to_one(matched),
                              {"name": "CTCMatcher restricted to one-to-one by largest overlap"})
        div_all = DivisionMetrics(max_frame_buffer=frame_buffer).compute(matched).results
    return _results(ctc, div_all[f"Frame Buffer {frame_buffer}"], frame_buffer=frame_buffer, matching=matching,
                    frames=frames, missing=missing, skipped=skipped, pred=str(pred.folder), gt=str(gt.folder))
