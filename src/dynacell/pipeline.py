"""The main job (``dynacell run``): from a movie of nuclei to tracks, a lineage, a state for
every nucleus at every frame, a report and a video.

Steps (DESIGN.md, "The main job"):

1. **open** the movie lazily (:func:`dynacell.io.open_movie`);
2. **labels** given (:func:`dynacell.io.open_labels`) or from the *classical* segmenter
   (:mod:`dynacell.segment.classical`; recorded as ``"segmenter": "classical"``);
3. **scan** the labels once: one label image per frame, same shape, no empty frame;
4. **lineage** given (CTC, BlastoSPIM JSON, GEFF; :func:`dynacell.lineage.read_lineage`),
   checked against the masks, or **linked** from the labels (:func:`dynacell.track.link_labels`);
5. **classify** every nucleus with the default model for the data's dimensionality
   (``nuclei-2d`` / ``nuclei-3d``) or the one asked for (:func:`dynacell.states.classify.classify_movie`);
6. **reconcile** states with the lineage (:func:`reconcile_states`, rule in :class:`ReconcileRules`);
7. **evaluate** against ground truth when ``gt`` is given (states and tracking);
8. **write** ``states.csv``, ``tracks.csv``, ``lineage.geff``, ``ctc/``, ``report.html``,
   ``overlay.mp4``, ``run.json`` into a temporary sibling folder renamed to ``out`` at the end.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell import STATES, __version__
from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage, Node

__all__ = ["RunResult", "ReconcileRules", "run", "run_demo", "reconcile_states", "lineage_events", "match_labels",
           "motion_gate", "scan_labels", "check_lineage", "OUTPUT_FILES"]

logger = logging.getLogger(__name__)

#: Files and folders a successful run leaves in ``out``.
OUTPUT_FILES: tuple[str, ...] = (
    "states.csv", "tracks.csv", "lineage.geff", "ctc", "report.html", "overlay.mp4", "run.json",
)


@dataclass(frozen=True)
class ReconcileRules:
    """How classifier states and the lineage are made to agree.

    The lineage defines where each event can happen (the seed's event definitions, SEEDS.md §1):
    ``mitotic`` at a node with ≥ 2 children (the mother's last frame), ``new_daughter`` at a
    daughter's first node, ``death`` at a node without children before the movie's last frame
    (a track end). The rule, for every nucleus:

    1. **Promotion.** At such a lineage event the state becomes that event when the
       classifier's probability for it is at least ``promote_floor`` (checked in the order
       mitotic, new_daughter, death).
    2. **Demotion.** An event call with no matching lineage event on its own track within
       ``window`` frames (after a mitotic or death call, before a new_daughter call; the node
       itself counts) is unsupported: the nucleus gets the most probable class among
       ``stable`` and the events the lineage supports there.
    3. ``stable`` calls are kept unless promoted.
    4. A **gap-closed link** (a node whose only child is more than one frame later) may hide a
       death followed by a new nucleus linked across the gap, so it *supports* a death call
       (no demotion) without *promoting* one: gaps are common where masks drop out.
    5. A **suspect link**: a nucleus whose only child is called ``new_daughter`` with probability
       ≥ ``suspect_daughter_p`` although the lineage has no division there, *and* whose source (or
       one of the ``window`` nodes before it) is called ``mitotic`` or ``death`` with probability
       ≥ ``suspect_daughter_p``. Either the linker missed a division (the source is a mother) or it
       joined a dying nucleus to a neighbour's newborn daughter; the lineage cannot tell which, so
       the classifier decides: the link supports a mitotic or a death call at its source (and the
       ``window`` nodes before it) and the new-daughter call at the child (and the ``window`` nodes
       after it), without promoting any. Evidence at both ends is required, so that isolated
       new-daughter calls on a plain track (e.g. a real embryo imaged with large motion between
       frames) are still demoted by rule 2.

    Parameters
    ----------
    promote_floor : float
        Smallest classifier probability (0..1) for which a lineage event promotes a state.
    window : int
        Frames of tolerance between an event call and the lineage event (≥ 0).
    suspect_daughter_p : float
        Probability of a ``new_daughter`` call (0..1) above which a non-division link into it is
        suspect (rule 5).
    enabled : bool
        False keeps the classifier's states unchanged (the changes table is then empty).

    Notes
    -----
    The lineage can be wrong (a track end may be a cell leaving the field or a lost mask, as in
    the seed's death labels); the floor keeps the classifier's say, and ``run.json`` /
    ``report.html`` count every change with its reason.
    """

    promote_floor: float = 0.1
    window: int = 1
    suspect_daughter_p: float = 0.5
    enabled: bool = True

    def describe(self) -> str:
        """One paragraph stating the rule with its parameters (for the report)."""
        if not self.enabled:
            return "Reconciliation disabled: states are the classifier's argmax."
        return (
            f"Lineage events (a division: the mother's last frame and each daughter's first frame; a track end "
            f"before the movie's last frame) promote the state to mitotic / new_daughter / death when the "
            f"classifier's probability for it is >= {self.promote_floor}. A mitotic, new_daughter or death call "
            f"with no such lineage event on its track within {self.window} frame(s) is demoted to its most "
            f"probable class among stable and the events the lineage supports there. A gap-closed link (next "
            f"node more than one frame later) supports a death call without promoting one. A non-division link "
            f"into a new-daughter call with probability >= {self.suspect_daughter_p} whose source (or the "
            f"{self.window} frame(s) before it) has a mitotic or death call with probability >= "
            f"{self.suspect_daughter_p} (a missed division or a dying nucleus linked to a newborn) supports "
            f"mitotic or death calls at its source and the new-daughter call at its child, without promoting "
            f"any. "
            f"Stable calls are kept."
        )


@dataclass
class RunResult:
    """What :func:`run` returns.

    Attributes
    ----------
    out : Path
        The output folder.
    states : pandas.DataFrame
        ``states.csv``: ``t, label, track_id, state, p_stable, p_mitotic, p_new_daughter, p_death,
        z, y, x, state_classifier`` (the argmax before reconciliation).
    lineage : Lineage
        The lineage used (given or linked).
    reconciliation : pandas.DataFrame
        Changes made by :func:`reconcile_states`: ``from, to, reason, n``.
    evaluation : dict or None
        Comparison with ground truth (``states_before``, ``states_after``: classification
        reports; ``tracking``: tracking measures; ``n_matched``...), when ``gt`` was given.
    timings_s : dict of str to float
        Wall time of each step in seconds.
    info : dict
        The contents of ``run.json``.
    """

    out: Path
    states: pd.DataFrame
    lineage: Lineage
    reconciliation: pd.DataFrame
    evaluation: dict | None
    timings_s: dict[str, float]
    info: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers
class _Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        logger.info("step %s ...", name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)
            self.peak_rss_mb[name] = round(_peak_rss_mb(), 1)
            logger.info("step %s done in %.2f s", name, self.timings[name])


@contextmanager
def _role(role: str):
    """Prefix input errors with the role of the input (``labels (--labels)``) so the message says which one."""
    try:
        yield
    except InvalidInputError as exc:
        raise type(exc)(f"{role}: {exc}") from exc


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "dynacell": __version__}
    for pkg in ("numpy", "torch", "dask", "distributed", "laptrack", "traccuracy", "geff", "scikit-image",
                "tifffile", "zarr", "imageio", "av", "pandas", "networkx"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _resolve_device(device: str) -> str:
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise InvalidInputError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


def _as_path_or_movie(x: Any) -> str:
    return x.source if isinstance(x, Movie) else str(x)


# --------------------------------------------------------------------------- scan
def scan_labels(images: Movie, labels: Movie, *, progress: bool = True,
                measure: list | None = None) -> dict[int, np.ndarray]:
    """Check a label movie against its image movie and list the label ids of every frame.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    labels : Movie
        Integer labels, expected with the same frame numbers and frame shape.
    progress : bool
        Show a progress bar.
    measure : list, optional
        When given, a DataFrame ``t, label, z, y, x, size_px`` (centroids in pixels) of every
        nucleus is appended to it (the same single pass over the labels).

    Returns
    -------
    dict of int to numpy.ndarray
        Frame number -> sorted label ids (int64, background 0 excluded).

    Raises
    ------
    InvalidInputError
        If the spatial shape differs, a frame of the movie has no label image (or the labels
        have frames the movie lacks), or a label frame holds no nucleus.
    """
    from tqdm.auto import tqdm

    if labels.frame_shape != images.frame_shape or labels.axes != images.axes:
        raise InvalidInputError(
            f"labels {labels.source}: frame shape {labels.frame_shape} ({labels.axes}) does not match the movie "
            f"{images.source} frame shape {images.frame_shape} ({images.axes}); give labels of the same movie"
        )
    missing = [t for t in images.frame_indices if not labels.has_frame(t)]
    extra = [t for t in labels.frame_indices if not images.has_frame(t)]
    if missing or extra:
        what = (f"no label image for frame(s) {missing[:10]}" if missing else "") + (
            ("; " if missing else "") + f"label frame(s) {extra[:10]} not in the movie" if extra else "")
        raise InvalidInputError(
            f"labels {labels.source}: {what} (movie {images.source} has {images.n_frames} frames "
            f"{images.frame_indices[0]}..{images.frame_indices[-1]}); give one label image per movie frame"
        )
    ids: dict[int, np.ndarray] = {}
    rows = []
    for t in tqdm(images.frame_indices, desc="check labels", disable=not progress):
        frame = labels.frame(t)
        u = np.unique(frame)
        u = u[u > 0].astype(np.int64)
        if u.size == 0:
            raise InvalidInputError(
                f"labels {labels.source}: frame {t} holds no nucleus (empty label image); every frame needs at "
                f"least one labelled nucleus — fix the segmentation or drop the frame from the movie"
            )
        ids[int(t)] = u
        if measure is not None:
            coords = np.nonzero(frame)
            inv = np.searchsorted(u, frame[coords])
            size = np.bincount(inv, minlength=len(u))
            cen = [np.bincount(inv, weights=c, minlength=len(u)) / size for c in coords]
            if len(cen) == 2:
                cen = [np.zeros(len(u)), *cen]
            rows.append(pd.DataFrame({"t": int(t), "label": u, "z": cen[0], "y": cen[1], "x": cen[2],
                                      "size_px": size.astype(np.int64)}))
    if measure is not None:
        measure.append(pd.concat(rows, ignore_index=True))
    return ids


def motion_gate(nuclei: pd.DataFrame, *, ndim: int, voxel_size_um: tuple[float, ...] | None = None,
                quantile: float = 0.9, factor: float = 2.5) -> dict[str, float]:
    """Linking distance gate adapted to the motion seen in the movie.

    The default gate of :func:`dynacell.track.link_labels` is 1.5 × the median nucleus diameter,
    right for densely sampled movies. When nuclei move more than that between frames (the real
    mouse-8cell embryo: steps of 12–60 px between time points for a diameter of ~15 px), tracks
    break. This gate is ``max(default, factor × q-quantile of the one-to-one displacements)``,
    the displacements being those of the globally optimal assignment (Hungarian algorithm,
    :func:`scipy.optimize.linear_sum_assignment`, no gate) between the centroids of consecutive
    frames *with the same number of nuclei* (no division, death or segmentation change to
    confuse the assignment). Without such frame pairs the default is used.

    Measured on ../shared/data (q = 0.9, pixels): mouse-8cell 31.6 (10 of 10 pairs usable;
    gate 79 > default 22), HeLa 02_ERR_SEG 8.1, bacteria-phc 01 14.2, CHO 02_ERR_SEG 6.9 (the
    default stays in force for the three CTC movies).

    Parameters
    ----------
    nuclei : pandas.DataFrame
        Columns ``t, z, y, x`` (pixels) and ``size_px``: one row per nucleus and frame.
    ndim : {2, 3}
        Spatial dimensionality.
    voxel_size_um : tuple of float, optional
        Voxel size ``((Z), Y, X)`` in µm; distances are in pixels when None.
    quantile : float
        Quantile (0..1) of the assignment distances used.
    factor : float
        Safety factor on that quantile.

    Returns
    -------
    dict
        ``default`` (1.5 × median diameter), ``motion`` (factor × quantile of the assignment
        distances, 0 without usable frame pairs), ``n_pairs`` (frame pairs used) and
        ``max_distance`` (the larger of default and motion), in µm (pixels when the voxel size
        is unknown).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    from dynacell.track import default_max_distance

    scale = np.ones(3)
    if voxel_size_um is not None:
        scale[-len(voxel_size_um):] = voxel_size_um
    default = default_max_distance(nuclei, ndim=ndim, scale=tuple(scale))
    frames = sorted(nuclei["t"].unique())
    pos = {t: g[["z", "y", "x"]].to_numpy() * scale for t, g in nuclei.groupby("t")}
    dists = []
    for a, b in zip(frames[:-1], frames[1:]):
        if len(pos[a]) != len(pos[b]):
            continue
        d = cdist(pos[a], pos[b])
        r, c = linear_sum_assignment(d)
        dists.append(d[r, c])
    motion = float(factor * np.quantile(np.concatenate(dists), quantile)) if dists else 0.0
    return {"default": float(default), "motion": motion, "n_pairs": len(dists),
            "max_distance": float(max(default, motion))}


def check_lineage(lineage: Lineage, ids: dict[int, np.ndarray], source: str, labels: Movie | None = None) -> Lineage:
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
    labels : Movie, optional
        The label images, to compute the centroids of nuclei the lineage lacks.

    Returns
    -------
    Lineage
        The lineage restricted to the movie's frames (a copy when nodes were dropped).

    Raises
    ------
    InvalidInputError
        If a node at a movie frame names a label absent from that frame's label image, or no
        node is left.
    """
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
        from scipy import ndimage as ndi

        logger.warning("lineage %s lacks %d nucleus/nuclei of the masks; they become single-node tracks",
                       source, n_lacking)
        lineage = lineage.copy() if not outside else lineage
        for t, missing in lacking.items():
            if not len(missing):
                continue
            frame = labels.frame(t) if labels is not None else None
            cents = ndi.center_of_mass(frame > 0, frame, missing.tolist()) if frame is not None else [None] * len(missing)
            for lab, c in zip(missing.tolist(), cents):
                lineage.add_node((t, int(lab)), centroid=c)
    return lineage


# --------------------------------------------------------------------------- reconcile
def lineage_events(lineage: Lineage, window: int) -> dict[str, tuple[set[Node], set[Node]]]:
    """Where the lineage allows each event state: anchor nodes and supported nodes.

    Parameters
    ----------
    lineage : Lineage
        The lineage (``n_frames`` = the movie's frames).
    window : int
        Frames of tolerance along a track (≥ 0).

    Returns
    -------
    dict
        ``state -> (anchors, support)`` for ``mitotic`` (anchors: nodes with ≥ 2 children;
        support: anchors and the ``window`` nodes before them on their track), ``new_daughter``
        (anchors: first node of each daughter; support: anchors and the ``window`` nodes after
        them) and ``death`` (anchors: nodes without children before the last frame; support:
        anchors and the ``window`` nodes before them; gap-closed links — a single child more than one
        frame later — are added to the support, not the anchors). Anchors follow the seed's event
        definitions (SEEDS.md §1, :func:`dynacell.lineage.label_events`).
    """
    g = lineage.graph
    last = lineage.n_frames - 1

    def back(node: Node, out: set[Node]) -> None:
        cur = node
        while True:
            preds = list(g.predecessors(cur))
            if len(preds) != 1 or g.out_degree(preds[0]) != 1 or node[0] - preds[0][0] > window:
                return
            cur = preds[0]
            out.add(cur)

    def forward(node: Node, out: set[Node]) -> None:
        cur = node
        while True:
            succ = list(g.successors(cur))
            if len(succ) != 1 or succ[0][0] - node[0] > window:
                return
            cur = succ[0]
            out.add(cur)

    mitotic = {n for n in g.nodes if g.out_degree(n) >= 2}
    daughters = {c for m in mitotic for c in g.successors(m)}
    ends = {n for n in g.nodes if g.out_degree(n) == 0 and n[0] < last}
    support = {"mitotic": set(mitotic), "new_daughter": set(daughters), "death": set(ends)}
    for m in mitotic:
        back(m, support["mitotic"])
    for d in daughters:
        forward(d, support["new_daughter"])
    for e in ends:
        back(e, support["death"])
    gaps = {n for n in g.nodes if g.out_degree(n) == 1 and next(iter(g.successors(n)))[0] - n[0] > 1}
    for n in gaps:
        support["death"].add(n)
        back(n, support["death"])
    return {"mitotic": (mitotic, support["mitotic"]), "new_daughter": (daughters, support["new_daughter"]),
            "death": (ends, support["death"])}


def _support_suspect_links(events: dict[str, tuple[set[Node], set[Node]]], lineage: Lineage,
                           nodes: list[Node], proba: np.ndarray, rules: ReconcileRules) -> None:
    """Rule 5 of :class:`ReconcileRules`: extend the event support around suspect links (in place)."""
    g = lineage.graph
    p_daughter = dict(zip(nodes, proba[:, STATES.index("new_daughter")]))
    p_end = dict(zip(nodes, np.maximum(proba[:, STATES.index("mitotic")], proba[:, STATES.index("death")])))
    for child, p in p_daughter.items():
        if p < rules.suspect_daughter_p or child not in g:
            continue
        preds = list(g.predecessors(child))
        if len(preds) != 1 or g.out_degree(preds[0]) != 1:
            continue  # a root, or a real division in the lineage
        source = [preds[0]]
        for _ in range(rules.window):
            up = list(g.predecessors(source[-1]))
            if len(up) != 1 or g.out_degree(up[0]) != 1:
                break
            source.append(up[0])
        if max(p_end.get(n, 0.0) for n in source) < rules.suspect_daughter_p:
            continue  # no mitotic / death evidence at the source: an isolated new-daughter call
        after = [child]
        for _ in range(rules.window):
            down = list(g.successors(after[-1]))
            if len(down) != 1:
                break
            after.append(down[0])
        events["mitotic"][1].update(source)
        events["death"][1].update(source)
        events["new_daughter"][1].update(after)


def reconcile_states(
    states: pd.DataFrame, lineage: Lineage, rules: ReconcileRules | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make classifier states and lineage events agree (rule: :class:`ReconcileRules`).

    Parameters
    ----------
    states : pandas.DataFrame
        From :func:`dynacell.states.classify.classify_movie`: ``t, label, state, p_<state>``.
    lineage : Lineage
        Nodes ``(t, label)`` of the same label images; ``n_frames`` = the movie's frames.
    rules : ReconcileRules, optional
        Parameters (defaults: ``ReconcileRules()``).

    Returns
    -------
    states : pandas.DataFrame
        A copy with ``state`` reconciled and ``state_classifier`` (the input state) added.
    changes : pandas.DataFrame
        One row per kind of change: ``from, to, reason, n`` (count of nuclei).
    """
    rules = rules or ReconcileRules()
    out = states.copy()
    out["state_classifier"] = out["state"].astype(object)
    if not rules.enabled or out.empty:
        return out, pd.DataFrame(columns=["from", "to", "reason", "n"])
    nodes = list(zip(out["t"].astype(int), out["label"].astype(int)))
    proba = out[[f"p_{s}" for s in STATES]].to_numpy(dtype=float)
    state = out["state"].to_numpy(dtype=object).copy()
    reason = np.full(len(out), "", dtype=object)
    events = lineage_events(lineage, rules.window)
    _support_suspect_links(events, lineage, nodes, proba, rules)
    reasons = {"mitotic": "division", "new_daughter": "division", "death": "track end before the last frame"}
    for i, n in enumerate(nodes):
        promoted = False
        for ev, (anchors, _) in events.items():
            if n in anchors and state[i] != ev and proba[i, STATES.index(ev)] >= rules.promote_floor:
                state[i], reason[i] = ev, f"{reasons[ev]} in lineage"
                promoted = True
                break
        if promoted:
            continue
        bad = [ev for ev, (_, ok) in events.items() if n not in ok]
        if state[i] in bad:
            p = proba[i].copy()
            for ev in bad:
                p[STATES.index(ev)] = -1.0
            reason[i] = f"{state[i]} without {reasons[state[i]]} within {rules.window} frame(s)"
            state[i] = STATES[int(np.argmax(p))]
    out["state"] = state
    changed = out["state"] != out["state_classifier"]
    changes = (
        pd.DataFrame({"from": out.loc[changed, "state_classifier"], "to": out.loc[changed, "state"],
                      "reason": reason[changed.to_numpy()]})
        .groupby(["from", "to", "reason"]).size().rename("n").reset_index()
    )
    logger.info("reconciliation changed %d of %d states", int(changed.sum()), len(out))
    return out, changes


# --------------------------------------------------------------------------- ground truth
def match_labels(pred: np.ndarray, gt: np.ndarray) -> dict[int, int]:
    """Match predicted nuclei to ground-truth nuclei of one frame (CTC rule).

    A predicted nucleus ``p`` matches the ground-truth nucleus ``g`` when it covers more than half
    of ``g``'s pixels (``|p ∩ g| > 0.5 |g|``, the detection rule of the CTC TRA/SEG measures,
    Maška et al. 2014); each ``g`` has at most one match.

    Parameters
    ----------
    pred, gt : numpy.ndarray
        Label images of the same frame, shape ``((Z), Y, X)``, integer, 0 = background.

    Returns
    -------
    dict of int to int
        ``pred label -> gt label``.

    Raises
    ------
    InvalidInputError
        If the shapes differ.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise InvalidInputError(f"match_labels: prediction shape {pred.shape} differs from ground truth {gt.shape}")
    fg = gt > 0
    g, p = gt[fg].astype(np.int64), pred[fg].astype(np.int64)
    if g.size == 0:
        return {}
    pairs, counts = np.unique(np.stack([g, p]), axis=1, return_counts=True)
    g_ids, g_sizes = np.unique(g, return_counts=True)
    size_of = dict(zip(g_ids.tolist(), g_sizes.tolist()))
    out: dict[int, int] = {}
    for (gi, pi), c in zip(pairs.T.tolist(), counts.tolist()):
        if pi > 0 and c > 0.5 * size_of[gi]:
            out[int(pi)] = int(gi)
    return out


def _gt_tra_folder(gt: Path) -> Path:
    for cand in (gt / "TRA", gt):
        if (cand / "man_track.txt").is_file():
            return cand
    raise InvalidInputError(
        f"ground truth {gt}: no TRA/man_track.txt found; give a CTC ground-truth folder (NN_GT with TRA/)"
    )


def evaluate_against_gt(
    gt: str | Path,
    states: pd.DataFrame,
    labels: Movie,
    ctc_dir: Path,
    *,
    progress: bool = True,
    rules: Any = None,
    tracking: bool = True,
) -> dict[str, Any]:
    """Compare predicted states and tracks with a CTC ground truth.

    Ground-truth states come from the ground-truth lineage with the seed rules
    (:func:`dynacell.lineage.label_events`, ``EventRules.seed()``) or the given ``rules``
    (the demo uses :data:`DEMO_RULES`); predicted nuclei are matched
    to ground-truth nuclei by :func:`match_labels` on every frame that has a ground-truth mask.
    Nodes whose ground-truth state is ``unknown`` are left out of the scores.

    Parameters
    ----------
    gt : str or Path
        CTC ground-truth folder (``NN_GT`` with ``TRA/man_track.txt`` and ``man_trackTTT.tif``).
    states : pandas.DataFrame
        Reconciled states with ``state_classifier`` (from :func:`reconcile_states`).
    labels : Movie
        The predicted label images the states refer to.
    ctc_dir : Path
        The CTC result folder written by the run (for the tracking measures).
    progress : bool
        Show a progress bar.
    rules : dynacell.lineage.EventRules, optional
        Rules for the ground-truth states; default ``EventRules.seed()``.
    tracking : bool
        Also compute the tracking measures (False when only the states are re-scored, e.g. the
        demo's scores with the seed's rules: the tracks do not depend on the rules).

    Returns
    -------
    dict
        ``rule`` (text, with the event rules), ``n_gt_nodes_matched``, ``n_scored``, ``states_before`` / ``states_after``
        (:func:`dynacell.metrics.classification.classification_report` dicts, without ``ece``),
        ``tracking`` (dict from :func:`dynacell.metrics.tracking.evaluate_tracks`; absent with
        ``tracking=False``).

    Raises
    ------
    InvalidInputError
        If ``gt`` is not a CTC ground-truth folder.
    """
    from tqdm.auto import tqdm

    from dynacell.io import open_labels
    from dynacell.lineage import EventRules, label_events, read_lineage
    from dynacell.metrics.classification import classification_report

    gt = Path(gt)
    tra = _gt_tra_folder(gt)
    gt_lineage = read_lineage(tra)
    rules = rules if rules is not None else EventRules.seed()
    rule_name = "EventRules.seed()" if rules == EventRules.seed() else repr(rules)
    gt_states = label_events(gt_lineage, rules)
    gt_labels = open_labels(tra)
    frames = [t for t in labels.frame_indices if gt_labels.has_frame(t)]
    if not frames:
        raise InvalidInputError(f"ground truth {gt}: no mask at any frame of the movie; give the matching GT folder")
    if gt_labels.frame_shape != labels.frame_shape:
        raise InvalidInputError(
            f"ground truth {gt}: frame shape {gt_labels.frame_shape} differs from the movie's {labels.frame_shape}"
        )
    truth: dict[Node, str] = {}
    for t in tqdm(frames, desc="match ground truth", disable=not progress):
        for p, g in match_labels(labels.frame(t), gt_labels.frame(t)).items():
            truth[(t, p)] = gt_states.get((t, g), "unknown")
    key = list(zip(states["t"].astype(int), states["label"].astype(int)))
    y_true = np.array([truth.get(k, "") for k in key], dtype=object)
    scored = np.isin(y_true, STATES)
    res: dict[str, Any] = {
        "gt": str(gt),
        "gt_frames_used": frames,
        "n_gt_nodes_matched": int(len(truth)),
        "n_scored": int(scored.sum()),
        "gt_state_counts": pd.Series(y_true[scored]).value_counts().to_dict(),
        "rule": "predicted nucleus matches GT nucleus when it covers > 50% of it; GT states from the GT lineage "
                f"with {rule_name}; GT 'unknown' nodes are not scored",
        "event_rules": asdict(rules),
    }
    if scored.any():
        for name, col in (("states_before", "state_classifier"), ("states_after", "state")):
            with warnings.catch_warnings():
                # balanced accuracy averages recall over the true classes; a predicted class absent from
                # the truth (e.g. no death in a short movie) is expected here, not a problem
                warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
                rep = classification_report(list(y_true[scored]), list(states.loc[scored, col]),
                                            classes=list(STATES))
            rep.pop("ece", None)
            res[name] = rep
    if tracking:
        from dynacell.metrics.tracking import evaluate_tracks

        res["tracking"] = _json_safe(evaluate_tracks(ctc_dir, gt, progress=progress))
    return res


def _replace_prefix(obj: Any, old: str, new: str) -> Any:
    """Replace the temporary output path by the final one in every string of a JSON-like object."""
    if isinstance(obj, dict):
        return {k: _replace_prefix(v, old, new) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_prefix(v, old, new) for v in obj]
    if isinstance(obj, str) and obj.startswith(old):
        return new + obj[len(old):]
    return obj


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


# --------------------------------------------------------------------------- model
def resolve_model(model: Any, ndim: int, device: str):
    """Load the state classifier for a run.

    Parameters
    ----------
    model : str, Path, StateClassifier or None
        A shipped model name (:func:`dynacell.states.available_models`), a model folder, an
        already loaded classifier, or None for the default ``nuclei-{ndim}d``.
    ndim : {2, 3}
        Spatial dimensionality of the movie.
    device : str
        Resolved torch device (``"cpu"`` / ``"cuda"``).

    Returns
    -------
    tuple
        ``(classifier, name)``.

    Raises
    ------
    InvalidInputError
        If the name is neither a shipped model nor an existing folder (the message lists the
        available models), or the model's dimensionality differs from the movie's.
    """
    from dynacell.states.classify import model_ndim

    if model is None or isinstance(model, (str, Path)):
        from dynacell import states as states_pkg

        name = str(model) if model is not None else f"nuclei-{ndim}d"
        available = list(states_pkg.available_models())
        if name not in available and not Path(name).is_dir():
            raise InvalidInputError(
                f"model {name!r} is neither a shipped model nor a model folder; available models: "
                f"{', '.join(available) or '(none installed)'}; or give the path of a model folder"
            )
        clf = states_pkg.load_model(name, device=device)
        name = str(getattr(clf, "name", name))
    else:
        clf, name = model, str(getattr(model, "name", type(model).__name__))
    nd = model_ndim(clf)
    if nd is not None and nd != ndim:
        raise InvalidInputError(
            f"model {name!r} is a {nd}D model but the movie is {ndim}D; use a {ndim}D model (e.g. nuclei-{ndim}d)"
        )
    return clf, name


# --------------------------------------------------------------------------- outputs
def _tracks_table(lineage: Lineage, states: pd.DataFrame) -> pd.DataFrame:
    tracks = lineage.tracks()
    g = lineage.graph
    last: dict[int, Node] = {}
    for n, d in g.nodes(data=True):
        tid = int(d["track_id"])
        if tid not in last or n > last[tid]:
            last[tid] = n
    fate = []
    for tid, end in zip(tracks["track_id"], tracks["end"]):
        n = last[int(tid)]
        if g.out_degree(n) >= 2:
            fate.append("divides")
        elif g.out_degree(n) == 1:
            fate.append("continues")
        elif end >= lineage.n_frames - 1:
            fate.append("reaches_end")
        else:
            fate.append("ends")
    tracks["fate"] = fate
    if len(states):
        counts = states.groupby(["track_id", "state"]).size().unstack(fill_value=0)
        for s in STATES:
            col = counts[s] if s in counts else pd.Series(dtype=int)
            tracks[f"n_{s}"] = tracks["track_id"].map(col).fillna(0).astype(int)
    return tracks


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False, float_format="%.5g")
    tmp.replace(path)


def _write_ctc(out: Path, labels: Movie, lineage: Lineage, progress: bool) -> None:
    from dynacell.io.ctc import write_ctc_result

    write_ctc_result(out, labels, lineage, progress=progress)


# --------------------------------------------------------------------------- run
def run(
    movie: str | Path | Movie,
    *,
    labels: str | Path | Movie | None = None,
    lineage: str | Path | Lineage | None = None,
    model: Any = None,
    out: str | Path,
    voxel_size_um: tuple[float, ...] | None = None,
    frame_interval_s: float | None = None,
    device: str = "auto",
    scheduler: Any = None,
    gt: str | Path | None = None,
    overwrite: bool = False,
    seed: int = 0,
    progress: bool = True,
    rules: ReconcileRules | None = None,
    video: bool = True,
    max_distance_um: float | None = None,
    gt_rules: Any = None,
) -> RunResult:
    """Run the main job on one movie: labels, lineage, states, report, video.

    Parameters
    ----------
    movie : str, Path or Movie
        Image movie ``(T, (Z), Y, X)``: CTC folder, TIFF series or stack, (OME-)zarr or npz
        (:func:`dynacell.io.open_movie`), or an opened :class:`~dynacell.io.movie.Movie`.
    labels : str, Path or Movie, optional
        Label movie (one integer label image per frame, ids need not be consistent over time).
        Default: the classical segmenter (:mod:`dynacell.segment.classical`).
    lineage : str, Path or Lineage, optional
        A lineage of these labels (CTC ``man_track.txt``/``res_track.txt`` folder, BlastoSPIM
        JSON, GEFF; :func:`dynacell.lineage.read_lineage`). Default: linked with
        :func:`dynacell.track.link_labels`.
    model : str, Path or StateClassifier, optional
        Classifier name, folder or object. Default ``nuclei-2d`` / ``nuclei-3d`` by the movie's
        dimensionality.
    out : str or Path
        Output folder (must not exist unless ``overwrite``).
    voxel_size_um : tuple of float, optional
        Voxel size ``((Z), Y, X)`` in µm, overriding the file metadata.
    frame_interval_s : float, optional
        Time between frames in s, overriding the metadata.
    device : {"auto", "cpu", "cuda"}
        Torch device for the classifier.
    scheduler : str or distributed.Client, optional
        Dask distributed scheduler address (or client) for the per-frame classification.
    gt : str or Path, optional
        CTC ground-truth folder (``NN_GT``): adds state and tracking scores to the report.
    overwrite : bool
        Replace an existing ``out`` (only after the new run has succeeded).
    seed : int
        Seed of torch's random generator (recorded in ``run.json``).
    progress : bool
        Show progress bars.
    rules : ReconcileRules, optional
        State/lineage reconciliation parameters.
    video : bool
        Write ``overlay.mp4``.
    max_distance_um : float, optional
        Linking gate (µm; pixels when the voxel size is unknown). Default: :func:`motion_gate`.
    gt_rules : dynacell.lineage.EventRules, optional
        Rules giving the ground-truth states of ``gt`` (default the seed's, ``EventRules.seed()``);
        the demo passes :data:`DEMO_RULES` so that its report and ``run.json`` score the same way.

    Returns
    -------
    RunResult
        Tables, lineage, timings and the ``run.json`` contents.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False (checked before any work).
    InvalidInputError
        Missing or mismatched labels, empty label frames, a lineage naming labels absent from the
        masks, an unknown model (the message lists the available ones), a 2D model on 3D data, a
        bad device. Nothing is left in ``out`` or beside it when a run fails.
    """
    import torch

    from dynacell.io import open_labels, open_movie
    from dynacell.io.writers import atomic_folder

    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputExistsError(f"output folder {out} exists; choose another -o or pass --overwrite to replace it")
    rules = rules or ReconcileRules()
    device = _resolve_device(device)
    torch.manual_seed(int(seed))
    timer = _Timer()
    notes: list[str] = []
    with atomic_folder(out, overwrite=overwrite) as tmp:
        work = tmp / "_work"
        work.mkdir()
        with timer.step("open"):
            with _role("movie"):
                images = movie if isinstance(movie, Movie) else open_movie(
                    movie, voxel_size_um=voxel_size_um, frame_interval_s=frame_interval_s)
            if isinstance(movie, Movie) and voxel_size_um is not None:
                images = Movie(images.data, images.axes, tuple(voxel_size_um), images.frame_interval_s,
                               images.frame_indices, images.source, images.metadata)
        with timer.step("model"):
            from dynacell.states.classify import check_model_for_movie

            clf, model_name = resolve_model(model, images.ndim_spatial, device)
            notes.extend(check_model_for_movie(images, clf))
        with timer.step("labels"):
            if labels is None:
                from dynacell.segment.classical import METHOD_NAME, segment_movie

                label_movie = segment_movie(images, work / "labels.zarr", progress=progress)
                segmenter = METHOD_NAME
                notes.append("Labels come from the CLASSICAL fallback segmenter (Gaussian smoothing, Otsu threshold, "
                             "distance-transform watershed), not from a trained model.")
            else:
                with _role("labels (--labels)"):
                    label_movie = labels if isinstance(labels, Movie) else open_labels(labels)
                segmenter = "given"
            if label_movie.voxel_size_um is None and images.voxel_size_um is not None:
                label_movie = Movie(label_movie.data, label_movie.axes, images.voxel_size_um,
                                    label_movie.frame_interval_s, label_movie.frame_indices, label_movie.source,
                                    label_movie.metadata)
        with timer.step("check_labels"):
            measured: list[pd.DataFrame] = []
            ids = scan_labels(images, label_movie, progress=progress, measure=measured)
        with timer.step("lineage"):
            if lineage is None:
                from dynacell.track import link_labels

                gate = motion_gate(measured[0], ndim=images.ndim_spatial, voxel_size_um=images.voxel_size_um)
                if max_distance_um is not None:
                    gate["max_distance"] = float(max_distance_um)
                lin, _ = link_labels(label_movie, voxel_size_um=images.voxel_size_um,
                                     max_distance_um=gate["max_distance"], progress=progress)
                lineage_source = (f"linked with dynacell.track.link_labels (laptrack), max distance "
                                  f"{gate['max_distance']:.3g} {'um' if images.voxel_size_um else 'px'}")
                linking = {"gate": gate, "max_distance_given": max_distance_um}
            else:
                linking = None
                if isinstance(lineage, Lineage):
                    lin, src = lineage.copy(), lineage.source or "(Lineage object)"
                else:
                    from dynacell.lineage.formats import read_lineage

                    with _role("lineage (--lineage)"):
                        lin, src = read_lineage(lineage), str(lineage)
                lin = check_lineage(lin, ids, src, label_movie)
                lineage_source = f"given: {src}"
            lin.n_frames = max(ids) + 1  # the movie's extent decides which track ends are before its end
            from dynacell.track import assign_ctc_tracks

            assign_ctc_tracks(lin)  # track ids = CTC track ids = mask values in ctc/
        with timer.step("classify"):
            from dynacell.states.classify import classify_movie

            raw = classify_movie(images, label_movie, clf, lineage=lin, progress=progress, scheduler=scheduler)
        with timer.step("reconcile"):
            states, changes = reconcile_states(raw, lin, rules)
        with timer.step("write_tables"):
            _write_csv(states, tmp / "states.csv")
            _write_csv(_tracks_table(lin, states), tmp / "tracks.csv")
            from dynacell.lineage.formats import write_geff

            write_geff(lin, tmp / "lineage.geff")
        with timer.step("write_ctc"):
            _write_ctc(tmp / "ctc", label_movie, lin, progress)
        evaluation = None
        if gt is not None:
            with timer.step("evaluate"):
                with _role("ground truth (--gt)"):
                    evaluation = evaluate_against_gt(gt, states, label_movie, tmp / "ctc", progress=progress,
                                                     **({} if gt_rules is None else {"rules": gt_rules}))
                evaluation = _replace_prefix(_json_safe(evaluation), str(tmp), str(out))
        if video:
            with timer.step("video"):
                from dynacell.viz.overlay import write_overlay_video

                write_overlay_video(tmp / "overlay.mp4", images, label_movie, states, progress=progress)
        parameters = {
            "movie": _as_path_or_movie(movie),
            "labels": _as_path_or_movie(labels) if labels is not None else "(classical segmenter)",
            "segmenter": segmenter,
            "lineage": lineage_source,
            "model": model_name,
            "model_source": str(model) if model is not None and not hasattr(model, "predict_proba") else model_name,
            "model_card": _json_safe(dict(getattr(clf, "card", {}) or {})) if isinstance(
                getattr(clf, "card", None), dict) else str(getattr(clf, "card", "")),
            "gt": str(gt) if gt is not None else None,
            "axes": images.axes,
            "shape": list(images.shape),
            "frames": [images.frame_indices[0], images.frame_indices[-1]],
            "voxel_size_um": list(images.voxel_size_um) if images.voxel_size_um else None,
            "frame_interval_s": images.frame_interval_s,
            "device": device,
            "scheduler": str(scheduler) if scheduler is not None else None,
            "seed": int(seed),
            "reconcile": asdict(rules),
            "linking": linking,
        }
        with timer.step("report"):
            from dynacell.viz.report import write_report

            ev_html = _evaluation_for_report(evaluation) if evaluation else None
            write_report(tmp / "report.html", states=states, lineage=lin, parameters=parameters,
                         timings_s=timer.timings, reconciliation={"rule": rules.describe(), "changes": changes},
                         evaluation=ev_html, notes=notes, title=f"dynacell run: {Path(parameters['movie']).name}")
        info = {
            "dynacell_version": __version__,
            "command": "run",
            "inputs": {k: parameters[k] for k in ("movie", "labels", "lineage", "gt")},
            "parameters": parameters,
            "versions": _versions(),
            "seed": int(seed),
            "counts": {
                "frames": images.n_frames,
                "nuclei": int(len(states)),
                "tracks": int(lin.tracks().shape[0]),
                "divisions": len(lin.divisions()),
                "states": states["state"].value_counts().to_dict(),
                "states_classifier": states["state_classifier"].value_counts().to_dict(),
            },
            "notes": notes,
            "reconciliation": {"rule": rules.describe(), "n_changed": int(changes["n"].sum()) if len(changes) else 0,
                               "changes": changes.to_dict(orient="records")},
            "evaluation": evaluation,
            "timings_s": timer.timings,
            "peak_rss_mb": round(_peak_rss_mb(), 1),
            "peak_rss_mb_after_step": timer.peak_rss_mb,
            "host": {"platform": platform.platform(), "cpus": os.cpu_count()},
        }
        (tmp / "run.json").write_text(json.dumps(_json_safe(info), indent=2, default=str), encoding="utf-8")
        shutil.rmtree(work)
    logger.info("run finished: %s", out)
    return RunResult(out=out, states=states, lineage=lin, reconciliation=changes, evaluation=evaluation,
                     timings_s=timer.timings, info=info)


def _evaluation_for_report(ev: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for name in ("states_before", "states_after"):
        rep = ev.get(name)
        if rep:
            row = {"states": "classifier" if name == "states_before" else "after reconciliation",
                   "n": rep["n"], "macro_F1": rep["macro_f1"], "balanced_accuracy": rep["balanced_accuracy"],
                   "accuracy": rep["accuracy"]}
            for s in STATES:
                row[f"F1 {s}"] = rep["per_class"][s]["f1"]
            rows.append(row)
    after = ev.get("states_after")
    tracking = ev.get("tracking") or {}
    flat = {k: v for k, v in tracking.items() if not isinstance(v, (dict, list))}
    return {
        "matched": (f"{ev['n_gt_nodes_matched']} predicted nuclei matched a ground-truth nucleus on "
                    f"{len(ev['gt_frames_used'])} frames; {ev['n_scored']} have a known ground-truth state "
                    f"({ev.get('gt_state_counts')}). Rule: {ev['rule']}."),
        "metrics": pd.DataFrame(rows),
        "confusion": np.asarray(after["confusion"]) if after else None,
        "classes": list(STATES),
        "tracking": flat,
    }


# --------------------------------------------------------------------------- demo
#: Event rules of the demo's ground-truth states (and of the simulated training embryos of
#: ``nuclei-3d``, benchmarks/build_state_sets_3d.py): the seed's rules with stability window
#: W = 2 and fraction 2.0 (stable = all 4 nodes within ±2 frames directly stable). The simulated
#: cell cycles (~6–12 frames) are shorter than the seed's W = 8 (12 stable nodes needed), with
#: which almost every simulated nucleus would be ``unknown`` and unscored.
DEMO_RULES = {"stable_window": 2, "stable_fraction": 2.0}


def _demo_evaluation(result: RunResult, gt: Path, progress: bool) -> None:
    """Add the scores with the seed's rules to a demo run scored with :data:`DEMO_RULES`; update ``run.json`` atomically.

    ``gt`` is the simulated labels folder, which the demo also gives as the run's masks. The run
    itself (``report.html``, ``run.json["evaluation"]``) is scored with :data:`DEMO_RULES`; the
    seed's rules (W = 8) are kept as ``evaluation_seed_rules``.
    """
    from dynacell.io import open_labels

    labels = open_labels(gt)  # the demo's input masks are the simulated ones: the nuclei of states.csv
    seed_ev = _json_safe(evaluate_against_gt(gt, result.states, labels, result.out / "ctc", progress=progress,
                                             tracking=False))
    ev = dict(result.evaluation or {})
    ev["evaluation_seed_rules"] = seed_ev
    result.evaluation = ev
    result.info["evaluation"] = ev
    path = result.out / "run.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_json_safe(result.info), indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    n_start: int = 8,
    n_frames: int = 30,
    min_divisions: int = 4,
    min_deaths: int = 1,
    model: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> RunResult:
    """Simulate a small 3D embryo and run the main job on it, scored against the exact ground truth.

    The embryo (:func:`dynacell.simulate.simulate_embryo`, by default ``min_divisions=4, min_deaths=1``) is
    saved as a CTC-style folder ``out/simulation`` (``images/``, ``labels/`` with
    ``man_track.txt``); :func:`run` then takes the simulated images and masks, links the
    lineage itself (the simulated lineage is NOT given), classifies with the default 3D model
    and is scored with ``gt=out/simulation/labels``. Results go to ``out/run``. The states are
    scored with :data:`DEMO_RULES` (W = 2; the seed's W = 8 leaves most simulated nuclei
    ``unknown``); ``evaluation["rule"]`` states it and ``evaluation["evaluation_seed_rules"]``
    keeps the scores with ``EventRules.seed()``.

    Parameters
    ----------
    out : str or Path
        Output folder (must not exist unless ``overwrite``).
    seed : int
        Seed of the simulation and of the run.
    n_start, n_frames : int
        Nuclei at frame 0 and number of frames.
    min_divisions, min_deaths : int
        Guaranteed events of the simulated embryo (see :func:`~dynacell.simulate.simulate_embryo`).
    model : str, Path or StateClassifier, optional
        Classifier; default ``nuclei-3d``.
    overwrite : bool
        Replace ``out``: the old folder is removed before the demo starts (a demo's output is
        disposable); without it an existing ``out`` is an error.
    progress : bool
        Show progress bars.

    Returns
    -------
    RunResult
        The run on the simulated movie; ``evaluation`` holds the comparison with the ground truth.

    Raises
    ------
    OutputExistsError
        If ``out`` exists and ``overwrite`` is False.
    InvalidInputError
        If a part of the pipeline is missing (e.g. no ``nuclei-3d`` model installed).
    """
    from dynacell.simulate import simulate_embryo

    out = Path(out)
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputExistsError(f"output folder {out} exists; choose another -o or pass --overwrite to replace it")
    if model is None or isinstance(model, (str, Path)):
        resolve_model(model, 3, "cpu")  # fail before simulating when the model is missing
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)  # --overwrite: the demo's output is disposable, replaced up front
    elif out.exists() or out.is_symlink():
        out.unlink()
    t0 = time.perf_counter()
    out.mkdir(parents=True)
    try:
        sim = simulate_embryo(ndim=3, n_start=n_start, n_frames=n_frames, min_divisions=min_divisions,
                              min_deaths=min_deaths, seed=seed, progress=progress)
        sim.save(out / "simulation")
        t_sim = time.perf_counter() - t0
        from dynacell.lineage import EventRules

        result = run(out / "simulation" / "images", labels=out / "simulation" / "labels", model=model,
                     out=out / "run", gt=out / "simulation" / "labels", seed=seed, progress=progress,
                     gt_rules=EventRules(**DEMO_RULES))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    t1 = time.perf_counter()
    _demo_evaluation(result, out / "simulation" / "labels", progress)
    result.timings_s = {"simulate": round(t_sim, 3), **result.timings_s,
                        "evaluate_seed_rules": round(time.perf_counter() - t1, 3)}
    return result
