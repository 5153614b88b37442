"""Build a :class:`SampleSet` from a movie, its labels and its lineage (the ``extract`` job)."""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.samples.crops import CHANNELS, CONTEXT_CHANNELS, NORMALIZATION, _fmt_frames, frame_source, iter_frame_crops, resolve_size
from dynacell.samples.sampleset import META_COLUMNS, SampleSet

__all__ = ["build_sample_set", "resolve_rules"]

logger = logging.getLogger(__name__)

_ALL_STATES = ("stable", "mitotic", "new_daughter", "death", "unknown")


def resolve_rules(rules):
    """An ``EventRules`` from an instance, a preset name (``"seed"``, ``"annotated_deaths"``) or None (seed).

    Parameters
    ----------
    rules : EventRules, str or None
        The rules, a preset name, or None.

    Returns
    -------
    EventRules
        The rules to apply.

    Raises
    ------
    InvalidInputError
        If the preset name is unknown.
    """
    from dynacell.lineage.events import EventRules

    if rules is None:
        return EventRules.seed()
    if isinstance(rules, str):
        return EventRules.preset(rules)
    return rules


def _rules_attrs(rules) -> dict | str:
    if dataclasses.is_dataclass(rules) and not isinstance(rules, type):
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(rules).items()}
    return repr(rules)


def build_sample_set(
    images,
    labels,
    lineage=None,
    rules=None,
    *,
    size: int | Sequence[int] = 32,
    dataset: str = "dataset",
    frames: Sequence[int] | None = None,
    states: Sequence[str] = ("stable", "mitotic", "new_daughter", "death"),
    max_per_class: int | None = None,
    seed: int = 0,
    voxel_size_um: Sequence[float] | None = None,
    target_voxel_um: float | Sequence[float] | None = None,
    assume_state: str = "unknown",
    progress: bool = False,
    target_diameter_px: float | None = None,
    scale_frames: int = 3,
    context: bool = False,
    context_labels=None,
) -> SampleSet:
    """Crop every labelled nucleus of a movie into a sample set, streaming over frames.

    Parameters
    ----------
    images : dynacell.io.Movie
        Intensities ``(T, [Z,] Y, X)``.
    labels : dynacell.io.Movie
        Integer labels of the same frame shape (frames may be a subset, e.g. CTC HeLa TRA).
        The label id of a nucleus at frame ``t`` must be its lineage node ``(t, label)``.
    lineage : dynacell.lineage.Lineage or None
        Nodes ``(t, label)``. With a lineage, states come from
        :func:`dynacell.lineage.label_events` and only nodes whose state is in ``states``
        are cropped (``unknown`` is skipped unless listed). Without one (``None``), every
        nucleus of every labelled frame is cropped with state ``assume_state`` and
        ``track_id = tree_id = -1`` (``states`` is then not used).
    rules : dynacell.lineage.EventRules or str, optional
        Event rules or preset name; default the seed's rules (``EventRules.seed()``).
    size : int or tuple of int
        Crop size per spatial axis, pixels (default 32).
    dataset : str
        Dataset name stored in every row (groups for ``grouped_split(by="sequence")``).
    frames : sequence of int, optional
        Only these frame numbers (default all).
    states : sequence of str
        States to keep (default the four classes of :data:`dynacell.STATES`).
    max_per_class : int, optional
        At most this many nodes per state, drawn at random (``numpy.random.default_rng(seed)``)
        before cropping; default all.
    seed : int
        Seed of that draw (recorded in ``attrs``).
    voxel_size_um, target_voxel_um
        Physical-box resampling, see :func:`dynacell.samples.crop_windows`.
    assume_state : str
        State of every nucleus when ``lineage`` is None (``"unknown"``: a set to predict on;
        ``"stable"`` where the user knows nothing happens, e.g. an 8-cell embryo between divisions).
    progress : bool
        Show a progress bar.
    target_diameter_px : float, optional
        Scale-normalised crops (nucleus-size rule, :mod:`dynacell.samples.scale`): resample the
        movie so that the median equivalent diameter of the objects of ``labels`` (first
        ``scale_frames`` labelled frames) becomes ``target_diameter_px`` crop pixels. The factor is
        recorded in ``attrs["scale_normalization"]``. Default None: crops in pixels (unchanged).
        Exclusive with ``target_voxel_um``.
    scale_frames : int
        Labelled frames measured for ``target_diameter_px`` (default 3).
    context : bool
        Append the segmentation-context channels ``[seg t−1, seg t+1]``
        (:func:`dynacell.samples.crops.context_mask`): 6-channel crops.
    context_labels : dynacell.io.Movie, optional
        Segmentation read for the context channels (default ``labels``), e.g. a full automatic
        segmentation of every frame when ``labels`` covers some frames only.

    Returns
    -------
    SampleSet
        Rows in ``(t, label)`` order; ``z, y, x`` are the centroids of the masks at ``t``
        (pixels). ``attrs`` records size, normalisation, rules, seed, sources, the numbers of
        lineage nodes skipped (``skipped``: no image, no label image, label id absent from the mask)
        and ``label_ids_not_in_lineage`` (ids of the cropped frames' label images that are no
        lineage node at that frame; not cropped).

    Raises
    ------
    InvalidInputError
        If ``states`` or ``assume_state`` name an unknown state, images and labels differ in shape,
        ``max_per_class < 1``, or the lineage's dimensionality disagrees with the images.

    Notes
    -----
    Lineage nodes whose label id is absent from the label image of their frame are skipped
    with a warning naming the label file, frame and ids (they are counted in ``attrs["skipped"]``);
    label ids of a cropped frame that are no lineage node are reported the same way. Only the
    frames that hold a selected node are read and compared; for a full comparison of every
    frame use :func:`dynacell.lineage.check_against_labels`. A negative label id raises
    :class:`~dynacell.errors.InvalidInputError` (naming file and frame).
    """
    states = tuple(states)
    for s in (*states, assume_state):
        if s not in _ALL_STATES:
            raise InvalidInputError(f"state {s!r} is unknown; choose from {list(_ALL_STATES)}")
    if max_per_class is not None and int(max_per_class) < 1:
        raise InvalidInputError(f"max_per_class must be >= 1 or None, got {max_per_class!r}")
    size_t = resolve_size(size, images.ndim_spatial)
    scale = None
    if target_diameter_px is not None:
        if target_voxel_um is not None:
            raise InvalidInputError(
                f"images {images.source}: give target_diameter_px (nucleus-size rule) or target_voxel_um "
                "(physical box), not both")
        from dynacell.samples.scale import scale_crop_kwargs, scale_normalization, scale_voxel_size

        vs_known = voxel_size_um if voxel_size_um is not None else images.voxel_size_um
        scale = scale_normalization(labels, target_diameter_px, n_frames=scale_frames,
                                    voxel_size_um=scale_voxel_size(images.ndim_spatial, vs_known))
        crop_kw = scale_crop_kwargs(scale, images.ndim_spatial)
    else:
        crop_kw = {"voxel_size_um": voxel_size_um, "target_voxel_um": target_voxel_um}
    frame_filter = None if frames is None else {int(f) for f in frames}
    rng = np.random.default_rng(seed)
    attrs: dict = {
        "dataset": dataset,
        "size": list(size_t),
        "ndim": images.ndim_spatial,
        "channels": list(CONTEXT_CHANNELS if context else CHANNELS),
        "normalization": NORMALIZATION,
        "border": "zero padding; missing t-1/t+1 (first/last frame) replaced by frame t",
        "voxel_size_um": None if images.voxel_size_um is None and voxel_size_um is None
        else list(voxel_size_um if voxel_size_um is not None else images.voxel_size_um),
        "target_voxel_um": target_voxel_um,
        "seed": int(seed),
        "max_per_class": max_per_class,
        "scale_normalization": scale,
        "sources": {"images": images.source, "labels": labels.source,
                    "lineage": None if lineage is None else lineage.source},
    }

    if lineage is None:
        xs, metas = [], []
        for fc in iter_frame_crops(images, labels, frames=sorted(frame_filter) if frame_filter else None,
                                   size=size_t, **crop_kw, progress=progress, context=context,
                                   context_labels=context_labels):
            xs.append(fc.x)
            metas.append(pd.DataFrame({"dataset": dataset, "t": fc.t, "label": fc.label_ids, "track_id": -1,
                                       "tree_id": -1, "state": assume_state, "z": fc.centroids[:, 0],
                                       "y": fc.centroids[:, 1], "x": fc.centroids[:, 2]}))
        x, meta = _stack(xs, metas, size_t, 6 if context else 4)
        if max_per_class is not None and len(meta) > max_per_class:
            keep = np.sort(rng.choice(len(meta), size=int(max_per_class), replace=False))
            x, meta = x[keep], meta.iloc[keep].reset_index(drop=True)
        attrs.update({"rules": None, "states": [assume_state], "assume_state": assume_state, "skipped": {}})
        return SampleSet(x, meta, attrs)

    from dynacell.lineage.events import label_events

    if lineage.ndim != images.ndim_spatial:
        raise InvalidInputError(
            f"lineage {lineage.source or ''} is {lineage.ndim}D but images {images.source or ''} are "
            f"{images.ndim_spatial}D; give the lineage of these images"
        )
    rules = resolve_rules(rules)
    event = label_events(lineage, rules)
    chosen: dict[str, list] = {s: [] for s in states}
    for node, s in event.items():
        if s in chosen and (frame_filter is None or node[0] in frame_filter):
            chosen[s].append((int(node[0]), int(node[1])))
    for s in chosen:
        chosen[s].sort()
        if max_per_class is not None and len(chosen[s]) > max_per_class:
            pick = np.sort(rng.choice(len(chosen[s]), size=int(max_per_class), replace=False))
            chosen[s] = [chosen[s][i] for i in pick]
    state_of = {n: s for s, nodes in chosen.items() for n in nodes}
    no_image = sorted(n for n in state_of if not images.has_frame(n[0]))
    no_labels = sorted(n for n in state_of if images.has_frame(n[0]) and not labels.has_frame(n[0]))
    for what, nodes in (("no image", no_image), ("no label image", no_labels)):
        if nodes:
            fr = sorted({t for t, _ in nodes})
            logger.warning("lineage %s: %d labelled node(s) at %d frame(s) with %s skipped (frames %s)",
                           lineage.source or "", len(nodes), len(fr), what, _fmt_frames(fr))
    wanted: dict[int, list[int]] = {}
    for t, lab in sorted(state_of):
        if images.has_frame(t) and labels.has_frame(t):
            wanted.setdefault(t, []).append(lab)

    track = _node_attr(lineage, "track_id")
    tree = lineage.tree_ids()
    lineage_ids: dict[int, set[int]] = {}
    for t, lab in lineage.graph.nodes:
        lineage_ids.setdefault(int(t), set()).add(int(lab))
    xs, metas = [], []
    n_absent = 0
    not_in_lineage: dict[int, list[int]] = {}
    for fc in iter_frame_crops(images, labels, frames=sorted(wanted), size=size_t, **crop_kw,
                               label_ids=wanted, progress=progress, context=context,
                               context_labels=context_labels):
        n_absent += len(wanted[fc.t]) - fc.label_ids.size
        known = lineage_ids.get(fc.t, set())
        extra = [int(i) for i in fc.frame_label_ids if int(i) not in known]
        if extra:
            not_in_lineage[fc.t] = extra
        nodes = [(fc.t, int(lab)) for lab in fc.label_ids]
        xs.append(fc.x)
        metas.append(pd.DataFrame({
            "dataset": dataset, "t": fc.t, "label": fc.label_ids,
            "track_id": [track.get(n, -1) for n in nodes], "tree_id": [tree.get(n, -1) for n in nodes],
            "state": [state_of[n] for n in nodes],
            "z": fc.centroids[:, 0], "y": fc.centroids[:, 1], "x": fc.centroids[:, 2]}))
    if n_absent:
        logger.warning("labels %s: %d lineage node(s) have no nucleus in their frame's label image; skipped — "
                       "check that the labels are those the lineage was made from", labels.source or "", n_absent)
    if not_in_lineage:
        t0 = min(not_in_lineage)
        logger.warning(
            "labels %s: %d label id(s) in %d frame(s) are not nodes of lineage %s and were not cropped (first: %s, "
            "ids %s) — use the label images the lineage was made from, or track these labels (dynacell tracks)",
            labels.source or "", sum(map(len, not_in_lineage.values())), len(not_in_lineage), lineage.source or "",
            frame_source(labels, t0), not_in_lineage[t0][:10],
        )
    x, meta = _stack(xs, metas, size_t, 6 if context else 4)
    attrs.update({
        "rules": _rules_attrs(rules),
        "states": list(states),
        "lineage_states": dict(Counter(event.values())),
        "skipped": {"no_image": len(no_image), "no_label_image": len(no_labels), "absent_from_mask": n_absent},
        "label_ids_not_in_lineage": sum(map(len, not_in_lineage.values())),
    })
    return SampleSet(x, meta, attrs)


def _node_attr(lineage, name: str) -> dict:
    """``{node: value}`` of a node attribute of a lineage, assigning track ids when missing (on a copy)."""
    g = lineage.graph
    if name == "track_id" and not all("track_id" in d for _, d in g.nodes(data=True)):
        lineage = lineage.copy()
        lineage.assign_tracks()
        g = lineage.graph
    return {n: int(d[name]) for n, d in g.nodes(data=True) if name in d}


def _stack(xs, metas, size_t, n_channels=4):
    if xs:
        x = np.concatenate(xs, axis=0)
        meta = pd.concat(metas, ignore_index=True)
    else:
        x = np.zeros((0, n_channels, *size_t), np.float32)
        meta = pd.DataFrame({c: [] for c in META_COLUMNS})
    return x, meta
