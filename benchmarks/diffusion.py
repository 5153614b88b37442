"""Benchmark of the diffusion coefficient from single-molecule image stacks (docs/diffusion.md).

Three parts, each printed as a table:

1. ``grid``: the held-out simulated grid of :mod:`dynacell.diffusion.benchmark` (D 0.01–10 µm²/s
   log-uniform × SNR 2–50 × pixel 100–160 nm × 16 frames, its own seed): the shipped image models
   beside the seed's MSD of centroids, the CVE, the optimal MSD fit and the Cramér–Rao lines;
   figures into ``--figures``.
2. ``real``: the trajectory estimators on the real single-molecule tracks of
   ``../shared/data/particles/saspt-u2os`` (HaloTag-NLS in U2OS nuclei, 0.16 µm pixels,
   7.48 ms frames; no true D): per-field medians, agreement of the estimators, and the CVE's
   localisation error beside the one the localiser reported.
3. ``speed``: simulator throughput in stacks of 16×64×64 per minute (one process).

Usage::

    python benchmarks/diffusion.py [--n 1500] [--seed 2024] [--parts grid real speed]
        [--figures docs/figures/diffusion] [--out /tmp/diffusion-bench]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "particles" / "saspt-u2os"
PIXEL_UM, FRAME_S = 0.16, 0.00748


def part_grid(n: int, seed: int, out: Path, figures: Path | None, models: list[str]) -> None:
    from dynacell.diffusion.benchmark import markdown_table, run_benchmark

    res = run_benchmark(out, n=n, seed=seed, models=models, overwrite=True,
                        baseline_cache=Path(f"/tmp/dynacell-diffusion-baselines-{n}-{seed}.csv"))
    print(f"\n## held-out grid: n={n}, seed={seed}, timings {res['timings']}")
    print(markdown_table(pd.DataFrame(res["table"]), ".3f"))
    print("\nSNR >= 5:")
    print(markdown_table(pd.DataFrame(res["table_snr_ge_5"]), ".3f"))
    print()
    print(markdown_table(pd.DataFrame(res["bins"]), ".2f"))
    if figures is not None:
        figures.mkdir(parents=True, exist_ok=True)
        for f in ("pred_vs_true.png", "rel_error_vs_D.png", "rel_error_vs_snr.png"):
            shutil.copy(out / f, figures / f)


def _tracks(path: Path, min_len: int) -> tuple[list[np.ndarray], float]:
    """Gap-free runs of >= min_len frames of every trajectory (µm) and the median reported loc. error (µm)."""
    d = pd.read_csv(path).sort_values(["trajectory", "frame"])
    runs = []
    for _, g in d.groupby("trajectory"):
        f = g["frame"].to_numpy()
        cut = np.flatnonzero(np.diff(f) != 1) + 1
        for seg in np.split(np.arange(len(g)), cut):
            if len(seg) >= min_len:
                runs.append(g[["y", "x"]].to_numpy()[seg] * PIXEL_UM)
    err = float(np.median(np.r_[d["y_err"], d["x_err"]]) * PIXEL_UM)
    return runs, err


def part_real(min_len: int = 8) -> None:
    from dynacell.diffusion.benchmark import markdown_table
    from dynacell.motion.estimators import (
        cve,
        cve_many,
        msd_fit_optimal_many,
        msd_slope_seed_many,
    )

    if not SHARED.is_dir():
        print(f"\n## real data: {SHARED} not found, skipped")
        return
    rows = []
    for f in sorted(SHARED.glob("region_*_7ms_trajs.csv")):
        runs, err = _tracks(f, min_len)
        if not runs:
            continue
        arr = np.stack([r[:min_len] for r in runs])  # the first min_len frames of each run: one length
        c = cve_many(arr, FRAME_S).D_um2_per_s
        o = msd_fit_optimal_many(arr, FRAME_S).D_um2_per_s
        s = msd_slope_seed_many(arr / PIXEL_UM, FRAME_S, pixel_size_um=PIXEL_UM).D_um2_per_s
        pooled = cve(runs, FRAME_S)
        rows.append({"field": f.name.split("_7ms")[0], "tracks": len(runs),
                     "CVE median": float(np.median(c)), "CVE <0 (%)": 100.0 * float(np.mean(c < 0)),
                     "opt. MSD median": float(np.median(o)), "seed MSD median": float(np.median(s)),
                     "pooled CVE D": pooled.D_um2_per_s, "pooled CVE D se": pooled.D_se_um2_per_s,
                     "CVE sigma (nm)": 1000 * pooled.sigma_um, "reported loc. error (nm)": 1000 * err})
    print(f"\n## real data: saspt-u2os, gap-free runs of >= {min_len} frames (first {min_len} frames each), "
          f"pixel {PIXEL_UM} µm, {FRAME_S * 1000} ms/frame, exposure unknown (no blur correction); D in µm²/s")
    print(markdown_table(pd.DataFrame(rows), ".3f"))


def part_speed(n: int = 2000) -> None:
    from dynacell.simulate.particles import simulate_stacks

    t = time.perf_counter()
    simulate_stacks(np.full(n, 1.0), n_frames=16, shape_px=(64, 64), snr=10.0, seed=0)
    dt = time.perf_counter() - t
    print(f"\n## simulator speed: {n} stacks of 16x64x64 in {dt:.1f} s = {n / dt * 60:,.0f} stacks/min (one process)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--parts", nargs="+", default=["grid", "real", "speed"])
    ap.add_argument("--models", nargs="*", default=["diffusion-2d", "park-cnn", "resnet2d"])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell-diffusion-benchmark"))
    ap.add_argument("--figures", type=Path, default=None)
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if "grid" in a.parts:
        part_grid(a.n, a.seed, a.out, a.figures, a.models)
    if "real" in a.parts:
        part_real()
    if "speed" in a.parts:
        part_speed()


if __name__ == "__main__":
    main()
