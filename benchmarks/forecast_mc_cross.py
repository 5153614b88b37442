"""Why ``frames-mc-linear`` loses more across movies with half-resolution flows (issue 14): a cross-movie validation.

Run from the checkout (needs ../shared/data; about 5 CPU minutes, one thread):

    python benchmarks/forecast_mc_cross.py [--settings NAME ...] [--out DIR] [--gowt1]

For each flow setting and each of bacteria-phc, HeLa, telomeres and mouse-8cell (the four movies
whose weights forecast GOWT1 in ``benchmarks/forecast_mc.py``), the normal matrices of
:class:`dynacell.forecast.motion.MotionCompensatedForecaster` (weights summing to 1) are formed on the
training and on the validation windows (time-block split of
benchmarks/forecast_configs/frames-unet.yaml). The test blocks are never read. Reported:

* the weights fitted on the four movies' training + validation windows (the weights that forecast
  GOWT1 in the held-out row), summed by kind of map (aligned / unaligned / shifted × σ);
* a **leave-one-movie-out validation**: for each of the four movies, weights fitted on the other
  three movies' training + validation windows forecast the held-out movie's training + validation
  windows; MSE (from the normal matrix: ``[w, −1] G [w, −1]ᵀ``) over the best of the four baselines
  of the same windows, and over the movie's own fit (training block, scored on its validation
  block) for comparison.

``--gowt1`` also forms GOWT1's matrices over all its windows (as in the held-out row) to explain the
held-out figure; they are for diagnosis only and are not used to choose anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from forecast_mc import HERE
from forecast_mc_flow import SETTINGS

MOVIES = ("bacteria-phc", "hela", "telomeres", "mouse-8cell")


def grams(spec, cfg, settings: dict, *, all_windows: bool = False) -> dict:
    """Normal matrices of the training and validation windows (or of all windows) and the best baseline's MSE."""
    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.frames import BASELINES
    from dynacell.forecast.motion import MotionCompensatedForecaster
    from dynacell.train.forecast import load_movie_spec

    m = load_movie_spec(spec, cfg.k, cfg.val_fraction, cfg.test_fraction)
    f, sp = m["frames"], m["split"]
    parts = {"all": list(range(cfg.k, len(f)))} if all_windows else {"train": sp["train"], "val": sp["val"]}
    mc = MotionCompensatedForecaster(**settings)
    out = {"cpu_s": 0.0}
    for part, tt in parts.items():
        c0 = time.process_time()
        g = np.zeros((mc.n_features + 2,) * 2)
        for t in tt:
            g += mc.window_normal_matrix(mc.features(f[t - mc.k:t]), f[t])
        out["cpu_s"] += time.process_time() - c0
        base = evaluate_frames(f, tt, k=cfg.k, seed=0)
        out[part] = {"gram": g, "n": len(tt), "best_mse": min(base[b]["mse"] for b in BASELINES),
                     "best": base["best_baseline"]}
    return out


def mse(gram: np.ndarray, w: np.ndarray, n: int) -> float:
    """Mean over windows of the per-pixel MSE of weights ``w`` (F + 1, constant last) from a summed normal matrix."""
    v = np.r_[w, -1.0]
    return float(v @ gram @ v) / n


def by_kind(w: np.ndarray, mc) -> dict:
    """Sum of the weights per kind of map and per σ (the order of MotionCompensatedForecaster.features)."""
    k, out, i = mc.k, {}, 0
    for s in mc.sigmas_px:
        for kind, n in (("aligned", k), ("unaligned", k - 1), ("shift v1", k), ("shift v2/2", k)):
            out[f"{kind}, s={s}"] = float(w[i:i + n].sum())
            i += n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS),
                    default=["tvl1 chained, full res", "tvl1 chained, flow at 1/2"])
    ap.add_argument("--gowt1", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc_cross"))
    args = ap.parse_args()

    import torch

    from dynacell.forecast.motion import MotionCompensatedForecaster
    from dynacell.train.forecast import load_forecast_config

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")
    specs = {m.name: m for m in cfg.movies}
    report: dict = {}
    for name in args.settings:
        mc = MotionCompensatedForecaster(**SETTINGS[name])
        g = {mv: grams(specs[mv], cfg, SETTINGS[name]) for mv in MOVIES}
        np.savez(args.out / f"grams_{name.replace(' ', '_').replace('/', '')}.npz",
                 **{f"{mv}_{p}": g[mv][p]["gram"] for mv in MOVIES for p in ("train", "val")})
        tv = {mv: g[mv]["train"]["gram"] + g[mv]["val"]["gram"] for mv in MOVIES}
        w4 = mc.fit_normal_matrix(sum(tv.values())).weights.copy()
        rep = {"cpu_s": {mv: g[mv]["cpu_s"] for mv in MOVIES}, "weights_four": w4.tolist(),
               "weights_four_by_kind": by_kind(w4, mc), "loo": {}, "own_val": {}}
        for mv in MOVIES:
            w = mc.fit_normal_matrix(sum(tv[o] for o in MOVIES if o != mv)).weights
            n = g[mv]["train"]["n"] + g[mv]["val"]["n"]
            best = (g[mv]["train"]["best_mse"] * g[mv]["train"]["n"] + g[mv]["val"]["best_mse"] * g[mv]["val"]["n"]) / n
            rep["loo"][mv] = {"mse": mse(tv[mv], w, n), "best_baseline_mse": best,
                              "ratio": mse(tv[mv], w, n) / best}
            wo = mc.fit_normal_matrix(g[mv]["train"]["gram"]).weights
            rep["own_val"][mv] = mse(g[mv]["val"]["gram"], wo, g[mv]["val"]["n"]) / g[mv]["val"]["best_mse"]
        if args.gowt1:
            gg = grams(specs["gowt1"], cfg, SETTINGS[name], all_windows=True)["all"]
            np.save(args.out / f"gowt1_all_{name.replace(' ', '_').replace('/', '')}.npy", gg["gram"])
            rep["gowt1_all_windows_diagnosis"] = {
                "ratio_weights_four": mse(gg["gram"], w4, gg["n"]) / gg["best_mse"], "best_mse": gg["best_mse"],
                "leave_one_of_four_out": {
                    mv: mse(gg["gram"], mc.fit_normal_matrix(sum(tv[o] for o in MOVIES if o != mv)).weights,
                            gg["n"]) / gg["best_mse"] for mv in MOVIES},
                "each_movie_alone": {
                    mv: mse(gg["gram"], mc.fit_normal_matrix(tv[mv]).weights, gg["n"]) / gg["best_mse"]
                    for mv in MOVIES},
                "own_fit_all_windows_in_sample": mse(gg["gram"], mc.fit_normal_matrix(gg["gram"]).weights,
                                                     gg["n"]) / gg["best_mse"]}
        report[name] = rep
        print(name, json.dumps({k: v for k, v in rep.items() if k != "weights_four"}, indent=1), flush=True)
        (args.out / "cross.json").write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
