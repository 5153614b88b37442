"""What every diffusion network sees: normalised stacks, a condition vector, a dimensionless target.

The image of a diffusing molecule depends on D, the frame interval ``dt`` and the pixel size ``a``
only through ``D dt / a**2`` (pixels² per frame) once the exposure fraction and the PSF size in
pixels are fixed, so the networks regress ``log(D dt / a**2)`` and get the PSF size in pixels and
the exposure fraction as a condition; D in µm²/s is recovered with :func:`D_from_log_dn`.
"""

from __future__ import annotations

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["D_from_log_dn", "condition_features", "log_dn", "normalise_stacks"]

#: Centre and scale of the PSF-sigma-in-pixels condition (the training range is about 0.6-1.2 px).
_SIGMA_PX_CENTRE, _SIGMA_PX_SCALE = 0.85, 0.2


def normalise_stacks(stacks_adu: np.ndarray, *, gain_adu_per_e: float = 1.0, offset_adu: float = 100.0,
                     read_noise_adu: float = 0.0) -> np.ndarray:
    """Camera counts → background-subtracted photo-electrons in units of the background noise.

    ``e = (ADU - offset) / gain``; ``b`` = median of ``e`` over each stack (the background: the
    molecule covers a few pixels); result ``(e - b) / sqrt(max(b, 0) + (read_noise / gain)**2 + 1)``.

    Parameters
    ----------
    stacks_adu : ndarray, shape (N, T, Y, X)
        Raw camera stacks (any numeric dtype).
    gain_adu_per_e, offset_adu, read_noise_adu : float
        The camera: ADU per photo-electron, offset (ADU), read noise (ADU).

    Returns
    -------
    ndarray, float32, shape (N, T, Y, X)

    Raises
    ------
    InvalidInputError
        If the array is not 4D or the gain is not positive.
    """
    x = np.asarray(stacks_adu)
    if x.ndim != 4:
        raise InvalidInputError(f"normalise_stacks: expected stacks (N, T, Y, X), got shape {x.shape}")
    if not gain_adu_per_e > 0:
        raise InvalidInputError(f"normalise_stacks: gain must be > 0 ADU/e-, got {gain_adu_per_e}")
    e = (x.astype(np.float32) - np.float32(offset_adu)) / np.float32(gain_adu_per_e)
    b = np.median(e.reshape(len(e), -1), axis=1).astype(np.float32)[:, None, None, None]
    scale = np.sqrt(np.maximum(b, 0) + np.float32((read_noise_adu / gain_adu_per_e) ** 2) + 1.0)
    return ((e - b) / scale).astype(np.float32)


def condition_features(psf_sigma_px, exposure_fraction) -> np.ndarray:
    """The condition vector of every network: ``[(sigma_px - 0.85) / 0.2, exposure_fraction - 1]``.

    Parameters
    ----------
    psf_sigma_px : float or ndarray (N,)
        PSF standard deviation in pixels.
    exposure_fraction : float or ndarray (N,)
        Exposure time over frame interval (1 = continuous acquisition).

    Returns
    -------
    ndarray, float32, shape (N, 2)
    """
    s = np.atleast_1d(np.asarray(psf_sigma_px, dtype=float))
    f = np.broadcast_to(np.asarray(exposure_fraction, dtype=float), s.shape)
    return np.stack([(s - _SIGMA_PX_CENTRE) / _SIGMA_PX_SCALE, f - 1.0], axis=1).astype(np.float32)


def log_dn(D_um2_per_s, pixel_size_um, frame_interval_s) -> np.ndarray:
    """``log(D * frame_interval / pixel_size**2)``: log of D in pixels² per frame (dimensionless).

    Parameters
    ----------
    D_um2_per_s : float or array_like
        Diffusion coefficient in µm²/s.
    pixel_size_um : float or array_like
        Pixel size in µm.
    frame_interval_s : float or array_like
        Time between frames in s.

    Returns
    -------
    numpy.ndarray
        The dimensionless log, at least 1-D.

    Examples
    --------
    >>> round(float(log_dn(2.0, 0.1, 0.01)[0]), 4)  # 2 µm²/s, 100 nm pixels, 10 ms: 2 px²/frame
    0.6931
    """
    D = np.atleast_1d(np.asarray(D_um2_per_s, dtype=float))
    return np.log(D * np.asarray(frame_interval_s, dtype=float) / np.asarray(pixel_size_um, dtype=float) ** 2)


def D_from_log_dn(log_dn_value, pixel_size_um, frame_interval_s) -> np.ndarray:
    """Inverse of :func:`log_dn`: D in µm²/s.

    Parameters
    ----------
    log_dn_value : float or array_like
        ``log(D · frame_interval / pixel_size²)`` (dimensionless).
    pixel_size_um : float or array_like
        Pixel size in µm.
    frame_interval_s : float or array_like
        Time between frames in s.

    Returns
    -------
    numpy.ndarray
        D in µm²/s, at least 1-D.

    Examples
    --------
    >>> round(float(D_from_log_dn(0.0, 0.1, 0.01)[0]), 6)
    1.0
    """
    v = np.atleast_1d(np.asarray(log_dn_value, dtype=float))
    return np.exp(v) * np.asarray(pixel_size_um, dtype=float) ** 2 / np.asarray(frame_interval_s, dtype=float)
