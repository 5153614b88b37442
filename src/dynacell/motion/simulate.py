"""Trajectories with known truth for validating the motion statistics: Brownian (with localisation
error and motion blur), fractional Brownian (α ≠ 1) and directed motion.

All outputs are float64 arrays ``(n_tracks, n_frames, d)`` in µm; every function takes a
``numpy.random.Generator`` (or a seed) so results are reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["brownian_tracks", "directed_tracks", "fbm_tracks"]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def brownian_tracks(n_tracks: int, n_frames: int, D_um2_per_s: float, frame_interval_s: float, *,
                    d: int = 2, sigma_um: float = 0.0, exposure_s: float | None = None, n_substeps: int = 32,
                    seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Brownian trajectories as a camera records them: blurred over the exposure, plus localisation noise.

    Each frame's position is the mean of the true position at ``n_substeps`` evenly spaced instants
    (midpoints) of the exposure ``exposure_s`` at the start of every frame interval (continuous
    illumination during the exposure; blur coefficient R = t_E/(6Δt) as n_substeps → ∞), plus
    independent Gaussian noise of SD ``sigma_um`` per axis. ``exposure_s=None`` = instantaneous
    frames (no blur). Increments of the true path are Gaussian with variance 2D·δt per axis.

    Parameters
    ----------
    n_tracks, n_frames : int
        Output shape (n_tracks, n_frames, d).
    D_um2_per_s : float
        Diffusion coefficient (µm²/s).
    frame_interval_s : float
        Time between frame starts (s).
    d : int
        Number of axes (1–3).
    sigma_um : float
        Localisation error SD per axis (µm).
    exposure_s : float, optional
        Exposure per frame (s), ≤ the frame interval.
    n_substeps : int
        Instants averaged per exposure.
    seed : int or Generator

    Returns
    -------
    ndarray, shape (n_tracks, n_frames, d), float64 (µm)

    Examples
    --------
    >>> brownian_tracks(3, 16, 0.5, 0.1, sigma_um=0.02, exposure_s=0.1).shape
    (3, 16, 2)
    """
    if n_tracks < 1 or n_frames < 1 or D_um2_per_s < 0 or frame_interval_s <= 0 or sigma_um < 0:
        raise InvalidInputError("brownian_tracks: need n_tracks, n_frames >= 1, D >= 0, frame interval > 0, σ >= 0")
    rng = _rng(seed)
    dt = float(frame_interval_s)
    if exposure_s is None or exposure_s == 0:
        steps = rng.normal(0.0, math.sqrt(2 * D_um2_per_s * dt), (n_tracks, n_frames, d))
        steps[:, 0] = 0.0
        pos = np.cumsum(steps, axis=1)
    else:
        tE = float(exposure_s)
        if tE > dt * (1 + 1e-12):
            raise InvalidInputError("brownian_tracks: exposure longer than the frame interval")
        M = int(n_substeps)
        offs = (np.arange(M) + 0.5) * tE / M
        times = (np.arange(n_frames)[:, None] * dt + offs[None, :]).ravel()
        gaps = np.diff(np.concatenate([[0.0], times]))
        steps = rng.normal(0.0, 1.0, (n_tracks, times.size, d)) * np.sqrt(2 * D_um2_per_s * gaps)[None, :, None]
        path = np.cumsum(steps, axis=1).reshape(n_tracks, n_frames, M, d)
        pos = path.mean(axis=2)
    if sigma_um > 0:
        pos = pos + rng.normal(0.0, sigma_um, pos.shape)
    return pos


def fbm_tracks(n_tracks: int, n_frames: int, alpha: float, K_um2_per_s_alpha: float, frame_interval_s: float, *,
               d: int = 2, seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Fractional Brownian motion with MSD(t) = 2d·K·t^α (exact, Cholesky of the fGn covariance).

    Increments of one axis over one frame are fractional Gaussian noise with Hurst exponent
    H = α/2: Cov(k) = K·Δt^α·(|k+1|^α − 2|k|^α + |k−1|^α) (Mandelbrot & Van Ness 1968).

    Parameters
    ----------
    n_tracks, n_frames : int
    alpha : float
        Anomalous exponent, 0 < α < 2 (α < 1 subdiffusive).
    K_um2_per_s_alpha : float
        Generalised diffusion coefficient (µm²/s^α).
    frame_interval_s : float
    d : int
    seed : int or Generator

    Returns
    -------
    ndarray, shape (n_tracks, n_frames, d), float64 (µm), starting at 0.
    """
    if not 0 < alpha < 2:
        raise InvalidInputError(f"fbm_tracks: alpha must be in (0, 2), got {alpha}")
    rng = _rng(seed)
    n = n_frames - 1
    k = np.arange(n, dtype=np.float64)
    acov = K_um2_per_s_alpha * frame_interval_s ** alpha * (np.abs(k + 1) ** alpha - 2 * k ** alpha
                                                            + np.abs(k - 1) ** alpha)
    idx = np.abs(k[:, None] - k[None, :]).astype(int)
    L = np.linalg.cholesky(acov[idx])
    z = rng.normal(0.0, 1.0, (n_tracks, n, d))
    steps = np.einsum("ij,njd->nid", L, z)
    pos = np.zeros((n_tracks, n_frames, d))
    pos[:, 1:] = np.cumsum(steps, axis=1)
    return pos


def directed_tracks(n_tracks: int, n_frames: int, D_um2_per_s: float, speed_um_per_s: float,
                    frame_interval_s: float, *, d: int = 2,
                    seed: int | np.random.Generator | None = 0) -> np.ndarray:
    """Brownian motion plus a constant velocity of a random direction per track.

    MSD(t) = 2d·D·t + v²·t².

    Parameters
    ----------
    n_tracks, n_frames : int
    D_um2_per_s : float
    speed_um_per_s : float
    frame_interval_s : float
    d : int
    seed : int or Generator

    Returns
    -------
    ndarray, shape (n_tracks, n_frames, d), float64 (µm)
    """
    rng = _rng(seed)
    pos = brownian_tracks(n_tracks, n_frames, D_um2_per_s, frame_interval_s, d=d, seed=rng)
    u = rng.normal(size=(n_tracks, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    t = np.arange(n_frames) * frame_interval_s
    return pos + speed_um_per_s * u[:, None, :] * t[None, :, None]
