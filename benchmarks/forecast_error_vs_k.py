"""Error versus K for the seed's TinyCNN next-frame model (docs/forecasting.md, "Error versus K").

Trains the TinyCNN of benchmarks/forecast_configs/frames-tinycnn.yaml (MSE, 12 epochs of 256
patches, one thread) at K = 2, 4 and 8 and seeds 0, 1, 2 through the training engine, on the same movies and
the same time-block split — except the mouse 8-cell movie, whose 11 frames are too few for K = 8 —
and tests each on the same test-block frames beside the four baselines. Models go to --out (not
shipped; --resume reuses the ones already there); the table is printed and written as CSV, the
figure (mean over seeds, bars from the lowest to the highest seed) to --figures.

    python benchmarks/forecast_error_vs_k.py [--k 2 4 8] [--seeds 0 1 2] [--out /tmp/forecast_k] [--resume]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--resume", action="store_true", help="reuse model folders already in --out")
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_k"))
    ap.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "figures" / "forecast")
    args = ap.parse_args()

    from dynacell.forecast.frames import BASELINES
    from dynacell.train.forecast import load_forecast_config, train_frames

    base = load_forecast_config(HERE / "forecast_configs" / "frames-tinycnn.yaml")
    movies = [m for m in base.movies if m.name != "mouse-8cell"]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for k in args.k:
        for seed in args.seeds:
            folder = args.out / f"k{k}-s{seed}"
            if args.resume and (folder / "model.yaml").is_file():
                import yaml

                card = yaml.safe_load((folder / "model.yaml").read_text(encoding="utf-8"))
                metrics, fit, cpu = card["metrics"], {"val_mse": card["metrics"]["val_mse"], "epochs": None}, None
            else:
                engine = base.engine.model_copy(update={"seed": seed})
                cfg = base.model_copy(update={"k": k, "name": f"frames-tinycnn-k{k}", "movies": movies, "engine": engine})
                t0 = time.process_time()
                res = train_frames(cfg, folder, overwrite=True, progress=False,
                                   training_command=f"python benchmarks/forecast_error_vs_k.py --k {k} --seeds {seed}")
                metrics, fit, cpu = res["metrics"], res["fit"], time.process_time() - t0
            for name, m in metrics["test"].items():
                rows.append({"k": k, "seed": seed, "movie": name, "n_test": m["n_windows"], "mse": m["mse"],
                             **{f"mse_{b}": m[f"mse_{b}"] for b in BASELINES}, "best_baseline": m["best_baseline"],
                             "ratio_to_best_baseline": m["mse_ratio_to_best_baseline"],
                             "com_px": m["com_error_px"], "val_mse": fit["val_mse"], "cpu_s": cpu})
            print(f"K={k} seed {seed}: val_mse {fit['val_mse']:.4g}, CPU-s {cpu}", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(args.out / "error_vs_k.csv", index=False)
    print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(df["movie"]))
    ks = sorted(df["k"].unique())
    summary = df.groupby(["movie", "k"], sort=False)["ratio_to_best_baseline"].agg(["mean", "min", "max"]).reset_index()
    print("\nratio to the best baseline, mean [min, max] over seeds\n"
          + summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 2.8), squeeze=False)
    for ax, n in zip(axes[0], names, strict=True):
        s = df[df["movie"] == n].groupby("k")["mse"].agg(["mean", "min", "max"]).reindex(ks)
        ax.errorbar(ks, s["mean"], yerr=[s["mean"] - s["min"], s["max"] - s["mean"]], fmt="o-", capsize=3,
                    label=f"TinyCNN ({len(args.seeds)} seeds)")
        first = df[df["movie"] == n].iloc[0]
        for b, style in zip(("persistence", "smoothed_persistence", "flow"), (":", "--", "-."), strict=True):
            ax.axhline(first[f"mse_{b}"], ls=style, lw=1, color="gray", label=b)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(v) for v in ks])
        ax.set_title(n, fontsize=9)
        ax.set_xlabel("K (input frames)")
    axes[0, 0].set_ylabel("test-block MSE")
    axes[0, -1].legend(fontsize=6)
    fig.tight_layout()
    args.figures.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figures / "frames_error_vs_k.png", dpi=80)
    print(f"wrote {args.out / 'error_vs_k.csv'} and {args.figures / 'frames_error_vs_k.png'}")


if __name__ == "__main__":
    main()
