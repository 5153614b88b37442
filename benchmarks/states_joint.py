"""States decided with the lineage: the joint decision vs the rules vs the classifier alone, on real runs.

For each ``dynacell run`` output folder given (``states.csv``, ``lineage.geff``) with the label
images it used and a CTC ground truth, the three ways of deciding states are compared on the same
classifier probabilities and the same linked lineage:

* ``classifier``: the argmax of the classifier (``state_classifier``);
* ``rules``: ``ReconcileRules(method="rules")`` (the earlier rule-by-rule reconciliation);
* ``joint``: ``ReconcileRules()`` (one hidden Markov model per track, :mod:`dynacell.states.joint`).

Measures (predicted nuclei matched to reference nuclei by the CTC rule, > 50 % of the reference
mask, on frames with a reference mask):

* ``div_ok``: reference divisions *linked correctly* (the mother's match divides in the run's
  lineage and its children match the two reference daughters), on frames where mother and
  daughters have reference masks;
* ``mit_recall`` / ``nd_recall``: share of those mothers decided ``mitotic`` / daughters decided
  ``new_daughter``;
* ``divides_no_mitotic``: tracks of the run with ``fate = divides`` and no ``mitotic`` frame
  (``tracks.csv``);
* ``macro_F1_3``: macro-F1 over ``stable, mitotic, new_daughter`` against the reference states
  (seed event rules; reference ``unknown`` and ``death`` nodes left out: the 2D model has no
  death class);
* ``deaths``: nuclei decided ``death``.

Usage::

    python benchmarks/states_joint.py RUN LABELS GT [RUN LABELS GT ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def evaluate(run: Path, labels_dir: Path, gt: Path) -> list[dict]:
    """Rows (one per method) of the measures in the module docstring for one run folder."""
    from dynacell import STATES
    from dynacell.io import open_labels
    from dynacell.lineage import EventRules, label_events, read_lineage
    from dynacell.lineage.formats import read_geff
    from dynacell.metrics.classification import classification_report
    from dynacell.metrics.states import match_labels
    from dynacell.metrics.tracking import find_ctc_folder
    from dynacell.states.reconcile import ReconcileRules, reconcile_states
    from dynacell.states.tables import tracks_table

    states = pd.read_csv(run / "states.csv")
    lin = read_geff(run / "lineage.geff")
    raw = states[[c for c in states.columns if c in ("t", "label", "track_id", "z", "y", "x", "edge_px", "size_px")
                  or c in [f"p_{s}" for s in STATES]]].copy()
    raw["state"] = states["state_classifier"]
    tra = find_ctc_folder(gt)
    gt_lin = read_lineage(tra)
    gt_lab = open_labels(tra)
    labels = open_labels(labels_dir)
    frames = [t for t in labels.frame_indices if gt_lab.has_frame(t)]
    match: dict[tuple[int, int], tuple[int, int]] = {}
    for t in frames:
        for p, g in match_labels(labels.frame(t), gt_lab.frame(t)).items():
            match[(t, p)] = (t, g)
    back = {g: p for p, g in match.items()}
    gt_states = label_events(gt_lin, EventRules.seed())
    g = lin.graph
    linked = []
    for m in gt_lin.divisions():
        kids = gt_lin.children(m)
        if m not in back or len(kids) != 2 or not all(k in back for k in kids):
            continue  # not verifiable on frames with reference masks
        pm = back[m]
        if pm in g and g.out_degree(pm) >= 2 and {match.get(c) for c in g.successors(pm)} >= set(kids):
            linked.append((pm, [back[k] for k in kids]))
    n_gt_div = sum(1 for m in gt_lin.divisions() if m[0] in frames)
    rows = []
    for method in ("classifier", "rules", "joint"):
        if method == "classifier":
            dec = raw.assign(state_classifier=raw["state"])
        else:
            t0 = time.perf_counter()
            dec, _ = reconcile_states(raw, lin, ReconcileRules(method=method))
            dt = time.perf_counter() - t0
        state = dict(zip(zip(dec["t"].astype(int), dec["label"].astype(int)), dec["state"]))
        mit = [state.get(pm) == "mitotic" for pm, _ in linked]
        nd = [state.get(d) == "new_daughter" for _, ds in linked for d in ds]
        key = list(zip(dec["t"].astype(int), dec["label"].astype(int)))
        y_true = np.array([gt_states.get(match.get(k), "") for k in key], dtype=object)
        keep = np.isin(y_true, ["stable", "mitotic", "new_daughter"])
        rep = classification_report(list(y_true[keep]), list(dec.loc[keep, "state"]),
                                    classes=["stable", "mitotic", "new_daughter", "death"])
        f1 = np.mean([rep["per_class"][s]["f1"] for s in ("stable", "mitotic", "new_daughter")])
        tracks = tracks_table(lin, dec)
        rows.append({
            "run": run.name, "method": method, "gt_div": n_gt_div, "div_ok": len(linked),
            "mit_recall": float(np.mean(mit)) if mit else None, "nd_recall": float(np.mean(nd)) if nd else None,
            "mit_missed": int(len(mit) - sum(mit)), "nd_missed": int(len(nd) - sum(nd)),
            "divides_no_mitotic": int(((tracks["fate"] == "divides") & (tracks["n_mitotic"] == 0)).sum()),
            "macro_F1_3": float(f1), "n_scored": int(keep.sum()),
            "deaths": int((dec["state"] == "death").sum()),
            "flags": int(dec["missed_division"].sum()) if "missed_division" in dec else None,
            "decide_s": None if method == "classifier" else dt,
        })
    return rows


def main() -> None:
    """Evaluate every (run, labels, gt) triple given on the command line and print one table."""
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit(__doc__)
    rows = []
    for i in range(0, len(args), 3):
        rows += evaluate(Path(args[i]), Path(args[i + 1]), Path(args[i + 2]))
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
