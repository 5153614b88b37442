"""Score a 2D state model on the held-out test side of its own split, from any sample sets.

The model card's ``held_out`` names, per dataset, the test lineage trees (``test_tree_ids``) or
the test frames (``test_frames``, time-block splits). This script selects exactly those rows
from the sample sets given (for example sets whose segmentation-context channels come from an
*automatic* segmentation instead of the ground-truth masks: ``bacteria-phc-d18c-res.npz`` from
``01_RES``) and prints one row per set: n, macro-F1, balanced accuracy, per-class F1 and the
confusion matrix (scikit-learn via :func:`dynacell.metrics.classification.classification_report`).

Usage::

    python benchmarks/states_2d_heldout.py nuclei-2d /tmp/dynacell_state_sets/bacteria-phc-d18c.npz \
        /tmp/dynacell_state_sets/bacteria-phc-d18c-res.npz

Prints a table (markdown).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def held_out_rows(meta: pd.DataFrame, held: dict, split: dict) -> np.ndarray:
    """Boolean mask of the rows on the test side recorded in a card's ``held_out`` (trees, or frames for
    the datasets split by time in ``split["by_dataset"]``)."""
    keep = np.zeros(len(meta), bool)
    by = dict(split.get("by_dataset") or {})
    for dataset, h in held.items():
        in_ds = (meta["dataset"].astype(str) == dataset).to_numpy()
        if by.get(dataset, split.get("by")) == "time":
            lo, hi = h["test_frames"]
            t = meta["t"].to_numpy()
            keep |= in_ds & (t >= lo) & (t <= hi)
        else:
            keep |= in_ds & meta["tree_id"].isin(h["test_tree_ids"]).to_numpy()
    return keep


def main() -> None:
    """Score and print."""
    from dynacell.metrics.classification import classification_report
    from dynacell.samples import SampleSet
    from dynacell.states import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model name or folder")
    ap.add_argument("sets", nargs="+", type=Path, help="sample sets (.npz)")
    args = ap.parse_args()
    clf = load_model(args.model)
    held = clf.card.get("held_out") or {}
    rows = []
    for path in args.sets:
        ss = SampleSet.load(path)
        keep = held_out_rows(ss.meta, held, clf.card.get("split") or {}) & ss.meta["state"].isin(clf.classes).to_numpy()
        y = ss.meta["state"].to_numpy()[keep]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = classification_report(y, proba=clf.predict_proba(ss.x[keep]), classes=list(clf.classes))
        rows.append({"set": path.name, "n": rep["n"], "macro_F1": round(rep["macro_f1"], 3),
                     "bal_acc": round(rep["balanced_accuracy"], 3),
                     **{f"F1 {c}": round(rep["per_class"][c]["f1"], 3) for c in clf.classes},
                     "confusion": rep["confusion"]})
    print(f"model {clf.name} ({clf.card.get('architecture')}, channels {clf.card.get('channels')})")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
