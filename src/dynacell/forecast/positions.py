"""Position forecasting on tracks: track tables, history windows, baselines, predicted next positions.

A *tracks table* is a :class:`pandas.DataFrame` with one row per detection and columns ``t``
(frame), ``track_id``, ``y``, ``x`` and, for 3D, ``z`` — positions in pixels; the voxel size
(``scale_zyx``, µm per pixel along z, y, x) turns them into µm. A track is a chain without
division (the CTC convention, :meth:`dynacell.lineage.Lineage.to_dataframe`): a division ends the
mother's track and each daughter starts a new one, so no history crosses a division. A missing
frame also ends a *segment*: histories are built from consecutive frames only.

A forecast reads the last L positions of a segment (the *history*) and predicts the next H.
Baselines (always reported beside a model):

``constant_position``
    the cell stays where it was last seen.
``constant_velocity``
    the last step is repeated: ``p(t + h) = p(t) + h · (p(t) − p(t − 1))``.
``kalman``
    a constant-velocity Kalman filter per axis (filterpy, Labbe's *Kalman and Bayesian Filters in
    Python*; white-noise acceleration of variance ``q``, measurement noise ``r``) run over the
    history and then predicted H steps ahead; ``q`` and ``r`` are chosen on training tracks
    (:func:`fit_kalman`).
``kalman_prw``
    a Kalman filter of a *persistent random walk* per axis — the standard model of a migrating
    cell: the velocity keeps a fraction ``φ`` of itself from frame to frame and receives a random
    kick (an Ornstein–Uhlenbeck velocity), the position also takes a random step of its own, and
    each measured position carries white noise. Its five parameters are fitted by maximum
    likelihood on the training tracks of each data set (:func:`fit_prw_kalman`; gains and
    innovation variances from filterpy). Constant position (``φ = 0``, no noise) and a noise-free
    constant velocity (``φ = 1``) are special cases, so it is at least as flexible as both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = [
    "POSITION_BASELINES",
    "PRIOR_BASELINES",
    "KalmanParams",
    "MotionPredictor",
    "PRWParams",
    "baseline_positions",
    "constant_position",
    "constant_velocity",
    "fit_kalman",
    "fit_prw_kalman",
    "history_windows",
    "kalman_forecast",
    "motion_predictor",
    "predict_next_positions",
    "prw_kalman_forecast",
    "prw_log_likelihood",
    "read_tracks_csv",
    "segments",
    "to_steps",
    "tracks_from_lineage",
]

#: Names of the position baselines, in report order.
POSITION_BASELINES = ("constant_position", "constant_velocity", "kalman", "kalman_prw")


@dataclass(frozen=True)
class KalmanParams:
    """Noise of the constant-velocity Kalman filter (per axis, µm units).

    Attributes
    ----------
    q_um2 : float
        Variance of the white-noise acceleration per frame (``Q_discrete_white_noise`` of filterpy).
    r_um2 : float
        Measurement-noise variance of a position (µm²).
    p0_um2 : float
        Initial variance of the velocity (the position starts at the first measurement with
        variance ``r_um2``).
    """

    q_um2: float = 1.0
    r_um2: float = 1.0
    p0_um2: float = 100.0


@dataclass(frozen=True)
class PRWParams:
    """Parameters of the persistent-random-walk Kalman filter (per axis, µm units, one frame per step).

    State ``(p, v)``: ``p(t+1) = p(t) + v(t) + w_p``, ``v(t+1) = φ · v(t) + w_v``; measured
    ``z(t) = p(t) + e``. Defaults: a plain constant-velocity walk with unit noise.

    Attributes
    ----------
    q_pos_um2 : float
        Variance of the random position step ``w_p`` per frame (the diffusive part of the motion).
    q_vel_um2 : float
        Variance of the velocity kick ``w_v`` per frame.
    persistence : float
        ``φ`` in [0, 1]: the fraction of the velocity kept from one frame to the next.
    r_um2 : float
        Variance of the measurement noise ``e`` of a position.
    p0_um2 : float
        Initial velocity variance (the position starts at the first measurement with variance ``r_um2``).
    """

    q_pos_um2: float = 1.0
    q_vel_um2: float = 1.0
    persistence: float = 1.0
    r_um2: float = 1.0
    p0_um2: float = 100.0


def _spatial_columns(df: pd.DataFrame) -> list[str]:
    return ["z", "y", "x"] if "z" in df.columns and df["z"].notna().any() and (df["z"] != 0).any() else ["y", "x"]


def read_tracks_csv(path: str) -> pd.DataFrame:
    """Read a CSV of tracks (columns ``t``, ``track_id`` or ``ID``, ``y``, ``x`` and optionally ``z``, pixels).

    Parameters
    ----------
    path : str
        The CSV file.

    Returns
    -------
    pandas.DataFrame
        Columns ``t`` (int), ``track_id`` (int), ``(z,) y, x`` (float), sorted by track and time.

    Raises
    ------
    InvalidInputError
        If the file lacks a column, names the missing columns and the file.
    """
    df = pd.read_csv(path)
    if "track_id" not in df.columns and "ID" in df.columns:
        df = df.rename(columns={"ID": "track_id"})
    missing = [c for c in ("t", "track_id", "y", "x") if c not in df.columns]
    if missing:
        raise InvalidInputError(f"{path}: tracks table lacks column(s) {missing} (need t, track_id or ID, y, x)")
    df["t"] = df["t"].astype(int)
    df["track_id"] = df["track_id"].astype(int)
    cols = ["t", "track_id"] + (["z"] if "z" in df.columns else []) + ["y", "x"]
    return df[cols].sort_values(["track_id", "t"]).reset_index(drop=True)


def tracks_from_lineage(lineage) -> pd.DataFrame:
    """Tracks table of a :class:`~dynacell.lineage.Lineage` (a division ends a track; daughters start new ones).

    Rows without a position (frames without a mask) are dropped.

    Parameters
    ----------
    lineage : Lineage
        The lineage (node positions in pixels).

    Returns
    -------
    pandas.DataFrame
        Columns ``t, track_id, parent_track_id, z, y, x`` (pixels).
    """
    df = lineage.to_dataframe()
    return df[["t", "track_id", "parent_track_id", "z", "y", "x"]].dropna(subset=["y", "x"]).reset_index(drop=True)


def _scale(scale_zyx: Sequence[float] | None, ndim: int) -> np.ndarray:
    if scale_zyx is None:
        return np.ones(ndim)
    s = np.asarray(scale_zyx, dtype=float)[-ndim:]
    if s.shape != (ndim,) or not np.all(s > 0):
        raise InvalidInputError(f"scale must give {ndim} positive µm/pixel values, got {scale_zyx!r}")
    return s


def segments(tracks: pd.DataFrame, scale_zyx: Sequence[float] | None = None) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Split tracks into runs of consecutive frames, positions in µm.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Tracks table (pixels).
    scale_zyx : sequence of float, optional
        µm per pixel along (z,) y, x; None = positions stay in pixels.

    Returns
    -------
    list of (track_id, t, positions)
        ``t`` int array (M,), ``positions`` float64 (M, D) in µm, D = 3 when the table has a
        non-zero ``z`` column, else 2.
    """
    cols = _spatial_columns(tracks)
    s = _scale(scale_zyx, len(cols))
    out = []
    for tid, g in tracks.sort_values(["track_id", "t"]).groupby("track_id", sort=True):
        t = g["t"].to_numpy(int)
        p = g[cols].to_numpy(float) * s
        breaks = np.flatnonzero(np.diff(t) != 1) + 1
        for ts, ps in zip(np.split(t, breaks), np.split(p, breaks), strict=True):
            out.append((int(tid), ts, ps))
    return out


def history_windows(tracks: pd.DataFrame, *, history: int = 5, horizon: int = 1,
                    scale_zyx: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """All (history, future) windows of consecutive frames within tracks.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Tracks table (pixels).
    history : int
        Positions L given to a forecaster (≥ 2).
    horizon : int
        Future positions H to predict.
    scale_zyx : sequence of float, optional
        µm per pixel; None keeps pixels.

    Returns
    -------
    dict
        ``past`` (N, L, D) and ``future`` (N, H, D) float64 positions (µm), ``track_id`` (N,) and
        ``t`` (N,) — the frame of the last history position.
    """
    if history < 2 or horizon < 1:
        raise InvalidInputError(f"history must be >= 2 and horizon >= 1, got {history}, {horizon}")
    past, fut, tids, ts = [], [], [], []
    d = None
    for tid, t, p in segments(tracks, scale_zyx):
        d = p.shape[1]
        n = len(t) - history - horizon + 1
        if n <= 0:
            continue
        idx = np.arange(n)[:, None]
        past.append(p[idx + np.arange(history)])
        fut.append(p[idx + history + np.arange(horizon)])
        tids.append(np.full(n, tid))
        ts.append(t[history - 1: history - 1 + n])
    if d is None:
        d = len(_spatial_columns(tracks))
    if not past:
        return {"past": np.zeros((0, history, d)), "future": np.zeros((0, horizon, d)),
                "track_id": np.zeros(0, int), "t": np.zeros(0, int)}
    return {"past": np.concatenate(past), "future": np.concatenate(fut), "track_id": np.concatenate(tids),
            "t": np.concatenate(ts)}


def to_steps(past: np.ndarray) -> np.ndarray:
    """Displacements between consecutive history positions, shape (N, L − 1, D) (the networks' input).

    Parameters
    ----------
    past : numpy.ndarray
        ``(N, L, D)`` history positions, oldest first.

    Returns
    -------
    numpy.ndarray
        ``(N, L − 1, D)``.
    """
    return np.diff(np.asarray(past, dtype=np.float64), axis=1)


def constant_position(past: np.ndarray, horizon: int = 1) -> np.ndarray:
    """Constant-position forecast: the last position repeated, shape (N, H, D).

    Parameters
    ----------
    past : numpy.ndarray
        ``(N, L, D)`` history positions, oldest first.
    horizon : int
        Frames ahead, H.

    Returns
    -------
    numpy.ndarray
        ``(N, H, D)``.
    """
    return np.repeat(np.asarray(past)[:, -1:, :], horizon, axis=1)


def constant_velocity(past: np.ndarray, horizon: int = 1) -> np.ndarray:
    """Constant-velocity forecast ``p(t) + h · (p(t) − p(t − 1))``, shape (N, H, D); zero velocity for L = 1.

    Parameters
    ----------
    past : numpy.ndarray
        ``(N, L, D)`` history positions, oldest first.
    horizon : int
        Frames ahead, H.

    Returns
    -------
    numpy.ndarray
        ``(N, H, D)``.
    """
    past = np.asarray(past, dtype=np.float64)
    v = past[:, -1] - past[:, -2] if past.shape[1] > 1 else np.zeros_like(past[:, -1])
    h = np.arange(1, horizon + 1).reshape(1, -1, 1)
    return past[:, -1:, :] + h * v[:, None, :]


def _kalman_gains(n_obs: int, params: KalmanParams) -> tuple[np.ndarray, list[np.ndarray]]:
    """Transition matrix and the Kalman gain after each of ``n_obs − 1`` updates (filterpy).

    The gains of a linear filter do not depend on the measurements, so one filterpy
    :class:`~filterpy.kalman.KalmanFilter` run gives the gains of every track with the same
    number of observations; the batched state update below applies them to all tracks at once.
    """
    from filterpy.common import Q_discrete_white_noise
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F = np.array([[1.0, 1.0], [0.0, 1.0]])
    kf.H = np.array([[1.0, 0.0]])
    kf.R = np.array([[params.r_um2]])
    kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=params.q_um2)
    kf.P = np.diag([params.r_um2, params.p0_um2])
    kf.x = np.zeros((2, 1))
    gains = []
    for _ in range(n_obs - 1):
        kf.predict()
        kf.update(np.array([[0.0]]))
        gains.append(kf.K.copy())
    return kf.F, gains


def kalman_forecast(past: np.ndarray, horizon: int = 1, params: KalmanParams | None = None) -> np.ndarray:
    """Constant-velocity Kalman forecast of every history, batched; shape (N, H, D).

    Each axis of each history is filtered independently (state: position, velocity; measurement:
    position) with the gains of filterpy's :class:`~filterpy.kalman.KalmanFilter`
    (:func:`_kalman_gains`), then the state is propagated ``h`` frames ahead.

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
        History positions (µm).
    horizon : int
    params : KalmanParams, optional

    Returns
    -------
    numpy.ndarray, float64, shape (N, H, D)
    """
    params = params or KalmanParams()
    past = np.asarray(past, dtype=np.float64)
    F, gains = _kalman_gains(past.shape[1], params)
    return _filter_forecast(past, F, gains, horizon)


def _median_step2(past: np.ndarray) -> float:
    """Median squared step of histories ``(N, L, D)`` (1.0 when it is 0): the noise scale of the Kalman fits."""
    return float(np.median(np.sum(np.diff(past, axis=1) ** 2, axis=2))) or 1.0


def fit_kalman(past: np.ndarray, future: np.ndarray, *, grid: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
               p0_grid: Sequence[float] = (0.01, 1.0, 100.0)) -> KalmanParams:
    """Choose the Kalman noise ``(q, r, p0)`` that minimises the one-step error on training windows.

    A small ``p0`` (little initial velocity) with a small ``q`` makes the filter a smoothed
    constant position; a large ``p0`` makes it a smoothed constant velocity: the fit picks what
    the data support.

    The grid is in units of the median squared step of the training histories (so it adapts to
    µm or pixels and to slow or fast cells).

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
    future : numpy.ndarray, shape (N, H, D)
        Only the first future position is used.
    grid : sequence of float
        Candidate multipliers for ``q`` and for ``r``.
    p0_grid : sequence of float
        Candidate multipliers for ``p0``.

    Returns
    -------
    KalmanParams
    """
    if len(past) == 0:
        raise InvalidInputError("no training windows to fit the Kalman filter on")
    step2 = _median_step2(past)
    best, best_err = KalmanParams(), np.inf
    for qm, rm, pm in ((a, b, c) for a in grid for b in grid for c in p0_grid):
        p = KalmanParams(q_um2=qm * step2, r_um2=rm * step2, p0_um2=pm * step2)
        err = np.linalg.norm(kalman_forecast(past, 1, p)[:, 0] - future[:, 0], axis=1).mean()
        if err < best_err:
            best, best_err = p, err
    return best


def _prw_filter(n_obs: int, params: PRWParams) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, float]:
    """Transition matrix, gains, innovation variances and next-position variance of the PRW filter (filterpy).

    Returns
    -------
    F : numpy.ndarray, shape (2, 2)
    gains : list of numpy.ndarray, shape (2, 1)
        Kalman gain after each of the ``n_obs − 1`` updates.
    innovation_var : numpy.ndarray, shape (n_obs − 1,)
        Variance of each innovation ``z(i) − p̂(i)`` (µm²).
    next_var : float
        Variance of the measured position one frame after the last one given the history (µm²):
        the error variance per axis of the filter's one-step forecast if the model were true.
    """
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F = np.array([[1.0, 1.0], [0.0, params.persistence]])
    kf.H = np.array([[1.0, 0.0]])
    kf.R = np.array([[params.r_um2]])
    kf.Q = np.diag([params.q_pos_um2, params.q_vel_um2])
    kf.P = np.diag([params.r_um2, params.p0_um2])
    kf.x = np.zeros((2, 1))
    gains, var = [], []
    for _ in range(n_obs - 1):
        kf.predict()
        kf.update(np.array([[0.0]]))
        gains.append(kf.K.copy())
        var.append(float(kf.S[0, 0]))
    kf.predict()
    return kf.F, gains, np.asarray(var), float(kf.P[0, 0] + params.r_um2)


def _run_filter(z: np.ndarray, F: np.ndarray, gains: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Batched filter pass: ``z`` (L, M) measurements → innovations (L − 1, M) and final state (2, M)."""
    x = np.stack([z[0], np.zeros(z.shape[1])])
    nu = []
    for i, K in enumerate(gains, start=1):
        x = F @ x
        v = z[i] - x[0]
        nu.append(v)
        x = x + K @ v[None, :]
    return np.asarray(nu).reshape(len(gains), z.shape[1]), x


def _filter_forecast(past: np.ndarray, F: np.ndarray, gains: list[np.ndarray], horizon: int) -> np.ndarray:
    """Filter every axis of every history ``(N, L, D)`` with ``gains`` (:func:`_run_filter`), then
    propagate the state ``horizon`` frames with ``F``: positions ``(N, H, D)``."""
    n, L, d = past.shape
    _, x = _run_filter(past.transpose(1, 0, 2).reshape(L, n * d), F, gains)
    out = []
    for _ in range(horizon):
        x = F @ x
        out.append(x[0].reshape(n, d))
    return np.stack(out, axis=1)


def prw_kalman_forecast(past: np.ndarray, horizon: int = 1, params: PRWParams | None = None) -> np.ndarray:
    """Persistent-random-walk Kalman forecast of every history, batched; shape (N, H, D).

    Each axis is filtered independently with the gains of filterpy's
    :class:`~filterpy.kalman.KalmanFilter` for the model of :class:`PRWParams`, then the state is
    propagated ``h`` frames ahead (the velocity decays by ``φ`` per frame).

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
        History positions (µm).
    horizon : int
    params : PRWParams, optional

    Returns
    -------
    numpy.ndarray, float64, shape (N, H, D)
    """
    params = params or PRWParams()
    past = np.asarray(past, dtype=np.float64)
    F, gains, _, _ = _prw_filter(past.shape[1], params)
    return _filter_forecast(past, F, gains, horizon)


def _prw_unpack(u: np.ndarray, step2: float) -> PRWParams:
    return PRWParams(q_pos_um2=float(np.exp(u[0]) * step2), q_vel_um2=float(np.exp(u[1]) * step2),
                     persistence=float(1.0 / (1.0 + np.exp(-u[2]))), r_um2=float(np.exp(u[3]) * step2),
                     p0_um2=float(np.exp(u[4]) * step2))


def prw_log_likelihood(past: np.ndarray, future: np.ndarray, params: PRWParams) -> float:
    """Mean Gaussian log-likelihood per window and axis of the positions after the first (nats).

    The innovations of the filter over the history and the first future position are scored
    with their variances (the prediction-error decomposition of a linear Gaussian state-space
    model); overlapping windows count each position once per window (a composite likelihood).

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
    future : numpy.ndarray, shape (N, H, D)
        Only the first future position is used.
    params : PRWParams

    Returns
    -------
    float
    """
    z = np.concatenate([past, future[:, :1]], axis=1)
    n, L, d = z.shape
    F, gains, var, _ = _prw_filter(L, params)
    nu, _ = _run_filter(z.transpose(1, 0, 2).reshape(L, n * d), F, gains)
    return float(-0.5 * np.mean(np.sum(np.log(2 * np.pi * var)[:, None] + nu ** 2 / var[:, None], axis=0)))


def fit_prw_kalman(past: np.ndarray, future: np.ndarray, *, max_windows: int = 20000, seed: int = 0) -> PRWParams:
    """Fit the persistent-random-walk Kalman filter by maximum likelihood on training windows.

    The five parameters of :class:`PRWParams` (variances on a log scale in units of the median
    squared step, ``φ`` through a logistic) maximise :func:`prw_log_likelihood` (scipy's
    Nelder–Mead from two starts: a persistent walker and a nearly diffusive one).

    Parameters
    ----------
    past : numpy.ndarray, shape (N, L, D)
        Training histories (µm).
    future : numpy.ndarray, shape (N, H, D)
        Their next positions; only the first is used.
    max_windows : int
        At most this many windows, drawn with ``seed``, enter the fit.
    seed : int

    Returns
    -------
    PRWParams

    Raises
    ------
    InvalidInputError
        Without windows.
    """
    from scipy.optimize import minimize

    past, future = np.asarray(past, dtype=np.float64), np.asarray(future, dtype=np.float64)
    if len(past) == 0:
        raise InvalidInputError("no training windows to fit the persistent-random-walk Kalman filter on")
    if len(past) > max_windows:
        keep = np.random.default_rng(seed).choice(len(past), max_windows, replace=False)
        past, future = past[keep], future[keep]
    step2 = _median_step2(past)

    def nll(u: np.ndarray) -> float:
        val = -prw_log_likelihood(past, future, _prw_unpack(u, step2))
        return val if np.isfinite(val) else 1e300

    best = None
    for u0 in ((-2.0, -2.0, 2.0, -2.0, 0.0), (-1.0, -3.0, 0.0, -1.0, -1.0)):
        res = minimize(nll, np.asarray(u0), method="Nelder-Mead",
                       options={"maxiter": 800, "xatol": 1e-3, "fatol": 1e-7})
        if best is None or res.fun < best.fun:
            best = res
    return _prw_unpack(np.clip(best.x, -50, 50), step2)


def baseline_positions(name: str, past: np.ndarray, horizon: int = 1, *, kalman: KalmanParams | None = None,
                       prw: PRWParams | None = None) -> np.ndarray:
    """Forecast of the baseline ``name`` (one of :data:`POSITION_BASELINES`), shape (N, H, D).

    ``kalman`` and ``prw`` are the fitted parameters of the two Kalman baselines (defaults when None).

    Parameters
    ----------
    name : str
        One of :data:`POSITION_BASELINES`.
    past : numpy.ndarray
        ``(N, L, D)`` history positions (µm), oldest first.
    horizon : int
        Frames ahead, H.
    kalman : KalmanParams, optional
        Parameters of the ``kalman`` baseline.
    prw : PRWParams, optional
        Parameters of the ``kalman_prw`` baseline.

    Returns
    -------
    numpy.ndarray
        float64 ``(N, H, D)``.

    Raises
    ------
    InvalidInputError
        For an unknown name.
    """
    if name == "constant_position":
        return constant_position(past, horizon)
    if name == "constant_velocity":
        return constant_velocity(past, horizon)
    if name == "kalman":
        return kalman_forecast(past, horizon, kalman)
    if name == "kalman_prw":
        return prw_kalman_forecast(past, horizon, prw)
    raise InvalidInputError(f"unknown position baseline {name!r}; choose one of {list(POSITION_BASELINES)}")


def _padded_histories(tracks: pd.DataFrame, at_frame: int | None, history: int, s: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = _spatial_columns(tracks)
    df = tracks if at_frame is None else tracks[tracks["t"] <= at_frame]
    ids, last_t, pasts = [], [], []
    for tid, g in df.sort_values(["track_id", "t"]).groupby("track_id", sort=True):
        t = g["t"].to_numpy(int)
        if at_frame is not None and t[-1] != at_frame:
            continue
        p = g[cols].to_numpy(float) * s
        # the last run of consecutive frames only
        start = np.flatnonzero(np.diff(t) != 1)
        first = int(start[-1]) + 1 if start.size else 0
        p = p[first:][-history:]
        if len(p) < history:
            p = np.concatenate([np.repeat(p[:1], history - len(p), axis=0), p])
        ids.append(int(tid))
        last_t.append(int(t[-1]))
        pasts.append(p)
    d = len(cols)
    return (np.asarray(ids, int), np.asarray(last_t, int),
            np.stack(pasts) if pasts else np.zeros((0, history, d)))


def predict_next_positions(tracks: pd.DataFrame, *, method: str = "constant_velocity", model=None,
                           at_frame: int | None = None, horizon: int = 1,
                           scale_zyx: Sequence[float] | None = None, history: int = 5,
                           kalman: KalmanParams | None = None, prw: PRWParams | None = None) -> pd.DataFrame:
    """Predicted next positions of the tracks of a table (a motion prior for linking).

    Parameters
    ----------
    tracks : pandas.DataFrame
        Tracks table (``t, track_id, (z,) y, x`` in pixels).
    method : {"constant_position", "constant_velocity", "kalman", "kalman_prw", "model"}
        The forecaster; ``"model"`` uses ``model``.
    model : dynacell.forecast.PositionForecaster, optional
        A position model (its own history length replaces ``history``).
    at_frame : int, optional
        Forecast only the tracks that have a detection in this frame, from their positions up to
        it; default: every track from its last detection.
    horizon : int
        Steps ahead (1 = the next frame).
    scale_zyx : sequence of float, optional
        µm per pixel (z,) y, x; the forecast runs in µm and is returned in pixels and µm.
    history : int
        Positions of history used (shorter tracks repeat their first position, i.e. start at
        zero velocity).
    kalman : KalmanParams, optional
        Noise of the Kalman filter.
    prw : PRWParams, optional
        Parameters of the persistent-random-walk Kalman filter (e.g. from :func:`fit_prw_kalman`);
        for ``method="kalman_prw"`` without them, they are fitted by maximum likelihood on the
        table's own histories (when it has at least 20 windows; else :class:`PRWParams` defaults).

    Returns
    -------
    pandas.DataFrame
        One row per (track, horizon step): ``track_id``, ``t`` (predicted frame), ``(z,) y, x``
        (pixels) and ``(z_um,) y_um, x_um``.

    Raises
    ------
    InvalidInputError
        For an unknown method or ``method="model"`` without a model.
    """
    cols = _spatial_columns(tracks)
    s = _scale(scale_zyx, len(cols))
    if method == "model":
        if model is None:
            raise InvalidInputError("method='model' needs a position model (model=...)")
        history = model.history
    ids, last_t, past = _padded_histories(tracks, at_frame, history, s)
    if method == "model":
        pred = model.predict(past, horizon)
    else:
        if method == "kalman_prw" and prw is None:
            own = history_windows(tracks, history=history, horizon=1, scale_zyx=scale_zyx)
            if len(own["past"]) >= _MIN_KALMAN_FIT:
                prw = fit_prw_kalman(own["past"], own["future"])
        pred = baseline_positions(method, past, horizon, kalman=kalman, prw=prw)
    n, h, d = pred.shape
    out = {"track_id": np.repeat(ids, h), "t": (last_t[:, None] + np.arange(1, h + 1)).ravel()}
    flat = pred.reshape(n * h, d)
    for j, c in enumerate(cols):
        out[c] = flat[:, j] / s[j]
    for j, c in enumerate(cols):
        out[f"{c}_um"] = flat[:, j]
    return pd.DataFrame(out)


#: Forecasters usable as a linking motion prior by name, besides a position model name or folder.
PRIOR_BASELINES = ("velocity", "kalman")

#: Fewest full-length histories of a movie on which :func:`motion_predictor`'s Kalman filter is fitted.
_MIN_KALMAN_FIT = 20


@dataclass(frozen=True)
class MotionPredictor:
    """Next position of every track from its last positions: the motion prior of predictive linking.

    Attributes
    ----------
    name : str
        ``"velocity"``, ``"kalman"`` or the position model's name.
    history : int
        Positions L of history it reads.
    predict : callable
        ``predict(past_um, n_obs) -> next_um``: ``past_um`` float64 (N, L, D) oldest first (µm, or
        pixels when the voxel size is unknown; tracks with fewer than L positions repeat their first
        one), ``n_obs`` int (N,) the number of real positions (1..L), ``next_um`` float64 (N, D).
    """

    name: str
    history: int
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _kalman_self_fitted(past: np.ndarray, n_obs: np.ndarray) -> np.ndarray:
    """Kalman forecast with ``(q, r, p0)`` fitted (:func:`fit_kalman`) on the full histories given."""
    full = n_obs >= past.shape[1]
    if full.sum() >= _MIN_KALMAN_FIT:
        params = fit_kalman(past[full, :-1], past[full, -1:])
    else:
        step2 = float(np.median(np.sum(np.diff(past, axis=1) ** 2, axis=2))) if past.shape[1] > 1 else 0.0
        step2 = step2 or 1.0
        params = KalmanParams(q_um2=step2, r_um2=step2, p0_um2=100.0 * step2)
    return kalman_forecast(past, 1, params)[:, 0]


def motion_predictor(name: str, *, ndim: int, history: int = 5) -> MotionPredictor:
    """The next-position forecaster named ``name``, for :func:`dynacell.track.link_labels`.

    Parameters
    ----------
    name : str
        ``"velocity"`` (:func:`constant_velocity`: the track's last step repeated), ``"kalman"``
        (:func:`kalman_forecast`, its noise fitted with :func:`fit_kalman` on the movie's own
        tracks, i.e. the histories passed to ``predict`` that hold ``history`` real positions; with
        fewer than 20 of them, ``q = r = p0 / 100`` = the median squared step), or a shipped
        position model name (``positions-2d``, ``positions-3d``) / model folder, loaded by
        :func:`dynacell.forecast.models.resolve_model` (weights through
        :func:`dynacell.models.runtime.load_model_folder`; imports torch).
    ndim : {2, 3}
        Spatial dimensionality of the positions; a model must have been trained on it.
    history : int
        Positions of history L for the baselines (a model uses its card's ``history``).

    Returns
    -------
    MotionPredictor

    Raises
    ------
    InvalidInputError
        For an unknown name, a next-frame model, or a position model of another dimensionality.
    """
    if name == "velocity":
        return MotionPredictor("velocity", max(int(history), 2),
                               lambda past, n_obs: constant_velocity(past, 1)[:, 0])
    if name == "kalman":
        return MotionPredictor("kalman", max(int(history), 2), _kalman_self_fitted)
    from pathlib import Path

    from dynacell.cards import CARD_FILE
    from dynacell.forecast.models import (
        PRETRAINED_DIR,
        PositionForecaster,
        resolve_model,
    )

    if not ((PRETRAINED_DIR / name / CARD_FILE).is_file() or Path(name).is_dir()):  # checked before torch loads
        raise InvalidInputError(
            f"unknown motion prior {name!r}: use 'flow', one of {list(PRIOR_BASELINES)}, a shipped position "
            f"model (positions-2d, positions-3d) or a position model folder")
    model = resolve_model(name)
    if not isinstance(model, PositionForecaster):
        raise InvalidInputError(f"motion prior {name!r} is a next-frame model; a position model is needed "
                                "(positions-2d, positions-3d)")
    if model.ndim != ndim:
        raise InvalidInputError(f"position model {name!r} forecasts {model.ndim}D positions; the labels are "
                                f"{ndim}D (use positions-{ndim}d)")
    return MotionPredictor(model.card.name, model.history, lambda past, n_obs: model.predict(past, 1)[:, 0])
