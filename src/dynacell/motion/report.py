"""Files of ``dynacell motion``: tables, figures and a short HTML report."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.motion.analysis import MotionResult

__all__ = ["OUTPUT_FILES", "write_motion_outputs"]

OUTPUT_FILES = ("msd.csv", "diffusion.json", "correlations.csv", "moments.csv", "scaling.csv", "msd.png",
                "lambda.png", "velocity_correlation.png", "report.html")

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Motion statistics — {{ source }}</title>
<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}img{max-width:100%}.note{color:#666}</style></head><body>
<h1>Motion statistics</h1>
<p>{{ source }} — {{ s.n_tracks }} tracks, {{ s.n_localisations }} positions, {{ s.ndim }}D,
frame interval {{ s.frame_interval_s }} s{% if s.drift_subtracted %}, ensemble drift subtracted{% endif %}.</p>
<h2>Diffusion coefficient</h2>
<p><b>D = {{ fmt(s.D_um2_per_s) }} ± {{ fmt(s.D_se_um2_per_s) }} µm²/s</b> ({{ s.D_method }}); anomalous exponent
α = {{ fmt(s.alpha) }} ± {{ fmt(s.alpha_se) }} (power-law fit of the ensemble MSD, lags {{ s.alpha_lags }}).
Every estimator assumes Brownian motion with localisation error; α far from 1 means they describe the short-time
motion only.</p>
<table><tr><th>method</th><th>D (µm²/s)</th><th>SE</th><th>σ (µm)</th><th>lags</th><th>steps</th></tr>
{% for k, d in s.diffusion.items() %}<tr><td style="text-align:left">{{ k }}</td><td>{{ fmt(d.D_um2_per_s) }}</td>
<td>{{ fmt(d.D_se_um2_per_s) }}</td><td>{{ fmt(d.sigma_um) }}</td><td>{{ d.lags_used[0] }}–{{ d.lags_used[-1] }}</td>
<td>{{ d.n_displacements }}</td></tr>{% endfor %}</table>
<p class="note">msd_fit_optimal: least-squares MSD fit with the optimal number of points (Michalet &amp; Berglund 2012);
cve: covariance-based estimator (Vestergaard, Blainey &amp; Flyvbjerg 2014); mle: maximum likelihood (Berglund 2010);
msd_slope_seed: line through the origin over every lag (the single-molecule seed project's baseline).</p>
<img src="data:image/png;base64,{{ img.msd }}" alt="MSD">
<h2>Displacement moments and λ(q)</h2>
<p>R0 (mean maximal track extent) = {{ fmt(s.R0_um) }} µm. λ(q) = log-log slope of ⟨|x(t) − x(0)|^q⟩;
Brownian motion gives q/2, ballistic motion q. Bilinear fit: slope {{ fmt(s.lambda_bilinear.slope_low) }} below
q = {{ fmt(s.lambda_bilinear.q_break) }}, {{ fmt(s.lambda_bilinear.slope_high) }} above.</p>
<img src="data:image/png;base64,{{ img.lam }}" alt="lambda">
<h2>Velocity correlations</h2>
<p>Mean drift speed of the ensemble: {{ fmt(s.drift_speed_um_per_s) }} µm/s.</p>
{% if img.cv %}<img src="data:image/png;base64,{{ img.cv }}" alt="velocity correlations">{% endif %}
{% if s.notes %}<h2>Notes</h2><ul>{% for n in s.notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
</body></html>
"""


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, (int, np.integer)):
        return str(v)
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def _plots(res: MotionResult, folder: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    out = {}
    s = res.summary()
    d = res.tracks.ndim
    # MSD with the fits
    fig, ax = plt.subplots(figsize=(5.5, 4))
    e = res.msd
    ax.errorbar(e["lag_s"], e["msd_um2"], yerr=e["se_um2"].fillna(0), fmt="o", ms=3, color="k", label="ensemble MSD")
    t = e["lag_s"].to_numpy()
    for k, est in res.diffusion.items():
        if est.D_um2_per_s > 0:
            ax.plot(t, 2 * d * est.D_um2_per_s * t, lw=1, label=f"{k}: D={est.D_um2_per_s:.3g}")
    if np.isfinite(s["alpha"] or np.nan):
        ax.plot(t, res.alpha["A_um2"] * t ** res.alpha["alpha"], "k--", lw=1, label=f"power law α={s['alpha']:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("lag time (s)")
    ax.set_ylabel("MSD (µm²)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "msd.png", dpi=110)
    plt.close(fig)
    # λ(q) and moments
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.8))
    for qq in res.scaling["q"]:
        col = f"m_q{qq:g}_norm"
        axs[0].plot(res.moments["lag_s"], res.moments[col], label=f"q={qq:g}")
    axs[0].set_xscale("log")
    axs[0].set_yscale("log")
    axs[0].set_xlabel("t (s)")
    axs[0].set_ylabel("⟨|x(t)−x(0)|^q⟩ / R0^q")
    axs[0].legend(fontsize=7)
    sc = res.scaling
    axs[1].plot(sc["q"], sc["lambda"], "r^", label="λ(q)")
    b = res.bilinear
    qs = np.linspace(sc["q"].min(), sc["q"].max(), 50)
    if np.isfinite(b["intercept"]):
        qb = b["q_break"] if np.isfinite(b["q_break"]) else qs.max()
        lam = b["intercept"] + b["slope_low"] * qs + (b["slope_high"] - b["slope_low"]) * np.maximum(qs - qb, 0)
        axs[1].plot(qs, lam, "b--", lw=1, label=f"bilinear: {b['slope_low']:.2f} / {b['slope_high']:.2f}")
    axs[1].plot(qs, qs / 2, ":", color="gray", label="Brownian q/2")
    axs[1].set_xlabel("q")
    axs[1].set_ylabel("λ(q)")
    axs[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / "lambda.png", dpi=110)
    plt.close(fig)
    # velocity correlations
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.5))
    if res.spatial is not None:
        axs[0].plot(res.spatial["r_um"], res.spatial["C_v_norm"], "o-", ms=3)
        axs[0].axhline(0, color="gray", lw=0.5)
        axs[0].set_xlabel("ΔR (µm)")
        axs[0].set_ylabel("C_v(ΔR) / ⟨|v|²⟩")
    if res.temporal is not None:
        tt = res.temporal
        axs[1].plot(tt["lag_s"], tt["C_v"], "o-", ms=3)
        axs[1].axhline(0, color="gray", lw=0.5)
        axs[1].set_xlabel("Δt (s)")
        axs[1].set_ylabel("C_v(Δt)")
    fig.tight_layout()
    fig.savefig(folder / "velocity_correlation.png", dpi=110)
    plt.close(fig)
    for key, name in (("msd", "msd.png"), ("lam", "lambda.png"), ("cv", "velocity_correlation.png")):
        out[key] = base64.b64encode((folder / name).read_bytes()).decode()
    return out


def write_motion_outputs(res: MotionResult, folder: Path, *, parameters: dict | None = None) -> dict:
    """Write every output of ``dynacell motion`` into ``folder`` (an existing temporary folder).

    Files: ``msd.csv`` (ensemble MSD with SE), ``diffusion.json`` (summary + every estimator +
    parameters), ``correlations.csv`` (``kind`` = spatial / temporal), ``moments.csv``,
    ``scaling.csv`` (λ(q)), ``van_hove.csv``, ``tracks_diffusion.csv`` (D per track), figures ``msd.png``, ``lambda.png``,
    ``velocity_correlation.png`` and ``report.html``.

    Parameters
    ----------
    res : MotionResult
        The analysis.
    folder : Path
        The output folder (exists).
    parameters : dict, optional
        The command's parameters, recorded in ``diffusion.json``.

    Returns
    -------
    dict
        The summary written into ``diffusion.json``.
    """
    import jinja2

    folder = Path(folder)
    s = res.summary()
    s["parameters"] = parameters or {}
    res.msd.to_csv(folder / "msd.csv", index=False)
    parts = []
    if res.spatial is not None:
        parts.append(res.spatial.assign(kind="spatial"))
    if res.temporal is not None:
        parts.append(res.temporal.assign(kind="temporal"))
    (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["kind"])).to_csv(
        folder / "correlations.csv", index=False)
    res.moments.to_csv(folder / "moments.csv", index=False)
    res.scaling.to_csv(folder / "scaling.csv", index=False)
    if res.van_hove is not None:
        res.van_hove.to_csv(folder / "van_hove.csv", index=False)
    if res.per_track is not None:
        res.per_track.to_csv(folder / "tracks_diffusion.csv", index=False)
    (folder / "diffusion.json").write_text(json.dumps(s, indent=2, allow_nan=False))
    img = _plots(res, folder)
    html = jinja2.Environment(autoescape=True).from_string(_TEMPLATE).render(
        s=s, img=img, fmt=_fmt, source=res.tracks.source)
    (folder / "report.html").write_text(html)
    return s
