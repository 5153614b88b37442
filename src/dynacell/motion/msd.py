"""Mean squared displacement: per track (time-averaged, every lag) and ensemble (weighted, with its
standard error); drift estimation and subtraction; anomalous exponent α.

All tracks are placed in one padded array ``(n_tracks, span, d)`` with a validity mask (gaps and
padding are masked), and every lag is computed at once with FFT cross-correlations:
Σ_i m_i m_{i+n} |r_{i+n} − r_i|² = corr(m, m|r|²) + corr(m|r|², m) − 2 Σ_axes corr(m r, m r), the
number of pairs being corr(m, m). Memory and time are linear in the number of localisations
(times log of the longest track).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import fft as sp_fft

from dynacell.errors import InvalidInputError
from dynacell.motion.tracks import Tracks

__all__ = [
    "compute_drift",
    "effective_n_independent",
    "ensemble_msd",
    "fit_alpha",
    "padded",
    "subtract_drift",
    "track_msd",
]


def padded(tracks: Tracks) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tracks in a padded array.

    Parameters
    ----------
    tracks : Tracks
        The tracks (µm, s).

    Returns
    -------
    pos : ndarray, shape (n_tracks, span_max, d), float64
        Positions (µm) minus each track's mean (MSD is unchanged), 0 where masked.
    mask : ndarray, shape (n_tracks, span_max), bool
        True where the track has a localisation (frame ``t0 + column``).
    track_ids : ndarray, shape (n_tracks,), int64
    n_obs : ndarray, shape (n_tracks,), int64
        Localisations per track.
    """
    tab = tracks.table
    ids, inv = np.unique(tab["track_id"].to_numpy(), return_inverse=True)
    t = tab["t"].to_numpy()
    t0 = np.full(ids.size, np.iinfo(np.int64).max)
    np.minimum.at(t0, inv, t)
    col = t - t0[inv]
    span = int(col.max()) + 1
    d = tracks.ndim
    pos = np.zeros((ids.size, span, d))
    mask = np.zeros((ids.size, span), bool)
    xyz = tab[tracks.pos_columns].to_numpy(np.float64)
    n_obs = np.bincount(inv, minlength=ids.size)
    mean = np.zeros((ids.size, d))
    for k in range(d):
        mean[:, k] = np.bincount(inv, weights=xyz[:, k], minlength=ids.size) / n_obs
    pos[inv, col] = xyz - mean[inv]
    mask[inv, col] = True
    return pos, mask, ids, n_obs


def _corr(a: np.ndarray, b: np.ndarray, n_fft: int, max_lag: int) -> np.ndarray:
    """corr(a, b)[n] = Σ_i a_i b_{i+n} along axis 1, n = 1..max_lag."""
    fa = sp_fft.rfft(a, n_fft, axis=1)
    fb = sp_fft.rfft(b, n_fft, axis=1)
    return sp_fft.irfft(np.conj(fa) * fb, n_fft, axis=1)[:, 1:max_lag + 1]


def _msd_arrays(pos: np.ndarray, mask: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared displacements and number of pairs per track and lag: (n, max_lag) each."""
    span, d = pos.shape[1], pos.shape[2]
    n_fft = sp_fft.next_fast_len(span + max_lag + 1, real=True)
    m = mask.astype(np.float64)
    r2 = np.sum(pos * pos, axis=2) * m
    S = _corr(m, r2, n_fft, max_lag) + _corr(r2, m, n_fft, max_lag)
    for k in range(d):
        pk = pos[:, :, k] * m
        S -= 2 * _corr(pk, pk, n_fft, max_lag)
    C = np.rint(_corr(m, m, n_fft, max_lag))
    S = np.where(C > 0, np.maximum(S, 0.0), 0.0)
    return S, C


def effective_n_independent(n_positions, lags) -> np.ndarray:
    """Effective number of independent measurements of a single track's MSD at each lag.

    Qian, Sheetz & Elson 1991 (Biophys. J. 60:910, eq. B4), as trackpy's ``emsd`` weights tracks:
    for lag n ≤ N/2, 6(N − n)²·n / (2N − n + 4N·n² − 5n³); above N/2,
    1 / (1 + ((N − n)³ + 5n − 4(N − n)²·n − N) / (6(N − n)·n²)), N = number of positions.

    Parameters
    ----------
    n_positions : int or ndarray
        N (broadcast against ``lags``).
    lags : array_like of int
        Lags n in frames (1 ≤ n ≤ N − 1).

    Returns
    -------
    ndarray of float64

    Examples
    --------
    >>> effective_n_independent(10, [1, 9]).round(4).tolist()
    [9.0, 1.0]
    """
    N = np.asarray(n_positions, dtype=np.float64)
    t = np.asarray(lags, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        low = 6 * (N - t) ** 2 * t / (2 * N - t + 4 * N * t ** 2 - 5 * t ** 3)
        high = 1 / (1 + ((N - t) ** 3 + 5 * t - 4 * (N - t) ** 2 * t - N) / (6 * (N - t) * t ** 2))
    return np.where(t > N / 2, high, low)


def _weights(C: np.ndarray, span: np.ndarray, n_obs: np.ndarray, lags: np.ndarray, kind: str) -> np.ndarray:
    if kind == "displacements":
        return C.copy()
    if kind != "independent":
        raise InvalidInputError(f"weights={kind!r}: expected 'independent' or 'displacements'")
    # trackpy's rule: Qian's N for the span, scaled by the fraction of frames present, zero where
    # no pair exists, rescaled so that the track's total over its lags is unchanged
    valid = lags[None, :] <= (span[:, None] - 1)
    W = effective_n_independent(span[:, None], lags[None, :]) * (n_obs / span)[:, None]
    W = np.where(valid, W, 0.0)
    total = W.sum(1)
    W = np.where(C > 0, W, 0.0)
    cur = W.sum(1)
    scale = np.divide(total, cur, out=np.ones_like(total), where=cur > 0)
    return W * scale[:, None]


def track_msd(tracks: Tracks, max_lag: int | None = None) -> pd.DataFrame:
    """Time-averaged MSD of every track at every lag (long table).

    MSD_i(n) = mean over pairs of frames exactly n apart of |r(t + n) − r(t)|² (all axes summed).

    Parameters
    ----------
    tracks : Tracks
    max_lag : int, optional
        Largest lag in frames (default: the longest track's span − 1).

    Returns
    -------
    pandas.DataFrame
        ``track_id, lag, lag_s, msd_um2, n_pairs, n_independent`` for every lag with ≥ 1 pair.
        ``n_independent`` = :func:`effective_n_independent` (trackpy's weight).
    """
    pos, mask, ids, n_obs = padded(tracks)
    span = pos.shape[1]
    L = span - 1 if max_lag is None else max(1, min(int(max_lag), span - 1))
    S, C = _msd_arrays(pos, mask, L)
    lags = np.arange(1, L + 1)
    spans = _spans(mask)
    W = _weights(C, spans, n_obs, lags, "independent")
    ok = C > 0
    ti, li = np.nonzero(ok)
    return pd.DataFrame({"track_id": ids[ti], "lag": lags[li], "lag_s": lags[li] * tracks.frame_interval_s,
                         "msd_um2": S[ok] / C[ok], "n_pairs": C[ok].astype(np.int64), "n_independent": W[ok]})


def _spans(mask: np.ndarray) -> np.ndarray:
    last = mask.shape[1] - 1 - np.argmax(mask[:, ::-1], axis=1)
    return (last + 1).astype(np.float64)


def ensemble_msd(tracks: Tracks, max_lag: int | None = 100, *, weights: str = "independent") -> pd.DataFrame:
    """Ensemble MSD: the weighted mean over tracks of their time-averaged MSDs, with its standard error.

    ``weights="independent"`` (default) weights each track's MSD at lag n by its effective number
    of independent measurements (:func:`effective_n_independent`, scaled for gaps) — the same
    weights as trackpy's ``emsd``, whose values this reproduces (tested to 1e-9).
    ``weights="displacements"`` weights by the number of displacement pairs (the pooled mean of
    all squared displacements at that lag).

    The standard error treats tracks as independent samples:
    SE² = k/(k − 1) · Σ w_i²(MSD_i − M)² / (Σ w_i)² over the k tracks with a pair at that lag
    (NaN for k < 2).

    Parameters
    ----------
    tracks : Tracks
    max_lag : int or None
        Largest lag in frames (default 100, as trackpy; None = longest span − 1).
    weights : {"independent", "displacements"}

    Returns
    -------
    pandas.DataFrame
        ``lag, lag_s, msd_um2, se_um2, n_tracks, n_pairs, weight`` for lags with ≥ 1 pair.

    Examples
    --------
    >>> from dynacell.motion.tracks import tracks_from_dataframe
    >>> df = pd.DataFrame({"t": [0, 1, 2, 0, 1], "track_id": [1, 1, 1, 2, 2],
    ...                    "y": [0., 1., 2., 0., 0.], "x": [0., 0., 0., 0., 2.]})
    >>> ensemble_msd(tracks_from_dataframe(df, 1.0, 1.0), weights="displacements")["msd_um2"].tolist()
    [2.0, 4.0]
    """
    pos, mask, _, n_obs = padded(tracks)
    span = pos.shape[1]
    L = span - 1 if max_lag is None else max(1, min(int(max_lag), span - 1))
    S, C = _msd_arrays(pos, mask, L)
    lags = np.arange(1, L + 1)
    W = _weights(C, _spans(mask), n_obs, lags, weights)
    msd_i = np.divide(S, C, out=np.zeros_like(S), where=C > 0)
    wsum = W.sum(0)
    M = np.divide((W * msd_i).sum(0), wsum, out=np.full(L, np.nan), where=wsum > 0)
    k = np.sum(W > 0, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (W ** 2 * (msd_i - M[None, :]) ** 2).sum(0) / wsum ** 2 * k / (k - 1)
    se = np.where(k >= 2, np.sqrt(var), np.nan)
    keep = wsum > 0
    return pd.DataFrame({"lag": lags[keep], "lag_s": lags[keep] * tracks.frame_interval_s, "msd_um2": M[keep],
                         "se_um2": se[keep], "n_tracks": k[keep], "n_pairs": C.sum(0)[keep].astype(np.int64),
                         "weight": wsum[keep]})


def compute_drift(tracks: Tracks, smoothing: int = 0) -> pd.DataFrame:
    """Ensemble drift: cumulative mean displacement between consecutive frames (trackpy's definition).

    For every frame t, the mean over tracks present at t − 1 and t of r(t) − r(t − 1); the drift is
    its cumulative sum from the first frame (0 there).

    Parameters
    ----------
    tracks : Tracks
    smoothing : int
        Forward-looking rolling mean of the per-frame displacement over this many frames (0 = none).

    Returns
    -------
    pandas.DataFrame
        Index ``t`` (every frame from the first to the last), one column per position axis (µm).
    """
    tab = tracks.table
    cols = tracks.pos_columns
    same = (tab["track_id"].diff() == 0) & (tab["t"].diff() == 1)
    steps = tab[cols].diff()[same]
    steps["t"] = tab["t"][same]
    dx = steps.groupby("t")[cols].mean()
    if smoothing > 0:
        dx = dx.rolling(int(smoothing), min_periods=0).mean()
    frames = np.arange(int(tab["t"].min()), int(tab["t"].max()) + 1)
    dx = dx.reindex(frames).fillna(0.0)
    drift = dx.cumsum()
    drift.index.name = "t"
    return drift


def subtract_drift(tracks: Tracks, drift: pd.DataFrame | None = None) -> Tracks:
    """Tracks with the drift subtracted (each position minus the drift at its frame).

    Parameters
    ----------
    tracks : Tracks
    drift : pandas.DataFrame, optional
        From :func:`compute_drift` (default: computed from ``tracks``). Frames it lacks take the
        drift of the last earlier frame (0 before its first frame).

    Returns
    -------
    Tracks
        Same tracks, positions corrected; ``meta["drift_subtracted"] = True``.
    """
    if drift is None:
        drift = compute_drift(tracks)
    tab = tracks.table.copy()
    frames = np.arange(int(min(tab["t"].min(), drift.index.min())), int(max(tab["t"].max(), drift.index.max())) + 1)
    dr = drift.reindex(frames).ffill().fillna(0.0)
    for c in tracks.pos_columns:
        tab[c] = tab[c].to_numpy() - dr.loc[tab["t"].to_numpy(), c].to_numpy()
    meta = dict(tracks.meta, drift_subtracted=True)
    return Tracks(tab, tracks.frame_interval_s, tracks.ndim, tracks.source, tracks.sigma_um,
                  tracks.n_dropped_single, tracks.n_dropped_nan, meta)


def fit_alpha(ens: pd.DataFrame, max_lag: int | None = None, *, ndim: int = 2) -> dict:
    """Anomalous exponent α from a power-law fit MSD = A·τ^α (least squares in log-log).

    log MSD = log A + α·log τ over lags 1..``max_lag`` with MSD > 0 (unweighted, as trackpy's
    ``utils.fit_powerlaw``). α = 1 for Brownian motion, < 1 subdiffusive, 2 ballistic.
    The generalised diffusion coefficient is K = A/(2d) (µm²/s^α; = D when α = 1).

    Parameters
    ----------
    ens : pandas.DataFrame
        :func:`ensemble_msd` output (``lag, lag_s, msd_um2``).
    max_lag : int, optional
        Largest lag used (default: every lag in ``ens``).
    ndim : int
        Number of axes d.

    Returns
    -------
    dict
        ``alpha``, ``alpha_se`` (OLS standard error), ``A_um2`` (prefactor, µm²/s^α),
        ``K_um2_per_s_alpha``, ``lags`` ([first, last] lag used).

    Raises
    ------
    InvalidInputError
        Fewer than 2 usable lags.
    """
    e = ens if max_lag is None else ens[ens["lag"] <= max_lag]
    e = e[(e["msd_um2"] > 0) & np.isfinite(e["msd_um2"])]
    if len(e) < 2:
        raise InvalidInputError("fit_alpha: fewer than 2 lags with a positive MSD")
    x = np.log(e["lag_s"].to_numpy())
    y = np.log(e["msd_um2"].to_numpy())
    a, b = np.polyfit(x, y, 1)
    resid = y - (a * x + b)
    n = len(x)
    se = math.sqrt(np.sum(resid ** 2) / (n - 2) / np.sum((x - x.mean()) ** 2)) if n > 2 else math.nan
    A = math.exp(b)
    return {"alpha": float(a), "alpha_se": se, "A_um2": A, "K_um2_per_s_alpha": A / (2 * ndim),
            "lags": [int(e["lag"].iloc[0]), int(e["lag"].iloc[-1])]}
