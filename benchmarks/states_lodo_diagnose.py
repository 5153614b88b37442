"""Where a leave-one-dataset-out state classifier fails: test-time input changes and a geometry-only baseline.

For each held-out dataset, every LODO model folder ``<lodo>/<dataset>/<run>`` written by
``benchmarks/states_lodo.py`` is applied to the held-out crops as built and with one input changed at
a time (no retraining):

* ``raw inverted``: ``1 − x`` on the raw channels ``t−1, t, t+1`` (intensity polarity: phase contrast
  shows cells dark on a bright background, fluorescence bright on dark);
* ``raw zeroed``: the raw channels set to 0 (the decision from the mask and segmentation context only);
* ``t±1 := t``: the ``t−1`` and ``t+1`` channels replaced by ``t`` (no temporal context);
* ``context := mask``: ``seg t−1`` and ``seg t+1`` replaced by the mask at ``t`` (no segmentation context).

It prints 3-class macro-F1 and the confusion matrix (rows reference stable / mitotic / new_daughter,
columns predicted) per change. ``--geometry`` adds a geometry-only baseline: scikit-learn's
``HistGradientBoostingClassifier`` (class-balanced sample weights, depth 3, 200 iterations, seed 0)
on 11 mask features per crop (:func:`geometry_features`), trained on the other datasets and tested on
the held-out one.

Usage::

    python benchmarks/states_lodo_diagnose.py /tmp/dynacell_lodo --runs dcnet dcnet+sim --geometry \
        [--sets /tmp/dynacell_state_sets] [--datasets hela02 bacteria-phc gowt1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

CLASSES = ("stable", "mitotic", "new_daughter")


def geometry_features(x: np.ndarray) -> np.ndarray:
    """Mask-geometry features of 6-channel state crops.

    Parameters
    ----------
    x : numpy.ndarray, float32, shape (N, 6, Y, X)
        Crops ``[t−1, t, t+1, mask, seg t−1, seg t+1]``; the context channels hold 1.0 on the object
        overlapping the nucleus most and 0.5 on other overlapping objects
        (:func:`dynacell.samples.crops.context_mask`).

    Returns
    -------
    numpy.ndarray, float64, shape (N, 11)
        Mask area at ``t`` (crop px²), then for ``seg t−1`` and ``seg t+1`` each: area of the primary
        object, area of the other objects, overlap of the primary with the mask, overlap of the
        others with the mask, primary area outside the mask — all over the mask area.
    """
    own = x[:, 3] > 0.5
    area = own.sum((1, 2)).astype(float) + 1.0
    feats = [area]
    for c in (4, 5):
        primary, other = x[:, c] == 1.0, x[:, c] == 0.5
        feats += [primary.sum((1, 2)) / area, other.sum((1, 2)) / area, (primary & own).sum((1, 2)) / area,
                  (other & own).sum((1, 2)) / area, (primary & ~own).sum((1, 2)) / area]
    return np.stack(feats, 1)


def variants(x: np.ndarray):
    """Yield ``(name, crops)``: the crops as built and with one input changed (see the module docstring)."""
    yield "as built", x
    v = x.copy()
    v[:, :3] = 1.0 - v[:, :3]
    yield "raw inverted", v
    v = x.copy()
    v[:, :3] = 0.0
    yield "raw zeroed", v
    v = x.copy()
    v[:, [0, 2]] = v[:, 1:2]
    yield "t±1 := t", v
    v = x.copy()
    v[:, 4:6] = v[:, 3:4]
    yield "context := mask", v


def _load(sets: Path, ds: str) -> tuple[np.ndarray, np.ndarray]:
    from dynacell.samples import SampleSet

    s = SampleSet.load(sets / f"{ds}-d18c.npz")
    keep = s.meta["state"].isin(CLASSES).to_numpy()
    y = s.meta["state"][keep].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    return s.x[keep], y


def main(argv: list[str] | None = None) -> None:
    """Run the diagnosis (see the module docstring) and print its rows."""
    import torch
    from sklearn.metrics import confusion_matrix, f1_score

    from dynacell.models.runtime import forward_batched
    from dynacell.states.registry import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lodo", type=Path, help="--out folder of states_lodo.py")
    ap.add_argument("--runs", nargs="+", default=["dcnet"], help="run names (model folders per dataset)")
    ap.add_argument("--datasets", nargs="+", default=["hela02", "bacteria-phc", "gowt1"])
    ap.add_argument("--sets", type=Path, default=Path("/tmp/dynacell_state_sets"))
    ap.add_argument("--geometry", action="store_true", help="add the geometry-only boosted-tree baseline")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    labels = list(range(len(CLASSES)))
    data = {ds: _load(args.sets, ds) for ds in args.datasets}

    def score(y, p):
        f1 = f1_score(y, p, labels=labels, average="macro", zero_division=0)
        return f"macro-F1 {f1:.3f} confusion {confusion_matrix(y, p, labels=labels).tolist()}"

    for ds, (x, y) in data.items():
        for run in args.runs:
            folder = args.lodo / ds / run
            if not (folder / "model.yaml").is_file():
                print(f"{ds} {run}: no model folder {folder}")
                continue
            clf = load_model(folder, verify=False)
            for name, v in variants(x):
                z = forward_batched(clf.model, v, channels=tuple(clf.channels))
                print(f"{ds:13s} {run:22s} {name:16s} {score(y, z.argmax(1))}", flush=True)
    if args.geometry:
        from sklearn.ensemble import HistGradientBoostingClassifier

        feats = {ds: (geometry_features(x), y) for ds, (x, y) in data.items()}
        for ds, (f, y) in feats.items():
            medians = [np.round(np.median(f[y == k], 0), 2).tolist() for k in labels if (y == k).any()]
            print(f"{ds} median geometry features per class: {medians}")
        for ds in feats:
            xtr = np.concatenate([feats[d][0] for d in feats if d != ds])
            ytr = np.concatenate([feats[d][1] for d in feats if d != ds])
            w = 1.0 / np.bincount(ytr, minlength=len(labels))[ytr]
            gbt = HistGradientBoostingClassifier(max_depth=3, max_iter=200, random_state=0)
            gbt.fit(xtr, ytr, sample_weight=w)
            print(f"{ds:13s} geometry-only boosted trees {score(feats[ds][1], gbt.predict(feats[ds][0]))}")


if __name__ == "__main__":
    main()
