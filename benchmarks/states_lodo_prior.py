"""Test-time prior adaptation on leave-one-dataset-out runs: validation per movie, then the held-out movie.

Each run folder written by ``states_lodo.py`` holds a classifier trained without one real 2D dataset.
Its probabilities are adapted to each movie's own class frequencies (label shift; EM of Saerens,
Latinne & Decaestecker 2002, :func:`dynacell.states.prior.adapt_priors`), one movie at a time, as
``dynacell classify --adapt-prior`` does. Variants:

* ``none``: the classifier's probabilities (argmax);
* ``train-freq``: a fixed correction from the class-balanced prior to the training side's class
  frequencies (no test-time estimate; the baseline a label-free adaptation has to beat);
* ``em``: the EM estimate of the movie's prior, from the class-balanced source prior
  (:func:`dynacell.states.prior.source_prior`); ``em0.5`` etc.: the same estimate applied with
  ``strength`` 0.5 (:math:`(\\pi'/\\pi)^{0.5}`: halfway, on a log scale, between no adaptation and EM);
* ``adabn``, ``adabn0.5``, ``adabn0.25`` (``--variants``, not in the default list): the network's
  BatchNorm statistics re-estimated on the movie's own crops before its probabilities are computed
  (covariate shift; :func:`dynacell.states.adapt.adapt_classifier`, labels never read), blended with
  the training statistics at weight ``alpha`` = 1, 0.5, 0.25; ``adabn+train-freq`` etc.: then the
  ``train-freq`` correction (any prior variant may follow ``+``); ``adabnbal``, ``adabnbal0.5`` etc.: the
  statistics estimated on the movie's crops re-weighted to equal weight per class the unadapted model
  calls (``adapt_classifier(balance=True)``; still no labels).

**Validation (the choice):** the run's split is re-created (:func:`dynacell.samples.splits.assign_split`
on its ``config.yaml``) and the validation rows of each training dataset are adapted as one movie each
(each real dataset, each rendered colony); the held-out dataset is not read. **Test (``--test``, once
per chosen variant):** the held-out dataset's rows (the run's test side) are adapted as one movie.

Prints per movie group: n, class counts, 3-class macro-F1, per-class recall / F1, the frequency of
each call and the EM prior estimate per variant;
writes ``prior_<side>_<run>.csv`` beside each run folder.

Usage (the AdaBN benchmark of docs/states-generalisation.md: ``--variants`` with :data:`ADABN_VARIANTS`)::

    python benchmarks/states_lodo_prior.py /tmp/lodo/runs/*/dcnet+lead+rodsfast [--test --variants none em] \
        [--ensemble /tmp/lodo/runs_s1]
    python benchmarks/states_lodo_prior.py /tmp/lodo/runs/*/dcnet+lead+rodsfast --variants none train-freq \
        adabn0.25 adabn0.5 adabn adabn0.25+train-freq adabn0.5+train-freq adabn+train-freq [--test]

``--ensemble``: the mean probability of the run and its namesakes trained with other seeds.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = ("none", "train-freq", "em", "em0.75", "em0.5", "em0.25")
#: Test-time BatchNorm adaptation (AdaBN) at weight alpha 0.25 / 0.5 / 1, alone or followed by ``train-freq``.
#: ``adabnbal``: the same with the statistics estimated on the crops balanced by the model's own calls.
ADABN_VARIANTS = tuple(f"adabn{b}{a}{p}" for b in ("", "bal") for p in ("", "+train-freq") for a in ("0.25", "0.5", ""))


def split_variant(variant: str) -> tuple[tuple[float, bool] | None, str]:
    """``((alpha, balance), prior variant)`` of ``variant``: ``adabn0.5+train-freq`` → ``((0.5, False),
    "train-freq")``, ``adabnbal`` → ``((1.0, True), "none")``, ``em`` → ``(None, "em")`` (``None``: no
    BatchNorm adaptation)."""
    if not variant.startswith("adabn"):
        return None, variant
    head, _, prior = variant.partition("+")
    balance = head.startswith("adabnbal")
    return (float(head[8 if balance else 5:] or 1.0), balance), prior or "none"


def valid_variant(variant: str) -> str:
    """``variant`` if :func:`split_variant` and :func:`adapted` understand it (argparse type)."""
    try:
        norm, prior = split_variant(variant)
    except ValueError:
        norm, prior = None, ""
    if prior not in VARIANTS or (norm is not None and not 0.0 <= norm[0] <= 1.0):
        raise argparse.ArgumentTypeError(f"unknown variant {variant!r}")
    return variant


def adapted(proba: np.ndarray, variant: str, source: np.ndarray, train_freq: np.ndarray) -> np.ndarray:
    """``proba`` ``(N, C)`` of one movie under ``variant`` (see the module docstring)."""
    from dynacell.states.prior import adapt_priors, shift_priors

    if variant == "none":
        return proba
    if variant == "train-freq":
        return shift_priors(proba, source, train_freq)
    if variant.startswith("em"):
        return adapt_priors(proba, source, strength=float(variant[2:] or 1.0)).proba
    raise ValueError(f"unknown variant {variant!r}")


def score(y: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    """3-class macro-F1, per-class recall and F1 of argmax(``proba``) against ``y`` (class indices)."""
    from dynacell.metrics.classification import classification_report

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = classification_report(y, proba=proba, classes=classes)
    out = {"macro_f1": round(rep["macro_f1"], 3)}
    for c in classes:
        pc = rep["per_class"].get(c, {})
        out[f"recall_{c}"] = round(float(pc.get("recall", np.nan)), 3)
        out[f"f1_{c}"] = round(float(pc.get("f1", np.nan)), 3)
    return out


def movie_of(dataset: str) -> str:
    """Scoring group of a dataset: the real dataset's name, or ``rendered`` for ``sim2d*`` / ``rods2d*``."""
    return "rendered" if dataset.startswith(("sim2d", "rods2d")) else dataset


def movie_proba(clf, x: np.ndarray, datasets: np.ndarray, norm: tuple[float, bool] | float | None) -> np.ndarray:
    """Probabilities ``(N, C)`` float64 of the crops ``x``; with ``norm = (alpha, balance)`` (or ``alpha``),
    each movie's (``datasets``) from the classifier's BatchNorm statistics adapted to that movie's crops
    (:func:`dynacell.states.adapt.adapt_classifier`; no labels read)."""
    from dynacell.states.adapt import adapt_classifier

    if norm is None:
        return clf.predict_proba(x).astype(np.float64)
    alpha, balance = norm if isinstance(norm, tuple) else (norm, False)
    out = np.empty((len(x), len(clf.classes)))
    for ds in np.unique(datasets):
        m = datasets == ds
        out[m] = adapt_classifier(clf, x[m], alpha=alpha, balance=balance).predict_proba(x[m])
    return out


def evaluate(run: Path, side_name: str, variants: list[str], ensemble: list[Path] = ()) -> pd.DataFrame:
    """Rows (group, variant, n, counts, scores) of one run on its ``val`` or ``test`` side.

    ``ensemble``: more ``--out`` folders of ``states_lodo.py`` (other training seeds, same split); the
    run of the same held-out dataset and name in each is averaged with ``run`` (mean probability).
    """
    from dynacell.samples.splits import assign_split
    from dynacell.states import load_model
    from dynacell.states.prior import adapt_priors, source_prior
    from dynacell.train import load_config
    from dynacell.train.fit import load_samples

    config = load_config(run / "config.yaml")
    classes = list(config.classes)
    data = load_samples(config.data, classes)
    side = np.asarray(assign_split(data.meta, config.split))
    y_all = data.meta["y"].to_numpy()
    train_freq = np.bincount(y_all[side == "train"], minlength=len(classes)).astype(float)
    train_freq /= train_freq.sum()
    rows_idx = np.flatnonzero(side == side_name)
    clfs = [load_model(run, verify=False),
            *(load_model(o / run.parent.name / run.name, verify=False) for o in ensemble)]
    source = source_prior(clfs[0])
    x = data.x[rows_idx]
    y = y_all[rows_idx]
    datasets = data.meta["dataset"].to_numpy()[rows_idx].astype(str)
    probas: dict = {}  # per BatchNorm adaptation (alpha, balance) (None: as trained)
    for norm in dict.fromkeys([None, *(split_variant(v)[0] for v in variants)]):
        probas[norm] = np.mean([movie_proba(c, x, datasets, norm) for c in clfs], axis=0)
    proba = probas[None]
    out = []
    for v in variants:
        norm, prior_variant = split_variant(v)
        p = np.empty_like(proba)
        for ds in np.unique(datasets):  # one movie (dataset / rendered colony) at a time
            m = datasets == ds
            p[m] = adapted(probas[norm][m], prior_variant, source, train_freq)
        # the class frequencies each real movie's crops are called at (argmax), and the EM estimate
        called = {ds: np.bincount(p[datasets == ds].argmax(1), minlength=len(classes)) / (datasets == ds).sum()
                  for ds in np.unique(datasets)}
        em_prior = {ds: adapt_priors(proba[datasets == ds], source).prior for ds in np.unique(datasets)}
        groups = np.array([movie_of(d) for d in datasets])
        for g in [*sorted(set(groups) - {"rendered"}), "rendered", "real pooled"]:
            m = groups != "rendered" if g == "real pooled" else groups == g
            if not m.any():
                continue
            counts = np.bincount(y[m], minlength=len(classes))
            out.append({"held_out": run.parent.name, "run": run.name + ("+ens" if ensemble else ""), "side": side_name, "group": g, "variant": v,
                        "n": int(m.sum()), "counts": "/".join(map(str, counts)), **score(y[m], p[m], classes),
                        "called_freq": "/".join(f"{f:.3f}" for f in called[g]) if g in called else "",
                        "em_prior": "/".join(f"{f:.3f}" for f in em_prior[g]) if g in em_prior else ""})
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Score the runs (see the module docstring) and print the tables."""
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path, help="model folders written by states_lodo.py")
    ap.add_argument("--variants", nargs="+", type=valid_variant, default=list(VARIANTS),
                    help=f"prior variants {VARIANTS}, BatchNorm adaptation {ADABN_VARIANTS}")
    ap.add_argument("--ensemble", nargs="*", type=Path, default=[],
                    help="--out folders of other training seeds: average their same-named runs with each run")
    ap.add_argument("--test", action="store_true", help="score the held-out dataset (once per chosen variant)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tables = []
    for run in args.runs:
        side = "test" if args.test else "val"
        t = evaluate(run, side, args.variants, args.ensemble)
        t.to_csv(run.parent / f"prior_{side}_{t['run'].iloc[0]}.csv", index=False)
        print(t.to_string(index=False), flush=True)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    print(summary(table).to_string(), flush=True)
    return table


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Macro-F1 per (held-out fold, real movie with events) and variant, plus their mean (the choice's figure)."""
    real = table[~table["group"].isin(["rendered", "real pooled"])]
    counts = real["counts"].str.split("/", expand=True).astype(int)
    real = real[(counts.iloc[:, 1:] > 0).all(axis=1)]  # a movie without events of every kind has no 3-class F1
    pivot = real.pivot_table(index=["held_out", "group"], columns="variant", values="macro_f1", sort=False)
    pivot = pivot[[v for v in table["variant"].unique() if v in pivot.columns]]
    pivot.loc[("mean", ""), :] = pivot.mean()
    return pivot.round(3)


if __name__ == "__main__":
    main()
