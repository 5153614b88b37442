"""Held-out scores of ``nuclei-3d`` models per test group, with the previous model as a baseline.

Reads a trained model folder's ``test_predictions.csv`` (written by ``dynacell train``; test =
held-out WormGUIDES sublineages MS + ABpr and held-out simulated embryos, see
configs/nuclei-3d.yaml) and prints one row per subset: all WormGUIDES test nuclei, those in
frames 205–359 (the test of the model before domain randomisation), each held-out embryo and
all of them: 4-class macro-F1, balanced accuracy, per-class F1 and ECE
(:func:`dynacell.metrics.classification.classification_report`). With ``--baseline`` a second
model (folder or name) classifies the same test crops (from the sample sets of the config) and
is scored beside.

Usage::

    python benchmarks/states_3d_heldout.py /tmp/dynacell_models_dr/nuclei-3d [--baseline /tmp/old-nuclei-3d]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _subsets(df: pd.DataFrame) -> dict[str, np.ndarray]:
    wg = (df["dataset"] == "wormguides").to_numpy()
    emb = (df["dataset"] == "sim-embryo").to_numpy()
    out = {"wormguides MS+ABpr": wg, "wormguides MS+ABpr frames 205-359": wg & (df["t"] >= 205).to_numpy()}
    for s in sorted(df.loc[emb, "tree_id"].unique()):
        out[f"embryo seed {int(s)}"] = emb & (df["tree_id"] == s).to_numpy()
    out["embryos (all held out)"] = emb
    return out


def _row(model: str, name: str, y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    from dynacell.metrics.classification import classification_report

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        rep = classification_report(list(y), proba=proba, classes=classes)
    row = {"model": model, "subset": name, "n": rep["n"], "macro_F1": rep["macro_f1"],
           "bal_acc": rep["balanced_accuracy"], "ECE": rep.get("ece")}
    for c in classes:
        row[f"F1 {c}"] = rep["per_class"][c]["f1"]
    return row


def main() -> None:
    """Score and print the table."""
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path, help="trained model folder (with test_predictions.csv, config.yaml)")
    ap.add_argument("--baseline", default=None, help="another model (folder or name) scored on the same crops")
    args = ap.parse_args()
    df = pd.read_csv(args.model / "test_predictions.csv")
    card = yaml.safe_load((args.model / "model.yaml").read_text())
    classes = list(card["classes"])
    proba = df[[f"p_{c}" for c in classes]].to_numpy()
    y = df["state"].to_numpy()
    rows = [_row(card["name"], k, y[m], proba[m], classes) for k, m in _subsets(df).items() if m.any()]
    if args.baseline:
        from dynacell.samples import SampleSet
        from dynacell.states import load_model

        cfg = yaml.safe_load((args.model / "config.yaml").read_text())
        base = load_model(args.baseline)
        parts = []
        for path in cfg["data"]:
            ss = SampleSet.load(path)
            keep = ss.meta.index[ss.meta[cfg["split"]["group_column"]].astype(str).isin(
                cfg["split"]["test_groups"]) & ss.meta["state"].isin(classes)].to_numpy()
            if len(keep):
                sub = ss.subset(keep)
                p = base.predict_proba(sub.x)
                parts.append(pd.concat([sub.meta.reset_index(drop=True),
                                        pd.DataFrame(p, columns=[f"p_{c}" for c in base.classes])], axis=1))
        bdf = pd.concat(parts, ignore_index=True)
        bp = bdf[[f"p_{c}" for c in classes]].to_numpy()
        by = bdf["state"].to_numpy()
        rows += [_row(f"baseline {base.name}", k, by[m], bp[m], classes) for k, m in _subsets(bdf).items() if m.any()]
    pd.set_option("display.width", 200)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
