"""Held-out benchmark: image models beside trajectory estimators on the same simulated stacks.

The grid: D log-uniform 0.01–10 µm²/s × peak SNR log-uniform 2–50 × pixel size uniform
100–160 nm × background 2–30 photons/pixel, 16 frames of 32×32 pixels, frame interval =
exposure = 5 ms, PSF FWHM 250 nm, camera gain 1 ADU/e⁻, offset 100 ADU, read noise 1.5 ADU;
Brownian motion; its own seed (never a training or validation seed).

Every stack is read by every image model (with 8-fold dihedral test-time averaging) and by the
trajectory estimators of :func:`dynacell.diffusion.baselines.trajectory_estimates` on one shared
set of Gaussian-fit localisations. Metrics per method: relative RMSE of D
``sqrt(mean(((D_hat - D) / D)^2))``, mean squared log error ``mean((ln D_hat - ln D)^2)`` (the
AnDi challenge's metric; a non-positive trajectory estimate is floored at 1e-4 µm²/s for it), the
median absolute relative error, and for the image models the coverage of the predicted 68 %
interval. Each image model is scored twice: with its median ``exp(mean log D)`` and with its
minimum-relative-MSE point estimate ``exp(mean - 1.5 var)`` of
:class:`~dynacell.diffusion.predict.DiffusionPredictor` (what the relative RMSE rewards). Tables:
all stacks, the stacks with SNR >= 5, and the relative RMSE per (D, SNR) bin with each image
model's ratio to the better of the CVE and the optimal MSD fit in that bin. The Cramér–Rao line
is the bound on the relative SD of any unbiased trajectory estimator with 15 steps, exact Fisher
information with the blur of continuous exposure and the measured localisation error of each
stack (:func:`dynacell.motion.estimators.cramer_rao_relative_sd`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.diffusion.baselines import TRAJECTORY_METHODS, trajectory_estimates
from dynacell.diffusion.localise import localise_stacks
from dynacell.io.writers import atomic_folder
from dynacell.simulate.particles import draw_conditions, simulate_stacks

__all__ = ["GRID", "markdown_table", "run_benchmark", "score"]

#: The held-out grid's acquisition.
GRID = {"D_um2_per_s": (0.01, 10.0), "snr": (2.0, 50.0), "pixel_size_um": (0.1, 0.16),
        "background_photons": (2.0, 30.0), "n_frames": 16, "shape_px": (32, 32), "frame_interval_s": 0.005,
        "exposure_s": 0.005, "psf_fwhm_nm": 250.0, "gain_adu_per_e": 1.0, "offset_adu": 100.0,
        "read_noise_adu": 1.5}

#: Floor of a trajectory estimate in the log error (a CVE can be negative).
LOG_FLOOR_UM2_PER_S = 1e-4

D_BINS = (0.01, 0.1, 1.0, 10.0)
SNR_BINS = (2.0, 5.0, 15.0, 50.0)


def score(D_true: np.ndarray, D_hat: np.ndarray, lo: np.ndarray | None = None,
          hi: np.ndarray | None = None) -> dict[str, float]:
    """Relative RMSE, MSLE, median |relative error| and 68 % coverage of one method.

    Parameters
    ----------
    D_true, D_hat : ndarray (N,)
        True and estimated D, µm²/s (NaN estimates count as failures: left out and counted).
    lo, hi : ndarray (N,), optional
        The predicted 68 % interval.

    Returns
    -------
    dict
        ``rel_rmse``, ``msle``, ``median_abs_rel_err``, ``n``, ``n_failed`` and, with an interval,
        ``coverage68``.
    """
    D_true = np.asarray(D_true, float)
    D_hat = np.asarray(D_hat, float)
    ok = np.isfinite(D_hat)
    rel = (D_hat[ok] - D_true[ok]) / D_true[ok]
    logerr = np.log(np.maximum(D_hat[ok], LOG_FLOOR_UM2_PER_S)) - np.log(D_true[ok])
    out = {"rel_rmse": float(np.sqrt(np.mean(rel**2))) if ok.any() else float("nan"),
           "msle": float(np.mean(logerr**2)) if ok.any() else float("nan"),
           "median_abs_rel_err": float(np.median(np.abs(rel))) if ok.any() else float("nan"),
           "n": int(ok.sum()), "n_failed": int((~ok).sum())}
    if lo is not None and hi is not None:
        out["coverage68"] = float(np.mean((np.asarray(lo)[ok] <= D_true[ok]) & (D_true[ok] <= np.asarray(hi)[ok])))
    return out


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A pipe table of ``df`` (floats with ``floatfmt``), for the docs.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its columns are the header.
    floatfmt : str
        Format of the float cells.

    Returns
    -------
    str
        The Markdown pipe table.
    """
    def cell(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _cramer_rao(truth: pd.DataFrame, loc_err_um: np.ndarray, n_steps: int) -> np.ndarray:
    from dynacell.motion.estimators import blur_coefficient, cramer_rao_relative_sd

    R = blur_coefficient(GRID["exposure_s"], GRID["frame_interval_s"])
    x = loc_err_um**2 / (truth["D_um2_per_s"].to_numpy() * GRID["frame_interval_s"])
    return np.array([cramer_rao_relative_sd(n_steps, float(v), 2, blur_R=R, exact=True) for v in x])


def _figures(res: pd.DataFrame, methods: dict[str, str], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    names = []
    D = res["D_true_um2_per_s"].to_numpy()
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.2), sharex=True, sharey=True)
    for ax, (label, col) in zip(np.atleast_1d(axes), methods.items()):
        est = np.maximum(res[col].to_numpy(), LOG_FLOOR_UM2_PER_S)
        ax.scatter(D, est, s=3, alpha=0.35, c=np.log10(res["snr"]), cmap="viridis")
        ax.plot([1e-2, 10], [1e-2, 10], "k--", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(LOG_FLOOR_UM2_PER_S, 300)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("true D (µm²/s)")
    np.atleast_1d(axes)[0].set_ylabel("estimated D (µm²/s)")
    fig.tight_layout()
    fig.savefig(folder / "pred_vs_true.png", dpi=90)
    plt.close(fig)
    names.append("pred_vs_true.png")
    for key, bins, fname, xlabel in (("D_true_um2_per_s", np.geomspace(0.01, 10, 9), "rel_error_vs_D.png",
                                      "true D (µm²/s)"),
                                     ("snr", np.geomspace(2, 50, 8), "rel_error_vs_snr.png", "peak SNR")):
        fig, ax = plt.subplots(figsize=(4.6, 3.4))
        v = res[key].to_numpy()
        idx = np.digitize(v, bins) - 1
        centres = np.sqrt(bins[:-1] * bins[1:])
        for label, col in methods.items():
            est = res[col].to_numpy()
            y = [np.sqrt(np.nanmean(((est[idx == b] - D[idx == b]) / D[idx == b]) ** 2)) if np.any(idx == b)
                 else np.nan for b in range(len(bins) - 1)]
            ax.plot(centres, y, "o-", ms=3, label=label)
        if "crb_rel_sd" in res and key == "D_true_um2_per_s":
            crb = res["crb_rel_sd"].to_numpy()
            ax.plot(centres, [np.sqrt(np.mean(crb[idx == b] ** 2)) if np.any(idx == b) else np.nan
                              for b in range(len(bins) - 1)], "k--", label="Cramér–Rao (trajectory)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor-tick labels overlap on a short log axis
        ax.set_xlabel(xlabel)
        ax.set_ylabel("relative RMSE of D")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / fname, dpi=90)
        plt.close(fig)
        names.append(fname)
    return names


def run_benchmark(out: str | Path | None, *, n: int = 1500, seed: int = 2024, models=("diffusion-2d",),
                  overwrite: bool = False, figures: bool = True, baseline_cache: str | Path | None = None) -> dict:
    """Run the held-out grid and write ``results.csv``, ``table.csv``, ``table.md``, ``bins.csv``, figures.

    Parameters
    ----------
    out : path or None
        Output folder (written atomically); None = compute only.
    n : int
        Stacks in the grid.
    seed : int
        Seed of the grid (conditions and simulation).
    models : sequence of str
        Image models: shipped names or model folders.
    overwrite : bool
    figures : bool
    baseline_cache : path, optional
        A CSV that keeps the trajectory side (localisations, estimators, Cramér–Rao) of the grid
        between runs with the same ``n`` and ``seed`` (written when absent, read when present).

    Returns
    -------
    dict
        ``table`` (one dict per method), ``settings`` and timings.
    """
    from dynacell.diffusion.predict import DiffusionPredictor
    from dynacell.simulate.imaging import psf_sigma_from_fwhm

    t0 = time.perf_counter()
    g = GRID
    cond = draw_conditions(n, seed=seed, D_um2_per_s=g["D_um2_per_s"], snr=g["snr"],
                           pixel_size_um=g["pixel_size_um"], background_photons=g["background_photons"])
    sim = simulate_stacks(cond["D_um2_per_s"].to_numpy(), n_frames=g["n_frames"], shape_px=g["shape_px"],
                          pixel_size_um=cond["pixel_size_um"].to_numpy(), frame_interval_s=g["frame_interval_s"],
                          exposure_s=g["exposure_s"], psf_fwhm_nm=g["psf_fwhm_nm"], snr=cond["snr"].to_numpy(),
                          background_photons=cond["background_photons"].to_numpy(),
                          read_noise_adu=g["read_noise_adu"], gain_adu_per_e=g["gain_adu_per_e"],
                          offset_adu=g["offset_adu"], seed=seed)
    t = sim.truth
    px = t["pixel_size_um"].to_numpy()
    sig_px = psf_sigma_from_fwhm(g["psf_fwhm_nm"]) / 1000.0 / px
    t_sim = time.perf_counter() - t0
    cache = Path(baseline_cache) if baseline_cache else None
    if cache is not None and cache.is_file() and json.loads(cache.with_suffix(".json").read_text()) == [n, seed]:
        res = pd.read_csv(cache)  # the trajectory side of this very grid (same n and seed), computed before
    else:
        loc = localise_stacks(sim.stacks, psf_sigma_px=sig_px)
        traj = trajectory_estimates(sim.stacks, pixel_size_um=px, frame_interval_s=g["frame_interval_s"],
                                    exposure_s=g["exposure_s"], localisations=loc)
        # measured localisation error (per axis, µm) of each stack: fit minus the true exposure-mean position
        true_px = sim.positions_um[:, 0] / px[:, None, None] - 0.5
        fit_px = loc.sort_values(["stack", "frame"])[["y_px", "x_px"]].to_numpy().reshape(true_px.shape)
        loc_err_um = np.sqrt(np.mean((fit_px - true_px) ** 2, axis=(1, 2))) * px
        res = pd.DataFrame({"stack": t["stack"], "D_true_um2_per_s": t["D_um2_per_s"], "snr": t["snr"],
                            "pixel_size_um": px, "background_photons": t["background_photons"],
                            "loc_error_um": loc_err_um})
        res = res.merge(traj, on="stack")
        res["crb_rel_sd"] = _cramer_rao(t, loc_err_um, g["n_frames"] - 1)
        if cache is not None:
            res.to_csv(cache, index=False)
            cache.with_suffix(".json").write_text(json.dumps([n, seed]))
    t_traj = time.perf_counter() - t0 - t_sim
    methods: dict[str, str] = {}
    point: dict[str, str] = {}  # each model's minimum-relative-MSE point estimate, scored beside its median
    timings = {"simulate_s": round(t_sim, 1), "localise_and_trajectory_s": round(t_traj, 1)}
    for m in models:
        pred = DiffusionPredictor.load(m)
        t1 = time.perf_counter()
        p = pred.predict(sim.stacks, pixel_size_um=px, frame_interval_s=g["frame_interval_s"],
                         exposure_s=g["exposure_s"], psf_fwhm_nm=g["psf_fwhm_nm"],
                         gain_adu_per_e=g["gain_adu_per_e"], offset_adu=g["offset_adu"],
                         read_noise_adu=g["read_noise_adu"])
        timings[f"{pred.card.name}_s"] = round(time.perf_counter() - t1, 1)
        name = pred.card.name
        res[f"D_{name}_um2_per_s"] = p["D_um2_per_s"].to_numpy()
        res[f"D_{name}_lo68"] = p["D_lo68_um2_per_s"].to_numpy()
        res[f"D_{name}_hi68"] = p["D_hi68_um2_per_s"].to_numpy()
        res[f"D_{name}-mrmse_um2_per_s"] = p["D_min_rel_mse_um2_per_s"].to_numpy()
        methods[f"{name} ({pred.card.architecture})"] = f"D_{name}_um2_per_s"
        point[f"{name} ({pred.card.architecture}), min-rel-MSE point"] = f"D_{name}-mrmse_um2_per_s"
    image_methods = list(methods)
    methods.update(point)
    traj_methods = {"seed MSD of centroids": TRAJECTORY_METHODS["seed_msd"], "CVE": TRAJECTORY_METHODS["cve"],
                    "optimal MSD fit": TRAJECTORY_METHODS["msd_optimal"]}
    methods.update(traj_methods)
    D = res["D_true_um2_per_s"].to_numpy()
    snr = res["snr"].to_numpy()

    def rows_of(sel: np.ndarray) -> list[dict]:
        rows = []
        for label, col in methods.items():
            name = col[2:-len("_um2_per_s")]
            lo, hi = (res.get(f"D_{name}_lo68"), res.get(f"D_{name}_hi68"))
            lo, hi = (None, None) if lo is None else (lo.to_numpy()[sel], hi.to_numpy()[sel])
            rows.append({"method": label, **score(D[sel], res[col].to_numpy()[sel], lo, hi)})
        return rows

    rows = rows_of(np.ones(len(D), bool))
    table_snr5 = pd.DataFrame(rows_of(snr >= 5.0))
    crb = res["crb_rel_sd"].to_numpy()
    rows.append({"method": "Cramér–Rao bound (trajectory, measured loc. error)",
                 "rel_rmse": float(np.sqrt(np.mean(crb**2))), "msle": float("nan"),
                 "median_abs_rel_err": float(np.median(crb)), "n": len(crb), "n_failed": 0})
    from dynacell.motion.estimators import cramer_rao_relative_sd

    rows.append({"method": "Cramér–Rao bound (trajectory, perfect positions)",
                 "rel_rmse": cramer_rao_relative_sd(g["n_frames"] - 1, 0.0, 2, sigma_known=True),
                 "msle": float("nan"), "median_abs_rel_err": float("nan"), "n": len(crb), "n_failed": 0})
    table = pd.DataFrame(rows)
    bins = []
    d_idx = np.digitize(D, D_BINS[1:-1])
    s_idx = np.digitize(res["snr"].to_numpy(), SNR_BINS[1:-1])
    for i in range(len(D_BINS) - 1):
        for j in range(len(SNR_BINS) - 1):
            sel = (d_idx == i) & (s_idx == j)
            row = {"D_range": f"{D_BINS[i]:g}-{D_BINS[i + 1]:g}", "snr_range": f"{SNR_BINS[j]:g}-{SNR_BINS[j + 1]:g}",
                   "n": int(sel.sum())}
            for label, col in methods.items():
                row[label] = score(D[sel], res[col].to_numpy()[sel])["rel_rmse"] if sel.any() else float("nan")
            best_traj = min(row["CVE"], row["optimal MSD fit"])
            for label in image_methods:
                row[f"{label} / best trajectory"] = row[label] / best_traj if sel.any() else float("nan")
            bins.append(row)
    bins_df = pd.DataFrame(bins)
    settings = {**{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()}, "n": n, "seed": seed,
                "models": list(models), "motion": "brownian"}
    if out is not None:
        with atomic_folder(out, overwrite=overwrite) as tmp:
            tmp = Path(tmp)
            res.to_csv(tmp / "results.csv", index=False)
            table.to_csv(tmp / "table.csv", index=False)
            table_snr5.to_csv(tmp / "table_snr_ge_5.csv", index=False)
            bins_df.to_csv(tmp / "bins.csv", index=False)
            (tmp / "table.md").write_text(markdown_table(table, ".3f") + "\n\nSNR >= 5:\n\n"
                                          + markdown_table(table_snr5, ".3f") + "\n\n"
                                          + markdown_table(bins_df, ".2f") + "\n")
            # figures: every model's median, the first model's minimum-relative-MSE point, the trajectory side
            fig_methods = {k: v for k, v in methods.items() if k not in point or k == next(iter(point))}
            figs = _figures(res, fig_methods, tmp) if figures else []
            (tmp / "settings.json").write_text(json.dumps({"settings": settings, "timings": timings,
                                                           "figures": figs}, indent=1))
    return {"table": table.to_dict(orient="records"), "table_snr_ge_5": table_snr5.to_dict(orient="records"),
            "bins": bins_df.to_dict(orient="records"),
            "settings": settings, "timings": timings}
