"""How the settings of ``frames-mc-linear`` were chosen: a grid of feature sets, validation blocks only.

Run from the checkout (needs ../shared/data; about 12 CPU minutes, one thread):

    python benchmarks/forecast_mc_select.py [--movies NAME ...] [--out /tmp/forecast_mc_select]

For every window of each movie of benchmarks/forecast_configs/frames-unet.yaml (plus CHO 02), the
TV-L1 flows from frame t to t − 1, t − 2, t − 3 (:func:`skimage.registration.optical_flow_tvl1`,
default settings) give a superset of candidate maps at σ = 0 / 0.7 / 1.5 / 3 px: the last frame,
the aligned past frames (``mc``), the raw past frames (``raw``), the aligned maps moved along the
last motion ``v_1`` (``E``), by ``v_1 / 2`` (``h``), ``1.5 v_1`` (``o``) and ``v_2 / 2`` (``v2``).
Per window the normal matrix of all maps is kept, so every feature subset is fitted by least squares
on the training block and scored on the validation block exactly, without recomputing a map. The
test block is never read. Prints MSE / best baseline's MSE per movie and the mean over the five
benchmark movies (CHO is shown, not used to choose).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SIG = (0.0, 0.7, 1.5, 3.0)
BASE = ("f", "mc1", "mc2", "mc3", "raw1", "raw2", "raw3")
SHIFTS = ("E", "h", "o", "v2")  # v1, v1/2, 1.5 v1, v2/2
COLS = [(k, s, "") for k in BASE for s in SIG] + [(k, s, e) for e in SHIFTS for k in BASE[:4] for s in SIG]
IDX = {c: i for i, c in enumerate(COLS)}
ONE, Y = len(COLS), len(COLS) + 1


def window_gram(f: np.ndarray, t_target: int) -> np.ndarray:
    """Normal matrix of all candidate maps (+ 1 + target) of the window ending at ``t_target − 1``."""
    from scipy.ndimage import gaussian_filter
    from skimage.registration import optical_flow_tvl1

    from dynacell.forecast.frames import warp_by_flow as _warp

    t = t_target - 1
    v = [optical_flow_tvl1(f[t], f[t - j]).astype(np.float32) for j in (1, 2, 3)]
    base = {"f": f[t], **{f"mc{j}": _warp(f[t - j], v[j - 1]) for j in (1, 2, 3)},
            **{f"raw{j}": f[t - j] for j in (1, 2, 3)}}
    shift = {"E": v[0], "h": 0.5 * v[0], "o": 1.5 * v[0], "v2": 0.5 * v[1]}
    sm = {(k, s): base[k] if s == 0 else gaussian_filter(base[k], s) for k in BASE for s in SIG}
    maps = [sm[(k, s)] if e == "" else _warp(sm[(k, s)], shift[e]) for k, s, e in COLS]
    a = np.stack([m.ravel() for m in maps] + [np.ones(f[0].size, np.float32), f[t_target].ravel()]).astype(np.float64)
    return a @ a.T / f[0].size


def subset(k: int, raw: bool = False, shifts: tuple[str, ...] = ("E",)) -> list[int]:
    """Columns of a candidate: aligned frames j < k, optionally raw frames, and shifted aligned maps."""
    names = ["f"] + [f"mc{j}" for j in range(1, k)]
    cols = [IDX[(n, s, "")] for n in names for s in SIG]
    if raw:
        cols += [IDX[(f"raw{j}", s, "")] for j in range(1, k) for s in SIG]
    cols += [IDX[(n, s, e)] for e in shifts for n in names for s in SIG]
    return sorted(cols)


CANDIDATES = {"smoothing only (last frame, 4 σ)": [IDX[("f", s, "")] for s in SIG]}
for _k in (2, 3, 4):
    CANDIDATES[f"K={_k} aligned"] = subset(_k, shifts=())
    CANDIDATES[f"K={_k} raw"] = sorted([IDX[("f", s, "")] for s in SIG]
                                       + [IDX[(f"raw{j}", s, "")] for j in range(1, _k) for s in SIG])
    CANDIDATES[f"K={_k} aligned + v1"] = subset(_k)
    CANDIDATES[f"K={_k} aligned + raw + v1"] = subset(_k, raw=True)
    CANDIDATES[f"K={_k} aligned + raw + v1 + v1/2"] = subset(_k, raw=True, shifts=("E", "h"))
    CANDIDATES[f"K={_k} aligned + raw + v1 + 1.5v1"] = subset(_k, raw=True, shifts=("E", "o"))
    CANDIDATES[f"K={_k} aligned + raw + v1 + v2/2"] = subset(_k, raw=True, shifts=("E",) + (("v2",) if _k >= 3 else ()))
    CANDIDATES[f"K={_k} aligned + raw + all shifts"] = subset(_k, raw=True, shifts=SHIFTS if _k >= 3 else SHIFTS[:3])


def fit_score(g_fit: np.ndarray, g_eval: np.ndarray, cols: list[int]) -> float:
    """MSE on the evaluation windows of the least-squares fit on the fitting windows (normal matrices)."""
    c = cols + [ONE]
    a = g_fit[np.ix_(c, c)]
    w = np.linalg.solve(a + 1e-6 * np.trace(a) / len(c) * np.eye(len(c)), g_fit[c, Y])
    return float(g_eval[Y, Y] - 2 * w @ g_eval[c, Y] + w @ g_eval[np.ix_(c, c)] @ w)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--movies", nargs="+")
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc_select"))
    args = ap.parse_args()

    from dynacell.forecast.evaluate import evaluate_frames
    from dynacell.forecast.frames import BASELINES
    from dynacell.train.forecast import MovieSpec, load_forecast_config, load_movie_spec

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = load_forecast_config(HERE / "forecast_configs" / "frames-unet.yaml")
    specs = list(cfg.movies) + [MovieSpec(name="cho", path=str(DATA / "ctc" / "Fluo-N3DH-CHO" / "02"), z="max",
                                          downsample=2)]
    res = {}
    for spec in specs:
        if args.movies and spec.name not in args.movies:
            continue
        c0 = time.process_time()
        m = load_movie_spec(spec, cfg.k, cfg.val_fraction, cfg.test_fraction)
        f, sp = m["frames"], m["split"]
        grams = {t: window_gram(f, t) for t in sp["train"] + sp["val"]}
        g_fit, g_val = sum(grams[t] for t in sp["train"]), sum(grams[t] for t in sp["val"]) / len(sp["val"])
        base = evaluate_frames(f, sp["val"], k=2)
        best = min(base[b]["mse"] for b in BASELINES)
        res[spec.name] = {name: fit_score(g_fit, g_val, cols) / best for name, cols in CANDIDATES.items()}
        print(f"{spec.name}: best baseline on validation {base['best_baseline']} {best:.4g} "
              f"({time.process_time() - c0:.0f} CPU-s)", flush=True)
    table = pd.DataFrame(res)
    five = [c for c in table.columns if c != "cho"]
    table["mean of the five"] = table[five].mean(axis=1)
    table.to_csv(args.out / "select.csv")
    pd.set_option("display.width", 200)
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
