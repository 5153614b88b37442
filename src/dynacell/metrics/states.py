"""Score predicted nucleus states against a CTC ground truth (matching by the CTC rule).

:func:`match_labels` pairs predicted and reference nuclei of one frame (a prediction matches the
reference nucleus it covers by more than half, Maška et al. 2014 — the detection rule of the CTC
TRA/SEG measures); :func:`evaluate_against_gt` derives the reference states from the reference
lineage with :func:`dynacell.lineage.label_events` and returns classification reports before and
after reconciliation, plus the tracking measures (:mod:`dynacell.metrics.tracking`, traccuracy).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell import STATES
from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.io.writers import json_safe
from dynacell.lineage.graph import Node

__all__ = ["match_labels", "evaluate_against_gt", "evaluation_tables"]


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
        If the shapes differ or an id is negative.

    Notes
    -----
    The (reference, prediction) pixel pairs are counted with one sort of a packed 1-D key;
    a prediction that covers more than half of two references keeps the larger reference id.
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise InvalidInputError(f"match_labels: prediction shape {pred.shape} differs from ground truth {gt.shape}")
    fg = gt > 0
    g, p = gt[fg].astype(np.int64), pred[fg].astype(np.int64)
    if g.size == 0:
        return {}
    if g.min() < 0 or p.min() < 0:
        raise InvalidInputError("match_labels: label ids must be >= 0 (0 = background)")
    # one sort of a packed (gt, pred) key instead of a column-wise unique: same pairs, same order
    n_p = int(p.max()) + 1
    if int(g.max()) < np.iinfo(np.int64).max // n_p:
        keys, counts = np.unique(g * n_p + p, return_counts=True)
        gi, pi = keys // n_p, keys % n_p
    else:  # ids too large to pack into one int64
        pairs, counts = np.unique(np.stack([g, p]), axis=1, return_counts=True)
        gi, pi = pairs
    g_ids, inverse = np.unique(gi, return_inverse=True)
    g_sizes = np.bincount(inverse, weights=counts)
    keep = (pi > 0) & (counts > 0.5 * g_sizes[inverse])
    # a prediction covering more than half of two references keeps the larger reference id, as before
    return dict(zip(pi[keep].tolist(), gi[keep].tolist()))


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
    (the demo uses :data:`dynacell.demo.DEMO_RULES`); predicted nuclei are matched
    to ground-truth nuclei by :func:`match_labels` on every frame that has a ground-truth mask.
    Nodes whose ground-truth state is ``unknown`` are left out of the scores.

    Parameters
    ----------
    gt : str or Path
        CTC ground-truth folder (``NN_GT`` with ``TRA/man_track.txt`` and ``man_trackTTT.tif``).
    states : pandas.DataFrame
        Reconciled states with ``state_classifier`` (from :func:`dynacell.states.reconcile.reconcile_states`).
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
    from dynacell.io.movie import load_in_memory
    from dynacell.lineage import EventRules, label_events, read_lineage
    from dynacell.metrics.classification import classification_report

    gt = Path(gt)
    from dynacell.metrics.tracking import find_ctc_folder

    tra = find_ctc_folder(gt)
    gt_lineage = read_lineage(tra, masks=False)  # states need the graph only, not centroids from the masks
    rules = rules if rules is not None else EventRules.seed()
    rule_name = "EventRules.seed()" if rules == EventRules.seed() else repr(rules)
    gt_states = label_events(gt_lineage, rules)
    gt_labels = load_in_memory(open_labels(tra))  # read once: matching here and the tracking measures
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

        res["tracking"] = json_safe(evaluate_tracks(ctc_dir, gt, progress=progress, gt_masks=gt_labels))
    return res


def evaluation_tables(ev: dict[str, Any]) -> dict[str, Any]:
    """Tables of an :func:`evaluate_against_gt` result for the report.

    Parameters
    ----------
    ev : dict
        The result of :func:`evaluate_against_gt`.

    Returns
    -------
    dict
        ``matched`` (one sentence), ``metrics`` (DataFrame: one row before / after
        reconciliation with macro-F1, balanced accuracy, accuracy and per-class F1),
        ``confusion`` (``(C, C)`` int array after reconciliation, rows = truth), ``classes``,
        ``tracking`` (the scalar tracking measures).
    """
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
