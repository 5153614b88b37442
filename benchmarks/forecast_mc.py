"""Motion-compensated linear next-frame forecast (``frames-mc-linear``) beside the baselines and frames-unet.

Run from the checkout (needs ../shared/data; about 3 CPU minutes with --skip-speed, one thread):

    python benchmarks/forecast_mc.py [--part test|val] [--out /tmp/forecast_mc]

For each movie of benchmarks/forecast_configs/frames-unet.yaml (same down-sampling, normalisation
and time-block split) plus CHO 02 (a movie used nowhere else in forecasting, z maximum projection,
down-sampled by 2), :class:`dynacell.forecast.motion.MotionCompensatedForecaster` (default
settings: K = 4, σ = 0 / 0.7 / 1.5 / 3 px, aligned + unaligned + extrapolated maps, weights summing
to 1, TV-L1 flows (2 warps × 5 iterations) between consecutive frames at half resolution, chained at that
resolution and upsampled) is fitted by
least squares on the movie's own past and scored on a later block:

* ``--part val``: fitted on the training block, scored on the validation block (what the settings
  were chosen on);
* ``--part test`` (default): fitted on the training and validation blocks, scored on the test block.

Split by movie: the weights fitted on the other four movies' fitting windows (each movie weighted by
its number of windows) forecast every window of GOWT1 (``gowt1, weights of the other movies``), beside
``frames-unet-loo-gowt1``. That forecaster uses the cross-movie flow setting
(:data:`dynacell.forecast.motion.CROSS_MOVIE_FLOW`: chained TV-L1 flows at the frames' resolution,
chosen on a leave-one-movie-out validation, ``benchmarks/forecast_mc_cross.py``), so its maps are
formed a second time with those flows. Every row has the four baselines of the same windows, and frames-unet /
frames-unet-loo-gowt1 where they apply. Speed: CPU seconds of one forecast of a 256 × 256 frame
(a 1024 × 1024 frame block-averaged by 4) and of a 1024 × 1024 frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def _metrics(pred: np.ndarray, true: np.ndarray, frames: np.ndarray, px: float | None) -> dict:
    """The figures of :func:`dynacell.forecast.evaluate.evaluate_frames` for precomputed forecasts."""
    from dynacell.metrics.forecasting import center_of_mass_error, frame_errors

    data_range = float(np.percentile(frames, 99.9) - np.percentile(frames, 0.1)) or 1.0
    r = frame_errors(pred, true, data_range=data_range)
    r.update(center_of_mass_error(pred, true, pixel_size_um=px, seed=0))
    return r


def _rows(movie: str, block: str, targets: list[int], frames: np.ndarray, px, preds: dict, models: dict) -> list[dict]:
    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.frames import BASELINES

    base = evaluate_frames(frames, targets, k=4, pixel_size_um=px, seed=0)
    best = base[base["best_baseline"]]["mse"]
    res = {b: base[b] for b in BASELINES}
    truth = frames[targets]
    for name, p in preds.items():
        res[name] = _metrics(p, truth, frames, px)
    for name, fm in models.items():
        res[name] = evaluate_frames(frames, targets, model=fm, pixel_size_um=px, seed=0, baselines=())["model"]
    return [{"movie": movie, "block": block, "n": len(targets), "forecaster": f, "mse": r["mse"], "mae": r["mae"],
             "ssim": r["ssim"], "com_px": r["com_error_px"], "com_px_lo": r["com_error_px_ci"][0],
             "com_px_hi": r["com_error_px_ci"][1], "ratio_to_best_baseline": r["mse"] / best} for f, r in res.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("test", "val"), default="test")
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc"))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--movies", nargs="+", help="only these movies (GOWT1's held-out row needs the four others)")
    args = ap.parse_args()

    import torch

    from dynacell.forecast import from_pretrained
    from dynacell.forecast.motion import CROSS_MOVIE_FLOW, MotionCompensatedForecaster
    from dynacell.train.forecast import MovieSpec, load_forecast_config, load_movie_spec

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")
    specs = {m.name: m for m in cfg.movies}
    specs["cho"] = MovieSpec(name="cho", path=str(DATA / "ctc" / "Fluo-N3DH-CHO" / "02"), z="max", downsample=2)
    order = ["bacteria-phc", "hela", "telomeres", "mouse-8cell", "gowt1", "cho"]  # GOWT1 after the others (LOO)
    order = [n for n in order if not args.movies or n in args.movies]
    unet, unet_loo = from_pretrained("frames-unet"), from_pretrained("frames-unet-loo-gowt1")
    rows, fits, cpu = [], {}, {}
    grams: dict[str, np.ndarray] = {}
    for name in order:
        c0 = time.process_time()
        m = load_movie_spec(specs[name], cfg.k, cfg.val_fraction, cfg.test_fraction)
        f, sp = m["frames"], m["split"]
        fit_t = sp["train"] if args.part == "val" else sp["train"] + sp["val"]
        score_t = sp[args.part]
        mc = MotionCompensatedForecaster()
        others = ("bacteria-phc", "hela", "telomeres", "mouse-8cell")
        cross = MotionCompensatedForecaster(**CROSS_MOVIE_FLOW) if args.part == "test" else None
        loo = None
        if name == "gowt1" and cross is not None and all(n in grams for n in others):
            loo = MotionCompensatedForecaster(name="frames-mc-linear, weights of the other movies", **CROSS_MOVIE_FLOW)
            loo.fit_normal_matrix(sum(grams[n] for n in others), fitted_on={"movies": list(others)})
        gram = np.zeros((mc.n_features + 2,) * 2)
        gram_cross = np.zeros_like(gram)
        own, other = {}, {}
        for t in range(mc.k, score_t[-1] + 1):
            if t not in fit_t and t not in score_t and loo is None:
                continue
            feats = mc.features(f[t - mc.k:t])
            if t in fit_t:
                gram += mc.window_normal_matrix(feats, f[t])
                if cross is not None and name in others:
                    gram_cross += mc.window_normal_matrix(cross.features(f[t - mc.k:t]), f[t])
            if t == score_t[0]:
                mc.fit_normal_matrix(gram, fitted_on={"targets": [fit_t[0], fit_t[-1]], "n_windows": len(fit_t)})
            if t in score_t:
                own[t] = mc.predict_features(feats)
            if loo is not None:
                other[t] = loo.predict(f[None, t - mc.k:t])[0]
        grams[name] = gram_cross
        fits[name] = {"fitted_on": mc.fitted_on, "weights": mc.weights.tolist()}
        models = {"frames-unet": unet} if name != "cho" else {"frames-unet": unet, "frames-unet-loo-gowt1": unet_loo}
        rows += _rows(name, f"{args.part} block", score_t, f, m["pixel_size_um"],
                      {"frames-mc-linear": np.stack([own[t] for t in score_t])}, models)
        if loo is not None:
            all_t = list(range(mc.k, len(f)))
            rows += _rows(name, "all windows, movie held out", all_t, f, m["pixel_size_um"],
                          {loo.name: np.stack([other[t] for t in all_t])}, {"frames-unet-loo-gowt1": unet_loo})
        cpu[name] = time.process_time() - c0
        print(f"{name}: {cpu[name]:.0f} CPU-s", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out / f"frames_mc_{args.part}.csv", index=False)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    summary = {"part": args.part, "cpu_seconds": cpu, "fits": fits}
    if not args.skip_speed:
        rng = np.random.default_rng(0)
        sp_rows = {}
        for side in (256, 1024):
            mc = MotionCompensatedForecaster()
            mc.weights = np.zeros(mc.n_features + 1)
            w = rng.random((1, mc.k, side, side), dtype=np.float32)
            c0 = time.process_time()
            mc.predict(w)
            sp_rows[f"{side}x{side}"] = time.process_time() - c0
        summary["speed_cpu_seconds"] = sp_rows
        print("speed, CPU-s per frame:", sp_rows)
    (args.out / f"summary_{args.part}.json").write_text(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
