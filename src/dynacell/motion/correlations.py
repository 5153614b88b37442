"""Velocity correlations, displacement moments, the moment scaling function λ(q), van Hove functions.

Definitions (the live/dead cell-motion seed study, Cheng et al., its eqs. 3–7):

* velocity of track i at frame t: v_i(t) = (r_i(t + 1) − r_i(t)) / Δt (consecutive frames only),
  placed at position r_i(t);
* spatial velocity correlation C_v(ΔR) = Σ_{i≠j} v_i·v_j δ(|r_i − r_j| − ΔR) / Σ_{i≠j} δ(...): the mean
  of v_i·v_j over pairs of tracks present at the same frame whose distance falls in the ΔR bin
  (µm²/s²); ``C_v_norm`` divides it by ⟨|v|²⟩ (1 = perfectly aligned equal speeds);
* temporal velocity correlation C_v(Δt) = ⟨v(t)·v(t + Δt)⟩ / ⟨|v(t)|²⟩, averaged over tracks and t;
* displacement moments ⟨|x(t)|^q⟩ = (1/N) Σ_i |x_i(t) − x_i(0)|^q, t counted from each track's first
  frame, N = tracks observed at t; normalised by R0^q with R0 = the mean over tracks of the largest
  distance between two positions of the same track;
* λ(q) = the log-log slope of ⟨|x(t)|^q⟩ against t (fit over a range of t), and a bilinear
  (two-segment, continuous) fit of λ(q) against q giving the slopes for low and high moments.
  Brownian motion gives λ(q) = q/2, ballistic motion λ(q) = q.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import fft as sp_fft
from scipy.spatial import ConvexHull, QhullError, cKDTree
from scipy.spatial.distance import pdist

from dynacell.errors import InvalidInputError
from dynacell.motion.msd import padded
from dynacell.motion.tracks import Tracks

__all__ = [
    "Q_DEFAULT",
    "bilinear_fit",
    "displacement_moments",
    "max_extent_um",
    "moment_scaling",
    "spatial_velocity_correlation",
    "temporal_velocity_correlation",
    "van_hove",
    "velocities",
]

#: Moment orders of the seed study.
Q_DEFAULT = (1.0, 1.5, 2.0, 2.5, 3.0)


def velocities(tracks: Tracks) -> pd.DataFrame:
    """Velocities between consecutive frames.

    Parameters
    ----------
    tracks : Tracks
        The tracks (µm, s).

    Returns
    -------
    pandas.DataFrame
        ``track_id, t`` (the earlier frame), positions at t (``*_um``) and velocities
        ``v<axis>_um_per_s`` for every pair of consecutive frames of a track.
    """
    tab = tracks.table
    nxt = tab.shift(-1)
    ok = (nxt["track_id"] == tab["track_id"]) & (nxt["t"] == tab["t"] + 1)
    out = tab[ok].copy()
    for c in tracks.pos_columns:
        out[f"v{c[0]}_um_per_s"] = (nxt.loc[ok, c] - tab.loc[ok, c]) / tracks.frame_interval_s
    return out.reset_index(drop=True)


def spatial_velocity_correlation(tracks: Tracks, *, max_distance_um: float | None = None,
                                 n_bins: int = 20) -> pd.DataFrame:
    """Spatial velocity correlation C_v(ΔR) in distance bins (pairs i ≠ j at the same frame).

    Parameters
    ----------
    tracks : Tracks
    max_distance_um : float, optional
        Largest distance (default: half the largest extent of all positions).
    n_bins : int
        Equal-width bins from 0 to ``max_distance_um``.

    Returns
    -------
    pandas.DataFrame
        ``r_lo_um, r_hi_um, r_um`` (bin centre), ``C_v_um2_per_s2``, ``C_v_norm``, ``n_pairs``.
    """
    v = velocities(tracks)
    if v.empty:
        raise InvalidInputError("spatial velocity correlation: no track has two consecutive frames")
    pc = tracks.pos_columns
    vc = [f"v{c[0]}_um_per_s" for c in pc]
    if max_distance_um is None:
        ext = v[pc].max().to_numpy() - v[pc].min().to_numpy()
        max_distance_um = float(max(np.max(ext) / 2, 1e-9))
    edges = np.linspace(0.0, max_distance_um, n_bins + 1)
    s = np.zeros(n_bins)
    n = np.zeros(n_bins, np.int64)
    for _, g in v.groupby("t"):
        if len(g) < 2:
            continue
        P = g[pc].to_numpy()
        V = g[vc].to_numpy()
        if len(g) <= 1500:
            i, j = np.triu_indices(len(g), 1)
            dist = np.sqrt(np.sum((P[i] - P[j]) ** 2, axis=1))
            keep = dist < max_distance_um
            i, j, dist = i[keep], j[keep], dist[keep]
        else:
            pairs = cKDTree(P).query_pairs(max_distance_um, output_type="ndarray")
            i, j = pairs[:, 0], pairs[:, 1]
            dist = np.sqrt(np.sum((P[i] - P[j]) ** 2, axis=1))
        b = np.minimum((dist / max_distance_um * n_bins).astype(np.int64), n_bins - 1)
        s += np.bincount(b, weights=np.sum(V[i] * V[j], axis=1), minlength=n_bins)
        n += np.bincount(b, minlength=n_bins)
    v2 = float(np.mean(np.sum(v[vc].to_numpy() ** 2, axis=1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return pd.DataFrame({"r_lo_um": edges[:-1], "r_hi_um": edges[1:], "r_um": (edges[:-1] + edges[1:]) / 2,
                         "C_v_um2_per_s2": c, "C_v_norm": c / v2 if v2 > 0 else np.nan, "n_pairs": n})


def temporal_velocity_correlation(tracks: Tracks, max_lag: int | None = None) -> pd.DataFrame:
    """Temporal velocity correlation C_v(Δt) = ⟨v(t)·v(t + Δt)⟩ / ⟨|v(t)|²⟩ (FFT over all tracks).

    Parameters
    ----------
    tracks : Tracks
    max_lag : int, optional
        Largest lag in frames (default: longest span − 2).

    Returns
    -------
    pandas.DataFrame
        ``lag, lag_s, C_v, n_pairs`` for lags 0..max_lag with at least one pair (C_v(0) = 1).
    """
    pos, mask, _, _ = padded(tracks)
    if pos.shape[1] < 2:
        raise InvalidInputError("temporal velocity correlation: tracks need 2 consecutive frames")
    vm = mask[:, 1:] & mask[:, :-1]
    V = np.where(vm[..., None], (pos[:, 1:] - pos[:, :-1]) / tracks.frame_interval_s, 0.0)
    span = V.shape[1]
    L = span - 1 if max_lag is None else max(0, min(int(max_lag), span - 1))
    n_fft = sp_fft.next_fast_len(span + L + 1, real=True)

    def corr(a, b):
        return sp_fft.irfft(np.conj(sp_fft.rfft(a, n_fft, axis=1)) * sp_fft.rfft(b, n_fft, axis=1), n_fft,
                            axis=1)[:, :L + 1]

    m = vm.astype(np.float64)
    num = sum(corr(V[:, :, k], V[:, :, k]).sum(0) for k in range(V.shape[2]))
    cnt = np.rint(corr(m, m).sum(0))
    v2 = float(np.sum(V ** 2) / max(np.sum(m), 1))
    ok = cnt > 0
    lags = np.arange(L + 1)
    c = np.where(ok, num / np.maximum(cnt, 1), np.nan) / v2 if v2 > 0 else np.full(L + 1, np.nan)
    return pd.DataFrame({"lag": lags[ok], "lag_s": lags[ok] * tracks.frame_interval_s, "C_v": c[ok],
                         "n_pairs": cnt[ok].astype(np.int64)})


def max_extent_um(positions: np.ndarray) -> float:
    """Largest distance between two positions of one track (µm), via the convex hull for long tracks.

    Parameters
    ----------
    positions : numpy.ndarray
        ``(T, d)`` positions of one track (µm).

    Returns
    -------
    float
        The largest pairwise distance (0 for fewer than 2 positions).
    """
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 2:
        return 0.0
    if len(p) > 50:
        try:
            p = p[ConvexHull(p).vertices]
        except (QhullError, ValueError):
            pass
    return float(np.max(pdist(p)))


def displacement_moments(tracks: Tracks, q=Q_DEFAULT, max_lag: int | None = None) -> tuple[pd.DataFrame, float]:
    """Displacement moments ⟨|x(t) − x(0)|^q⟩ / R0^q from each track's first frame.

    Parameters
    ----------
    tracks : Tracks
    q : sequence of float
        Moment orders (default 1, 1.5, 2, 2.5, 3).
    max_lag : int, optional
        Largest t in frames (default: longest span − 1).

    Returns
    -------
    moments : pandas.DataFrame
        ``lag, lag_s, n_tracks`` and for each q the columns ``m_q<q>_um`` (⟨|x|^q⟩, µm^q) and
        ``m_q<q>_norm`` (divided by R0^q); lags with at least one track.
    R0_um : float
        Mean maximal track extent (µm).
    """
    q = [float(v) for v in q]
    if not q or any(not math.isfinite(v) or v <= 0 for v in q):
        raise InvalidInputError(f"moment orders must be positive numbers, got {q}")
    pos, mask, _, _ = padded(tracks)
    R0 = float(np.mean([max_extent_um(p) for p in tracks.positions()]))
    first = np.argmax(mask, axis=1)
    rows = np.arange(pos.shape[0])
    disp = pos - pos[rows, first][:, None, :]
    # shift each track so that its first frame is column 0
    cols = np.arange(pos.shape[1])[None, :] + first[:, None]
    valid = cols < pos.shape[1]
    cols = np.minimum(cols, pos.shape[1] - 1)
    r = np.sqrt(np.sum(disp[rows[:, None], cols] ** 2, axis=2))
    mk = mask[rows[:, None], cols] & valid
    L = pos.shape[1] - 1 if max_lag is None else min(int(max_lag), pos.shape[1] - 1)
    r = r[:, 1:L + 1]
    mk = mk[:, 1:L + 1]
    n = mk.sum(0)
    lags = np.arange(1, L + 1)
    out = {"lag": lags, "lag_s": lags * tracks.frame_interval_s, "n_tracks": n}
    for qq in q:
        mq = np.where(mk, r ** qq, 0.0).sum(0) / np.maximum(n, 1)
        name = f"{qq:g}"
        out[f"m_q{name}_um"] = mq
        out[f"m_q{name}_norm"] = mq / R0 ** qq if R0 > 0 else np.nan
    df = pd.DataFrame(out)
    return df[df["n_tracks"] > 0].reset_index(drop=True), R0


def bilinear_fit(q, lam) -> dict:
    """Continuous two-segment fit of λ(q): slope ``low`` below the break q_c, ``high`` above.

    The break is searched on a fine grid strictly between the second and the second-to-last q
    (so each segment has at least two points); each candidate is a linear least-squares fit of
    λ = a + b·q + c·max(q − q_c, 0). A single line is reported when it fits as well (within 1e-12).

    Parameters
    ----------
    q : array_like
        The moment orders.
    lam : array_like
        λ(q), one value per order.

    Returns
    -------
    dict
        ``slope_low``, ``slope_high``, ``q_break``, ``intercept``, ``rss``.
    """
    q = np.asarray(q, dtype=np.float64)
    lam = np.asarray(lam, dtype=np.float64)
    ok = np.isfinite(lam)
    q, lam = q[ok], lam[ok]
    if len(q) < 2:
        return {"slope_low": math.nan, "slope_high": math.nan, "q_break": math.nan, "intercept": math.nan,
                "rss": math.nan}
    A1 = np.stack([np.ones_like(q), q], 1)
    c1, *_ = np.linalg.lstsq(A1, lam, rcond=None)
    rss1 = float(np.sum((A1 @ c1 - lam) ** 2))
    best = {"slope_low": float(c1[1]), "slope_high": float(c1[1]), "q_break": math.nan,
            "intercept": float(c1[0]), "rss": rss1}
    if len(q) < 4:
        return best
    qs = np.sort(q)
    for qc in np.linspace(qs[1], qs[-2], 101)[1:-1]:
        A = np.stack([np.ones_like(q), q, np.maximum(q - qc, 0.0)], 1)
        c, *_ = np.linalg.lstsq(A, lam, rcond=None)
        rss = float(np.sum((A @ c - lam) ** 2))
        if rss < best["rss"] - 1e-12:
            best = {"slope_low": float(c[1]), "slope_high": float(c[1] + c[2]), "q_break": float(qc),
                    "intercept": float(c[0]), "rss": rss}
    return best


def moment_scaling(moments: pd.DataFrame, q=Q_DEFAULT, *, lag_range: tuple[int, int] | None = None,
                   min_tracks: int = 5) -> pd.DataFrame:
    """λ(q): the log-log slope of ⟨|x(t)|^q⟩ against t, with its standard error.

    Parameters
    ----------
    moments : pandas.DataFrame
        :func:`displacement_moments` output.
    q : sequence of float
    lag_range : (int, int), optional
        First and last lag (frames) of the fit (default: every lag with ≥ ``min_tracks`` tracks).
    min_tracks : int

    Returns
    -------
    pandas.DataFrame
        ``q, lambda, lambda_se, lag_first, lag_last``.
    """
    m = moments[moments["n_tracks"] >= min_tracks]
    if lag_range is not None:
        m = m[(m["lag"] >= lag_range[0]) & (m["lag"] <= lag_range[1])]
    rows = []
    for qq in q:
        col = f"m_q{float(qq):g}_um"
        y = m[col].to_numpy()
        x = m["lag_s"].to_numpy()
        ok = (y > 0) & np.isfinite(y)
        if ok.sum() < 2:
            rows.append({"q": float(qq), "lambda": math.nan, "lambda_se": math.nan, "lag_first": None,
                         "lag_last": None})
            continue
        lx, ly = np.log(x[ok]), np.log(y[ok])
        b, a = np.polyfit(lx, ly, 1)
        k = len(lx)
        se = math.sqrt(np.sum((ly - (a + b * lx)) ** 2) / (k - 2) / np.sum((lx - lx.mean()) ** 2)) if k > 2 \
            else math.nan
        lg = m["lag"].to_numpy()[ok]
        rows.append({"q": float(qq), "lambda": float(b), "lambda_se": se, "lag_first": int(lg[0]),
                     "lag_last": int(lg[-1])})
    return pd.DataFrame(rows)


def van_hove(tracks: Tracks, lags=(1, 2, 4, 8), *, n_bins: int = 41, max_abs_um: float | None = None) -> pd.DataFrame:
    """Van Hove self-correlation: the distribution of one-axis displacements at given lags.

    Every axis's displacement x(t + n) − x(t) over all tracks and t is histogrammed (density, 1/µm);
    Brownian motion gives a Gaussian of variance 2D·n·Δt; heavy tails reveal heterogeneity.

    Parameters
    ----------
    tracks : Tracks
        The tracks (µm, s).
    lags : sequence of int
        Lags in frames.
    n_bins : int
        Histogram bins.
    max_abs_um : float, optional
        Half-width of the histogram (µm); None = from the displacements.

    Returns
    -------
    pandas.DataFrame
        ``lag, lag_s, dx_um`` (bin centre), ``density_per_um``, ``n``.
    """
    tab = tracks.table
    pc = tracks.pos_columns
    pos, mask, _, _ = padded(tracks)
    out = []
    disps = {}
    for n in lags:
        n = int(n)
        if n < 1 or n >= pos.shape[1]:
            continue
        ok = mask[:, n:] & mask[:, :-n]
        d = (pos[:, n:] - pos[:, :-n])[ok].ravel()
        if d.size:
            disps[n] = d
    if not disps:
        raise InvalidInputError("van Hove: no displacement at the requested lags")
    lim = max_abs_um or float(max(np.percentile(np.abs(d), 99.5) for d in disps.values()))
    if not lim > 0:  # no motion at all (every displacement 0): one narrow bin around 0
        lim = 1e-3
    edges = np.linspace(-lim, lim, n_bins + 1)
    for n, d in disps.items():
        h, _ = np.histogram(d, edges, density=True)
        out.append(pd.DataFrame({"lag": n, "lag_s": n * tracks.frame_interval_s, "dx_um": (edges[1:] + edges[:-1]) / 2,
                                 "density_per_um": h, "n": d.size}))
    del tab, pc
    return pd.concat(out, ignore_index=True)
