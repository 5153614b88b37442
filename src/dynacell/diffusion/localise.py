"""Localise the molecule in every frame of a stack: least-squares fit of a 2D Gaussian spot.

This is the localisation that the trajectory estimators of D (the seed project's MSD of
Gaussian-fit centroids, the CVE and the optimal MSD fit of :mod:`dynacell.motion.estimators`)
start from. Per frame: the frame is smoothed (Gaussian, sigma 1 pixel) to find the brightest
pixel, and a symmetric 2D Gaussian ``b + A exp(-((y - y0)^2 + (x - x0)^2) / (2 s^2))`` is fitted
to a window around it by Levenberg–Marquardt least squares (analytic Jacobian), all frames at
once in NumPy (the same fit as ``scipy.optimize.least_squares(method="lm")`` frame by frame,
which the tests check; SciPy fits one problem at a time, far slower for thousands of frames). A fit that leaves the window or fails falls back to the intensity-weighted centroid
of the background-subtracted window, and is flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from dynacell.errors import InvalidInputError

__all__ = ["localise_stacks"]


def _batch_model(p: np.ndarray, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model ``(F, K)`` and Jacobian ``(F, K, 5)`` of ``F`` spots at once (vectorised)."""
    y0, x0, a, s, b = (p[:, i:i + 1] for i in range(5))
    dy, dx = yy[None, :] - y0, xx[None, :] - x0
    s2 = s * s
    r2 = dy * dy + dx * dx
    g = np.exp(-r2 / (2.0 * s2))
    ag = a * g
    jac = np.stack([ag * dy / s2, ag * dx / s2, g, ag * r2 / (s2 * s), np.ones_like(g)], axis=2)
    return b + ag, jac


def _fit_windows(win: np.ndarray, p0: np.ndarray, n_iter: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg–Marquardt (Marquardt's diagonal scaling) of every window at once.

    Returns the parameters ``(F, 5)`` and whether each fit's cost decreased to a stationary point.
    """
    F, wy, wx = win.shape
    yy, xx = (g.ravel().astype(float) for g in np.mgrid[:wy, :wx])
    v = win.reshape(F, -1).astype(float)
    p = p0.astype(float).copy()
    model, J = _batch_model(p, yy, xx)
    r = model - v
    cost = (r * r).sum(1)
    lam = np.full(F, 1e-3)
    eye = np.eye(5)
    for _ in range(n_iter):
        Jt = J.transpose(0, 2, 1)
        JTJ = Jt @ J
        grad = (Jt @ r[..., None])[..., 0]
        diag = np.diagonal(JTJ, axis1=1, axis2=2) + 1e-12
        A = JTJ + lam[:, None, None] * diag[:, :, None] * eye[None]
        try:
            step = -np.linalg.solve(A, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -grad / diag
        p_new = p + step
        m_new, J_new = _batch_model(p_new, yy, xx)
        r_new = m_new - v
        c_new = (r_new * r_new).sum(1)
        better = np.isfinite(c_new) & (c_new < cost)
        p[better], J[better], r[better], cost[better] = p_new[better], J_new[better], r_new[better], c_new[better]
        lam = np.where(better, lam * 0.3, lam * 10.0).clip(1e-9, 1e9)
    return p, np.isfinite(cost)


def localise_stacks(stacks: np.ndarray, *, psf_sigma_px: float | np.ndarray = 1.0, half_window_px: int = 4) -> pd.DataFrame:
    """Fit a Gaussian spot in every frame of every stack.

    Parameters
    ----------
    stacks : ndarray, shape (N, T, Y, X)
        Images (raw ADU or photo-electrons; only the spot's shape matters).
    psf_sigma_px : float or ndarray (N,)
        Initial spot sigma in pixels (the PSF's).
    half_window_px : int
        The fit window is ``2 half + 1`` pixels wide, around the brightest smoothed pixel.

    Returns
    -------
    pandas.DataFrame
        One row per frame: ``stack``, ``frame``, ``y_px``, ``x_px`` (pixel centres at integers,
        ``y`` down the rows), ``sigma_px``, ``amplitude``, ``fit_ok`` (False: centroid fallback).

    Raises
    ------
    InvalidInputError
        If ``stacks`` is not 4D or a frame is smaller than the window.
    """
    a = np.asarray(stacks)
    if a.ndim != 4:
        raise InvalidInputError(f"localise_stacks: expected stacks (N, T, Y, X), got shape {a.shape}")
    N, T, Y, X = a.shape
    half = int(half_window_px)
    if min(Y, X) < 2 * half + 1:
        raise InvalidInputError(f"localise_stacks: frames {Y}x{X} are smaller than the {2 * half + 1}-pixel window")
    s0 = np.broadcast_to(np.asarray(psf_sigma_px, dtype=float), (N,))
    w = 2 * half + 1
    frames = a.reshape(N * T, Y, X).astype(np.float32)
    sm = ndimage.gaussian_filter(frames, (0, 1.0, 1.0))
    idx = sm.reshape(N * T, -1).argmax(axis=1)
    cy, cx = idx // X, idx % X
    y_lo = np.clip(cy - half, 0, Y - w)
    x_lo = np.clip(cx - half, 0, X - w)
    off = np.arange(w)
    fi = np.arange(N * T)[:, None, None]
    win = frames[fi, (y_lo[:, None] + off)[:, :, None], (x_lo[:, None] + off)[:, None, :]].astype(float)
    b0 = np.median(frames.reshape(N * T, -1), axis=1).astype(float)
    a0 = np.maximum(win.reshape(N * T, -1).max(axis=1) - b0, 1e-3)
    p0 = np.stack([cy - y_lo, cx - x_lo, a0, np.repeat(s0, T), b0], axis=1).astype(float)
    p, finite = _fit_windows(win, p0)
    y0, x0, amp, sig = p[:, 0], p[:, 1], p[:, 2], np.abs(p[:, 3])
    ok = finite & (amp > 0) & (sig > 0.2) & (sig < 3 * half) & (y0 >= 0) & (y0 <= w - 1) & (x0 >= 0) & (x0 <= w - 1)
    # fallback: intensity-weighted centroid of the background-subtracted window
    wpos = np.clip(win - b0[:, None, None], 0, None)
    tot = wpos.sum(axis=(1, 2))
    safe = np.where(tot > 0, tot, 1.0)
    cyw = np.where(tot > 0, (wpos * off[None, :, None]).sum(axis=(1, 2)) / safe, p0[:, 0])
    cxw = np.where(tot > 0, (wpos * off[None, None, :]).sum(axis=(1, 2)) / safe, p0[:, 1])
    y0, x0 = np.where(ok, y0, cyw), np.where(ok, x0, cxw)
    sig, amp = np.where(ok, sig, np.repeat(s0, T)), np.where(ok, amp, a0)
    rows = np.stack([y0 + y_lo, x0 + x_lo, sig, amp], axis=1)
    return pd.DataFrame({"stack": np.repeat(np.arange(N), T), "frame": np.tile(np.arange(T), N),
                         "y_px": rows[:, 0], "x_px": rows[:, 1], "sigma_px": rows[:, 2], "amplitude": rows[:, 3],
                         "fit_ok": ok})
