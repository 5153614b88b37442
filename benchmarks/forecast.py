"""Forecast benchmark: shipped models beside every baseline on real movies and tracks (docs/forecasting.md).

Run from the checkout (needs ../shared/data):

    python benchmarks/forecast.py [--out /tmp/forecast_bench] [--figures docs/figures/forecast] [--skip-speed]

Frames: the movies and time-block split of benchmarks/forecast_configs/frames-unet.yaml; every
shipped frame model and the four baselines on each movie's test block; roll-outs of 4 steps.
Positions: the held-out lineage trees of positions-2d.yaml / positions-3d.yaml; one-step and
multi-step displacement errors, forecast-mask IoU on bacteria-phc, and how often the true
successor is the detection nearest to the prediction. Speed: one 1024×1024 frame; 10^5 tracks.
Prints the tables and writes CSVs to --out, figures to --figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "forecast_configs"


def _fmt(df: pd.DataFrame) -> str:
    return df.to_string(index=False, float_format=lambda v: f"{v:.4g}")


def frame_figure(movie: dict, model, path: Path) -> None:
    """Inputs, truth, prediction and error maps of the first test window of one movie."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dynacell.forecast.frames import baseline_forecast, make_windows
    from dynacell.metrics.forecasting import center_of_mass

    t = movie["split"]["test"][0]
    x, y = make_windows(movie["frames"], model.k, [t])
    pred = model.predict(x)[0]
    pers = baseline_forecast("persistence", x)[0]
    flow = baseline_forecast("flow", x)[0]
    vmax = float(np.percentile(y, 99.5))
    err_max = float(np.percentile(np.abs(pers - y[0]), 99.5)) or 1.0
    panels = [(x[0, -2], f"input t={t - 2}"), (x[0, -1], f"input t={t - 1}"), (y[0], f"truth t={t}"),
              (pred, f"{model.card.name}"), (np.abs(pred - y[0]), "|model − truth|"),
              (np.abs(pers - y[0]), "|persistence − truth|"), (np.abs(flow - y[0]), "|flow − truth|")]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.2 * len(panels), 2.6))
    com_true = center_of_mass(y[0])
    for ax, (img, title) in zip(axes, panels, strict=True):
        is_err = title.startswith("|")
        ax.imshow(img, cmap="magma" if is_err else "gray", vmin=0, vmax=err_max if is_err else vmax)
        if not is_err:
            c = center_of_mass(img)
            ax.plot(c[1], c[0], "c+", ms=8)
            ax.plot(com_true[1], com_true[0], "yx", ms=6)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{movie['name']}: next frame (cyan + centre of mass, yellow × true centre)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def curve_figure(df: pd.DataFrame, group: str, x: str, y: str, path: Path, ylabel: str, logy: bool = True) -> None:
    """One panel per ``group`` value, one line per forecaster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(df[group]))
    fig, axes = plt.subplots(1, len(groups), figsize=(3.0 * len(groups), 2.8), squeeze=False)
    for ax, g in zip(axes[0], groups, strict=True):
        sub = df[df[group] == g]
        for f, s in sub.groupby("forecaster", sort=False):
            ax.plot(s[x], s[y], marker="o", ms=3, label=f)
        ax.set_title(g, fontsize=9)
        ax.set_xlabel(x)
        if logy:
            ax.set_yscale("log")
    axes[0, 0].set_ylabel(ylabel)
    axes[0, -1].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_bench"))
    ap.add_argument("--figures", type=Path, default=HERE.parent / "docs" / "figures" / "forecast")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-frames", action="store_true")
    ap.add_argument("--skip-positions", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-threads", type=int, nargs="+", default=[1, 2], help="torch threads of the speed table")
    args = ap.parse_args()

    import torch

    from dynacell.forecast import FrameForecaster, available_models, from_pretrained
    from dynacell.forecast import benchmark as fb
    from dynacell.train.forecast import (
        load_forecast_config,
        load_movie_spec,
        position_data,
    )

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    shipped = {n: from_pretrained(n) for n in available_models()}
    frame_models = {n: m for n, m in shipped.items() if isinstance(m, FrameForecaster)}
    summary: dict = {"models": sorted(shipped), "seed": 0}

    if not args.skip_frames and frame_models:
        cfg = load_forecast_config(CONFIGS / "frames-unet.yaml")
        movies = [load_movie_spec(m, cfg.k, cfg.val_fraction, cfg.test_fraction) for m in cfg.movies]
        table = fb.frame_table(frame_models, movies)
        table.to_csv(args.out / "frames.csv", index=False)
        print("\n# Next frame, one step, test blocks (split by time block; seed 0)\n" + _fmt(table))
        floor = fb.noise_floor_table(movies, table)
        floor.to_csv(args.out / "frames_noise_floor.csv", index=False)
        print("\n# Next frame: noise floor (σ² of the target frames; a perfect forecaster's MSE)\n" + _fmt(floor))
        curves = fb.frame_horizon_curves(frame_models, movies, steps=4)
        curves.to_csv(args.out / "frames_horizon.csv", index=False)
        print("\n# Next frame, roll-out MSE per step\n" + _fmt(curves.pivot_table(
            index=["movie", "forecaster"], columns="step", values="mse", sort=False).reset_index()))
        curve_figure(curves, "movie", "step", "mse", args.figures / "frames_horizon.png", "MSE")
        default = frame_models.get("frames-unet", next(iter(frame_models.values())))
        for m in movies:
            if m["name"] in ("gowt1", "bacteria-phc", "telomeres"):
                frame_figure(m, default, args.figures / f"frames_{m['name']}.png")

    if not args.skip_positions:
        for cfg_name in ("positions-2d", "positions-3d"):
            if cfg_name not in shipped:
                continue
            cfg = load_forecast_config(CONFIGS / f"{cfg_name}.yaml")
            model = shipped[cfg_name]
            data = position_data(cfg)
            table, raw = fb.position_table(model, data)
            table.to_csv(args.out / f"{cfg_name}.csv", index=False)
            print(f"\n# Positions ({cfg_name}), one step ahead, held-out trees\n" + _fmt(table))
            summary[cfg_name] = {k: {"kalman_params": v["kalman_params"], "n_test": v["n_test"]} for k, v in raw.items()}
            curves = fb.position_horizon_curves(model, cfg.datasets, cfg, horizon=5)
            curves.to_csv(args.out / f"{cfg_name}_horizon.csv", index=False)
            print(f"\n# Positions ({cfg_name}), error (µm or px) per horizon\n" + _fmt(curves.pivot_table(
                index=["dataset", "forecaster"], columns="step", values="error_um", sort=False).reset_index()))
            curve_figure(curves, "dataset", "step", "error_um", args.figures / f"{cfg_name}_horizon.png",
                         "error (µm; px for mdck, bacteria)", logy=False)
            near = fb.nearest_successor_table(model, data)
            near.to_csv(args.out / f"{cfg_name}_nearest.csv", index=False)
            print(f"\n# Linking proxy ({cfg_name}): true successor = nearest detection to the forecast\n" + _fmt(near))
            if "bacteria-phc" in data:
                spec = next(s for s in cfg.datasets if s.name == "bacteria-phc")
                iou = fb.mask_iou_table(model, spec.path, data["bacteria-phc"])
                iou.to_csv(args.out / "mask_iou_bacteria.csv", index=False)
                print("\n# Forecast-mask IoU, bacteria-phc held-out trees\n" + _fmt(iou))

    if not args.skip_speed and frame_models and "positions-2d" in shipped:
        sp = pd.concat([fb.speed_table(frame_models, shipped["positions-2d"], threads=t) for t in args.speed_threads])
        sp.to_csv(args.out / "speed.csv", index=False)
        print("\n# Speed (wall and CPU seconds, best of 3; load_avg = the machine's 1-minute load)\n" + _fmt(sp))
    summary["seconds"] = time.perf_counter() - t0
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    print(f"\nwrote {args.out} and figures in {args.figures} ({summary['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
