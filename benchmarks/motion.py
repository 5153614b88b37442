"""Benchmark of dynacell.motion against trackpy, physics and the Cramér–Rao bound.

Sections (``python benchmarks/motion.py [section ...]``; default all):

* ``beads``   — 1 µm beads in water (../shared/data/particles/bulk_water, frames 0–99, 100/285 µm/px,
  24 frames/s): trackpy locate/link, then D from every estimator and from trackpy's emsd power-law
  fit in the same run, against Stokes–Einstein 0.43–0.49 µm²/s; α.
* ``saspt``   — real single-molecule tracks (../shared/data/particles/saspt-u2os, 0.16 µm/px,
  7.48 ms/frame): MSD fit vs CVE vs MLE vs a trackpy emsd fit on short tracks, with and without the
  given localisation errors.
* ``sim16``   — simulated 16-frame Brownian tracks with localisation error (and blur): relative RMSE
  of CVE, MLE, the optimal MSD fit and the seed's MSD-slope fit beside the Cramér–Rao bound.
* ``speed``   — ensemble MSD of 10⁴ tracks × 100 frames: dynacell vs trackpy emsd (time, max
  difference), and peak memory at 10³ and 10⁴ tracks.
* ``cells``   — WormGUIDES (3D lineage), bacteria-phc (CTC GT), HeLa (CTC GT) and btrack MDCK tracks:
  α, λ(q), velocity correlations, MSD (figures in docs/figures/motion/).

Every number printed is measured in this run; seeds are fixed (simulations: seed 0).
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FIG = ROOT / "docs" / "figures" / "motion"
RESULTS: dict = {}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def beads() -> None:
    import imageio.v3 as iio
    import trackpy as tp

    from dynacell.motion import analysis, msd
    from dynacell.motion.tracks import tracks_from_dataframe

    folder = DATA / "particles" / "bulk_water"
    files = sorted(folder.glob("bulk_water_*.png"))[:100]
    frames = [np.asarray(iio.imread(f), dtype=np.float32) for f in files]
    frames = [f[..., :3].mean(-1) if f.ndim == 3 else f for f in frames]
    mpp, fps = 100 / 285.0, 24.0
    tp.quiet()
    t0 = time.time()
    f = tp.batch(frames, 11, minmass=20, invert=True, processes=1)
    t_link = tp.link(f, 5, memory=3)
    t1 = tp.filter_stubs(t_link, 25)
    drift = tp.compute_drift(t1)
    tm = tp.subtract_drift(t1.copy(), drift)
    t_locate = time.time() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = tp.emsd(tm, mpp, fps)
    fit = tp.utils.fit_powerlaw(em, plot=False)
    n_tp, A_tp = float(fit["n"].iloc[0]), float(fit["A"].iloc[0])
    D_tp = A_tp / 4
    # dynacell on the same drift-subtracted tracks
    tr = tracks_from_dataframe(tm.reset_index(drop=True)[["frame", "particle", "y", "x"]], mpp, 1 / fps,
                               source="bulk_water")
    ens = msd.ensemble_msd(tr, 100)
    same = float(np.max(np.abs(ens["msd_um2"].to_numpy() - em.to_numpy()[: len(ens)]) / em.to_numpy()[: len(ens)]))
    ours_pl = msd.fit_alpha(ens, ndim=2)
    res = analysis.analyze(tr, max_lag=100, alpha_max_lag=100)
    row = {"n_tracks": tr.n_tracks, "n_localisations": len(tr.table), "locate_link_s": round(t_locate, 1),
           "trackpy_emsd_powerlaw": {"D_um2_per_s": D_tp, "alpha": n_tp},
           "dynacell_emsd_powerlaw": {"D_um2_per_s": ours_pl["A_um2"] / 4, "alpha": ours_pl["alpha"],
                                      "alpha_se": ours_pl["alpha_se"]},
           "emsd_max_rel_diff_vs_trackpy": same,
           "alpha_first_quarter": res.alpha,
           "estimators": {k: v.to_dict() for k, v in res.diffusion.items()},
           "D_method": res.D_method, "D_um2_per_s": res.D_um2_per_s,
           "stokes_einstein_um2_per_s": [0.43, 0.49]}
    row["D_vs_trackpy_rel"] = res.D_um2_per_s / D_tp - 1
    # diagnostics: where does the apparent D grow with the lag?
    e = ens.set_index("lag")["msd_um2"]
    mid = np.polyfit(e.index[4:20] / fps, e.to_numpy()[4:20], 1)[0] / 4
    late = np.polyfit(e.index[20:100] / fps, e.to_numpy()[20:100], 1)[0] / 4
    frac = np.concatenate([np.modf(tm["x"].to_numpy())[0], np.modf(tm["y"].to_numpy())[0]])
    hist = np.histogram(frac, bins=10, range=(0, 1))[0]
    row["diagnostics"] = {"D_slope_lags_5_20": mid, "D_slope_lags_21_100": late,
                          "subpixel_hist_max_over_min": float(hist.max() / max(hist.min(), 1)),
                          "msd_first_10": e.to_numpy()[:10].tolist()}
    print(f"MSD slope D: lags 5–20 {mid:.3f}, lags 21–100 {late:.3f} µm²/s; sub-pixel position histogram "
          f"max/min {hist.max() / max(hist.min(), 1):.2f} (1 = no pixel locking)")
    RESULTS["beads"] = row
    print("\n## bulk_water beads (frames 0-99, trackpy locate/link, drift subtracted)")
    print(f"tracks {tr.n_tracks}, positions {len(tr.table)}; ensemble MSD vs trackpy emsd: max rel diff {same:.1e}")
    print("| method | D (µm²/s) | SE | in 0.43–0.49 | vs trackpy |")
    print("|---|---|---|---|---|")
    print(f"| trackpy emsd power law (A/4, all lags) | {D_tp:.3f} | – | {0.43 <= D_tp <= 0.49} | – |")
    for k, v in res.diffusion.items():
        print(f"| {k} | {v.D_um2_per_s:.3f} | {v.D_se_um2_per_s:.3f} | {0.43 <= v.D_um2_per_s <= 0.49} | "
              f"{v.D_um2_per_s / D_tp - 1:+.1%} |")
    print(f"α: trackpy {n_tp:.3f}; dynacell all lags {ours_pl['alpha']:.3f} ± {ours_pl['alpha_se']:.3f}; "
          f"chosen D_method = {res.D_method}")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.loglog(em.index, em.to_numpy(), "o", ms=3, label="trackpy emsd")
    ax.loglog(ens["lag_s"], ens["msd_um2"], "k.", ms=2, label="dynacell ensemble MSD")
    t = ens["lag_s"].to_numpy()
    for k in ("cve", "mle", "msd_fit_optimal"):
        ax.loglog(t, 4 * res.diffusion[k].D_um2_per_s * t, lw=1, label=f"{k}: D={res.diffusion[k].D_um2_per_s:.3f}")
    ax.fill_between(t, 4 * 0.43 * t, 4 * 0.49 * t, color="g", alpha=0.15, label="Stokes–Einstein 0.43–0.49")
    ax.set_xlabel("lag time (s)")
    ax.set_ylabel("MSD (µm²)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(FIG / "bulk_water_msd.png", dpi=100)
    plt.close(fig)


def saspt() -> None:
    import trackpy as tp

    from dynacell.motion import analysis
    from dynacell.motion import estimators as est
    from dynacell.motion.msd import ensemble_msd
    from dynacell.motion.tracks import tracks_from_dataframe

    folder = DATA / "particles" / "saspt-u2os"
    px, dt = 0.16, 0.00748
    rows = []
    print("\n## saspt-u2os single molecules (0.16 µm/px, 7.48 ms/frame)")
    print("| field | tracks ≥3 frames | mean length | σ given (µm) | MSD fit | CVE | MLE | CVE (σ given) "
          "| MLE (σ given) | trackpy emsd 4-lag line | seed slope |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for f in sorted(folder.glob("region_*_7ms_trajs.csv")):
        df = pd.read_csv(f)
        tr = tracks_from_dataframe(df, px, dt, source=f.name)
        segs3 = tr.segments(3)
        sig = tr.sigma_um
        d_all, _ = analysis.diffusion_by_method(tr)
        d_sig, _ = analysis.diffusion_by_method(tr, sigma_um=sig)
        tpdf = df.rename(columns={"trajectory": "particle"})
        tpdf = tpdf[tpdf["particle"].isin(tr.table["track_id"].unique())]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            em = tp.emsd(tpdf, px, 1 / dt, max_lagtime=4)
        slope = np.polyfit(em.index.to_numpy()[:4], em.to_numpy()[:4], 1)[0]
        D_tp = slope / 4
        ens = ensemble_msd(tr, 4)
        r = {"field": f.name, "n_tracks": len(segs3), "mean_len": float(np.mean([len(s) for s in segs3])),
             "sigma_um": sig, "D_by_method": {k: v.D_um2_per_s for k, v in d_all.items()},
             "SE_by_method": {k: v.D_se_um2_per_s for k, v in d_all.items()},
             "D_sigma_given": {k: v.D_um2_per_s for k, v in d_sig.items()}, "trackpy_emsd_4lag_line": D_tp,
             "sigma_est_cve": d_all["cve"].sigma_um, "emsd_rel_diff": float(np.max(np.abs(
                 ens["msd_um2"].to_numpy() - em.to_numpy()[: len(ens)]) / em.to_numpy()[: len(ens)]))}
        rows.append(r)
        g = r["D_by_method"]
        s = r["D_sigma_given"]
        print(f"| {f.stem[:8]} | {r['n_tracks']} | {r['mean_len']:.1f} | {sig:.4f} | {g['msd_fit_optimal']:.2f} | "
              f"{g['cve']:.2f} ± {r['SE_by_method']['cve']:.2f} | {g['mle']:.2f} ± {r['SE_by_method']['mle']:.2f} | "
              f"{s['cve']:.2f} | {s['mle']:.2f} | {D_tp:.2f} | {g['msd_slope_seed']:.2f} |")
    print("σ estimated by CVE (µm): " + ", ".join(f"{r['sigma_est_cve']:.4f}" for r in rows))
    RESULTS["saspt"] = rows
    del est


def sim16() -> None:
    from dynacell.motion import estimators as est
    from dynacell.motion.simulate import brownian_tracks

    D, dt, n = 1.0, 0.01, 10000
    out = []
    print("\n## simulated 16-frame Brownian tracks (10⁴ tracks per row, 2D, seed 0)")
    print("| x = σ²/(DΔt) | blur R | CR bound (asympt.) | CR bound (exact N=15) | CVE | MLE | MSD fit (optimal p) "
          "| seed MSD slope | CVE / CR(asympt.) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for x in (0.0, 0.2, 1 / 3, 1.0):
        for tE in (None, dt):
            R = est.blur_coefficient(tE, dt)
            sigma = np.sqrt(x * D * dt)
            pos = brownian_tracks(n, 16, D, dt, sigma_um=sigma, exposure_s=tE, seed=0)
            rm = {}
            for name, fn in (("cve", est.cve_many), ("mle", est.mle_many), ("msd_fit_optimal", est.msd_fit_optimal_many)):
                e = fn(pos, dt, exposure_s=tE)
                rm[name] = float(np.sqrt(np.mean((e.D_um2_per_s - D) ** 2)) / D)
            e = est.msd_slope_seed_many(pos, dt, pixel_size_um=1.0)
            rm["msd_slope_seed"] = float(np.sqrt(np.mean((e.D_um2_per_s - D) ** 2)) / D)
            cr = est.cramer_rao_relative_sd(15, x, 2)
            cre = est.cramer_rao_relative_sd(15, x, 2, blur_R=R, exact=True)
            out.append({"x": x, "R": R, "cr_asymptotic": cr, "cr_exact": cre, **rm})
            print(f"| {x:.3g} | {R:.3g} | {cr:.3f} | {cre:.3f} | {rm['cve']:.3f} | {rm['mle']:.3f} | "
                  f"{rm['msd_fit_optimal']:.3f} | {rm['msd_slope_seed']:.3f} | {rm['cve'] / cr:.2f} |")
    RESULTS["sim16"] = out


def speed() -> None:
    import trackpy as tp

    from dynacell.motion.msd import ensemble_msd
    from dynacell.motion.simulate import brownian_tracks
    from dynacell.motion.tracks import tracks_from_dataframe

    def table(n):
        x = brownian_tracks(n, 100, 0.5, 0.1, seed=0) / 0.2 + 500
        return pd.DataFrame({"frame": np.tile(np.arange(100), n), "particle": np.repeat(np.arange(n), 100),
                             "y": x[:, :, 0].ravel(), "x": x[:, :, 1].ravel()})

    mem = {}
    for n in (1000, 10000):
        df = table(n)
        tr = tracks_from_dataframe(df, 0.2, 0.1)
        tracemalloc.start()
        ensemble_msd(tr, 100)
        mem[n] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    df = table(10000)
    tr = tracks_from_dataframe(df, 0.2, 0.1)
    t = time.perf_counter()
    ours = ensemble_msd(tr, 100)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = tp.emsd(df, 0.2, 10.0, max_lagtime=100)
    t_tp = time.perf_counter() - t
    diff = float(np.max(np.abs(ours["msd_um2"].to_numpy() - theirs.to_numpy()) / theirs.to_numpy()))
    RESULTS["speed"] = {"dynacell_s": t_ours, "trackpy_s": t_tp, "speedup": t_tp / t_ours, "max_rel_diff": diff,
                        "peak_MiB": mem}
    print("\n## speed: ensemble MSD of 10⁴ tracks × 100 frames (2 shared cores)")
    print("| | time (s) | max rel. difference |")
    print("|---|---|---|")
    print(f"| trackpy emsd | {t_tp:.1f} | – |")
    print(f"| dynacell ensemble_msd | {t_ours:.2f} | {diff:.1e} |")
    print(f"speed-up {t_tp / t_ours:.0f}×; peak memory {mem[1000]:.0f} MiB (10³ tracks) → {mem[10000]:.0f} MiB "
          f"(10⁴ tracks), ratio {mem[10000] / mem[1000]:.1f}")


def cells() -> None:
    from dynacell.lineage import read_lineage
    from dynacell.motion import analysis
    from dynacell.motion.tracks import read_tracks, tracks_from_lineage

    sets = [
        ("WormGUIDES C. elegans (3D)", lambda: tracks_from_lineage(
            read_lineage(DATA / "lineages" / "wormguides-celegans"), 1.0, 60.0, source="wormguides"),
         "px (pixel size unknown), 60 s"),
        ("bacteria-phc (CTC GT)", lambda: tracks_from_lineage(
            read_lineage(DATA / "ctc" / "bacteria-phc" / "01_GT" / "TRA"), 1.0, 1.0, source="bacteria-phc"),
         "px, frames (units unknown)"),
        ("HeLa (CTC GT, 50 of 92 frames)", lambda: tracks_from_lineage(
            read_lineage(DATA / "ctc" / "Fluo-N2DL-HeLa" / "02_GT" / "TRA"), 0.645, 1800.0, source="hela",
            drop_nan=True),
         "0.645 µm/px, 1800 s"),
        ("btrack MDCK", lambda: read_tracks(DATA / "tracks" / "btrack-mdck" / "tracks.csv", 1.0, 1.0),
         "px, frames (units unknown)"),
    ]
    plt = _plt()
    out = {}
    print("\n## cell tracks: α, λ(q), velocity correlations")
    print("| data | units | tracks | positions | α (± SE) | λ(1) | λ(2) | λ(3) | bilinear slopes low / high (break) "
          "| R0 | C_v(Δt=1 frame) | C_v(ΔR) first bin |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    fig, axs = plt.subplots(2, 2, figsize=(10, 8))
    for name, load, units in sets:
        try:
            t0 = time.time()
            tr = load()
            res = analysis.analyze(tr, max_lag=None)
        except Exception as exc:  # noqa: BLE001 — report and continue with the other data sets
            print(f"| {name} | failed: {exc} |")
            continue
        s = res.summary()
        lam = res.scaling.set_index("q")["lambda"]
        b = res.bilinear
        cvt = res.temporal
        cv1 = float(cvt.loc[cvt["lag"] == 1, "C_v"].iloc[0]) if cvt is not None and (cvt["lag"] == 1).any() else np.nan
        cvr = float(res.spatial["C_v_norm"].dropna().iloc[0]) if res.spatial is not None else np.nan
        out[name] = {"units": units, "summary": s, "seconds": time.time() - t0}
        print(f"| {name} | {units} | {s['n_tracks']} | {s['n_localisations']} | {s['alpha']:.2f} ± {s['alpha_se']:.2f} "
              f"| {lam.get(1.0):.2f} | {lam.get(2.0):.2f} | {lam.get(3.0):.2f} | {b['slope_low']:.2f} / "
              f"{b['slope_high']:.2f} ({b['q_break']:.2f}) | {res.R0_um:.1f} | {cv1:.2f} | {cvr:.2f} |")
        e = res.msd
        axs[0, 0].loglog(e["lag"], e["msd_um2"] / e["msd_um2"].iloc[0], label=name)
        axs[0, 1].plot(res.scaling["q"], res.scaling["lambda"], "^-", label=name)
        if cvt is not None:
            axs[1, 0].plot(cvt["lag"][:40], cvt["C_v"][:40], ".-", label=name)
        if res.spatial is not None:
            sp = res.spatial
            axs[1, 1].plot(sp["r_um"] / sp["r_um"].max(), sp["C_v_norm"], ".-", label=name)
    axs[0, 0].set(xlabel="lag (frames)", ylabel="MSD / MSD(1 frame)", title="ensemble MSD")
    axs[0, 1].plot([1, 3], [0.5, 1.5], ":", color="gray", label="Brownian q/2")
    axs[0, 1].plot([1, 3], [1, 3], "--", color="gray", label="ballistic q")
    axs[0, 1].set(xlabel="q", ylabel="λ(q)", title="moment scaling")
    axs[1, 0].set(xlabel="Δt (frames)", ylabel="C_v(Δt)", title="temporal velocity correlation")
    axs[1, 1].set(xlabel="ΔR / max ΔR", ylabel="C_v(ΔR)/⟨|v|²⟩", title="spatial velocity correlation")
    for a in axs.ravel():
        a.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(FIG / "cells.png", dpi=90)
    plt.close(fig)
    RESULTS["cells"] = out


SECTIONS = {"sim16": sim16, "speed": speed, "beads": beads, "saspt": saspt, "cells": cells}


def main(argv: list[str]) -> None:
    FIG.mkdir(parents=True, exist_ok=True)
    chosen = argv or list(SECTIONS)
    for name in chosen:
        t = time.time()
        SECTIONS[name]()
        print(f"({name}: {time.time() - t:.0f} s)")
        sys.stdout.flush()
    out = Path("/tmp") / f"motion_benchmark_{'_'.join(chosen)}.json"
    out.write_text(json.dumps(RESULTS, indent=1, default=float))
    print(f"results: {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
