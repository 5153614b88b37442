"""Classification metrics for nucleus states (scikit-learn and torchmetrics, not hand-written).

:func:`classification_report` gives macro-F1, balanced accuracy, per-class precision /
recall / F1 / support, the confusion matrix and the expected calibration error (ECE);
:func:`fit_temperature` fits temperature scaling (Guo et al. 2017, "On Calibration of Modern
Neural Networks") on validation logits only; :func:`false_event_rate` counts event calls per
1,000 nuclei on data known to hold (almost) only stable nuclei.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["classification_report", "expected_calibration_error", "fit_temperature",
           "false_event_rate", "reliability_curve"]


def _as_index(y: Any, classes: Sequence[str], name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.dtype.kind in "US" or arr.dtype == object:
        lookup = {c: i for i, c in enumerate(classes)}
        bad = sorted({str(v) for v in arr.tolist() if v not in lookup})
        if bad:
            raise InvalidInputError(f"{name}: states {bad} are not among the classes {list(classes)}")
        return np.array([lookup[v] for v in arr.tolist()], dtype=np.int64)
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= len(classes)):
        raise InvalidInputError(f"{name}: class indices must be in 0..{len(classes) - 1}, got {arr.min()}..{arr.max()}")
    return arr


def expected_calibration_error(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error (top-label, L1, equal-width bins; torchmetrics).

    Parameters
    ----------
    proba : ndarray, float, shape (N, C)
        Class probabilities (rows sum to 1).
    y_true : ndarray, int, shape (N,)
        True class indices.
    n_bins : int
        Confidence bins.

    Returns
    -------
    float
        ECE in [0, 1] (Naeini et al. 2015; Guo et al. 2017).
    """
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(np.asarray(proba, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y_true, dtype=np.int64))
    if len(y) == 0:
        return float("nan")
    return float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=n_bins, norm="l1"))


def reliability_curve(proba: np.ndarray, y_true: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-label reliability diagram data (scikit-learn ``calibration_curve`` on correctness).

    Parameters
    ----------
    proba : ndarray, float, shape (N, C)
        Class probabilities.
    y_true : ndarray, int, shape (N,)
        True class indices.
    n_bins : int
        Confidence bins (uniform).

    Returns
    -------
    accuracy, confidence : ndarray, float, shape (B,)
        Accuracy and mean confidence of each non-empty bin.
    counts : ndarray, int, shape (n_bins,)
        Samples per bin.
    """
    from sklearn.calibration import calibration_curve

    proba = np.asarray(proba)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == np.asarray(y_true)).astype(int)
    counts = np.histogram(conf, bins=np.linspace(0, 1, n_bins + 1))[0]
    if len(np.unique(correct)) < 2:
        return np.array([correct.mean()]), np.array([conf.mean()]), counts
    acc, mean_conf = calibration_curve(correct, conf, n_bins=n_bins, strategy="uniform")
    return acc, mean_conf, counts


def classification_report(y_true: Any, y_pred: Any = None, proba: np.ndarray | None = None, *,
                          classes: Sequence[str] | None = None, n_bins: int = 15) -> dict[str, Any]:
    """Metrics of a nucleus state classifier.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        True states, as class indices (int) or names (str).
    y_pred : array-like, shape (N,), optional
        Predicted states (indices or names); default ``proba.argmax(1)``.
    proba : ndarray, float, shape (N, C), optional
        Class probabilities; needed for the ECE.
    classes : sequence of str, optional
        Class names in index order; default :data:`dynacell.STATES` cut to ``C``.
    n_bins : int
        Bins of the ECE.

    Returns
    -------
    dict
        ``macro_f1``, ``balanced_accuracy``, ``accuracy`` (floats), ``per_class``
        (``{state: {precision, recall, f1, support}}``), ``confusion`` (list of rows: true
        class, columns: predicted class, in ``classes`` order), ``classes``, ``ece``
        (float or None), ``n``. Macro averages run over the classes present in
        ``y_true`` or ``y_pred`` (scikit-learn's convention with explicit ``labels``).

    Raises
    ------
    InvalidInputError
        If neither ``y_pred`` nor ``proba`` is given, lengths differ, or a state is unknown.
    """
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix,
                                 f1_score, precision_recall_fscore_support)

    from dynacell import STATES

    if y_pred is None and proba is None:
        raise InvalidInputError("classification_report needs y_pred or proba")
    if classes is None:
        n_c = proba.shape[1] if proba is not None else len(STATES)
        classes = STATES[:n_c]
    classes = list(classes)
    yt = _as_index(y_true, classes, "y_true")
    yp = _as_index(y_pred, classes, "y_pred") if y_pred is not None else np.asarray(proba).argmax(axis=1)
    if len(yt) != len(yp):
        raise InvalidInputError(f"y_true has {len(yt)} samples but the predictions have {len(yp)}")
    present = sorted(set(yt.tolist()) | set(yp.tolist()))
    prec, rec, f1, sup = precision_recall_fscore_support(
        yt, yp, labels=list(range(len(classes))), zero_division=0)
    per_class = {c: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                     "support": int(sup[i])} for i, c in enumerate(classes)}
    report = {
        "macro_f1": float(f1_score(yt, yp, labels=present, average="macro", zero_division=0)) if len(yt) else float("nan"),
        "balanced_accuracy": float(balanced_accuracy_score(yt, yp)) if len(yt) else float("nan"),
        "accuracy": float(accuracy_score(yt, yp)) if len(yt) else float("nan"),
        "per_class": per_class,
        "confusion": confusion_matrix(yt, yp, labels=list(range(len(classes)))).tolist(),
        "classes": classes,
        "ece": expected_calibration_error(proba, yt, n_bins) if proba is not None else None,
        "n": int(len(yt)),
    }
    return report


def fit_temperature(logits: np.ndarray, y_true: np.ndarray, max_iter: int = 200) -> float:
    """Fit the temperature ``T`` that minimises the NLL of ``softmax(logits / T)``.

    Temperature scaling (Guo et al. 2017). Fit on the validation set only, never on the test set.

    Parameters
    ----------
    logits : ndarray, float, shape (N, C)
        Validation logits.
    y_true : ndarray, int, shape (N,)
        Validation class indices.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    float
        ``T > 0`` (1.0 when there are no samples).
    """
    import torch

    if len(y_true) == 0:
        return 1.0
    z = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y_true, dtype=np.int64))
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.exp().item())
    if not np.isfinite(t):  # LBFGS diverged (e.g. separable logits): no calibration rather than a NaN
        return 1.0
    return float(np.clip(t, 0.05, 20.0))


def false_event_rate(pred_states: Sequence[str], events: Sequence[str] = ("mitotic", "death")) -> dict[str, float]:
    """Event calls per 1,000 nuclei on a movie known to hold (almost) only stable nuclei.

    Parameters
    ----------
    pred_states : sequence of str, length N
        Predicted state of every nucleus (every frame).
    events : sequence of str
        The states counted as false calls.

    Returns
    -------
    dict
        ``{f"{state}_per_1000": float for state in events}``, ``events_per_1000`` (all of
        them) and ``n``.
    """
    arr = np.asarray(list(pred_states))
    n = len(arr)
    out: dict[str, float] = {"n": n}
    for s in events:
        out[f"{s}_per_1000"] = float(1000.0 * np.sum(arr == s) / n) if n else float("nan")
    out["events_per_1000"] = float(1000.0 * np.isin(arr, list(events)).sum() / n) if n else float("nan")
    return out
