"""Validation macro-F1 of leave-one-dataset-out runs, per group of validation datasets.

The validation figure that ``states_lodo.py`` records (``model.yaml`` ``metrics.val``) pools every
validation tree of the training side, so two runs with different rendered sets on their training side
(e.g. 5 vs 10 rod colonies) are scored on different validation rows and cannot be compared by it.
This script re-creates each run's split (:func:`dynacell.samples.splits.assign_split` with the run's
``config.yaml``) and scores its validation rows by group: ``real`` (the real training datasets: the
same rows in every run with the same held-out dataset, since the split walks the datasets in sorted
order and the real ones sort first), ``nuclei`` (rendered fluorescence colonies, ``sim2d-*``),
``rods`` (rendered phase-contrast rod colonies, ``rods2d*``) and ``all``. The test side (the held-out
dataset) is not read.

Usage::

    python benchmarks/states_lodo_val.py /tmp/dynacell_lodo_rods/bacteria-phc/dcnet+lead+rods10 ...

Prints one row per run and group: n validation crops, 3-class macro-F1 (after the run's temperature).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def group_of(dataset: str) -> str:
    """``rods`` (``rods2d*``), ``nuclei`` (``sim2d*``) or ``real``."""
    if dataset.startswith("rods2d"):
        return "rods"
    if dataset.startswith("sim2d"):
        return "nuclei"
    return "real"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Score the validation side of each run folder by group and print the table."""
    from dynacell.metrics.classification import classification_report
    from dynacell.samples.splits import assign_split
    from dynacell.states import load_model
    from dynacell.train import load_config
    from dynacell.train.fit import load_samples

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="model folders written by states_lodo.py")
    args = ap.parse_args(argv)
    rows = []
    for run in args.runs:
        config = load_config(run / "config.yaml")
        data = load_samples(config.data, config.classes)
        side = np.asarray(assign_split(data.meta, config.split))
        va = np.flatnonzero(side == "val")
        clf = load_model(run, verify=False)
        proba = clf.predict_proba(data.x[va])
        y = data.meta["y"].to_numpy()[va]
        groups = np.array([group_of(str(d)) for d in data.meta["dataset"].to_numpy()[va]])
        for g in ("real", "nuclei", "rods", "all"):
            m = np.ones(len(va), bool) if g == "all" else groups == g
            if not m.any():
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rep = classification_report(y[m], proba=proba[m], classes=list(config.classes))
            rows.append({"run": run.name, "held_out": run.parent.name, "group": g, "n": int(m.sum()),
                         "macro_f1": round(rep["macro_f1"], 3)})
        print(pd.DataFrame(rows[-4:]).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    print(table.pivot_table(index=["held_out", "run"], columns="group", values="macro_f1").to_string())
    return table


if __name__ == "__main__":
    main()
