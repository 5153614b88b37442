"""Per-nucleus dead evidence from a 3-class (background / live / dead) segmenter.

:func:`dead_evidence` runs a segmentation model whose card lists the classes ``background, live,
dead`` (the seed self-attention U-Net, :class:`dynacell.models.unet.SelfAttentionUNet`) on every
frame of a movie and reduces its dead-class map to one number per nucleus of a given label movie:

``p_dead_seg = Σ p_dead / Σ (p_live + p_dead)`` over the nucleus's pixels — the share of the
nucleus probability mass that the model calls dead (0..1; NaN where the model sees no nucleus
at all under the mask).

The state decision uses it as appearance evidence of ``death`` at a track end inside the field
(:func:`dynacell.states.joint.joint_states`); it never decides a death by itself. No real
live/dead annotation exists in the shared data: the dead class is learnt from rendered apoptosis
only (docs/segmentation.md, *Live / dead*).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = ["add_dead_evidence", "dead_evidence", "dead_evidence_record", "load_dead_model",
           "nucleus_diameter_from_labels_px"]

logger = logging.getLogger(__name__)


def load_dead_model(model: str | Path | Any, device: str = "cpu") -> Any:
    """Load a segmentation model with a ``dead`` class.

    Parameters
    ----------
    model : str, Path or Segmenter
        A shipped model name, a model folder or a loaded :class:`dynacell.segment.predict.Segmenter`.
    device : str
        Torch device.

    Returns
    -------
    Segmenter

    Raises
    ------
    InvalidInputError
        If the model is unknown or its card has no ``dead`` class.
    """
    from dynacell.segment.predict import Segmenter

    seg = Segmenter.load(model, device)
    if "dead" not in seg.card.classes:
        raise InvalidInputError(f"segmentation model {seg.name!r} has classes {seg.card.classes}: dead evidence needs "
                                "a model with a 'dead' class (background, live, dead)")
    return seg


def nucleus_diameter_from_labels_px(labels: np.ndarray) -> float:
    """Median equivalent diameter of the objects of one label image, pixels (lateral).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels ``(Y, X)`` or ``(Z, Y, X)``; 0 = background. In 3D the largest
        cross-section of each object (its pixels in its most populated plane) is used.

    Returns
    -------
    float
        ``2·sqrt(median area / π)`` in pixels; NaN for an empty image.
    """
    lab = np.asarray(labels)
    if lab.ndim == 3:
        areas = []
        for plane in lab:
            c = np.bincount(plane.ravel().astype(np.int64))
            areas.append(c)
        n = max(len(c) for c in areas)
        a = np.max([np.pad(c, (0, n - len(c))) for c in areas], axis=0)[1:]
    else:
        a = np.bincount(lab.ravel().astype(np.int64))[1:]
    a = a[a > 0]
    return float(2.0 * np.sqrt(np.median(a) / np.pi)) if len(a) else float("nan")


def dead_evidence(images: Movie, labels: Movie, model: str | Path | Any, *, device: str = "cpu",
                  progress: bool = False) -> pd.DataFrame:
    """The dead-class probability of every labelled nucleus of a movie.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    labels : Movie
        Integer labels, frames of the same shape (the nuclei to rate; from any segmenter or given);
        frames present in both movies are rated.
    model : str, Path or Segmenter
        A segmentation model with classes ``background, live, dead`` (:func:`load_dead_model`).
    device : str
        Torch device.
    progress : bool
        Progress bar over frames.

    Returns
    -------
    pandas.DataFrame
        ``t`` (movie frame number), ``label``, ``p_dead_seg`` (float64 in 0..1, NaN where the model's
        nucleus probability under the mask is 0): one row per nucleus and frame, sorted by ``(t, label)``.

    Raises
    ------
    InvalidInputError
        Image and label frames of different shapes, or a model without a ``dead`` class.

    Notes
    -----
    The frame is resampled so that nuclei are the model's trained size, with the nucleus diameter
    measured from the labels of that frame (:func:`nucleus_diameter_from_labels_px`), not
    estimated from the image. Cost: one forward pass of the segmenter per frame.
    """
    from scipy import ndimage as ndi

    from dynacell.segment.predict import segment_frame

    if tuple(images.frame_shape) != tuple(labels.frame_shape):
        raise InvalidInputError(f"dead evidence: image frames {tuple(images.frame_shape)} and label frames "
                                f"{tuple(labels.frame_shape)} differ")
    seg = load_dead_model(model, device)
    rows = []
    frames = [int(t) for t in labels.frame_indices if images.has_frame(int(t))]
    if progress:
        from tqdm.auto import tqdm

        frames = tqdm(frames, desc="dead evidence", unit="frame")
    for t in frames:
        lab = np.asarray(labels.frame(t)).astype(np.int64)
        ids = np.unique(lab[lab > 0])
        if not len(ids):
            continue
        d = nucleus_diameter_from_labels_px(lab)
        _, maps, _ = segment_frame(images.frame(t), seg, nucleus_diameter_px=d,
                                   voxel_size_um=images.voxel_size_um, return_maps=True)
        dead = np.asarray(ndi.sum_labels(maps["dead"], lab, ids), dtype=np.float64)
        fg = np.asarray(ndi.sum_labels(maps["foreground"], lab, ids), dtype=np.float64)
        p = np.divide(dead, fg, out=np.full(len(ids), np.nan), where=fg > 0)
        rows.append(pd.DataFrame({"t": t, "label": ids, "p_dead_seg": np.clip(p, 0.0, 1.0)}))
    if not rows:
        return pd.DataFrame({"t": pd.Series(dtype=np.int64), "label": pd.Series(dtype=np.int64),
                             "p_dead_seg": pd.Series(dtype=np.float64)})
    return pd.concat(rows, ignore_index=True).sort_values(["t", "label"], ignore_index=True)


def add_dead_evidence(states: pd.DataFrame, images: Movie, labels: Movie, model: str | Path | Any, *,
                      reconcile: Any = None, device: str = "cpu", progress: bool = False
                      ) -> tuple[pd.DataFrame, dict, list[str]]:
    """Add ``p_dead_seg`` (:func:`dead_evidence`) to the classifier's table of the main job.

    Parameters
    ----------
    states : pandas.DataFrame
        The classifier's table, one row per nucleus (``t, label``, ...); an existing ``p_dead_seg``
        column is replaced.
    images, labels : Movie
        Intensities and integer labels ``(T, (Z), Y, X)`` on the same grid.
    model : str, Path or Segmenter
        A background / live / dead segmentation model (:func:`load_dead_model`).
    reconcile : ReconcileRules, optional
        The run's reconciliation rules (:class:`dynacell.states.reconcile.ReconcileRules`): only the
        enabled joint decision uses the evidence; with other rules a note says that it is recorded,
        not used. None: no such note.
    device : str
        Torch device.
    progress : bool
        Progress bar over frames.

    Returns
    -------
    states : pandas.DataFrame
        ``states`` with ``p_dead_seg`` (float64 in 0..1, NaN where unrated) merged on ``t, label``.
    info : dict
        The ``run.json`` ``dead_evidence`` entry before the decision: ``model, folder,
        weights_sha256, training_data, rule, n_rated, n_p_dead_seg_ge_0.5`` (see
        :func:`dead_evidence_record` for the counts added after it).
    notes : list of str
        Report notes (the evidence is not used, when so; how many nuclei look dead).

    Raises
    ------
    InvalidInputError
        A model that cannot be loaded or has no ``dead`` class (message starting
        ``dead evidence (--dead-evidence):``), or frames of different shapes.
    """
    from dynacell.errors import input_role

    with input_role("dead evidence (--dead-evidence)"):
        seg = load_dead_model(model, device)
    ev = dead_evidence(images, labels, seg, device=device, progress=progress)
    states = states.drop(columns=["p_dead_seg"], errors="ignore").merge(ev, on=["t", "label"], how="left")
    notes = []
    if reconcile is not None and (reconcile.method != "joint" or not reconcile.enabled):
        notes.append("--dead-evidence is used by the joint decision only; with reconcile method "
                     f"{reconcile.method!r} (enabled={reconcile.enabled}) it is recorded, not used.")
    info = {"model": seg.name, "folder": str(seg.folder), "weights_sha256": seg.card.weights_sha256,
            "training_data": sorted(seg.card.training_data),
            "rule": "p_dead_seg = dead share of the segmenter's nucleus probability under each mask; a death is "
                    "decided only at a track end inside the field (or before a gap) when the joint decision "
                    "favours it (dynacell.states.joint.combine_dead_evidence)",
            "n_rated": int(states["p_dead_seg"].notna().sum()),
            "n_p_dead_seg_ge_0.5": int((states["p_dead_seg"].fillna(0) >= 0.5).sum())}
    notes.append(f"Dead evidence from the segmenter {seg.name} (trained on rendered apoptosis only: "
                 f"{', '.join(sorted(seg.card.training_data))}); {info['n_p_dead_seg_ge_0.5']} of {info['n_rated']} "
                 "nuclei have p_dead_seg >= 0.5.")
    return states, info, notes


def dead_evidence_record(info: dict | None, states: pd.DataFrame) -> dict | None:
    """The ``run.json`` ``dead_evidence`` entry after the state decision.

    Parameters
    ----------
    info : dict or None
        :func:`add_dead_evidence`'s ``info`` (None when no dead evidence was computed).
    states : pandas.DataFrame
        The final states (``state``, ``p_dead_seg``).

    Returns
    -------
    dict or None
        ``info`` plus ``death_calls`` (nuclei called ``death``) and ``death_calls_with_evidence``
        (of those, with ``p_dead_seg >= 0.5``); None when ``info`` is None.
    """
    if info is None:
        return None
    death = states["state"] == "death"
    return {**info, "death_calls": int(death.sum()),
            "death_calls_with_evidence": int((death & (states["p_dead_seg"].fillna(0) >= 0.5)).sum())}
