"""Score a state model on the held-out test side of its own split, from any sample sets.

The model card names the test side: ``split.test_groups`` (values of ``split.group_column``,
e.g. C. elegans sublineages and simulated embryos for nuclei-3d), else per dataset the test
lineage trees (``held_out[d].test_tree_ids``) or, for datasets split by time, the test frames
(``held_out[d].test_frames``). This script selects exactly those rows of the sample sets given
and prints one row per set and subset: n, macro-F1, balanced accuracy, per-class F1 and the
confusion matrix (scikit-learn via :func:`dynacell.metrics.classification.classification_report`).

``--all-rows`` scores every row of the sets instead (sets the model never saw, e.g. rendered colonies
of another simulator draw: ``build_sim_state_sets.py --ranges ood``). With several sets a row
``pooled`` scores them together. Each row gives n, macro-F1, balanced accuracy, per-class F1, the
recall of every event class and the expected calibration error (ECE, 15 bins, after the card's
temperature).

``--degrade P`` scores the same crops again after simulated segmentation errors in the
segmentation-context channels (:func:`dynacell.train.degrade_context`: with probability ``P`` a
sample gets one miss / static / erode / dilate / merge error at ``t−1`` or ``t+1``; seed 0):
how much the model leans on a perfect segmentation.

Usage::

    python benchmarks/states_heldout.py nuclei-2d /tmp/dynacell_state_sets/{bacteria-phc,hela02,gowt1}-d18c.npz \
        [--degrade 0.5]
    python benchmarks/states_heldout.py nuclei-3d /tmp/dynacell_state_sets/nuclei-3d-ns.npz --degrade 0.5

Prints a table.
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
    if split.get("test_groups"):
        col = split.get("group_column", "tree_id")
        return meta[col].astype(str).isin([str(g) for g in split["test_groups"]]).to_numpy()
    by = dict(split.get("by_dataset") or {})
    for dataset, h in held.items():
        if not isinstance(h, dict):  # a card's free-text note beside the datasets' test sides
            continue
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
    import torch

    from dynacell.metrics.classification import classification_report
    from dynacell.samples import SampleSet
    from dynacell.states import load_model
    from dynacell.train import degrade_context

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="model name or folder")
    ap.add_argument("sets", nargs="+", type=Path, help="sample sets (.npz)")
    ap.add_argument("--degrade", type=float, default=0.0,
                    help="also score with simulated segmentation errors in the context channels (probability)")
    ap.add_argument("--by", default="dataset", help="meta column to report subsets by (default dataset)")
    ap.add_argument("--all-rows", action="store_true",
                    help="score every row of the sets (sets the model never saw), not its held-out side")
    args = ap.parse_args()
    clf = load_model(args.model)
    held = clf.card.held_out
    rows = []
    variants = [("clean", 0.0)] + ([(f"degraded p={args.degrade}", args.degrade)] if args.degrade > 0 else [])
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name, _ in variants}

    def _row(set_name: str, subset: str, context: str, y: np.ndarray, proba: np.ndarray) -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rep = classification_report(y, proba=proba, classes=list(clf.classes))
        return {"set": set_name, "subset": subset, "context": context, "n": rep["n"],
                "macro_F1": round(rep["macro_f1"], 3), "bal_acc": round(rep["balanced_accuracy"], 3),
                **{f"F1 {c}": round(rep["per_class"][c]["f1"], 3) for c in clf.classes},
                **{f"recall {c}": round(rep["per_class"][c]["recall"], 3) for c in clf.classes if c != "stable"},
                "ECE": None if rep["ece"] is None else round(rep["ece"], 3), "confusion": rep["confusion"]}

    for path in args.sets:
        ss = SampleSet.load(path)
        rows_of = (np.ones(len(ss.meta), bool) if args.all_rows else held_out_rows(ss.meta, held, clf.card.split))
        keep = rows_of & ss.meta["state"].isin(clf.classes).to_numpy()
        x_all, meta = ss.x[keep], ss.meta[keep].reset_index(drop=True)
        for name, p in variants:
            x = x_all
            if p > 0:
                if x.shape[1] != 6:
                    continue
                x = degrade_context(torch.from_numpy(x), p, torch.Generator().manual_seed(0)).numpy()
            proba = clf.predict_proba(x)
            pooled[name].append((meta["state"].to_numpy(), proba))
            groups = {"all": np.ones(len(meta), bool)}
            if meta[args.by].nunique() > 1:
                groups |= {str(g): (meta[args.by] == g).to_numpy() for g in sorted(meta[args.by].unique())}
            for g, m in groups.items():
                rows.append(_row(path.name, g, name, meta["state"].to_numpy()[m], proba[m]))
    if len(args.sets) > 1:
        for name, parts in pooled.items():
            if parts:
                rows.append(_row("pooled", "all", name, np.concatenate([y for y, _ in parts]),
                                 np.concatenate([p for _, p in parts])))
    print(f"model {clf.name} ({clf.card.architecture}, channels {clf.card.channels})")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
