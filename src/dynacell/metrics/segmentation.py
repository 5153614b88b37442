"""Segmentation metrics: pixel scores, object matching, the CTC SEG measure, live/dead confusion.

- Pixel level (:func:`pixel_scores`): IoU, precision, recall, F1 of the foreground and ROC-AUC of a
  foreground probability (``sklearn.metrics.roc_auc_score``).
- Object level (:func:`object_scores`): reference and predicted objects are matched one-to-one
  by maximum total IoU (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``) among
  pairs with IoU ≥ τ; precision TP/(TP+FP), recall TP/(TP+FN), F1, and the "average precision"
  of the Data Science Bowl 2018 / StarDist, TP/(TP+FP+FN), at τ = 0.5 and averaged over
  τ = 0.5, 0.55, …, 0.95 (Caicedo et al., Nature Methods 16 (2019) 1247; Schmidt et al.,
  MICCAI 2018).
- :func:`ctc_seg` — the Cell Tracking Challenge SEG measure: for each reference object, the
  Jaccard index with the predicted object that covers more than half of it (0 when none);
  the mean over reference objects (Maška et al., Bioinformatics 30 (2014) 1609; Ulman et al.,
  Nature Methods 14 (2017) 1141). Unannotated nuclei of a sparse reference do not count.
- :func:`live_dead_confusion` — per reference nucleus, the dominant predicted class among its
  pixels (background / live / dead) against its reference class.

All label images are integer arrays ``((Z), Y, X)`` with 0 = background.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = [
    "IOU_THRESHOLDS",
    "ctc_seg",
    "live_dead_confusion",
    "object_scores",
    "overlap_matrix",
    "pixel_scores",
    "segmentation_report",
]

#: IoU thresholds of the averaged object scores (0.5:0.05:0.95).
IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))


def _check_pair(reference: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref, pred = np.asarray(reference), np.asarray(predicted)
    if ref.shape != pred.shape:
        raise InvalidInputError(f"segmentation metrics: reference shape {ref.shape} != predicted shape {pred.shape}")
    for name, a in (("reference", ref), ("predicted", pred)):
        if not np.issubdtype(a.dtype, np.integer) and a.dtype != bool:
            raise InvalidInputError(f"segmentation metrics: {name} labels must be integers, got {a.dtype}")
    return ref.astype(np.int64, copy=False), pred.astype(np.int64, copy=False)


def overlap_matrix(reference: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel overlaps and IoU between every reference and predicted object.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Integer label images of equal shape.

    Returns
    -------
    ref_ids, pred_ids : numpy.ndarray
        Object ids (background excluded), sorted.
    overlap : numpy.ndarray
        int64 ``(n_ref, n_pred)`` pixel counts of each intersection.
    iou : numpy.ndarray
        float64 ``(n_ref, n_pred)`` intersection over union.
    """
    ref, pred = _check_pair(reference, predicted)
    ref_ids, ref_inv = np.unique(ref, return_inverse=True)
    pred_ids, pred_inv = np.unique(pred, return_inverse=True)
    table = np.bincount(ref_inv.ravel() * len(pred_ids) + pred_inv.ravel(),
                        minlength=len(ref_ids) * len(pred_ids)).reshape(len(ref_ids), len(pred_ids))
    r0 = 1 if ref_ids[0] == 0 else 0
    p0 = 1 if pred_ids[0] == 0 else 0
    ref_sizes, pred_sizes = table.sum(1)[r0:], table.sum(0)[p0:]
    overlap = table[r0:, p0:]
    union = ref_sizes[:, None] + pred_sizes[None, :] - overlap
    iou = np.where(union > 0, overlap / np.maximum(union, 1), 0.0)
    return ref_ids[r0:], pred_ids[p0:], overlap, iou


def ctc_seg(reference: np.ndarray, predicted: np.ndarray) -> tuple[float, int]:
    """The CTC SEG measure of one frame (or volume).

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Integer label images of equal shape; every reference object is scored.

    Returns
    -------
    seg : float
        Mean Jaccard index over reference objects (NaN when the reference has no object).
    n_reference : int
        Number of reference objects scored (to pool frames: ``Σ seg·n / Σ n``).

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((4, 4), int); ref[:2, :2] = 1
    >>> pred = np.zeros((4, 4), int); pred[:2, :3] = 5
    >>> ctc_seg(ref, pred)
    (0.6666666666666666, 1)
    """
    ref_ids, _, overlap, iou = overlap_matrix(reference, predicted)
    if len(ref_ids) == 0:
        return float("nan"), 0
    if overlap.shape[1] == 0:
        return 0.0, len(ref_ids)
    ref_sizes = np.bincount(np.asarray(reference).astype(np.int64).ravel())[ref_ids]
    best = overlap.argmax(1)
    covered = overlap[np.arange(len(ref_ids)), best] * 2 > ref_sizes
    j = np.where(covered, iou[np.arange(len(ref_ids)), best], 0.0)
    return float(j.mean()), len(ref_ids)


def object_scores(reference: np.ndarray, predicted: np.ndarray,
                  thresholds: tuple[float, ...] = (0.5,)) -> dict[str, float]:
    """Object-level precision / recall / F1 / average precision at IoU thresholds.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Integer label images of equal shape (full reference: every nucleus annotated).
    thresholds : tuple of float
        IoU thresholds τ.

    Returns
    -------
    dict
        ``n_reference``, ``n_predicted`` and, per τ (formatted ``0.5``), ``tp@τ``,
        ``precision@τ``, ``recall@τ``, ``f1@τ``, ``ap@τ`` (= TP/(TP+FP+FN)); with several
        thresholds also ``ap@0.5:0.95`` (their mean) — the key uses the first and last τ.
    """
    from scipy.optimize import linear_sum_assignment

    ref_ids, pred_ids, _, iou = overlap_matrix(reference, predicted)
    n_ref, n_pred = len(ref_ids), len(pred_ids)
    out: dict[str, float] = {"n_reference": n_ref, "n_predicted": n_pred}
    aps = []
    for tau in thresholds:
        if n_ref and n_pred:
            w = np.where(iou >= tau, iou, 0.0)
            r, c = linear_sum_assignment(-w)
            tp = int((w[r, c] >= tau).sum()) if tau > 0 else int((w[r, c] > 0).sum())
        else:
            tp = 0
        fp, fn = n_pred - tp, n_ref - tp
        prec = tp / n_pred if n_pred else float("nan")
        rec = tp / n_ref if n_ref else float("nan")
        f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else float("nan")
        ap = tp / (tp + fp + fn) if (tp + fp + fn) else float("nan")
        key = f"{tau:g}"
        out.update({f"tp@{key}": tp, f"precision@{key}": prec, f"recall@{key}": rec, f"f1@{key}": f1,
                    f"ap@{key}": ap})
        aps.append(ap)
    if len(thresholds) > 1:
        out[f"ap@{thresholds[0]:g}:{thresholds[-1]:g}"] = float(np.nanmean(aps))
    return out


def pixel_scores(reference_foreground: np.ndarray, predicted_foreground: np.ndarray,
                 probability: np.ndarray | None = None, valid: np.ndarray | None = None) -> dict[str, float]:
    """Pixel-level foreground IoU, precision, recall, F1 (and ROC-AUC of a probability).

    Parameters
    ----------
    reference_foreground, predicted_foreground : numpy.ndarray
        Boolean (or label) images, same shape; nonzero = foreground.
    probability : numpy.ndarray, optional
        Predicted foreground probability, same shape: adds ``roc_auc``.
    valid : numpy.ndarray, optional
        Boolean mask of the pixels to score (a sparse reference's known region).

    Returns
    -------
    dict
        ``iou``, ``precision``, ``recall``, ``f1`` (NaN when undefined) and ``roc_auc``.
    """
    ref = np.asarray(reference_foreground) > 0
    pred = np.asarray(predicted_foreground) > 0
    if ref.shape != pred.shape:
        raise InvalidInputError(f"pixel scores: reference shape {ref.shape} != predicted shape {pred.shape}")
    v = np.ones(ref.shape, bool) if valid is None else np.asarray(valid, bool)
    r, p = ref[v], pred[v]
    tp = float(np.sum(r & p))
    fp = float(np.sum(~r & p))
    fn = float(np.sum(r & ~p))
    nan = float("nan")
    out = {"iou": tp / (tp + fp + fn) if tp + fp + fn else nan,
           "precision": tp / (tp + fp) if tp + fp else nan,
           "recall": tp / (tp + fn) if tp + fn else nan,
           "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else nan}
    if probability is not None:
        from sklearn.metrics import roc_auc_score

        pr = np.asarray(probability, dtype=np.float64)[v]
        out["roc_auc"] = float(roc_auc_score(r, pr)) if 0 < r.sum() < r.size else nan
    return out


def live_dead_confusion(reference_labels: np.ndarray, reference_dead: set[int] | dict[int, bool],
                        predicted_class: np.ndarray) -> pd.DataFrame:
    """Object-level live/dead confusion: dominant predicted class of each reference nucleus.

    Parameters
    ----------
    reference_labels : numpy.ndarray
        Integer reference labels ``((Z), Y, X)``.
    reference_dead : set of int or dict
        Ids of the dead reference nuclei (or ``id → is_dead``); the others are live.
    predicted_class : numpy.ndarray
        Per-pixel predicted class, same shape: 0 background, 1 live, 2 dead.

    Returns
    -------
    pandas.DataFrame
        Rows ``live``, ``dead`` (reference), columns ``background``, ``live``, ``dead``
        (dominant predicted class), counts of nuclei.
    """
    lab = np.asarray(reference_labels).astype(np.int64)
    cls = np.asarray(predicted_class).astype(np.int64)
    if lab.shape != cls.shape:
        raise InvalidInputError(f"live/dead confusion: labels shape {lab.shape} != class map shape {cls.shape}")
    dead = {k for k, v in reference_dead.items() if v} if isinstance(reference_dead, dict) else set(reference_dead)
    table = pd.DataFrame(0, index=["live", "dead"], columns=["background", "live", "dead"])
    ids = np.unique(lab[lab > 0])
    if len(ids) == 0:
        return table
    m = lab > 0
    counts = np.zeros((int(ids.max()) + 1, 3), dtype=np.int64)
    np.add.at(counts, (lab[m], np.clip(cls[m], 0, 2)), 1)
    names = ["background", "live", "dead"]
    for i in ids:
        table.loc["dead" if int(i) in dead else "live", names[int(counts[i].argmax())]] += 1
    return table


def segmentation_report(reference: np.ndarray, predicted: np.ndarray, *, full_reference: bool = True) -> dict[str, float]:
    """Every instance score of one frame: SEG, and with a full reference the object scores.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Integer label images of equal shape.
    full_reference : bool
        Whether every nucleus is annotated; object precision / F1 / AP need it (a sparse
        reference has unannotated nuclei that would count as false positives).

    Returns
    -------
    dict
        ``seg``, ``n_reference`` and (full reference) :func:`object_scores` at 0.5:0.95.
    """
    seg, n = ctc_seg(reference, predicted)
    out: dict[str, float] = {"seg": seg, "n_reference": n}
    if full_reference:
        out.update(object_scores(reference, predicted, thresholds=IOU_THRESHOLDS))
    return out
