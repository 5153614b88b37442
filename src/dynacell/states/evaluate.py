"""Evaluate a state classifier on a sample set or on a movie with its lineage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["evaluate_samples", "evaluate_movie"]

logger = logging.getLogger(__name__)


def evaluate_samples(model: Any, x: np.ndarray, states: np.ndarray) -> dict[str, Any]:
    """Classification metrics of ``model`` on labelled crops.

    Parameters
    ----------
    model : StateClassifier
        From :func:`dynacell.states.load_model`.
    x : numpy.ndarray, float32, shape (N, 4 or 6, *crop_size)
        Crops ``[t−1, t, t+1, mask]``.
    states : numpy.ndarray of str, shape (N,)
        True states; samples whose state is not among ``model.classes`` (e.g. ``death`` for a
        3-class model, or ``unknown``) are left out and counted in ``n_excluded``.

    Returns
    -------
    dict
        :func:`dynacell.metrics.classification_report` keys (``macro_f1``,
        ``balanced_accuracy``, ``per_class``, ``confusion``, ``ece``, ``n``, ...) plus
        ``false_events_per_1000_stable`` (true-stable nuclei called an event, per 1,000),
        ``n_excluded`` and ``model``.

    Raises
    ------
    InvalidInputError
        If no sample has a state the model knows.
    """
    from dynacell.metrics.classification import classification_report

    states = np.asarray(states).astype(str)
    keep = np.isin(states, list(model.classes))
    if not keep.any():
        raise InvalidInputError(
            f"none of the {len(states)} samples has a state among the model's classes {list(model.classes)} "
            f"(found {sorted(set(states.tolist()))})")
    proba = model.predict_proba(x[keep])
    rep = classification_report(states[keep], proba=proba, classes=list(model.classes))
    pred = np.asarray(model.classes)[proba.argmax(1)]
    stable = states[keep] == "stable"
    rep["false_events_per_1000_stable"] = (float(1000.0 * np.mean(pred[stable] != "stable"))
                                           if stable.any() else None)
    rep["n_excluded"] = int((~keep).sum())
    rep["model"] = model.name
    return rep


def evaluate_movie(model: Any, movie: str | Path, labels: str | Path, lineage: str | Path | None,
                   rules: str = "seed", dataset: str | None = None, progress: bool = False,
                   context_labels: str | Path | None = None) -> dict[str, Any]:
    """Crop every lineage node of a movie with the model's crop size and evaluate.

    The crops follow the model card: ``target_voxel_um`` (physical box) or ``scale_normalization``
    (nucleus-size rule measured on ``labels``, :mod:`dynacell.samples.scale`).

    Parameters
    ----------
    model : StateClassifier
        The classifier.
    movie, labels : str or Path
        Image and label movies (any format :func:`dynacell.io.open_movie` reads).
    lineage : str or Path or None
        Lineage file (CTC ``man_track.txt``, GEFF, ...), read with
        :func:`dynacell.lineage.read_lineage`; None: every nucleus is taken as ``stable``
        (a movie known to have no events: the report is the false-event rate).
    rules : str
        Event-rule preset for :func:`dynacell.lineage.label_events` (``seed`` or
        ``annotated_deaths``).
    dataset : str, optional
        Name stored in the samples.
    progress : bool
        Progress bar over frames.
    context_labels : str or Path, optional
        Segmentation read for the segmentation-context channels of a 6-channel model (default
        ``labels``), e.g. a full automatic segmentation of every frame when ``labels`` holds
        tracking markers on some frames only (CTC HeLa ``02_GT/TRA`` with ``02_ERR_SEG``).

    Returns
    -------
    dict
        As :func:`evaluate_samples`.
    """
    from dynacell.io import open_labels, open_movie
    from dynacell.samples import build_sample_set

    images = open_movie(movie)
    labs = open_labels(labels)
    lin = None
    if lineage is not None:
        from dynacell.lineage import read_lineage
        from dynacell.lineage.checks import as_mask_ids

        lin = as_mask_ids(read_lineage(lineage), labs, str(lineage))
    from dynacell.states.classify import crop_parameters

    crop = crop_parameters(model, images.ndim_spatial)
    scaled = crop.get("target_diameter_px") is not None
    ss = build_sample_set(images, labs, lin, rules, size=tuple(model.crop_size), dataset=dataset or Path(movie).name,
                          target_voxel_um=None if scaled else crop["target_voxel_um"], assume_state="stable",
                          progress=progress, target_diameter_px=crop.get("target_diameter_px"),
                          scale_frames=crop.get("scale_frames", 3),
                          context=getattr(model, "context", False),
                          context_labels=None if context_labels is None else open_labels(context_labels))
    return evaluate_samples(model, ss.x, ss.meta["state"].to_numpy())
