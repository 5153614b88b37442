"""Evaluation of forecasts beside the baselines: frames of a movie, positions of tracks.

Every figure of a model comes with the same figure for every baseline on the same windows, so a
table can never show a model alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.forecast.frames import BASELINES, baseline_forecast, make_windows
from dynacell.forecast.positions import (
    POSITION_BASELINES,
    baseline_positions,
    fit_kalman,
    fit_prw_kalman,
)
from dynacell.metrics.forecasting import (
    center_of_mass_error,
    displacement_errors,
    frame_errors,
)

__all__ = ["evaluate_frames", "evaluate_positions", "summarize_frames"]


def evaluate_frames(frames: np.ndarray, targets: Sequence[int], *, model=None, k: int | None = None,
                    pixel_size_um: float | None = None, sigma_px: float = 1.0, seed: int = 0,
                    baselines: Sequence[str] = BASELINES) -> dict[str, Any]:
    """Next-frame errors of a model and of the baselines on the windows ending before ``targets``.

    Parameters
    ----------
    frames : numpy.ndarray, float32, shape (T, Y, X)
        Normalised frames (:func:`~dynacell.forecast.frames.normalize_movie`).
    targets : sequence of int
        Frames to predict (each with at least K frames before it).
    model : FrameForecaster, optional
        Without it only the baselines are evaluated.
    k : int, optional
        Window length when there is no model (default 2: what the baselines need).
    pixel_size_um : float, optional
        Pixel size of ``frames`` in µm (for the centre-of-mass error in µm).
    sigma_px : float
        Gaussian σ of the smoothed-persistence baseline.
    seed : int
        Seed of the bootstrap.
    baselines : sequence of str
        Baselines to evaluate beside the model (empty: the model only, e.g. when the caller
        already has the baselines of the same windows).

    Returns
    -------
    dict
        ``n_windows``, ``k``, and for each forecaster name (``model`` and the baselines) a dict
        ``mse, mae, ssim, com_error_px, com_error_px_ci, com_error_um, com_error_um_ci``; plus the
        flat keys ``mse``, ``mse_<baseline>``, ``com_error_px``, ``best_baseline``,
        ``mse_ratio_to_best_baseline`` (model MSE / best baseline MSE).
    """
    kk = model.k if model is not None else (k or 2)
    x, y = make_windows(frames, kk, targets)
    if len(x) == 0:
        raise InvalidInputError("no windows to evaluate")
    data_range = float(np.percentile(frames, 99.9) - np.percentile(frames, 0.1)) or 1.0
    out: dict[str, Any] = {"n_windows": len(x), "k": int(kk), "targets": [int(t) for t in targets]}
    preds = {b: baseline_forecast(b, x, sigma_px=sigma_px) for b in baselines}
    if model is not None:
        preds = {"model": model.predict(x), **preds}
    for name, p in preds.items():
        res = frame_errors(p, y, data_range=data_range)
        res.update(center_of_mass_error(p, y, pixel_size_um=pixel_size_um, seed=seed))
        res.pop("n", None)
        out[name] = res
    best = min(baselines, key=lambda b: out[b]["mse"]) if baselines else None
    out["best_baseline"] = best
    for b in baselines:
        out[f"mse_{b}"] = out[b]["mse"]
    if model is not None:
        out["mse"] = out["model"]["mse"]
        out["com_error_px"] = out["model"]["com_error_px"]
        out["com_error_px_ci"] = out["model"]["com_error_px_ci"]
        if best is not None:
            out["mse_ratio_to_best_baseline"] = out["model"]["mse"] / out[best]["mse"]
    return out


def summarize_frames(res: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows (one per forecaster) of an :func:`evaluate_frames` result, for a table.

    Parameters
    ----------
    res : dict
        The result of :func:`evaluate_frames`.

    Returns
    -------
    list of dict
        One row per forecaster (the model and each baseline).
    """
    rows = []
    for name in ["model", *BASELINES]:
        if name in res:
            r = res[name]
            rows.append({"forecaster": name, "mse": r["mse"], "mae": r["mae"], "ssim": r["ssim"],
                         "com_px": r["com_error_px"], "com_px_ci": r["com_error_px_ci"]})
    return rows


def evaluate_positions(windows: dict[str, np.ndarray], parts: dict[str, np.ndarray] | None = None, *, model=None,
                       horizon: int = 1) -> dict[str, Any]:
    """One-step and multi-step displacement errors of a model and of the baselines on test windows.

    Both Kalman filters are fitted on the ``train`` windows (:func:`fit_kalman`: least one-step
    error on a grid; :func:`fit_prw_kalman`: maximum likelihood) — on the test windows themselves
    when no split is given (then say so in any report).

    Parameters
    ----------
    windows : dict
        From :func:`~dynacell.forecast.positions.history_windows` (``past``, ``future`` in µm).
        Histories longer than the model's are cut to their last positions.
    parts : dict, optional
        ``train`` and ``test`` row indices; default: every window is a test window.
    model : PositionForecaster, optional
    horizon : int
        Steps ahead (≤ the windows' horizon).

    Returns
    -------
    dict
        ``n_test``, ``kalman_params`` (fitted q, r, p0), ``kalman_prw_params`` (fitted
        :class:`~dynacell.forecast.positions.PRWParams` fields), and per forecaster ``ade_um``, ``fde_um``,
        ``per_horizon_um``, ``one_step_um``; flat keys ``ade_um``/``fde_um`` (model) and
        ``ade_um_<baseline>``, ``best_baseline``, ``one_step_ratio_to_best_baseline``.
    """
    past, fut = windows["past"], windows["future"]
    if horizon > fut.shape[1]:
        raise InvalidInputError(f"horizon {horizon} exceeds the windows' horizon {fut.shape[1]}")
    test = parts["test"] if parts is not None else np.arange(len(past))
    train = parts["train"] if parts is not None and len(parts["train"]) else test
    if len(test) == 0:
        raise InvalidInputError("no test windows")
    kp = fit_kalman(past[train][:, -5:], fut[train])
    prw = fit_prw_kalman(past[train][:, -5:], fut[train])
    out: dict[str, Any] = {"n_test": len(test),
                           "kalman_params": {"q_um2": kp.q_um2, "r_um2": kp.r_um2, "p0_um2": kp.p0_um2},
                           "kalman_prw_params": dataclasses.asdict(prw),
                           "fitted_on": "train trees" if parts is not None else "test windows"}
    pt, ft = past[test], fut[test][:, :horizon]
    preds = {b: baseline_positions(b, pt[:, -5:], horizon, kalman=kp, prw=prw) for b in POSITION_BASELINES}
    if model is not None:
        preds = {"model": model.predict(pt[:, -model.history:], horizon), **preds}
    for name, p in preds.items():
        res = displacement_errors(p, ft)
        res["one_step_um"] = res["per_horizon_um"][0]
        res.pop("n", None)
        out[name] = res
    best = min(POSITION_BASELINES, key=lambda b: out[b]["one_step_um"])
    out["best_baseline"] = best
    for b in POSITION_BASELINES:
        out[f"ade_um_{b}"] = out[b]["ade_um"]
        out[f"fde_um_{b}"] = out[b]["fde_um"]
    if model is not None:
        out["ade_um"], out["fde_um"] = out["model"]["ade_um"], out["model"]["fde_um"]
        out["one_step_ratio_to_best_baseline"] = out["model"]["one_step_um"] / out[best]["one_step_um"]
    return out
