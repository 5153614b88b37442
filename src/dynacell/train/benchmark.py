"""``dynacell benchmark states``: every model on the same data, split and seed; table and figures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from dynacell.cards import read_yaml_mapping
from dynacell.train.config import TrainConfig

__all__ = ["ABLATION", "BASELINES", "benchmark_states", "plot_benchmark"]

logger = logging.getLogger(__name__)

#: The seed's models and dynacell's, by run name: TrainConfig fields replaced for the run.
#: ``dcnet`` keeps the base config's ``model_kwargs``; the seed's models use none.
#: The seed's models always read the seed's input (no segmentation context).
BASELINES: dict[str, dict[str, Any]] = {
    "cnn-only": {"model": "cnn-only", "model_kwargs": {}, "context": False},
    "3ncnn": {"model": "3ncnn", "model_kwargs": {}, "context": False},
    "4ncnn": {"model": "4ncnn", "model_kwargs": {}, "context": False},
    "convlstm": {"model": "convlstm", "model_kwargs": {}, "context": False},
    "dcnet": {"model": "dcnet"},
}

#: Extra runs when the base config reads the segmentation context (6-channel sets): the seed's
#: 4ncnn with the context, and dcnet without it (the context's ablation).
CONTEXT_RUNS: dict[str, dict[str, Any]] = {
    "4ncnn+context": {"model": "4ncnn", "model_kwargs": {}, "context": True},
    "dcnet-no-context": {"model": "dcnet", "context": False},
}

#: dcnet with one component switched off at a time (same data, split and seed);
#: the options are merged into the base config's ``model_kwargs``. ``dcnet-32px`` sees the
#: seed's field of view (centre 32² of the 64² crops, no input pooling).
ABLATION: dict[str, dict[str, Any]] = {
    "dcnet": {"model": "dcnet"},
    "dcnet-no-tdiff": {"model": "dcnet", "ablate": {"temporal_diff": False}},
    "dcnet-no-residual": {"model": "dcnet", "ablate": {"residual": False}},
    "dcnet-no-maskpool": {"model": "dcnet", "ablate": {"mask_pool": False}},
    "dcnet-plain": {"model": "dcnet", "ablate": {"temporal_diff": False, "residual": False, "mask_pool": False}},
    "dcnet-32px": {"model": "dcnet", "center_crop": 32, "ablate": {"input_pool": 1}},
}


def _same_run(folder: Path, cfg: TrainConfig) -> bool:
    """Whether ``folder`` holds a finished run of ``cfg`` (all fields equal but ``name`` and ``out``)."""
    path = folder / "config.yaml"
    if not (path.is_file() and (folder / "model.yaml").is_file() and (folder / "test_predictions.csv").is_file()):
        return False
    old = TrainConfig.model_validate(yaml.safe_load(path.read_text()))
    skip = {"name", "out"}
    return old.model_dump(exclude=skip) == cfg.model_dump(exclude=skip)


def run_config(config: TrainConfig, run: str, spec: dict[str, Any], out: str | Path,
               baseline_crop: int | None = None) -> TrainConfig:
    """The config of one benchmark run: ``spec`` fields replace the base config's.

    ``spec["ablate"]`` is merged into ``model_kwargs``; the seed's models (all but dcnet)
    get ``center_crop = baseline_crop`` when given (the seed centre-cropped 64³ to 32³).
    """
    spec = dict(spec)
    ablate = spec.pop("ablate", {})
    update: dict[str, Any] = {"name": run, "out": str(out), **spec}
    if spec.get("model") == config.model and "model_kwargs" not in spec:
        update["model_kwargs"] = {**config.model_kwargs, **ablate}
    elif spec.get("model") != config.model and "model_kwargs" not in spec:
        update["model_kwargs"] = dict(ablate)
    if baseline_crop is not None and spec.get("model") != "dcnet":
        update["center_crop"] = baseline_crop
    return TrainConfig.model_validate(config.model_dump() | update)


def benchmark_states(config: TrainConfig, out: str | Path, runs: dict[str, dict[str, Any]] | None = None,
                     *, progress: bool = True, overwrite: bool = True,
                     reuse: list[str | Path] | None = None, baseline_crop: int | None = None) -> pd.DataFrame:
    """Train and test several models on the same samples, split and seed.

    Parameters
    ----------
    config : TrainConfig
        Base run; ``model``, ``model_kwargs``, ``name`` and ``out`` are replaced per run.
    out : str or Path
        Folder for the model folders, ``results.csv``, ``results.md`` and the figures.
    baseline_crop : int, optional
        Centre crop (px) for the seed's models (see :func:`run_config`).
    runs : dict, optional
        ``{run_name: {TrainConfig field: value, "ablate": {dcnet option: value}}}``;
        default :data:`BASELINES` (plus :data:`CONTEXT_RUNS` when ``config.context``).
    progress : bool
        Progress bars.
    overwrite : bool
        Replace existing model folders under ``out``.
    reuse : list of path, optional
        Model folders of earlier runs: a run whose config equals one of them (or the folder
        ``out/<run>``) in every field but ``name`` and ``out`` is not trained again; its
        folder is copied to ``out/<run>``.

    Returns
    -------
    pandas.DataFrame
        One row per run: ``run, architecture, n_parameters, macro_f1, balanced_accuracy, f1_<class>...,
        ece_before, ece_after, temperature, best_epoch, train_seconds, n_test, split, seed``.
    """
    from dynacell.train.fit import fit, load_samples

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = runs or (BASELINES | CONTEXT_RUNS if config.context else BASELINES)
    data = None
    rows = []
    for run, spec in runs.items():
        cfg = run_config(config, run, spec, out, baseline_crop)
        arch = cfg.model
        folder = out / run
        found = [Path(r) for r in [folder, *(reuse or [])] if _same_run(Path(r), cfg)]
        if found:
            if found[0] != folder:
                import shutil

                shutil.rmtree(folder, ignore_errors=True)
                shutil.copytree(found[0], folder)
            logger.info("%s: reusing the finished run in %s", run, found[0])
        else:
            if data is None:
                data = load_samples(config.data, config.classes)
            folder = fit(cfg, overwrite=overwrite, progress=progress, data=data)
        card = read_yaml_mapping(folder / "model.yaml", "model card")
        test = card["metrics"]["test"]
        row = {"run": run, "architecture": arch, "options": str(cfg.model_kwargs or ""),
               "crop_px": "x".join(map(str, card["crop_size_px"])), "n_parameters": card["n_parameters"],
               "macro_f1": test["macro_f1"], "balanced_accuracy": test["balanced_accuracy"]}
        row |= {f"f1_{c}": test["per_class"][c]["f1"] for c in config.classes}
        row |= {"ece_before": test["ece_before_temperature"], "ece_after": test["ece"],
                "temperature": card["temperature"], "best_epoch": card["best_epoch"],
                "train_seconds": card["train_seconds"], "n_test": test["n"],
                "split": card["split"]["by"], "seed": config.seed}
        rows.append(row)
        logger.info("%s: test macro-F1 %.3f", run, row["macro_f1"])
    table = pd.DataFrame(rows)
    table.to_csv(out / "results.csv", index=False)
    (out / "results.md").write_text(_markdown(table))
    plot_benchmark(out, list(runs), config.classes)
    return table


def _markdown(table: pd.DataFrame) -> str:
    cols = list(table.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines) + "\n"


def plot_benchmark(out: str | Path, runs: list[str], classes: list[str]) -> list[Path]:
    """Write ``confusion.png``, ``reliability.png`` and ``f1_per_class.png`` from the runs' test predictions.

    Parameters
    ----------
    out : str or Path
        Benchmark folder holding ``<run>/test_predictions.csv``.
    runs : list of str
        Run names (sub-folders).
    classes : list of str
        Class order.

    Returns
    -------
    list of Path
        The figure files.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, f1_score

    from dynacell.metrics.classification import reliability_curve

    out = Path(out)
    preds = {r: pd.read_csv(out / r / "test_predictions.csv") for r in runs}
    n = len(runs)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.6), squeeze=False)
    for ax, (r, df) in zip(axes[0], preds.items()):
        ConfusionMatrixDisplay.from_predictions(df["state"], df["predicted"], labels=classes, ax=ax, colorbar=False,
                                                normalize="true", values_format=".2f")
        ax.set_title(r, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    files = [out / "confusion.png"]
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, (r, df) in zip(axes[0], preds.items()):
        y = df["state"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        for key, style in (("p_raw_", "--"), ("p_", "-")):
            proba = df[[f"{key}{c}" for c in classes]].to_numpy()
            acc, conf, _ = reliability_curve(proba, y)
            ax.plot(conf, acc, style, marker="o", ms=3, label="before T" if key == "p_raw_" else "after T")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_title(r, fontsize=9)
        ax.set_xlabel("confidence")
        ax.set_ylabel("accuracy")
        ax.legend(fontsize=7)
    fig.tight_layout()
    files.append(out / "reliability.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.2 * n * len(classes) / 2 + 3, 3.5))
    width = 0.8 / n
    xs = np.arange(len(classes))
    for i, (r, df) in enumerate(preds.items()):
        f1 = f1_score(df["state"], df["predicted"], labels=classes, average=None, zero_division=0)
        ax.bar(xs + i * width, f1, width, label=r)
    ax.set_xticks(xs + width * (n - 1) / 2, classes)
    ax.set_ylabel("F1 (test)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    files.append(out / "f1_per_class.png")
    fig.savefig(files[-1], dpi=110)
    plt.close(fig)
    return files
