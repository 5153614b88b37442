"""Classify every nucleus of a movie: streaming frames, batched inference, optional Dask.

For each frame ``t`` the crops ``[t−1, t, t+1, mask]`` of all its nuclei are cut by the one
crop function (:func:`dynacell.samples.crops.iter_frame_crops` / ``crops_for_frame``, the same
code that built the training samples), classified in batches, and reduced to one table row per
nucleus. With a lineage the ``t±1`` boxes of a 3D movie follow the nucleus's track (track
context, :func:`dynacell.lineage.centroids.track_displacements`). Only a window of three image
frames is held in memory, so memory does not grow with the number of frames ``T``. With a Dask ``scheduler`` every frame is an independent
:func:`dask.delayed` task (it reads its own three frames).

Source: the seed state classifier (dineshchhantyal/3d-cnn-classification) (prediction on whole volumes: frames t−1, t, t+1 and the label
image at t, every nucleus classified; background label 0 excluded).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dynacell import STATES
from dynacell.errors import InvalidInputError

__all__ = [
    "STATE_COLUMNS",
    "check_model_for_movie",
    "classify_movie",
    "crop_kwargs_for_movie",
    "crop_parameters",
    "model_ndim",
    "predict_batched",
]

logger = logging.getLogger(__name__)

#: Columns of the table returned by :func:`classify_movie` (``states.csv``), in order.
STATE_COLUMNS: tuple[str, ...] = ("t", "label", "track_id", "state", *(f"p_{s}" for s in STATES), "z", "y", "x",
                                  "edge_px", "size_px")


def model_ndim(model: Any) -> int | None:
    """Spatial dimensionality (2 or 3) a classifier was trained for (``model.ndim``), or None if it does not say.

    Parameters
    ----------
    model : object
        A state classifier (or anything with an ``ndim`` attribute).

    Returns
    -------
    int or None
        2, 3, or None.
    """
    nd = getattr(model, "ndim", None)
    return None if nd is None else int(nd)


def crop_parameters(model: Any, ndim: int) -> dict[str, Any]:
    """Crop size (pixels) and optional resampling rule a classifier expects.

    Parameters
    ----------
    model : StateClassifier
        A loaded classifier (its validated :class:`~dynacell.states.card.StateModelCard`), or any
        object with ``crop_size`` (and optionally ``target_voxel_um``).
    ndim : {2, 3}
        Spatial dimensionality of the data.

    Returns
    -------
    dict
        ``size`` (tuple of int, pixels), ``target_voxel_um`` (float, tuple or None) and, only when
        the card has ``scale_normalization`` (nucleus-size rule of :mod:`dynacell.samples.scale`),
        ``target_diameter_px``, ``scale_frames`` and ``scale_units``.

    Raises
    ------
    InvalidInputError
        If the model does not state its crop size (never guessed).
    """
    from dynacell.states.card import StateModelCard

    size = getattr(model, "crop_size", None)
    if size is None:
        raise InvalidInputError(
            f"model {getattr(model, 'name', type(model).__name__)!r} does not state its crop size (crop_size / "
            "card crop_size_px); load it with dynacell.states.load_model or give it a crop_size attribute")
    size = tuple(int(v) for v in (size if isinstance(size, (list, tuple)) else (size,) * ndim))
    if len(size) != ndim:
        size = size[-ndim:]
    out: dict[str, Any] = {"size": size, "target_voxel_um": getattr(model, "target_voxel_um", None)}
    card = getattr(model, "card", None)
    scale = card.scale_normalization if isinstance(card, StateModelCard) else None
    if scale is not None:
        out.update(target_diameter_px=float(scale.target_diameter_px), scale_frames=int(scale.n_frames),
                   scale_units=str(scale.units))
    return out


def crop_kwargs_for_movie(crop: Mapping[str, Any], images, labels, *, objects: dict | None = None) -> dict[str, Any]:
    """Resampling arguments of the crop functions for one movie, as the model was trained.

    Parameters
    ----------
    crop : dict
        From :func:`crop_parameters`.
    images, labels : dynacell.io.Movie
        The movie ``(T, (Z), Y, X)`` and the label images to be classified.
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of label frames already measured
        (:func:`dynacell.io.scan.scan_labels`): the nucleus-size rule takes their pixel counts
        instead of reading and measuring those frames again (same result).

    Returns
    -------
    dict
        ``voxel_size_um`` and ``target_voxel_um`` for :func:`dynacell.samples.crops.iter_frame_crops`,
        plus ``scale_normalization`` (the per-movie zoom of the nucleus-size rule, computed from
        ``labels`` exactly as :func:`dynacell.samples.build_sample_set` did for training; None
        when the model does not use it).
    """
    if crop.get("target_diameter_px"):
        from dynacell.samples.scale import (
            scale_crop_kwargs,
            scale_normalization,
            scale_voxel_size,
        )

        vs = scale_voxel_size(images.ndim_spatial, images.voxel_size_um)
        if crop.get("scale_units") == "um" and vs is None:
            logger.warning("images %s: no voxel size; the model measures nuclei in µm, so the nucleus-size rule falls "
                           "back to pixels (isotropic voxels assumed) — pass the voxel size (--voxel-size-um)",
                           images.source or "(array)")
        scale = scale_normalization(labels, crop["target_diameter_px"], n_frames=crop.get("scale_frames", 3),
                                    voxel_size_um=vs, objects=objects)
        logger.info("nucleus-size rule: %s", scale)
        return {**scale_crop_kwargs(scale, images.ndim_spatial), "scale_normalization": scale}
    target = crop.get("target_voxel_um") if images.voxel_size_um is not None else None
    return {"voxel_size_um": None, "target_voxel_um": target, "scale_normalization": None}


def predict_batched(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of crops, computed in batches.

    Parameters
    ----------
    model : StateClassifier
        Object with ``predict_proba(x) -> (n, C)``.
    x : numpy.ndarray
        float32 ``(N, 4, (Z), Y, X)`` crops.
    batch_size : int
        Crops per forward pass.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, C)``, rows sum to 1.
    """
    n_classes = len(getattr(model, "classes", STATES))
    if len(x) == 0:
        return np.zeros((0, n_classes))
    out = [np.asarray(model.predict_proba(x[i:i + batch_size]), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out, axis=0)


def _frame_table(t: int | np.ndarray, ids: np.ndarray, centroids: np.ndarray, proba: np.ndarray,
                 classes: Sequence[str], track_of: Mapping[tuple[int, int], int],
                 edge: np.ndarray | None = None, size: np.ndarray | None = None) -> pd.DataFrame:
    """Rows of :data:`STATE_COLUMNS` for nuclei ``ids`` at frame ``t`` (an int, or one frame per row)."""
    n = len(ids)
    ts = np.broadcast_to(np.asarray(t, dtype=np.int64), (n,)).copy()
    table = {"t": ts, "label": np.asarray(ids, dtype=np.int64)}
    table["track_id"] = np.array([int(track_of.get(key, 0)) for key in zip(ts.tolist(), table["label"].tolist())],
                                 dtype=np.int64)
    table["state"] = np.asarray(classes, dtype=object)[proba.argmax(axis=1)] if n else np.array([], dtype=object)
    for s in STATES:
        table[f"p_{s}"] = proba[:, list(classes).index(s)] if s in classes else np.zeros(n)
    cen = np.asarray(centroids, dtype=np.float64).reshape(n, 3) if n else np.zeros((0, 3))
    table["z"], table["y"], table["x"] = cen[:, 0], cen[:, 1], cen[:, 2]
    table["edge_px"] = np.full(n, np.nan) if edge is None else np.asarray(edge, dtype=np.float64)
    table["size_px"] = np.full(n, np.nan) if size is None else np.asarray(size, dtype=np.float64)
    return pd.DataFrame(table, columns=list(STATE_COLUMNS))


def _classify_frame(images, labels, t, model, crop, batch_size, track_of, offsets=None):
    from dynacell.samples.crops import iter_frame_crops

    fc = next(iter_frame_crops(images, labels, [t], size=crop["size"], voxel_size_um=crop["voxel_size_um"],
                               target_voxel_um=crop["target_voxel_um"], context=getattr(model, "context", False),
                               neighbour_offsets_px=offsets))
    return _frame_table(t, fc.label_ids, fc.centroids, predict_batched(model, fc.x, batch_size), list(model.classes),
                        track_of, fc.edge_px, fc.size_px)


def _check_inputs(images, labels, model) -> None:
    if images.shape != labels.shape:
        raise InvalidInputError(
            f"labels {labels.source}: shape {labels.shape} does not match images {images.source} shape "
            f"{images.shape}; give one label image per frame with the frame's shape"
        )
    for note in check_model_for_movie(images, model):
        logger.warning(note)


def check_model_for_movie(images, model) -> list[str]:
    """Check that a classifier can run on a movie (before any expensive step).

    Parameters
    ----------
    images : dynacell.io.Movie
        The movie, ``(T, (Z), Y, X)``.
    model : StateClassifier
        The classifier (``classes``, ``ndim`` / card, crop parameters).

    Returns
    -------
    list of str
        Warnings to show the user: when the model resamples crops to a physical voxel size
        (card ``target_voxel_um``) but the movie's voxel size is unknown, crops are cut in
        pixels instead (like distances in :func:`dynacell.track.link_labels`), and this says so.

    Raises
    ------
    InvalidInputError
        If the model's classes are not dynacell states or its dimensionality differs from the
        movie's (e.g. a 2D model on 3D data).
    """
    classes = list(getattr(model, "classes", []))
    unknown = [c for c in classes if c not in STATES]
    if not classes or unknown:
        raise InvalidInputError(
            f"model {getattr(model, 'name', model)!r}: classes {classes} are not states of {list(STATES)}"
        )
    nd = model_ndim(model)
    if nd is not None and nd != images.ndim_spatial:
        from dynacell.states.registry import default_model

        raise InvalidInputError(
            f"model {getattr(model, 'name', '')!r} is a {nd}D model but the movie {images.source} is "
            f"{images.ndim_spatial}D ({images.axes}); pick a {images.ndim_spatial}D model "
            f"(e.g. {default_model(images.ndim_spatial)})"
        )
    notes = []
    target = crop_parameters(model, images.ndim_spatial)["target_voxel_um"]
    if target is not None and images.voxel_size_um is None:
        notes.append(
            f"model {getattr(model, 'name', '')!r} was trained on crops resampled to {target} µm voxels, but the "
            f"voxel size of {images.source} is unknown (no metadata): crops are cut in pixels instead (as if "
            f"1 px = {target} µm on every axis), which departs from training; give --voxel-size-um Z Y X"
        )
    return notes


def classify_movie(
    images,
    labels,
    model,
    *,
    lineage=None,
    batch_size: int = 256,
    frames: Sequence[int] | None = None,
    progress: bool = True,
    scheduler: Any = None,
    track_context: bool | None = None,
    objects: dict | None = None,
) -> pd.DataFrame:
    """Classify the state of every nucleus at every frame of a movie.

    Parameters
    ----------
    images : dynacell.io.Movie
        Intensities, shape ``(T, (Z), Y, X)``, read lazily.
    labels : dynacell.io.Movie
        Integer labels, same shape and frame numbers; 0 = background.
    model : StateClassifier
        From :func:`dynacell.states.load_model`: ``classes`` (subset of :data:`dynacell.STATES`),
        ``card`` (crop size, dimensionality) and ``predict_proba(x (N, 4, (Z), Y, X) float32)
        -> (N, C)``.
    lineage : dynacell.lineage.Lineage, optional
        Gives each nucleus its ``track_id`` (0 when absent or the node is not in the lineage) and,
        with ``track_context``, where its track is at ``t±1``.
    batch_size : int
        Crops per forward pass; crops of consecutive frames are batched together.
    frames : sequence of int, optional
        Frame numbers to classify (default: every frame with a label image).
    progress : bool
        Show a progress bar.
    scheduler : str or distributed.Client, optional
        Run per-frame :func:`dask.delayed` tasks on a Dask distributed cluster: an address
        (``"tcp://host:8786"``, a :class:`distributed.Client` is opened and closed) or a client.
        Default: frames are streamed in this process.
    track_context : bool, optional
        With a ``lineage``: cut the ``t−1`` / ``t+1`` context crops around the linked position of
        the same track (:func:`dynacell.lineage.centroids.track_displacements`: one-to-one links
        exactly, divisions by the family's motion, unlinked nuclei by the local drift), so that a
        moving specimen does not shift the nucleus out of its context. False: every box at the
        nucleus's position at ``t`` (the seed's rule, on which the shipped models were trained).
        Default None = on for 3D movies, off for 2D: on the real mouse 8-cell embryo (88 stable
        nuclei, linked in pixels) the classifier's false events fall from 534 to 0 per 1,000 with
        it (``benchmarks/false_events.py --linked``), while on HeLa 02 (2D, ERR_SEG masks, linked,
        little motion, scored against 02_GT) its mitotic / new-daughter recall fell from
        0.96 / 0.97 to 0.85 / 0.91: the shipped 2D model relies on the seed's box geometry.
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of ``labels``' frames already measured
        (:func:`dynacell.io.scan.scan_labels` with ``objects=``, as ``dynacell run`` does): the crops
        do not measure those frames again. Not used with a ``scheduler``.

    Returns
    -------
    pandas.DataFrame
        One row per nucleus and frame, columns :data:`STATE_COLUMNS`: ``t`` (frame number),
        ``label`` (id in the label image of ``t``), ``track_id``, ``state`` (argmax class),
        ``p_stable, p_mitotic, p_new_daughter, p_death`` (probabilities; 0 for a class the
        model does not predict), ``z, y, x`` (centroid, pixels), ``edge_px`` (pixels between the
        nucleus's bounding box and the nearest Y/X image edge) and ``size_px`` (its largest Y/X
        extent, pixels). Sorted by ``(t, label)``.

    Raises
    ------
    InvalidInputError
        If shapes differ, the model's dimensionality does not match the movie, its classes are
        not dynacell states, or ``batch_size < 1``.

    Notes
    -----
    On Linux with glibc the first call lets the C allocator reuse freed memory for the rest of the process
    (:func:`dynacell.states.speed.reuse_freed_memory`; ``DYNACELL_MALLOC_TUNE=0`` leaves it alone).

    A model whose card has ``scale_normalization`` (nucleus-size rule) resamples the movie by
    ``median nucleus diameter of labels / target_diameter_px`` (:mod:`dynacell.samples.scale`),
    measured on ``labels`` once per call. A model trained on crops resampled to ``target_voxel_um``
    needs the movie's voxel size; when it is unknown the crops are cut in pixels and a warning is
    logged (:func:`check_model_for_movie`).
    """
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size!r}")
    _check_inputs(images, labels, model)
    from dynacell.states.speed import reuse_freed_memory

    reuse_freed_memory()  # per-frame arrays reuse freed memory instead of faulting in fresh pages
    crop = crop_parameters(model, images.ndim_spatial)
    kw = crop_kwargs_for_movie(crop, images, labels, objects=objects)  # pixel crops when the voxel size is unknown (warned)
    crop["voxel_size_um"], crop["target_voxel_um"] = kw["voxel_size_um"], kw["target_voxel_um"]
    classes = list(model.classes)
    track_of: dict[tuple[int, int], int] = {}
    offsets = None
    if lineage is not None:
        lineage.assign_tracks()
        track_of = {n: int(d.get("track_id", 0)) for n, d in lineage.graph.nodes(data=True)}
        if track_context is None:
            track_context = images.ndim_spatial == 3
        if track_context:
            from dynacell.lineage.centroids import track_displacements

            offsets = track_displacements(lineage, voxel_size_um=images.voxel_size_um)
    todo = [int(t) for t in (frames if frames is not None else images.frame_indices) if labels.has_frame(int(t))]
    if scheduler is not None:
        tables = _classify_dask(images, labels, todo, model, crop, batch_size, track_of, scheduler, progress,
                                offsets)
    else:
        from dynacell.samples.crops import iter_frame_crops

        crops = iter_frame_crops(images, labels, todo, size=crop["size"], voxel_size_um=crop["voxel_size_um"],
                                 target_voxel_um=crop["target_voxel_um"], progress=progress,
                                 context=getattr(model, "context", False), neighbour_offsets_px=offsets,
                                 objects=objects)
        tables = []
        pending: list = []  # frames of the current group (crops already handed to the model)
        # The crops are fed to the model as they come, in the forward passes predict_batched would make on
        # the group's concatenation (blocks of batch_size, split into passes of max_forward_crops), so the
        # probabilities are the same while no group-sized array is built and each frame's crops are freed
        # once passed through the model (fresh memory is costly: 65 MB for CHO 02's 195 3-D crops).
        n_pass = _forward_pass_size(model, batch_size)
        probs: list = []
        buf: list = []
        state = {"n_buf": 0, "in_block": 0}

        def run_buf() -> None:
            if state["n_buf"]:
                x = buf[0] if len(buf) == 1 else np.concatenate(buf)
                probs.append(np.asarray(model.predict_proba(x), dtype=np.float64))
                state["in_block"] = (state["in_block"] + state["n_buf"]) % int(batch_size)
                buf.clear()
                state["n_buf"] = 0

        def feed(x: np.ndarray) -> None:
            i = 0
            while i < len(x):
                limit = min(n_pass, int(batch_size) - state["in_block"])  # a pass never crosses a block
                take = min(limit - state["n_buf"], len(x) - i)
                buf.append(x[i:i + take])
                state["n_buf"] += take
                i += take
                if state["n_buf"] == limit:
                    run_buf()

        def flush() -> None:
            if not pending:
                return
            run_buf()
            state["in_block"] = 0
            n_classes = len(getattr(model, "classes", STATES))
            proba = np.concatenate(probs, axis=0) if probs else np.zeros((0, n_classes))
            probs.clear()

            def cat(values, k):  # per-frame arrays of the batch, NaN where a frame has none
                return np.concatenate([np.full(k[i], np.nan) if v is None else np.asarray(v, dtype=np.float64)
                                       for i, v in enumerate(values)])

            k = [len(fc.label_ids) for fc in pending]
            # one table per batch of frames (a DataFrame per frame cost more than the rows)
            tables.append(_frame_table(np.repeat([fc.t for fc in pending], k),
                                       np.concatenate([np.asarray(fc.label_ids, dtype=np.int64) for fc in pending]),
                                       np.concatenate([np.asarray(fc.centroids, dtype=np.float64).reshape(-1, 3)
                                                       for fc in pending]),
                                       proba, classes, track_of, cat([fc.edge_px for fc in pending], k),
                                       cat([fc.size_px for fc in pending], k)))
            pending.clear()

        from dynacell.models.runtime import threads_beside_worker

        with threads_beside_worker(1):  # the crop thread keeps a core busy: the model runs on the others
            for fc in _prefetch(crops):  # crops of the next frames are cut while the model runs
                feed(fc.x)
                pending.append(fc._replace(x=None))
                if sum(len(p.label_ids) for p in pending) >= batch_size:
                    flush()
            flush()
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "state" else float) for c in STATE_COLUMNS})
    out = pd.concat(tables, ignore_index=True).sort_values(["t", "label"], kind="stable").reset_index(drop=True)
    logger.info("classified %d nuclei in %d frames", len(out), out["t"].nunique())
    return out


def _forward_pass_size(model: Any, batch_size: int) -> int:
    """Crops per forward pass that :func:`predict_batched` ends up making inside each block of ``batch_size``.

    A model with ``max_forward_crops`` (:class:`dynacell.states.StateClassifier`) splits what
    ``predict_proba(x)`` receives into passes of ``min(its default batch_size, max_forward_crops)``;
    any other model takes the whole block in one call.
    """
    mfc = getattr(model, "max_forward_crops", None)
    if mfc is None:
        return max(1, int(batch_size))
    import inspect

    try:
        inner = int(inspect.signature(model.predict_proba).parameters["batch_size"].default)
    except (KeyError, TypeError, ValueError):
        inner = int(batch_size)
    return max(1, min(int(batch_size), int(mfc), inner))


def _prefetch(iterator, depth: int = 2):
    """Iterate ``iterator`` in a background thread, ``depth`` items ahead (reading and cropping overlap inference).

    Exceptions raised by the iterator are re-raised in the caller, in order.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(msg) -> bool:
        while not stop.is_set():
            try:
                q.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in iterator:
                if not put(("item", item)):
                    return
            put(("end", done))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(("error", exc))

    thread = threading.Thread(target=work, name="dynacell-crops", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _classify_dask(images, labels, frames, model, crop, batch_size, track_of, scheduler, progress, offsets=None):
    import dask
    from distributed import Client, as_completed
    from tqdm.auto import tqdm

    own = isinstance(scheduler, str)
    client = Client(scheduler) if own else scheduler
    try:
        d_images, d_labels, d_model = (dask.delayed(o, pure=True) for o in (images, labels, model))
        tasks = []
        for t in frames:
            sub = {k: v for k, v in track_of.items() if k[0] == t}
            off = None if offsets is None else {k: v for k, v in offsets.items() if k[0] == t}
            tasks.append(dask.delayed(_classify_frame, pure=True)(d_images, d_labels, t, d_model, crop,
                                                                 batch_size, sub, off))
        futures = client.compute(tasks)
        tables = []
        for fut in tqdm(as_completed(futures), total=len(futures), desc="classify (dask)", disable=not progress):
            tables.append(fut.result())
        return tables
    finally:
        if own:
            client.close()
