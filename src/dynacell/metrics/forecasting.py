"""Forecast metrics: frame errors (MSE, MAE, SSIM), centre-of-mass error, displacement errors, mask IoU.

Frames are compared as float arrays on the same intensity scale (dynacell normalises a movie to
roughly [0, 1] before forecasting, see :func:`dynacell.forecast.frames.normalize_movie`).
Positions are compared in µm. No torch import: these run on NumPy arrays.

Sources: SSIM of Wang et al. (2004, *IEEE TIP* 13:600) as implemented by scikit-image
(:func:`skimage.metrics.structural_similarity`); the intensity-weighted centre of mass and the
forecast-mask IoU (the mask at ``t`` moved by the predicted displacement against the true mask at
``t + 1``) follow the two forecasting seeds of the project; the percentile bootstrap is
:func:`scipy.stats.bootstrap`; average / final displacement error (ADE / FDE) are the usual
trajectory-forecasting measures (Alahi et al. 2016, *CVPR*, Social LSTM); the noise variance of a
frame is Immerkær's estimator (1996, *Computer Vision and Image Understanding* 64:300, "Fast noise
variance estimation").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = [
    "bootstrap_ci",
    "center_of_mass",
    "center_of_mass_error",
    "displacement_errors",
    "forecast_mask_iou",
    "frame_errors",
    "noise_variance",
]


def _pair(pred: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise InvalidInputError(f"prediction shape {pred.shape} differs from truth shape {true.shape}")
    if pred.size == 0:
        raise InvalidInputError("empty frames: nothing to compare")
    return pred, true


def frame_errors(pred: np.ndarray, true: np.ndarray, *, data_range: float | None = None) -> dict[str, float]:
    """Mean squared error, mean absolute error and SSIM of predicted frames against true frames.

    Parameters
    ----------
    pred, true : numpy.ndarray, float, shape (N, Y, X) or (Y, X)
        Predicted and true frames on the same intensity scale.
    data_range : float, optional
        Intensity range for SSIM; default: ``true.max() - true.min()`` over all frames.

    Returns
    -------
    dict
        ``mse``, ``mae`` (means over all pixels and frames) and ``ssim`` (mean over frames of
        scikit-image's SSIM with a 7-pixel window).

    Raises
    ------
    InvalidInputError
        If the shapes differ or the arrays are empty.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 8, 8)); b = a.copy(); b[0, 0, 0] = 1.0
    >>> round(frame_errors(b, a, data_range=1.0)["mse"], 6)
    0.015625
    """
    from skimage.metrics import structural_similarity

    pred, true = _pair(pred, true)
    if pred.ndim == 2:
        pred, true = pred[None], true[None]
    if data_range is None:
        data_range = float(true.max() - true.min()) or 1.0
    diff = pred - true
    ssim = [structural_similarity(p, t, data_range=data_range) for p, t in zip(pred, true, strict=True)]
    return {"mse": float(np.mean(diff**2)), "mae": float(np.mean(np.abs(diff))), "ssim": float(np.mean(ssim))}


def center_of_mass(frames: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre of mass of each frame, in pixels ``(y, x)``.

    Negative intensities (a linear extrapolation can make them) are set to 0 before weighting.

    Parameters
    ----------
    frames : numpy.ndarray, shape (N, Y, X) or (Y, X)

    Returns
    -------
    numpy.ndarray, float64, shape (N, 2) or (2,)
        Row, column of the centre; the frame centre for an all-zero frame.
    """
    f = np.clip(np.asarray(frames, dtype=np.float64), 0, None)
    single = f.ndim == 2
    if single:
        f = f[None]
    n, h, w = f.shape
    mass = f.sum(axis=(1, 2))
    yy = (f.sum(axis=2) * np.arange(h)).sum(axis=1)
    xx = (f.sum(axis=1) * np.arange(w)).sum(axis=1)
    out = np.full((n, 2), [(h - 1) / 2, (w - 1) / 2])
    ok = mass > 0
    out[ok, 0] = yy[ok] / mass[ok]
    out[ok, 1] = xx[ok] / mass[ok]
    return out[0] if single else out


def center_of_mass_error(pred: np.ndarray, true: np.ndarray, *, pixel_size_um: float | None = None,
                         seed: int = 0) -> dict[str, float | None]:
    """Distance between the centres of mass of predicted and true frames, with a bootstrap 95 % CI.

    Parameters
    ----------
    pred, true : numpy.ndarray, shape (N, Y, X)
        Predicted and true frames.
    pixel_size_um : float, optional
        Pixel size of these frames (after any down-sampling) in µm; the ``_um`` figures are None
        without it.
    seed : int
        Seed of the bootstrap resampling.

    Returns
    -------
    dict
        ``com_error_px`` (mean), ``com_error_px_ci`` ([low, high]), ``com_error_um`` and
        ``com_error_um_ci`` (None without a pixel size), ``n`` frames.
    """
    pred, true = _pair(pred, true)
    if pred.ndim == 2:
        pred, true = pred[None], true[None]
    d = np.linalg.norm(center_of_mass(pred) - center_of_mass(true), axis=1)
    lo, hi = bootstrap_ci(d, seed=seed)
    out: dict[str, float | None] = {"com_error_px": float(d.mean()), "com_error_px_ci": [lo, hi],
                                    "com_error_um": None, "com_error_um_ci": None, "n": len(d)}
    if pixel_size_um is not None:
        out["com_error_um"] = float(d.mean() * pixel_size_um)
        out["com_error_um_ci"] = [lo * pixel_size_um, hi * pixel_size_um]
    return out


def bootstrap_ci(values: Sequence[float], *, confidence: float = 0.95, n_resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean (:func:`scipy.stats.bootstrap`).

    Parameters
    ----------
    values : sequence of float
        Per-sample errors.
    confidence : float
        Confidence level.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    (float, float)
        Low and high bound; both equal the value for a single sample (no spread to resample).

    Raises
    ------
    InvalidInputError
        For an empty sequence.
    """
    from scipy.stats import bootstrap

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise InvalidInputError("bootstrap of an empty set of values")
    if v.size == 1 or np.all(v == v[0]):
        return float(v[0]), float(v[0])
    res = bootstrap((v,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                    rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def displacement_errors(pred_um: np.ndarray, true_um: np.ndarray) -> dict[str, float]:
    """Average and final displacement error of position forecasts (µm).

    Parameters
    ----------
    pred_um, true_um : numpy.ndarray, shape (N, H, D)
        Predicted and true positions of N forecasts over H horizons in D spatial dimensions, in µm.

    Returns
    -------
    dict
        ``ade_um``: mean Euclidean error over forecasts and horizons; ``fde_um``: mean error at the
        last horizon; ``per_horizon_um``: list of H mean errors; ``n``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((1, 2, 2)); t = np.array([[[3.0, 4.0], [6.0, 8.0]]])
    >>> displacement_errors(p, t)["ade_um"]
    7.5
    """
    pred, true = _pair(pred_um, true_um)
    if pred.ndim != 3:
        raise InvalidInputError(f"positions must be (N, H, D), got shape {pred.shape}")
    e = np.linalg.norm(pred - true, axis=2)
    return {"ade_um": float(e.mean()), "fde_um": float(e[:, -1].mean()),
            "per_horizon_um": [float(v) for v in e.mean(axis=0)], "n": int(e.shape[0])}


def forecast_mask_iou(mask_t: np.ndarray, mask_next: np.ndarray, displacement_px: Sequence[float]) -> float:
    """IoU of a cell's mask at ``t`` moved by a predicted displacement and its true mask at ``t + 1``.

    Parameters
    ----------
    mask_t, mask_next : numpy.ndarray, bool, shape ((Z,) Y, X)
        The cell's mask in frame ``t`` and in frame ``t + 1``.
    displacement_px : sequence of float
        Predicted displacement ``((z,) y, x)`` in pixels; rounded to whole pixels (no
        interpolation of a binary mask).

    Returns
    -------
    float
        Intersection over union; 0.0 when both masks are empty.
    """
    a = np.asarray(mask_t, dtype=bool)
    b = np.asarray(mask_next, dtype=bool)
    if a.shape != b.shape:
        raise InvalidInputError(f"mask shapes differ: {a.shape} vs {b.shape}")
    d = np.rint(np.asarray(displacement_px, dtype=float)).astype(int)
    if d.shape != (a.ndim,):
        raise InvalidInputError(f"displacement must have {a.ndim} components, got {d.shape}")
    moved = np.zeros_like(a)
    src = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(d, a.shape, strict=True))
    dst = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(d, a.shape, strict=True))
    if all(sl.stop > sl.start for sl in src):
        moved[dst] = a[src]
    union = np.logical_or(moved, b).sum()
    return float(np.logical_and(moved, b).sum() / union) if union else 0.0


#: Immerkær's mask: the difference of two Laplacians; it cancels constant, linear and quadratic
#: intensity and turns white noise of variance σ² into noise of variance 36 σ².
_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


def noise_variance(frames: np.ndarray) -> np.ndarray:
    """Variance of the white noise of each frame (Immerkær 1996), on the frames' intensity scale.

    ``σ = √(π/2) · mean|I ∗ M| / 6`` over the interior pixels, with ``M`` the 3 × 3 difference of
    two Laplacians (:data:`_IMMERKAER`, applied with :func:`scipy.ndimage.convolve`). Smooth image
    structure cancels; sharp edges and texture finer than 3 pixels do not, so the estimate is an
    upper bound on textured frames. Its use here: a forecaster that knew the noise-free next frame
    exactly would still have an MSE of σ² against the noisy frame (the *noise floor*), and two
    independent noisy frames of a static scene differ by 2σ².

    Parameters
    ----------
    frames : numpy.ndarray, shape (T, Y, X) or (Y, X)
        Frames (float; any intensity scale), Y, X ≥ 3.

    Returns
    -------
    numpy.ndarray, float64, shape (T,)
        σ² per frame (a 1-element array for a single frame).

    Raises
    ------
    InvalidInputError
        For frames smaller than 3 × 3 or not 2D / 3D.
    """
    from scipy.ndimage import convolve

    f = np.asarray(frames, dtype=np.float64)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or f.shape[1] < 3 or f.shape[2] < 3:
        raise InvalidInputError(f"noise_variance needs frames (T, Y, X) with Y, X >= 3, got shape {np.shape(frames)}")
    out = np.empty(len(f))
    for i, img in enumerate(f):
        r = convolve(img, _IMMERKAER, mode="nearest")[1:-1, 1:-1]
        out[i] = (np.sqrt(np.pi / 2.0) * np.abs(r).mean() / 6.0) ** 2
    return out
