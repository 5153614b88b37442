"""``frames-mc-linear`` with and without weights summing to 1, on the validation blocks only (issue 14).

Run from the checkout (needs ../shared/data; about 8 CPU minutes, one thread):

    python benchmarks/forecast_mc_sum_to_one.py [MOVIE ...]

Fits both variants on the training block's normal matrix and prints, per movie, the MSE divided by
the best baseline's and the centre-of-mass error (px, 95 % CI) on the validation block, beside
persistence's CoM error and the weight sums. The test block is never read.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from forecast_mc import HERE, _metrics

from dynacell.forecast.evaluate import evaluate_frames
from dynacell.forecast.frames import BASELINES
from dynacell.forecast.motion import MotionCompensatedForecaster
from dynacell.train.forecast import load_forecast_config, load_movie_spec

MOVIES = ("mouse-8cell", "gowt1", "hela", "telomeres", "bacteria-phc")


def main() -> None:
    cfg = load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")
    specs = {m.name: m for m in cfg.movies}
    for name in sys.argv[1:] or MOVIES:
        c0 = time.process_time()
        m = load_movie_spec(specs[name], cfg.k, cfg.val_fraction, cfg.test_fraction)
        f, sp = m["frames"], m["split"]
        # the flow as it was when this choice was made (direct TV-L1 at the frames' resolution)
        flow = {"flow_method": "tvl1", "flow_downsample": 1, "flow_chain": False}
        fits = {"unconstrained": MotionCompensatedForecaster(sum_to_one=False, **flow),
                "sum_to_one": MotionCompensatedForecaster(sum_to_one=True, **flow)}
        mc = fits["unconstrained"]
        gram = np.zeros((mc.n_features + 2,) * 2)
        for t in sp["train"]:
            if t >= mc.k:
                gram += mc.window_normal_matrix(mc.features(f[t - mc.k:t]), f[t])
        for fm in fits.values():
            fm.fit_normal_matrix(gram)
        val = sp["val"]
        base = evaluate_frames(f, val, k=mc.k, pixel_size_um=m["pixel_size_um"], seed=0)
        best = min(base[b]["mse"] for b in BASELINES)
        out = {"persistence_com": base["persistence"]["com_error_px"], "best_mse": best}
        feats = [mc.features(f[t - mc.k:t]) for t in val]
        for key, fm in fits.items():
            r = _metrics(np.stack([fm.predict_features(x) for x in feats]), f[val], f, m["pixel_size_um"])
            out[key] = {"mse_ratio": r["mse"] / best, "com": r["com_error_px"], "com_ci": r["com_error_px_ci"],
                        "wsum": float(fm.weights[:-1].sum())}
        print(name, json.dumps(out), f"{time.process_time() - c0:.0f} CPU-s", flush=True)


if __name__ == "__main__":
    main()
