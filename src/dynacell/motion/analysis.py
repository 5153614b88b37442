"""All motion statistics of a set of tracks in one call, and the JSON-safe summary for reports."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.motion import estimators as est
from dynacell.motion.correlations import (
    Q_DEFAULT,
    bilinear_fit,
    displacement_moments,
    moment_scaling,
    spatial_velocity_correlation,
    temporal_velocity_correlation,
    van_hove,
)
from dynacell.motion.msd import compute_drift, ensemble_msd, fit_alpha, subtract_drift
from dynacell.motion.tracks import Tracks, tracks_from_dataframe

__all__ = ["MotionResult", "analyze", "diffusion_by_method", "motion_summary", "per_track_diffusion",
           "run_motion_summary"]


@dataclass
class MotionResult:
    """Everything :func:`analyze` measures (tables in µm and s).

    Attributes
    ----------
    tracks : Tracks
        The tracks analysed (drift subtracted when asked).
    msd : pandas.DataFrame
        Ensemble MSD per lag with its standard error (:func:`ensemble_msd`).
    alpha : dict
        Power-law fit of the MSD: ``alpha``, ``alpha_se``, ``lags`` (NaN / None when it failed).
    diffusion : dict
        Estimator name → :class:`~dynacell.motion.estimators.DiffusionEstimate`
        (:func:`diffusion_by_method`).
    D_method : str
        The estimator reported as D (CVE in its reliable range, else MLE).
    spatial, temporal : pandas.DataFrame or None
        Spatial and temporal velocity correlations (None when the tracks are too short).
    moments : pandas.DataFrame
        Displacement moments per lag and order q.
    R0_um : float
        Mean maximal track extent (µm), the moments' normalisation.
    scaling : pandas.DataFrame
        λ(q), the growth exponent of each moment.
    bilinear : dict
        Two-segment fit of λ(q) (:func:`~dynacell.motion.correlations.bilinear_fit`).
    van_hove : pandas.DataFrame or None
        Van Hove self-correlation (None when it could not be formed).
    drift_speed_um_per_s : float
        Speed of the ensemble drift between the first and last frames.
    notes : list of str
        What was left out or assumed, and why.
    per_track : pandas.DataFrame or None
        D per track (:func:`per_track_diffusion`).
    """

    tracks: Tracks
    msd: pd.DataFrame
    alpha: dict
    diffusion: dict[str, est.DiffusionEstimate]
    D_method: str
    spatial: pd.DataFrame | None
    temporal: pd.DataFrame | None
    moments: pd.DataFrame
    R0_um: float
    scaling: pd.DataFrame
    bilinear: dict
    van_hove: pd.DataFrame | None
    drift_speed_um_per_s: float
    notes: list[str] = field(default_factory=list)
    per_track: pd.DataFrame | None = None

    @property
    def D_um2_per_s(self) -> float:
        """Diffusion coefficient (µm²/s) of the chosen estimator ``D_method``; NaN when it did not run."""
        e = self.diffusion.get(self.D_method)
        return e.D_um2_per_s if e is not None else math.nan

    def summary(self) -> dict:
        """JSON-safe summary (keys ``n_tracks, D_um2_per_s, D_method, alpha, D_by_method`` and more)."""
        def f(v):
            return None if v is None or not math.isfinite(float(v)) else float(v)
        tr = self.tracks
        main = self.diffusion.get(self.D_method)
        return {
            "n_tracks": tr.n_tracks,
            "n_localisations": len(tr.table),
            "ndim": tr.ndim,
            "frame_interval_s": tr.frame_interval_s,
            "D_um2_per_s": f(self.D_um2_per_s),
            "D_se_um2_per_s": f(main.D_se_um2_per_s) if main else None,
            "D_method": self.D_method,
            "alpha": f(self.alpha.get("alpha")),
            "alpha_se": f(self.alpha.get("alpha_se")),
            "alpha_lags": self.alpha.get("lags"),
            "D_by_method": {k: f(v.D_um2_per_s) for k, v in self.diffusion.items()},
            "diffusion": {k: v.to_dict() for k, v in self.diffusion.items()},
            "sigma_um": f(tr.sigma_um) if tr.sigma_um is not None else None,
            "R0_um": f(self.R0_um),
            "lambda_q": {f"{r.q:g}": f(r["lambda"]) for _, r in self.scaling.iterrows()},
            "lambda_bilinear": {k: f(v) for k, v in self.bilinear.items()},
            "drift_speed_um_per_s": f(self.drift_speed_um_per_s),
            "drift_subtracted": bool(tr.meta.get("drift_subtracted", False)),
            "n_gaps": tr.n_gaps,
            "n_dropped_single_frame_tracks": tr.n_dropped_single,
            "n_dropped_nan_rows": tr.n_dropped_nan,
            "notes": list(self.notes),
        }


def diffusion_by_method(tracks: Tracks, *, exposure_s: float | None = None, sigma_um: float | None = None,
                        ) -> tuple[dict[str, est.DiffusionEstimate], list[str]]:
    """Every estimator on the consecutive-frame segments of ``tracks`` (pooled over segments).

    ``msd_fit_optimal`` uses segments of ≥ 5 frames, ``cve`` and ``mle`` ≥ 3, ``msd_slope_seed`` ≥ 2
    (positions in µm with ``pixel_size_um=1``). An estimator without enough data is left out and a
    note says why.

    Parameters
    ----------
    tracks : Tracks
        The tracks (µm, s).
    exposure_s : float, optional
        Exposure per frame (s), for the blur-aware estimators.
    sigma_um : float, optional
        Known localisation error (µm per axis); None = estimated.

    Returns
    -------
    estimates : dict
        Estimator name → :class:`~dynacell.motion.estimators.DiffusionEstimate`.
    notes : list of str
        Why an estimator was left out.
    """
    notes: list[str] = []
    out: dict[str, est.DiffusionEstimate] = {}
    dt = tracks.frame_interval_s
    for name, fn, k in (("msd_fit_optimal", est.msd_fit_optimal, 5), ("cve", est.cve, 3), ("mle", est.mle, 3)):
        segs = tracks.segments(k)
        if not segs:
            notes.append(f"{name}: no run of {k} consecutive frames")
            continue
        out[name] = fn(segs, dt, exposure_s=exposure_s, sigma_um=sigma_um)
    segs = tracks.segments(2)
    out["msd_slope_seed"] = est.msd_slope_seed(segs, dt, pixel_size_um=1.0)
    return out, notes


def per_track_diffusion(tracks: Tracks, *, exposure_s: float | None = None, sigma_um: float | None = None,
                        min_frames: int = 5) -> pd.DataFrame:
    """CVE, MLE and the optimal MSD fit for every track with at least ``min_frames`` positions.

    Tracks without gaps of equal length are estimated together (the vectorised ``*_many``
    estimators); a track with gaps pools its runs of consecutive frames (runs of ≥ 3 frames for
    CVE / MLE, ≥ 5 for the MSD fit; NaN when it has none).

    Parameters
    ----------
    tracks : Tracks
        The tracks (µm, s).
    exposure_s : float, optional
        Exposure per frame (s); None = no motion blur.
    sigma_um : float, optional
        Known localisation error (µm per axis); None = estimated.
    min_frames : int
        Tracks with fewer positions are left out.

    Returns
    -------
    pandas.DataFrame
        ``track_id, n_steps, D_cve_um2_per_s, D_cve_se_um2_per_s, sigma_cve_um, D_mle_um2_per_s,
        D_mle_se_um2_per_s, D_msd_fit_um2_per_s``; one row per track kept.
    """
    tab = tracks.table
    dt = tracks.frame_interval_s
    kw = {"exposure_s": exposure_s, "sigma_um": sigma_um}
    cols = ["track_id", "n_steps", "D_cve_um2_per_s", "D_cve_se_um2_per_s", "sigma_cve_um", "D_mle_um2_per_s",
            "D_mle_se_um2_per_s", "D_msd_fit_um2_per_s"]
    g = tab.groupby("track_id")["t"]
    info = pd.DataFrame({"n": g.size(), "span": g.max() - g.min() + 1})
    info = info[info["n"] >= max(int(min_frames), 3)]
    rows = []
    pos = dict(zip(tab["track_id"].unique(), tracks.positions()))
    full = info[info["n"] == info["span"]]
    for T, grp in full.groupby("n"):
        ids = grp.index.to_numpy()
        arr = np.stack([pos[i] for i in ids])
        c = est.cve_many(arr, dt, **kw)
        m = est.mle_many(arr, dt, **kw)
        f = est.msd_fit_optimal_many(arr, dt, **kw).D_um2_per_s if T >= 5 else np.full(len(ids), np.nan)
        rows.append(pd.DataFrame({"track_id": ids, "n_steps": T - 1, "D_cve_um2_per_s": c.D_um2_per_s,
                                  "D_cve_se_um2_per_s": c.D_se_um2_per_s, "sigma_cve_um": c.sigma_um,
                                  "D_mle_um2_per_s": m.D_um2_per_s, "D_mle_se_um2_per_s": m.D_se_um2_per_s,
                                  "D_msd_fit_um2_per_s": f}))
    gapped = info.index[info["n"] != info["span"]]
    if len(gapped):
        sub = tab[tab["track_id"].isin(gapped)]
        for tid, t in sub.groupby("track_id"):
            one = Tracks(t.reset_index(drop=True), dt, tracks.ndim)
            s3, s5 = one.segments(3), one.segments(5)
            nan = float("nan")
            c = est.cve(s3, dt, **kw) if s3 else None
            m = est.mle(s3, dt, **kw) if s3 else None
            f = est.msd_fit_optimal(s5, dt, **kw).D_um2_per_s if s5 else nan
            rows.append(pd.DataFrame([{"track_id": tid, "n_steps": sum(len(x) - 1 for x in s3),
                                       "D_cve_um2_per_s": c.D_um2_per_s if c else nan,
                                       "D_cve_se_um2_per_s": c.D_se_um2_per_s if c else nan,
                                       "sigma_cve_um": c.sigma_um if c else nan,
                                       "D_mle_um2_per_s": m.D_um2_per_s if m else nan,
                                       "D_mle_se_um2_per_s": m.D_se_um2_per_s if m else nan,
                                       "D_msd_fit_um2_per_s": f}]))
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.concat(rows, ignore_index=True)[cols].sort_values("track_id").reset_index(drop=True)


def _choose(diff: dict[str, est.DiffusionEstimate], dt: float) -> str:
    """CVE when √(DΔt)/σ > 1 (its reliable range), else MLE; the MSD fit when neither is available."""
    c = diff.get("cve")
    if c is not None and c.D_um2_per_s >= 0 and (c.sigma_um == 0 or math.sqrt(c.D_um2_per_s * dt) / c.sigma_um > 1):
        return "cve"
    for k in ("mle", "cve", "msd_fit_optimal", "msd_slope_seed"):
        if k in diff:
            return k
    raise InvalidInputError("no diffusion estimate could be computed")


def analyze(tracks: Tracks, *, exposure_s: float | None = None, sigma_um: float | None = None,
            drift: bool = False, max_lag: int | None = 100, q=Q_DEFAULT, n_distance_bins: int = 20,
            alpha_max_lag: int | None = None) -> MotionResult:
    """MSD, α, every diffusion estimator (pooled and per track), velocity correlations, moments, λ(q) and
    van Hove of ``tracks``.

    Parameters
    ----------
    tracks : Tracks
    exposure_s : float, optional
        Exposure per frame (s) for the blur correction; None = no blur.
    sigma_um : float, optional
        Known localisation error (µm); default: ``tracks.sigma_um`` when the table gave errors, else
        estimated by each estimator.
    drift : bool
        Subtract the ensemble drift (:func:`~dynacell.motion.msd.compute_drift`) first.
    max_lag : int or None
        Largest MSD lag (frames).
    q : sequence of float
        Moment orders.
    n_distance_bins : int
        Bins of the spatial velocity correlation.
    alpha_max_lag : int, optional
        Largest lag of the power-law fit (default: a quarter of the longest track, at least 3,
        lags with at least min(10, n_tracks) tracks).

    Returns
    -------
    MotionResult
        ``D_method``: CVE when √(DΔt)/σ > 1 (Vestergaard et al. 2014's reliable range), else MLE.
    """
    notes: list[str] = []
    dr = compute_drift(tracks)
    span_s = (dr.index[-1] - dr.index[0]) * tracks.frame_interval_s
    drift_speed = float(np.linalg.norm(dr.iloc[-1].to_numpy() - dr.iloc[0].to_numpy()) / span_s) if span_s > 0 else 0.0
    if drift:
        tracks = subtract_drift(tracks, dr)
    if sigma_um is None and tracks.sigma_um is not None:
        sigma_um = tracks.sigma_um
        notes.append(f"localisation error from the table's per-localisation errors: σ = {sigma_um:.4g} µm (median)")
    ens = ensemble_msd(tracks, max_lag)
    n_tr = tracks.n_tracks
    span = int(ens["lag"].max()) + 1
    amax = alpha_max_lag or max(3, span // 4)
    e_alpha = ens[(ens["lag"] <= amax) & (ens["n_tracks"] >= min(10, n_tr))]
    try:
        alpha = fit_alpha(e_alpha if len(e_alpha) >= 2 else ens, ndim=tracks.ndim)
    except InvalidInputError as exc:
        alpha = {"alpha": math.nan, "alpha_se": math.nan, "lags": None}
        notes.append(f"alpha: {exc}")
    diff, n2 = diffusion_by_method(tracks, exposure_s=exposure_s, sigma_um=sigma_um)
    notes += n2
    method = _choose(diff, tracks.frame_interval_s)
    try:
        spatial = spatial_velocity_correlation(tracks, n_bins=n_distance_bins)
        temporal = temporal_velocity_correlation(tracks, max_lag)
    except InvalidInputError as exc:
        spatial = temporal = None
        notes.append(str(exc))
    moments, R0 = displacement_moments(tracks, q, max_lag)
    scaling = moment_scaling(moments, q, min_tracks=min(5, n_tr))
    bil = bilinear_fit(scaling["q"], scaling["lambda"])
    try:
        vh = van_hove(tracks)
    except InvalidInputError:
        vh = None
    per_track = per_track_diffusion(tracks, exposure_s=exposure_s, sigma_um=sigma_um)
    return MotionResult(tracks, ens, alpha, diff, method, spatial, temporal, moments, R0, scaling, bil, vh,
                        drift_speed, notes, per_track)


def motion_summary(tracks_df: pd.DataFrame, voxel_size_um, frame_interval_s: float, **kw) -> dict:
    """JSON-safe motion summary of a tracks table in pixels (for ``dynacell run``'s report).

    Parameters
    ----------
    tracks_df : pandas.DataFrame
        ``t, track_id, [z,] y, x`` in pixels (``states.csv``), or any layout of
        :data:`dynacell.motion.tracks.LAYOUTS`.
    voxel_size_um : float or sequence of float
        ``(Y, X)`` or ``(Z, Y, X)`` µm (a scalar = isotropic).
    frame_interval_s : float
    **kw
        Passed to :func:`analyze` (``exposure_s``, ``sigma_um``, ``drift`` ...).

    Returns
    -------
    dict
        :meth:`MotionResult.summary` — keys include ``n_tracks, D_um2_per_s, D_method, alpha,
        D_by_method, R0_um, lambda_q``.

    Raises
    ------
    InvalidInputError
        Missing units or any tracks-table rule (:func:`~dynacell.motion.tracks.tracks_from_dataframe`).
    """
    tracks = tracks_from_dataframe(tracks_df, voxel_size_um, frame_interval_s, source="tracks")
    return analyze(tracks, **kw).summary()


def run_motion_summary(states: pd.DataFrame, voxel_size_um, frame_interval_s: float | None
                       ) -> tuple[dict | None, list[str]]:
    """The motion statistics of a ``dynacell run`` (:func:`motion_summary`), never failing the run.

    Parameters
    ----------
    states : pandas.DataFrame
        ``states.csv``: ``t, track_id, z, y, x`` (positions in pixels).
    voxel_size_um : sequence of float or None
        ``(Y, X)`` or ``(Z, Y, X)`` µm; None = unknown.
    frame_interval_s : float or None
        Seconds between frames; None = unknown.

    Returns
    -------
    summary : dict or None
        :func:`motion_summary` in µm and s; None when the voxel size or the frame interval is
        unknown, or the tracks do not allow it (too short, too few).
    notes : list of str
        One report note saying why the statistics were skipped, else empty.
    """
    if voxel_size_um is None or frame_interval_s is None:
        return None, [("Motion statistics (MSD, diffusion coefficient, velocity correlations) are skipped: they need "
                       "the voxel size and the frame interval (--voxel-size-um, --frame-interval-s).")]
    try:
        return motion_summary(states[["t", "track_id", "z", "y", "x"]], voxel_size_um, frame_interval_s), []
    except InvalidInputError as exc:
        return None, [f"Motion statistics are skipped: {exc}"]
