"""Leave-one-dataset-out (LODO) figures of the 2D state classifier, beside the seed's 4ncnn.

For each real 2D dataset of the shipped ``nuclei-2d`` training config (bacteria-phc 01, HeLa 02,
GOWT1 01) the model is trained on the *other* datasets only (split by lineage tree, or by time
block for GOWT1, into train / validation; early stopping and temperature on validation) and tested
on the whole held-out dataset, which it never saw: the honest figure for a new movie. The seed's
4ncnn (its input, no segmentation context) is trained and tested the same way, same samples,
split and seed (:func:`dynacell.train.benchmark.benchmark_states`).

Prints one row per held-out dataset and model: n test nuclei, 3-class macro-F1, balanced accuracy,
per-class F1, best epoch, training seconds; writes ``lodo.csv`` / ``lodo.md`` under ``--out``.

Usage (sample sets built as in ``configs/nuclei-2d.yaml``)::

    python benchmarks/states_lodo.py configs/nuclei-2d.yaml --out /tmp/dynacell_lodo [--epochs 30] \
        [--datasets bacteria-phc hela02 gowt1] [--models dcnet 4ncnn] \
        [--extra-data /tmp/dynacell_state_sets/sim2d-*-d18c.npz --tag +sim] [--recipe dr+norm] [--seed 1]

The 3D recipe (``nuclei-3d``: the seed's 4ncnn with segmentation context) the same way, each of its two
sources held out in turn (WormGUIDES-lineage renders, simulated embryos)::

    python benchmarks/states_lodo.py configs/nuclei-3d.yaml --out /tmp/dynacell_lodo3d \
        --datasets wormguides sim-embryo --models 4ncnn+context 4ncnn

``--recipe`` adds one of :data:`RECIPES` (domain randomisation of
:class:`dynacell.train.augment.AugmentConfig`, dcnet's ``nucleus_norm``) to the config; its name is
appended to the run names. The table also gives each run's validation macro-F1 (tree / time split of
the *training* datasets: the model-selection side; it never sees the held-out dataset).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

#: Training-distribution recipes of the LODO ablation (docs/states-generalisation.md): ``augment``
#: fields of :class:`dynacell.train.augment.AugmentConfig` and dcnet ``model_kwargs`` added to the config.
#: ``dr``: domain randomisation of the raw channels (polarity inversion, gamma, blur, noise, zoom);
#: ``norm``: dcnet's nucleus-contrast normalisation; ``drop``: raw channels dropped for 30 % of the
#: samples (the masks and segmentation context must carry the decision); ``dr3d``: ``dr`` without the
#: inversion and the (2D-only) zoom, for the 3D recipe.
_DR = {"invert_p": 0.5, "gamma": (0.5, 2.0), "contrast": (0.6, 1.4), "blur_sigma_px": 1.5, "noise_max": 0.08,
       "zoom": (0.8, 1.25)}
RECIPES: dict[str, dict] = {
    "dr": {"augment": _DR},
    "norm": {"model_kwargs": {"nucleus_norm": True}},
    "dr+norm": {"augment": _DR, "model_kwargs": {"nucleus_norm": True}},
    "dr+norm+drop": {"augment": {**_DR, "raw_dropout": 0.3}, "model_kwargs": {"nucleus_norm": True}},
    # 3D fluorescence: gamma, contrast, blur and noise only (no polarity inversion; zoom is 2D-only)
    "dr3d": {"augment": {k: v for k, v in _DR.items() if k not in ("invert_p", "zoom")}},
}


def with_recipe(config, recipe: str | None):
    """``config`` with :data:`RECIPES` ``[recipe]`` merged into its ``augment`` and ``model_kwargs``."""
    if not recipe:
        return config
    spec = RECIPES[recipe]
    augment = config.augment.model_copy(update=spec.get("augment", {}))
    kwargs = {**config.model_kwargs, **spec.get("model_kwargs", {})}
    return config.model_copy(update={"augment": augment, "model_kwargs": kwargs})


def lodo_config(config, dataset: str, out: Path, epochs: int | None, patience: int | None,
                extra_data: list[str] | None = None):
    """The base config with ``dataset`` held out as the whole test side (train/val split of the rest),
    with ``extra_data`` sample sets (e.g. rendered colonies) added to the training side's sources."""
    # the held-out dataset is the whole test side: named test groups of the other datasets (the 3D config's
    # test embryos) go back to training
    split = config.split.model_copy(update={"test_datasets": [dataset], "test_groups": [], "fractions": (0.8, 0.2, 0.0)})
    update = {"split": split, "out": str(out), "data": [*config.data, *(extra_data or [])]}
    if epochs:
        update["epochs"] = epochs
    if patience:
        update["patience"] = patience
    return config.model_copy(update=update)


def _val_macro_f1(folder: Path) -> float:
    """Validation macro-F1 recorded in a model folder's card (the training datasets' validation side)."""
    import yaml

    return float(yaml.safe_load((folder / "model.yaml").read_text())["metrics"]["val"]["macro_f1"])


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the LODO benchmark (see the module docstring) and print its table."""
    from dynacell.train import load_config
    from dynacell.train.benchmark import BASELINES, CONTEXT_RUNS, benchmark_states

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("config", type=Path)
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell_lodo"))
    ap.add_argument("--datasets", nargs="+", default=["bacteria-phc", "hela02", "gowt1"])
    ap.add_argument("--models", nargs="+", default=["dcnet", "4ncnn"])
    ap.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    ap.add_argument("--patience", type=int, default=None, help="override the config's early-stopping patience")
    ap.add_argument("--extra-data", nargs="*", default=[],
                    help="more sample sets for the training side (e.g. build_sim_state_sets.py output)")
    ap.add_argument("--tag", default="", help="suffix of the run names (an ablation, e.g. +sim)")
    ap.add_argument("--seed", type=int, default=None, help="override the config's training seed (the split seed stays)")
    ap.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                    help="training-distribution recipe (RECIPES); appended to the run names")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    base = with_recipe(load_config(args.config), args.recipe)
    if args.seed is not None:
        base = base.model_copy(update={"seed": args.seed})
    tag = args.tag + (f"+{args.recipe}" if args.recipe else "")
    # the seed's models keep their own input and options; the recipe's augmentation applies to all runs
    runs = {f"{m}{tag}": {**BASELINES, **CONTEXT_RUNS}[m] for m in args.models}
    tables = []
    for ds in args.datasets:
        cfg = lodo_config(base, ds, args.out / ds, args.epochs, args.patience, args.extra_data)
        t = benchmark_states(cfg, args.out / ds, runs, progress=False)
        t.insert(0, "held_out", ds)
        t["val_macro_f1"] = [_val_macro_f1(args.out / ds / r) for r in t["run"]]
        tables.append(t)
        print(t[["held_out", "run", "n_test", "macro_f1", "balanced_accuracy"]].to_string(index=False), flush=True)
    table = pd.concat(tables, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / f"lodo{tag}.csv", index=False)
    cols = ["held_out", "run", "n_test", "macro_f1", "balanced_accuracy", "val_macro_f1",
            *[c for c in table.columns if c.startswith("f1_")], "best_epoch", "train_seconds", "seed"]
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table[cols].iterrows():
        md.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    (args.out / f"lodo{tag}.md").write_text("\n".join(md) + "\n")
    print(table[cols].to_string(index=False))
    return table


if __name__ == "__main__":
    main()
