"""How far below the best baseline can a next-position forecast from a track's past go? (docs/forecasting.md)

On the VALIDATION lineage trees of benchmarks/forecast_configs/positions-2d.yaml and positions-3d.yaml
(the test trees are not read), each data set on its own, one step ahead:

* ``linear``      — least squares ``p(t+1) − p(t) = Σ w_i · step_i`` over the last 4 steps (the same
                    weights on every axis), fitted on that data set's training trees;
* ``gbm``         — scikit-learn's HistGradientBoostingRegressor (absolute error, 200 trees) per axis on
                    the steps scaled by their mean length, plus the log of that length;
* ``linear_L10``  — the linear forecast from 10 positions instead of 5 (windows that have them; each
                    tree stays in its part of the 5-position split);
* ``linear_nbr``  — the linear forecast plus the median last step of the 8 nearest other tracks at
                    frame t (the neighbours' past motion, what a monolayer or an embryo shares);
* ``gbm_nbr``     — gradient boosting (as ``gbm``) of what the persistent-random-walk Kalman filter
                    misses, from the track's own steps plus the neighbours' last two steps (median of
                    the 8 nearest), its step relative to theirs, the distance to the nearest
                    neighbour, the position relative to the centroid of all cells, the number of
                    cells and the frame (the developmental stage);
* the shipped position model (``positions-2d`` / ``positions-3d``);
* ``ensemble``    — the shipped model's forecast averaged with the random walk's, ``a · model +
                    (1 − a) · kalman_prw``, the best of a = 0.25, 0.5, 0.75 on these same validation
                    windows (so an optimistic figure);
* ``oracle_nbr_now`` — not a forecast: the random-walk forecast plus the median of what it misses on
                    the 8 nearest other windows ending at the same frame, i.e. the neighbours' own
                    kick from t to t+1, known only once frame t+1 is seen (as the linker's local flow
                    sees it). How far below 1 it goes is the share of the unpredictable kick that
                    neighbours share at the same moment.

Each is printed as a ratio to the best of constant position, constant velocity, the grid-fitted
Kalman filter and the persistent-random-walk Kalman filter fitted by maximum likelihood
(``kalman_prw``) on the same windows. The fitted random walk is printed too: its persistence φ,
measurement noise r and the share ``D·r / MSE`` of its one-step squared error that is the
measurement noise of the target position (which no forecast can remove). Seed 0, one thread.

    python benchmarks/forecast_position_ceiling.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def _ade(pred: np.ndarray, fut: np.ndarray) -> float:
    return float(np.linalg.norm(pred - fut, axis=1).mean())


def _linear(past, fut, tr, va, extra=None):
    steps = np.diff(past, axis=1)
    feats = [steps[:, i] for i in range(steps.shape[1])] + ([extra] if extra is not None else [])
    x = np.stack(feats, -1)  # (N, D, F)
    rel = fut - past[:, -1]
    w = np.linalg.lstsq(x[tr].reshape(-1, x.shape[2]), rel[tr].reshape(-1), rcond=None)[0]
    return _ade(past[va, -1] + x[va] @ w, fut[va])


def _gbm(past, fut, tr, va, seed=0):
    from sklearn.ensemble import HistGradientBoostingRegressor

    steps = np.diff(past, axis=1)
    s = np.maximum(np.linalg.norm(steps, axis=2).mean(1), 1e-6)[:, None]
    x = np.concatenate([steps.reshape(len(steps), -1) / s, np.log(s)], 1)
    y = (fut - past[:, -1]) / s
    pred = np.zeros((len(va), y.shape[1]))
    for a in range(y.shape[1]):
        g = HistGradientBoostingRegressor(loss="absolute_error", max_iter=200, learning_rate=0.05, random_state=seed)
        pred[:, a] = g.fit(x[tr], y[tr, a]).predict(x[va])
    return _ade(past[va, -1] + pred * s[va], fut[va])


def _neighbour_steps(win, tracks, scale):
    """Median last step of the 8 nearest other tracks at each window's frame t (µm)."""
    from scipy.spatial import cKDTree

    from dynacell.forecast.positions import _spatial_columns

    cols = _spatial_columns(tracks)
    sc = np.asarray(scale, float)[-len(cols):]
    df = tracks.sort_values(["track_id", "t"])
    pos = df[cols].to_numpy(float) * sc
    prev = df.groupby("track_id")[cols].shift(1).to_numpy(float) * sc
    ok = (df["t"].to_numpy() - df.groupby("track_id")["t"].shift(1).to_numpy()) == 1
    t_all, ids = df["t"].to_numpy(), df["track_id"].to_numpy()
    out = np.zeros(win["future"][:, 0].shape)
    for t in np.unique(win["t"]):
        m = (t_all == t) & ok
        rows = np.flatnonzero(win["t"] == t)
        if m.sum() < 2:
            continue
        tree = cKDTree(pos[m])
        _, nn = tree.query(win["past"][rows, -1], k=min(9, int(m.sum())))
        nn = np.atleast_2d(nn)
        step, tid = (pos - prev)[m], ids[m]
        for r, cand in zip(rows, nn, strict=True):
            cand = cand[tid[cand] != win["track_id"][r]][:8]
            if len(cand):
                out[r] = np.median(step[cand], axis=0)
    return out


def _context_features(win, tracks, scale, k=8):
    """Neighbour and global context of each window at its frame t (µm): see ``gbm_nbr``."""
    from scipy.spatial import cKDTree

    from dynacell.forecast.positions import _spatial_columns

    cols = _spatial_columns(tracks)
    sc = np.asarray(scale, float)[-len(cols):]
    df = tracks.sort_values(["track_id", "t"]).reset_index(drop=True)
    pos = df[cols].to_numpy(float) * sc
    g = df.groupby("track_id")
    p1, p2 = g[cols].shift(1).to_numpy(float) * sc, g[cols].shift(2).to_numpy(float) * sc
    ok = ((df["t"] - g["t"].shift(1)) == 1).to_numpy() & ((df["t"] - g["t"].shift(2)) == 2).to_numpy()
    t_all, ids = df["t"].to_numpy(), df["track_id"].to_numpy()
    n, d = win["future"][:, 0].shape
    s1, s2, cen = np.zeros((n, d)), np.zeros((n, d)), np.zeros((n, d))
    dist, ncell = np.zeros(n), np.zeros(n)
    for t in np.unique(win["t"]):
        rows = np.flatnonzero(win["t"] == t)
        here = t_all == t
        cen[rows] = win["past"][rows, -1] - pos[here].mean(0)
        ncell[rows] = here.sum()
        m = here & ok
        if m.sum() < 2:
            continue
        dd, nn = cKDTree(pos[m]).query(win["past"][rows, -1], k=min(k + 1, int(m.sum())))
        nn, dd = np.atleast_2d(nn), np.atleast_2d(dd)
        a1, a2, tid = (pos - p1)[m], (p1 - p2)[m], ids[m]
        for r, cand, dc in zip(rows, nn, dd, strict=True):
            keep = tid[cand] != win["track_id"][r]
            c = cand[keep][:k]
            if len(c):
                s1[r], s2[r], dist[r] = np.median(a1[c], 0), np.median(a2[c], 0), dc[keep][0]
    return s1, s2, cen, dist, ncell


def _gbm_context(past, fut, tr, va, prw_pred, ctx, frame, seed=0):
    from sklearn.ensemble import HistGradientBoostingRegressor

    s1, s2, cen, dist, ncell = ctx
    steps = np.diff(past, axis=1)
    s = np.maximum(np.linalg.norm(steps, axis=2).mean(1), 1e-6)[:, None]
    x = np.concatenate([steps.reshape(len(steps), -1) / s, np.log(s), (prw_pred - past[:, -1]) / s,
                        s1 / s, s2 / s, (s1 - steps[:, -1]) / s, np.log(dist + 1e-3)[:, None],
                        cen / (cen.std(0) + 1e-9), ncell[:, None], frame[:, None]], 1)
    y = (fut - prw_pred) / s
    pred = np.zeros((len(va), y.shape[1]))
    for a in range(y.shape[1]):
        g = HistGradientBoostingRegressor(loss="absolute_error", max_iter=200, learning_rate=0.05, random_state=seed)
        pred[:, a] = g.fit(x[tr], y[tr, a]).predict(x[va])
    return _ade(prw_pred[va] + pred * s[va], fut[va])


def _oracle_now(win, prw_pred, va, k=8):
    """ADE of the random-walk forecast corrected by the neighbours' simultaneous miss (see ``oracle_nbr_now``)."""
    from scipy.spatial import cKDTree

    miss = win["future"][:, 0] - prw_pred
    corrected = prw_pred[va].copy()
    for t in np.unique(win["t"][va]):
        same = np.flatnonzero(win["t"] == t)
        rows = va[win["t"][va] == t]
        if len(same) < 2:
            continue
        _, nn = cKDTree(win["past"][same, -1]).query(win["past"][rows, -1], k=min(k + 1, len(same)))
        nn = np.atleast_2d(nn)
        for r, cand in zip(rows, nn, strict=True):
            c = same[cand]
            c = c[c != r][:k]
            if len(c):
                corrected[np.searchsorted(va, r)] += np.median(miss[c], axis=0)
    return _ade(corrected, win["future"][va, 0])


def main() -> None:
    import torch

    from dynacell.forecast import from_pretrained
    from dynacell.forecast.positions import (
        fit_kalman,
        fit_prw_kalman,
        history_windows,
        kalman_forecast,
        prw_kalman_forecast,
    )
    from dynacell.train.forecast import load_forecast_config, position_data, tree_groups

    torch.set_num_threads(1)
    t0 = time.process_time()
    rows = []
    for cfg_name in ("positions-2d", "positions-3d"):
        cfg = load_forecast_config(HERE / "forecast_configs" / f"{cfg_name}.yaml")
        model = from_pretrained(cfg_name)
        data = position_data(cfg)
        long_cfg = cfg.model_copy(update={"history": 10})
        for name, d in data.items():
            win, parts = d["windows"], d["parts"]
            past, fut = win["past"], win["future"][:, 0]
            tr, va = parts["train"], parts["val"]
            kp = fit_kalman(past[tr], win["future"][tr])
            prw = fit_prw_kalman(past[tr], win["future"][tr])
            prw_pred = prw_kalman_forecast(past, 1, prw)[:, 0]
            base = {"constant_position": _ade(past[va, -1], fut[va]),
                    "constant_velocity": _ade(2 * past[va, -1] - past[va, -2], fut[va]),
                    "kalman": _ade(kalman_forecast(past[va], 1, kp)[:, 0], fut[va]),
                    "kalman_prw": _ade(prw_pred[va], fut[va])}
            best = min(base.values())
            tr_fit = tr if len(tr) <= 20000 else np.random.default_rng(0).choice(tr, 20000, replace=False)
            ctx = _context_features(win, d["tracks"], d["scale_zyx"])
            res = {"linear": _linear(past, fut, tr, va), "gbm": _gbm(past, fut, tr_fit, va),
                   "linear_nbr": _linear(past, fut, tr, va, _neighbour_steps(win, d["tracks"], d["scale_zyx"])),
                   "gbm_nbr": _gbm_context(past, fut, tr_fit, va, prw_pred, ctx, win["t"].astype(float)),
                   cfg_name: _ade(model.predict(past[va])[:, 0], fut[va]),
                   "ensemble": min(_ade(a * model.predict(past[va])[:, 0] + (1 - a) * prw_pred[va], fut[va])
                                   for a in (0.25, 0.5, 0.75)),
                   "oracle_nbr_now": _oracle_now(win, prw_pred, np.sort(va))}
            mse_prw = float(np.mean(np.sum((prw_pred[va] - fut[va]) ** 2, axis=1)))
            row = {"dataset": name, "n_val": len(va), "best_baseline": min(base, key=base.get), "best_um": best,
                   "old_best_ratio": best / min(base["constant_position"], base["constant_velocity"], base["kalman"]),
                   "phi": prw.persistence, "r_um2": prw.r_um2, "q_um2": prw.q_pos_um2 + prw.q_vel_um2,
                   "noise_share": past.shape[2] * prw.r_um2 / mse_prw,
                   **{k: v / best for k, v in res.items()}}
            lw = history_windows(d["tracks"], history=10, horizon=1, scale_zyx=d["scale_zyx"])
            # the same trees in the same parts as the 5-position split (never a test tree)
            groups = tree_groups(d["tracks"], long_cfg.tree_depth)
            part_of = {groups[int(t)]: p for p, ix in parts.items() for t in win["track_id"][ix]}
            lpart = np.array([part_of.get(groups[int(t)], "test") for t in lw["track_id"]])
            lp = {p: np.flatnonzero(lpart == p) for p in ("train", "val")}
            if len(lp["train"]) and len(lp["val"]):
                lpast, lfut, lva = lw["past"], lw["future"][:, 0], lp["val"]
                lkp = fit_kalman(lpast[lp["train"]][:, -5:], lw["future"][lp["train"]])
                lprw = fit_prw_kalman(lpast[lp["train"]][:, -5:], lw["future"][lp["train"]])
                lbest = min(_ade(lpast[lva, -1], lfut[lva]), _ade(2 * lpast[lva, -1] - lpast[lva, -2], lfut[lva]),
                            _ade(kalman_forecast(lpast[lva][:, -5:], 1, lkp)[:, 0], lfut[lva]),
                            _ade(prw_kalman_forecast(lpast[lva][:, -5:], 1, lprw)[:, 0], lfut[lva]))
                row["linear_L10"] = _linear(lpast, lfut, lp["train"], lva) / lbest
                row["n_val_L10"] = len(lva)
            rows.append(row)
            print(f"{name}: done ({time.process_time() - t0:.0f} CPU-s)", flush=True)
    df = pd.DataFrame(rows)
    print(f"total {time.process_time() - t0:.0f} CPU-s")
    print("\n# One-step error / best baseline on the validation trees (lower is better; target 0.9)\n"
          + df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
