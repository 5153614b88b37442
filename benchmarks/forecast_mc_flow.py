"""How ``frames-mc-linear`` estimates its optical flow: cheaper flows chosen on the validation blocks (issue 14).

Run from the checkout (needs ../shared/data; one thread; 46–170 CPU-s per setting measured, the
full-resolution direct TV-L1 setting about 10 CPU minutes):

    python benchmarks/forecast_mc_flow.py [--settings NAME ...] [--movies NAME ...] [--out DIR]

For each flow setting (method, resolution, direct or chained flows) and each movie of
benchmarks/forecast_configs/frames-unet.yaml, :class:`dynacell.forecast.motion.MotionCompensatedForecaster`
(weights summing to 1) is fitted on the training block and scored on the validation block: MSE over
the best of the four baselines on the same windows, and the centre-of-mass error (px, bootstrap
95 % CI, seed 0). The CPU seconds of each movie's windows (flows, maps, fit, forecasts) are printed
too. The test block is never read.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from forecast_mc import HERE, _metrics

#: Candidate flow settings (keyword arguments of MotionCompensatedForecaster); ``flow_kwargs={}`` is
#: scikit-image's TV-L1 defaults (5 warps × 10 iterations), the default forecaster uses 2 × 5.
SETTINGS = {
    "tvl1 direct, full res (previous default)": {"flow_method": "tvl1", "flow_downsample": 1, "flow_chain": False, "flow_kwargs": {}},
    "tvl1 chained, full res": {"flow_method": "tvl1", "flow_downsample": 1, "flow_chain": True, "flow_kwargs": {}},
    "tvl1 chained, flow at 1/2": {"flow_method": "tvl1", "flow_downsample": 2, "flow_chain": True, "flow_compose_coarse": False,
                                  "flow_kwargs": {}},
    "tvl1 direct, flow at 1/2": {"flow_method": "tvl1", "flow_downsample": 2, "flow_chain": False, "flow_kwargs": {}},
    "tvl1 chained, flow at 1/4": {"flow_method": "tvl1", "flow_downsample": 4, "flow_chain": True, "flow_compose_coarse": False,
                                  "flow_kwargs": {}},
    "ilk chained, flow at 1/2": {"flow_method": "ilk", "flow_downsample": 2, "flow_chain": True, "flow_compose_coarse": False},
    "tvl1 2 warps x 5 iterations, chained, full res": {"flow_method": "tvl1", "flow_downsample": 1, "flow_chain": True,
                                                       "flow_kwargs": {"num_warp": 2, "num_iter": 5}},
    "tvl1 2 warps x 5 iterations, chained, flow at 1/2": {"flow_method": "tvl1", "flow_downsample": 2, "flow_chain": True,
                                                          "flow_compose_coarse": False,
                                                          "flow_kwargs": {"num_warp": 2, "num_iter": 5}},
    "tvl1 3 warps x 5 iterations, chained, flow at 1/2": {"flow_method": "tvl1", "flow_downsample": 2, "flow_chain": True,
                                                          "flow_compose_coarse": False,
                                                          "flow_kwargs": {"num_warp": 3, "num_iter": 5}},
    "tvl1 2 warps x 5 iterations, chained at 1/2 then upsampled": {
        "flow_method": "tvl1", "flow_downsample": 2, "flow_chain": True, "flow_compose_coarse": True,
        "flow_kwargs": {"num_warp": 2, "num_iter": 5}},
}
MOVIES = ("bacteria-phc", "gowt1", "hela", "telomeres", "mouse-8cell")


def score(spec, cfg, settings: dict) -> dict:
    """Fit on the training block, score on the validation block; MSE ratio, CoM error, CPU-s."""
    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.frames import BASELINES
    from dynacell.forecast.motion import MotionCompensatedForecaster
    from dynacell.train.forecast import load_movie_spec

    m = load_movie_spec(spec, cfg.k, cfg.val_fraction, cfg.test_fraction)
    f, sp = m["frames"], m["split"]
    base = evaluate_frames(f, sp["val"], k=cfg.k, pixel_size_um=m["pixel_size_um"], seed=0)
    best = min(base[b]["mse"] for b in BASELINES)
    c0 = time.process_time()
    mc = MotionCompensatedForecaster(**settings)
    gram = np.zeros((mc.n_features + 2,) * 2)
    for t in sp["train"]:
        gram += mc.window_normal_matrix(mc.features(f[t - mc.k:t]), f[t])
    mc.fit_normal_matrix(gram)
    pred = mc.predict(np.stack([f[t - mc.k:t] for t in sp["val"]]))
    cpu = time.process_time() - c0
    r = _metrics(pred, f[sp["val"]], f, m["pixel_size_um"])
    return {"mse_ratio": r["mse"] / best, "com_px": r["com_error_px"], "com_px_ci": list(r["com_error_px_ci"]),
            "persistence_com_px": base["persistence"]["com_error_px"], "cpu_s": cpu,
            "windows": len(sp["train"]) + len(sp["val"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), help="default: all")
    ap.add_argument("--movies", nargs="+", choices=MOVIES)
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc_flow"))
    args = ap.parse_args()

    import torch

    from dynacell.train.forecast import load_forecast_config

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")
    specs = {m.name: m for m in cfg.movies}
    rows = []
    for name in args.settings or list(SETTINGS):
        for movie in args.movies or MOVIES:
            r = score(specs[movie], cfg, SETTINGS[name])
            rows.append({"setting": name, "movie": movie, **r})
            print(json.dumps(rows[-1]), flush=True)
        pd.DataFrame(rows).to_csv(args.out / "flow_settings.csv", index=False)
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.pivot(index="setting", columns="movie", values="mse_ratio").assign(
        mean=lambda d: d.mean(axis=1)).round(3).to_string())
    print(table.pivot(index="setting", columns="movie", values="com_px").round(3).to_string())
    print(table.groupby("setting")["cpu_s"].sum().round(0).to_string())


if __name__ == "__main__":
    main()
