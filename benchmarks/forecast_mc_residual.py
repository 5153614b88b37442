"""A learned residual on top of ``frames-mc-linear`` (issue 14, step 3): train, select on validation, test once.

Run from the checkout (needs ../shared/data; one thread):

    python benchmarks/forecast_mc_residual.py prepare [--cache DIR]          # ~3 CPU min: mc-linear inputs of every window
    python benchmarks/forecast_mc_residual.py train NAME [--holdout gowt1] [--width 12 --levels 2 --epochs 16 ...]
    python benchmarks/forecast_mc_residual.py test NAME                      # the test blocks, once, after choosing

Data and split: the five movies of benchmarks/forecast_configs/frames-unet.yaml (same down-sampling,
per-movie normalisation and time-block split: train / validation 15 % / test 20 %). ``prepare``
computes for every window of each movie the ``frames-mc-linear`` forecast (default settings) and
the 4 past frames aligned onto the last one (:func:`dynacell.forecast.residual.mc_residual_inputs`):
for training and validation windows with the least-squares weights fitted on the training block,
for test windows with the weights fitted on the training + validation blocks (as
``benchmarks/forecast_mc.py`` measures ``frames-mc-linear``), so a window's inputs never read a
frame at or after its target, and the weights never read a frame of the block they forecast (except
the training windows, whose weights are fitted on them).

``train`` fits :class:`dynacell.models.forecast_residual.McResidualUNet` (zero-initialised output:
the untrained network is ``frames-mc-linear``) with :func:`dynacell.train.forecast.train_mc_residual`
(the project's engine) on random 64 × 64 patches of the training windows of the movies pooled
(``--holdout``: leave one movie out entirely), each window's squared error weighted by 1 / its
movie's ``frames-mc-linear`` training MSE; the epoch kept is that with the lowest mean over movies
of validation MSE / ``frames-mc-linear`` validation MSE (``val_ratio``; 1 = no gain). It then
prints that ratio per movie. ``test`` scores a trained network on the test blocks (and, for a
network trained without a movie, on that movie's test block) beside the four baselines and
``frames-mc-linear``: MSE, ratio to the best baseline, centre-of-mass error with its bootstrap 95 %
interval (seed 0).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MOVIES = ("bacteria-phc", "gowt1", "hela", "telomeres", "mouse-8cell")


def _config():
    from dynacell.train.forecast import load_forecast_config

    return load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")


def prepare(cache: Path) -> None:
    """Write ``cache/<movie>.npz``: inputs (N, K + 1, Y, X), targets (N, Y, X), target frames, blocks."""
    from dynacell.forecast.motion import MotionCompensatedForecaster
    from dynacell.train.forecast import load_movie_spec

    cfg = _config()
    cache.mkdir(parents=True, exist_ok=True)
    for spec in cfg.movies:
        c0 = time.process_time()
        m = load_movie_spec(spec, cfg.k, cfg.val_fraction, cfg.test_fraction)
        f, sp = m["frames"], m["split"]
        mc = MotionCompensatedForecaster()
        k = mc.k
        ts = list(range(k, len(f)))
        al, fl = {}, {}
        g_tr = np.zeros((mc.n_features + 2,) * 2)
        g_va = np.zeros_like(g_tr)
        for t in ts:
            w = f[t - k:t]
            al[t], fl[t] = mc.align(w)
            if t in sp["train"] or t in sp["val"]:
                g = mc.window_normal_matrix(mc.features_aligned(w, al[t], fl[t]), f[t])
                if t in sp["train"]:
                    g_tr += g
                else:
                    g_va += g
        mc_tr = MotionCompensatedForecaster().fit_normal_matrix(g_tr)
        mc_tv = MotionCompensatedForecaster().fit_normal_matrix(g_tr + g_va)
        xs, blocks = [], []
        for t in ts:
            fc = mc_tv if t in sp["test"] else mc_tr
            xs.append(np.concatenate([fc.predict_aligned(f[t - k:t], al[t], fl[t])[None], al[t]]))
            blocks.append("test" if t in sp["test"] else "val" if t in sp["val"] else "train")
        np.savez(cache / f"{spec.name}.npz", x=np.stack(xs).astype(np.float32), y=f[ts].astype(np.float32),
                 t=np.array(ts), block=np.array(blocks))
        print(f"{spec.name}: {f.shape}, {time.process_time() - c0:.0f} CPU-s", flush=True)


def _load(cache: Path) -> dict[str, dict[str, np.ndarray]]:
    return {n: dict(np.load(cache / f"{n}.npz")) for n in MOVIES}


def _items(d: dict[str, np.ndarray], block: str, weight: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    sel = np.flatnonzero(d["block"] == block)
    return [(d["x"][i], d["y"][i], weight) for i in sel]


def _mc_mse(d: dict[str, np.ndarray], block: str) -> float:
    sel = d["block"] == block
    return float(np.mean((d["x"][sel, 0] - d["y"][sel]) ** 2))


def _net_predict(net, x: np.ndarray) -> np.ndarray:
    import torch

    net.eval()
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + 1]))[:, 0].numpy() for i in range(len(x))])


def train(args) -> None:
    import torch

    from dynacell.models.forecast_residual import McResidualUNet
    from dynacell.train.engine import EngineConfig
    from dynacell.train.forecast import train_mc_residual

    torch.set_num_threads(1)
    data = _load(args.cache)
    used = [n for n in MOVIES if n not in args.holdout]
    train_items, val_items = [], []
    for n in used:
        d = data[n]
        train_items += _items(d, "train", 1.0 / _mc_mse(d, "train"))
        n_val = int(np.sum(d["block"] == "val"))
        val_items += _items(d, "val", 1.0 / (_mc_mse(d, "val") * n_val * len(used)))
    engine = EngineConfig(max_epochs=args.epochs, patience=args.patience, seed=args.seed, num_threads=1,
                          accelerator="cpu", devices=1, monitor="val_ratio", mode="min")
    c0 = time.process_time()
    fit = train_mc_residual(train_items, val_items, k=4, width=args.width, levels=args.levels, patch=args.patch,
                            patches_per_epoch=args.patches, batch_size=args.batch, lr=args.lr, engine=engine,
                            progress=False)
    cpu = time.process_time() - c0
    net = fit.module.net
    out = args.out / args.name
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / "weights.pt")
    fit.history.to_csv(out / "history.csv", index=False)
    per_movie = {}
    for n in MOVIES:
        d = data[n]
        sel = d["block"] == "val"
        pred = _net_predict(net, d["x"][sel])
        per_movie[n] = float(np.mean((pred - d["y"][sel]) ** 2)) / _mc_mse(d, "val")
    summary = {"name": args.name, "holdout": args.holdout, "width": args.width, "levels": args.levels,
               "epochs": args.epochs, "patches": args.patches, "patch": args.patch, "batch": args.batch,
               "lr": args.lr, "seed": args.seed, "n_parameters": sum(p.numel() for p in net.parameters()),
               "best_epoch": fit.best_epoch, "epochs_run": fit.epochs_run, "val_ratio": fit.best_score,
               "val_ratio_per_movie": per_movie, "train_cpu_s": cpu, "train_wall_s": fit.seconds,
               "model_kwargs": {"k": 4, "width": args.width, "levels": args.levels}}
    assert isinstance(net, McResidualUNet)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def test(args) -> None:
    import torch

    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.frames import BASELINES
    from dynacell.metrics.forecasting import center_of_mass_error, frame_errors
    from dynacell.models.forecast_residual import McResidualUNet
    from dynacell.train.forecast import load_movie_spec

    torch.set_num_threads(1)
    run = args.out / args.name
    summary = json.loads((run / "summary.json").read_text())
    net = McResidualUNet(**summary["model_kwargs"])
    net.load_state_dict(torch.load(run / "weights.pt", weights_only=True))
    data = _load(args.cache)
    cfg = _config()
    rows = []
    for spec in cfg.movies:
        m = load_movie_spec(spec, cfg.k, cfg.val_fraction, cfg.test_fraction)
        f, px, d = m["frames"], m["pixel_size_um"], data[spec.name]
        sel = d["block"] == "test"
        targets = [int(t) for t in d["t"][sel]]
        base = evaluate_frames(f, targets, k=4, pixel_size_um=px, seed=0)
        best = base[base["best_baseline"]]["mse"]
        data_range = float(np.percentile(f, 99.9) - np.percentile(f, 0.1)) or 1.0
        preds = {"frames-mc-linear": d["x"][sel, 0], "frames-mc-residual": _net_predict(net, d["x"][sel])}
        res = {b: base[b] for b in BASELINES}
        for name, p in preds.items():
            r = frame_errors(p, d["y"][sel], data_range=data_range)
            r.update(center_of_mass_error(p, d["y"][sel], pixel_size_um=px, seed=0))
            res[name] = r
        for name, r in res.items():
            rows.append({"movie": spec.name, "held_out_movie": spec.name in summary["holdout"], "n": len(targets),
                         "forecaster": name, "mse": r["mse"], "ratio_to_best_baseline": r["mse"] / best,
                         "com_px": r["com_error_px"], "com_px_ci": list(r["com_error_px_ci"])})
    (run / "test.json").write_text(json.dumps(rows, indent=1, default=float))
    for r in rows:
        print(f"{r['movie']:13s} {r['forecaster']:22s} mse {r['mse']:.3e} ratio {r['ratio_to_best_baseline']:.3f} "
              f"CoM {r['com_px']:.2f} [{r['com_px_ci'][0]:.2f}, {r['com_px_ci'][1]:.2f}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("prepare", "train", "test"))
    ap.add_argument("name", nargs="?", default="pooled")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/forecast_mc_residual/cache"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc_residual"))
    ap.add_argument("--holdout", nargs="*", default=[])
    ap.add_argument("--width", type=int, default=12)
    ap.add_argument("--levels", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--patches", type=int, default=256)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.step == "prepare":
        prepare(args.cache)
    elif args.step == "train":
        train(args)
    else:
        test(args)


if __name__ == "__main__":
    main()
