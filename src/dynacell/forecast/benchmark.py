"""Forecast benchmark: every model beside every baseline on the same held-out frames and tracks.

Used by ``benchmarks/forecast.py`` and ``dynacell forecast benchmark``. Frames: each movie of a
frame model's training configuration is split by time block exactly as in training, and the test
block (or, for a movie the model never saw, every window) is forecast one step ahead and rolled
out several steps. Positions: the held-out lineage trees of a position model's configuration.
Speed: a 1024 × 1024 frame, and batched position forecasts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.forecast.evaluate import evaluate_frames, evaluate_positions
from dynacell.forecast.frames import BASELINES, baseline_forecast, rollout
from dynacell.forecast.positions import (
    POSITION_BASELINES,
    baseline_positions,
    fit_kalman,
    fit_prw_kalman,
    history_windows,
)

__all__ = [
    "frame_horizon_curves",
    "frame_table",
    "mask_iou_table",
    "nearest_successor_table",
    "noise_floor_table",
    "position_horizon_curves",
    "position_table",
    "speed_table",
]

logger = logging.getLogger(__name__)


def frame_table(models: dict[str, Any], movies: list[dict[str, Any]], *, seed: int = 0) -> pd.DataFrame:
    """One-step next-frame errors of each model and of the four baselines on each movie's held-out frames.

    Parameters
    ----------
    models : dict
        Name → :class:`~dynacell.forecast.FrameForecaster`.
    movies : list of dict
        From :func:`dynacell.train.forecast.load_movie_spec` (normalised frames, split, pixel size).
    seed : int
        Bootstrap seed.

    Returns
    -------
    pandas.DataFrame
        Rows ``movie, forecaster, block, n, mse, mae, ssim, com_px, com_px_lo, com_px_hi, com_um,
        ratio_to_best_baseline``. A model's block is ``unseen movie`` when the movie was held out of
        its training (all windows), else ``test block``; the baselines are evaluated on the test block.
    """
    rows = []
    for m in movies:
        base = evaluate_frames(m["frames"], m["split"]["test"], k=max(mm.k for mm in models.values()),
                               pixel_size_um=m["pixel_size_um"], seed=seed)
        best = base[base["best_baseline"]]["mse"]
        for b in BASELINES:
            r = base[b]
            rows.append(_frame_row(m["name"], b, "test block", base["n_windows"], r, best))
        for name, fm in models.items():
            held = m["name"] in fm.card.split.get("holdout_movies", [])
            res = evaluate_frames(m["frames"], m["split"]["test"], model=fm, pixel_size_um=m["pixel_size_um"],
                                  seed=seed, baselines=())
            rows.append(_frame_row(m["name"], name, "test block (unseen movie)" if held else "test block",
                                   res["n_windows"], res["model"], best))
    return pd.DataFrame(rows)


def _frame_row(movie: str, name: str, block: str, n: int, r: dict[str, Any], best: float) -> dict[str, Any]:
    return {"movie": movie, "forecaster": name, "block": block, "n": n, "mse": r["mse"], "mae": r["mae"],
            "ssim": r["ssim"], "com_px": r["com_error_px"], "com_px_lo": r["com_error_px_ci"][0],
            "com_px_hi": r["com_error_px_ci"][1], "com_um": r["com_error_um"], "ratio_to_best_baseline": r["mse"] / best}


def noise_floor_table(movies: list[dict[str, Any]], table: pd.DataFrame) -> pd.DataFrame:
    """How much of the next-frame error is noise that no forecaster can predict.

    The target frame's own noise (variance σ²) is independent of the past, so even a forecaster that
    knew the noise-free next frame exactly would have an MSE of σ² — the *noise floor*. σ² is
    estimated per test target with :func:`dynacell.metrics.forecasting.noise_variance`
    (Immerkær 1996: from spatial high frequencies; too high on frames textured at the pixel scale,
    too low when the noise itself is spatially correlated), and bounded from above in time: two
    frames of a static scene differ by 2σ², so σ² ≤ MSE(persistence) / 2, and the second
    difference ``f(t) − 2 f(t−1) + f(t−2)`` of a scene changing linearly in time has variance 6σ², so
    σ² ≤ mean(second difference²) / 6; the smaller of the two is the temporal bound.

    Parameters
    ----------
    movies : list of dict
        From :func:`dynacell.train.forecast.load_movie_spec`.
    table : pandas.DataFrame
        :func:`frame_table` of the same movies.

    Returns
    -------
    pandas.DataFrame
        Rows ``movie, n, noise_var, persistence_half, second_difference_sixth, best_baseline,
        mse_best_baseline, floor_ratio`` (σ² — the spatial estimate, or the temporal bound where
        that is lower — over the best baseline's MSE: the lowest ratio any forecaster can reach),
        ``floor_ratio_upper`` (the same with the temporal bound), ``best_model``,
        ``best_model_ratio``, ``reducible_removed`` (the share of the best baseline's error above the
        noise floor that the best model removes).
    """
    from dynacell.metrics.forecasting import noise_variance

    rows = []
    for m in movies:
        sub = table[(table["movie"] == m["name"]) & (table["block"] == "test block")]
        base = sub[sub["forecaster"].isin(BASELINES)]
        best = base.loc[base["mse"].idxmin()]
        models = sub[~sub["forecaster"].isin(BASELINES)]
        top = models.loc[models["mse"].idxmin()] if len(models) else None
        f, test = m["frames"], [t for t in m["split"]["test"] if t >= 2]
        var = float(noise_variance(f[m["split"]["test"]]).mean())
        pers = float(base.loc[base["forecaster"] == "persistence", "mse"].iloc[0])
        d2 = float(np.mean([np.mean((f[t].astype(np.float64) - 2 * f[t - 1] + f[t - 2]) ** 2) for t in test])) / 6
        upper = min(pers / 2, d2)
        row = {"movie": m["name"], "n": int(best["n"]), "noise_var": var, "persistence_half": pers / 2,
               "second_difference_sixth": d2, "best_baseline": best["forecaster"],
               "mse_best_baseline": float(best["mse"]), "floor_ratio": min(var, upper) / float(best["mse"]),
               "floor_ratio_upper": upper / float(best["mse"])}
        if top is not None:
            row.update(best_model=top["forecaster"], best_model_ratio=float(top["mse"]) / float(best["mse"]),
                       reducible_removed=(float(best["mse"]) - float(top["mse"])) / max(float(best["mse"]) - min(var, upper),
                                                                                 1e-12))
        rows.append(row)
    return pd.DataFrame(rows)


def frame_horizon_curves(models: dict[str, Any], movies: list[dict[str, Any]], steps: int = 4) -> pd.DataFrame:
    """MSE of multi-step roll-outs (predictions fed back) from the start of each test block.

    Every forecaster, baselines included, is rolled out the same way from the K frames before the
    first test frame; rows ``movie, forecaster, step, mse``.

    Parameters
    ----------
    models : dict
        Name → frame forecaster (``k`` and ``rollout(window, n)``); the baselines are added.
    movies : list of dict
        ``name``, normalised ``frames`` and ``split`` (``split["test"]``: the test frames' indices).
    steps : int
        Roll-out length in frames.

    Returns
    -------
    pandas.DataFrame
        One row per movie, forecaster and step.
    """
    rows = []
    k = max(mm.k for mm in models.values())
    for m in movies:
        t0 = m["split"]["test"][0]
        n = min(steps, len(m["frames"]) - t0)
        window = m["frames"][t0 - k:t0]
        truth = m["frames"][t0:t0 + n]
        preds = {b: rollout(lambda w, b=b: baseline_forecast(b, w), window, len(window), n) for b in BASELINES}
        for name, fm in models.items():
            preds[name] = fm.rollout(window, n)
        for name, p in preds.items():
            for s in range(n):
                rows.append({"movie": m["name"], "forecaster": name, "step": s + 1,
                             "mse": float(np.mean((p[s] - truth[s]) ** 2))})
    return pd.DataFrame(rows)


def position_table(model, data: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One-step displacement errors (µm) of a position model and the baselines on held-out trees.

    Parameters
    ----------
    model : PositionForecaster
    data : dict
        From :func:`dynacell.train.forecast.position_data`.

    Returns
    -------
    table : pandas.DataFrame
        Rows ``dataset, forecaster, n, one_step_um, ratio_to_best_baseline``.
    raw : dict
        The :func:`~dynacell.forecast.evaluate.evaluate_positions` result per data set.
    """
    rows, raw = [], {}
    for name, d in data.items():
        res = evaluate_positions(d["windows"], d["parts"], model=model, horizon=1)
        raw[name] = res
        best = res[res["best_baseline"]]["one_step_um"]
        for f in ("model", *POSITION_BASELINES):
            rows.append({"dataset": name, "forecaster": model.card.name if f == "model" else f, "n": res["n_test"],
                         "one_step_um": res[f]["one_step_um"], "ratio_to_best_baseline": res[f]["one_step_um"] / best})
    return pd.DataFrame(rows), raw


def position_horizon_curves(model, specs: Sequence[Any], config, horizon: int = 5) -> pd.DataFrame:
    """Displacement error (µm) per horizon 1..H on held-out trees (the model rolls out its one-step forecast).

    Parameters
    ----------
    model : PositionForecaster
    specs : sequence of TrackSpec
    config : PositionTrainConfig
        Gives the history, tree depth, fractions and seed of the split.
    horizon : int

    Returns
    -------
    pandas.DataFrame
        Rows ``dataset, forecaster, step, error_um``.
    """
    from dynacell.train.forecast import load_track_spec, position_split, tree_groups

    rows = []
    for spec in specs:
        tracks, scale = load_track_spec(spec)
        win = history_windows(tracks, history=config.history, horizon=horizon, scale_zyx=scale)
        if len(win["past"]) == 0:
            continue
        parts = position_split(win, tree_groups(tracks, config.tree_depth), spec.name, config.fractions,
                               config.engine.seed)
        res = evaluate_positions(win, parts, model=model, horizon=horizon)
        for f in ("model", *POSITION_BASELINES):
            for s, e in enumerate(res[f]["per_horizon_um"], start=1):
                rows.append({"dataset": spec.name, "forecaster": model.card.name if f == "model" else f, "step": s,
                             "error_um": e})
    return pd.DataFrame(rows)


def mask_iou_table(model, tra_dir: str | Path, data: dict[str, Any]) -> pd.DataFrame:
    """The seed's forecast-mask IoU on CTC tracking masks (full masks: bacteria-phc).

    For each held-out window, the cell's mask at ``t`` (label = track id in ``man_trackTTT.tif``)
    is moved by each forecaster's predicted displacement and compared with its mask at ``t + 1``.

    Parameters
    ----------
    model : PositionForecaster
        The position model beside the baselines.
    tra_dir : str or Path
        The CTC ``TRA`` folder of the data set (``man_trackTTT.tif``).
    data : dict
        The data set's held-out windows (``windows``, ``parts``, ``scale_zyx``, ...), as built for the
        position table.

    Returns
    -------
    pandas.DataFrame
        Rows ``forecaster, n, mask_iou`` (mean).
    """
    from dynacell.io import open_labels
    from dynacell.metrics.forecasting import forecast_mask_iou

    labels = open_labels(tra_dir)
    frame_of = {int(f): i for i, f in enumerate(labels.frame_indices)}
    win, parts = data["windows"], data["parts"]
    test = parts["test"]
    past = win["past"][test]
    scale = np.asarray(data["scale_zyx"], float)[-past.shape[2]:]
    kp = fit_kalman(win["past"][parts["train"]], win["future"][parts["train"]])
    prw = fit_prw_kalman(win["past"][parts["train"]], win["future"][parts["train"]])
    preds = {model.card.name: model.predict(past[:, -model.history:], 1)}
    preds.update({b: baseline_positions(b, past, 1, kalman=kp, prw=prw) for b in POSITION_BASELINES})
    ious: dict[str, list[float]] = {k: [] for k in preds}
    cache: dict[int, np.ndarray] = {}

    def frame(t: int) -> np.ndarray:
        if t not in cache:
            cache[t] = np.asarray(labels.data[frame_of[t]])
        return cache[t]

    for i, (tid, t) in enumerate(zip(win["track_id"][test], win["t"][test], strict=True)):
        if t + 1 not in frame_of:
            continue
        a, b = frame(int(t)) == tid, frame(int(t) + 1) == tid
        for name, p in preds.items():
            ious[name].append(forecast_mask_iou(a, b, (p[i, 0] - past[i, -1]) / scale))
    return pd.DataFrame([{"forecaster": k, "n": len(v), "mask_iou": float(np.mean(v))} for k, v in ious.items()])


def nearest_successor_table(model, data: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """How often the true successor is the detection nearest to the predicted position (a linking proxy).

    For every held-out window ending at frame ``t``, each forecaster predicts the position at
    ``t + 1``; the forecast is *correct* when the nearest detection of frame ``t + 1`` (among all
    tracks of the data set) is the track's own next position. This measures the value of a motion
    prior for nearest-neighbour linking without running a linker.

    Parameters
    ----------
    model : PositionForecaster
        The position model beside the baselines.
    data : dict
        Data set name → its held-out windows, as built for the position table.

    Returns
    -------
    pandas.DataFrame
        Rows ``dataset, forecaster, n, nearest_is_successor``.
    """
    from scipy.spatial import cKDTree

    from dynacell.forecast.positions import segments

    rows = []
    for name, d in data.items():
        win, parts = d["windows"], d["parts"]
        test = parts["test"]
        past, fut = win["past"][test], win["future"][test][:, 0]
        by_t: dict[int, list[np.ndarray]] = {}
        for _, t, p in segments(d["tracks"], d["scale_zyx"]):
            for ti, pi in zip(t, p, strict=True):
                by_t.setdefault(int(ti), []).append(pi)
        trees = {t: cKDTree(np.stack(v)) for t, v in by_t.items()}
        kp = fit_kalman(win["past"][parts["train"]], win["future"][parts["train"]])
        prw = fit_prw_kalman(win["past"][parts["train"]], win["future"][parts["train"]])
        preds = {model.card.name: model.predict(past[:, -model.history:], 1)[:, 0]}
        preds.update({b: baseline_positions(b, past, 1, kalman=kp, prw=prw)[:, 0] for b in POSITION_BASELINES})
        t1 = win["t"][test] + 1
        for f, p in preds.items():
            ok = []
            for i in range(len(p)):
                tree = trees.get(int(t1[i]))
                if tree is None:
                    continue
                _, j = tree.query(p[i])
                ok.append(np.allclose(tree.data[j], fut[i]))
            rows.append({"dataset": name, "forecaster": f, "n": len(ok), "nearest_is_successor": float(np.mean(ok))})
    return pd.DataFrame(rows)


def speed_table(frame_models: dict[str, Any], position_model, *, threads: int = 2, repeats: int = 3,
                n_tracks: int = 100_000) -> pd.DataFrame:
    """Time of forecasting one 1024 × 1024 frame and of 10⁵ track positions (batched).

    Frame models are timed at full resolution and as they were trained (frames block-averaged
    by 4, forecast, upsampled back bilinearly). Both the wall time and the CPU time of the process
    (:func:`time.process_time`, summed over threads) are kept, best of ``repeats`` each: on a
    machine shared with other jobs the wall time is only an upper bound, while the CPU time is what
    the forecast itself costs.

    Parameters
    ----------
    frame_models : dict
        Name → frame forecaster.
    position_model : PositionForecaster
        The position model.
    threads : int
        Torch threads while timing.
    repeats : int
        Timings per row (the best is kept).
    n_tracks : int
        Tracks forecast in one batch.

    Returns
    -------
    pandas.DataFrame
        Rows ``what, forecaster, seconds, cpu_seconds, per_second`` (per wall second),
        ``per_cpu_second``, ``threads``, ``load_avg`` (1-minute load average at the end of the row).
    """
    import os

    import torch

    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    rows = []

    def row(what: str, name: str, fn: Callable[[], Any], n: int, reps: int = repeats) -> None:
        times = [_timed(fn) for _ in range(reps)]
        wall, cpu = min(t[0] for t in times), min(t[1] for t in times)
        rows.append({"what": what, "forecaster": name, "seconds": wall, "cpu_seconds": cpu, "per_second": n / wall,
                     "per_cpu_second": n / max(cpu, 1e-9), "threads": threads, "load_avg": os.getloadavg()[0]})

    for name, fm in frame_models.items():
        w = rng.random((1, fm.k, 1024, 1024), dtype=np.float32)
        fm.predict(w)
        row("1024x1024 frame", name, lambda fm=fm, w=w: fm.predict(w), 1)
        row("1024x1024 frame, /4 down-sampled (as trained)", name, lambda fm=fm, w=w: _downsampled_forecast(fm, w, 4), 1)
    w2 = rng.random((1, 2, 1024, 1024), dtype=np.float32)
    for b in BASELINES:
        row("1024x1024 frame", b, lambda b=b: baseline_forecast(b, w2), 1, 1 if b == "flow" else repeats)
    past = np.cumsum(rng.normal(size=(n_tracks, position_model.history, position_model.ndim)), axis=1)
    position_model.predict(past[:1000])
    row(f"{n_tracks} track positions", position_model.card.name, lambda: position_model.predict(past), n_tracks)
    for b in POSITION_BASELINES:
        row(f"{n_tracks} track positions", b, lambda b=b: baseline_positions(b, past, 1), n_tracks)
    return pd.DataFrame(rows)


def _downsampled_forecast(fm, windows: np.ndarray, factor: int) -> np.ndarray:
    """Block-average the windows by ``factor``, forecast, and upsample back (bilinear)."""
    from scipy.ndimage import zoom
    from skimage.transform import downscale_local_mean

    small = downscale_local_mean(windows, (1, 1, factor, factor)).astype(np.float32)
    return zoom(fm.predict(small), (1, factor, factor), order=1)


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0
