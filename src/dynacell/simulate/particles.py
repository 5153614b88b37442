"""Single-molecule time-lapse simulator in physical units (µm, s, photons, e⁻, ADU).

A molecule moves (Brownian, confined, fractional or two-state switching motion) in 2D; each
frame integrates its light over the exposure time (``exposure_s <= frame_interval_s``) as the
average of ``substeps`` pixel-integrated Gaussian PSF spots placed along the sub-frame path,
which is where the motion blur comes from; background, Poisson shot noise, gain, offset and
read noise come from :mod:`dynacell.simulate.imaging`, the imaging code shared with the nuclei
renderer. Everything is vectorised over stacks (NumPy), seeded, and returns the generating D,
the sub-frame paths and the per-frame true positions beside the stacks.

Physics
-------
- Brownian motion: independent Gaussian increments of variance ``2 D dt`` per axis.
- Confined: Ornstein–Uhlenbeck motion in a harmonic trap of radius of gyration
  ``confinement_um`` (stationary per-axis standard deviation), sampled exactly.
- Fractional: fractional Brownian motion with anomalous exponent ``alpha`` (Hurst ``alpha/2``),
  ``MSD = 4 D t^alpha`` (``D`` in µm²/s^alpha), by Cholesky factorisation of the covariance.
- Two-state: Markov switching between ``D`` and ``D * D2_ratio`` with rates ``k_on_per_s`` and
  ``k_off_per_s``; the reported D is the state-weighted time average of the stack.
- PSF: Gaussian with ``sigma = psf_fwhm_nm / 2.3548`` or ``0.21 * wavelength / NA``.
- SNR of a stack (:func:`photons_for_snr`): peak expected photons ``p`` of a static molecule at a
  pixel centre over the noise there, ``p / sqrt(p + background + (read_noise_adu / gain)**2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import special

from dynacell.errors import InvalidInputError
from dynacell.simulate.imaging import (
    camera_adu,
    gaussian_pixel_fractions,
    psf_sigma_from_fwhm,
    psf_sigma_from_na,
    shot_noise,
)

__all__ = ["ParticleStacks", "draw_conditions", "photons_for_snr", "simulate_stacks"]

#: Stacks simulated per random-number chunk: the result depends on the seed only, not on memory.
CHUNK = 128

Motion = Literal["brownian", "confined", "fractional", "two_state"]


@dataclass
class ParticleStacks:
    """Simulated single-molecule stacks and their ground truth.

    Attributes
    ----------
    stacks : ndarray, uint16, shape (N, T, Y, X)
        Camera images in ADU.
    truth : pandas.DataFrame
        One row per stack: ``stack``, ``D_um2_per_s`` (the generating D; for two-state motion
        the time-weighted D of the stack), ``pixel_size_um``, ``frame_interval_s``,
        ``exposure_s``, ``psf_sigma_um``, ``photons`` (expected photons per molecule per
        exposure), ``background_photons`` (per pixel per frame), ``snr``, ``gain_adu_per_e``,
        ``offset_adu``, ``read_noise_adu``, ``motion``, ``seed``.
    positions_um : ndarray, float64, shape (N, M, T, 2)
        True ``(y, x)`` of each of the ``M`` molecules per frame, the mean over the exposure
        (what a perfect localiser of a blurred spot reports), in µm from the field's corner.
    paths_um : ndarray, float64, shape (N, M, T, S, 2)
        The sub-frame positions (``S = substeps`` per exposure) at times ``path_times_s``.
    path_times_s : ndarray, float64, shape (T, S)
        Time of each sub-frame position from the start of the first frame.
    """

    stacks: np.ndarray
    truth: pd.DataFrame
    positions_um: np.ndarray
    paths_um: np.ndarray
    path_times_s: np.ndarray
    extra: dict = field(default_factory=dict)

    @property
    def D_um2_per_s(self) -> np.ndarray:
        """The generating D of each stack, µm²/s, shape (N,)."""
        return self.truth["D_um2_per_s"].to_numpy()


def _per_stack(name: str, value, n: int, *, positive: bool = True) -> np.ndarray:
    v = np.asarray(value, dtype=float)
    if v.ndim > 1 or (v.ndim == 1 and v.size not in (1, n)):
        raise InvalidInputError(f"simulate_stacks: {name} must be a number or one value per stack ({n}), "
                                f"got shape {np.shape(value)}")
    arr = np.broadcast_to(v.reshape(-1) if v.ndim else v, (n,)).copy()
    if not np.all(np.isfinite(arr)) or (positive and np.any(arr <= 0)) or np.any(arr < 0):
        raise InvalidInputError(f"simulate_stacks: {name} must be finite and {'> 0' if positive else '>= 0'}")
    return arr


def photons_for_snr(snr, background_photons, psf_sigma_px, read_noise_adu=0.0, gain_adu_per_e=1.0) -> np.ndarray:
    """Photons per exposure that give a static molecule the requested peak SNR.

    ``SNR = p / sqrt(p + b + r**2)`` with ``p = photons * f``, ``f`` the fraction of the spot in
    the pixel under a pixel-centred static molecule (exact erf integral), ``b`` the background
    photons per pixel and ``r = read_noise_adu / gain`` the read noise in electrons; solved
    for ``p``: ``p = (SNR**2 + sqrt(SNR**4 + 4 SNR**2 (b + r**2))) / 2``.

    Parameters
    ----------
    snr : float or ndarray
        Target SNR (> 0).
    background_photons : float or ndarray
        Background photons per pixel per frame.
    psf_sigma_px : float or ndarray
        PSF sigma in pixels.
    read_noise_adu, gain_adu_per_e : float or ndarray
        Camera read noise (ADU) and gain (ADU per electron).

    Returns
    -------
    ndarray, float64
        Expected photons per molecule per exposure.

    Examples
    --------
    >>> p = photons_for_snr(10.0, 0.0, 1.0)
    >>> f = float(special.erf(0.5 / np.sqrt(2.0))) ** 2
    >>> round(float(p * f), 6)
    100.0
    """
    snr = np.asarray(snr, dtype=float)
    noise2 = np.asarray(background_photons, dtype=float) + (np.asarray(read_noise_adu, float) / gain_adu_per_e) ** 2
    peak = 0.5 * (snr**2 + np.sqrt(snr**4 + 4.0 * snr**2 * noise2))
    frac = special.erf(0.5 / (np.sqrt(2.0) * np.asarray(psf_sigma_px, dtype=float))) ** 2
    return peak / frac


def draw_conditions(n: int, *, seed: int, D_um2_per_s=(0.01, 10.0), snr=(2.0, 50.0), pixel_size_um=(0.1, 0.16),
                    background_photons=(2.0, 30.0)) -> pd.DataFrame:
    """Draw per-stack conditions: D and SNR and background log-uniform, pixel size uniform.

    Parameters
    ----------
    n : int
        Number of stacks.
    seed : int
        Seed of the draw.
    D_um2_per_s, snr, pixel_size_um, background_photons : (float, float)
        Ranges ``(low, high)``; a range with ``low == high`` is a constant.

    Returns
    -------
    pandas.DataFrame
        Columns ``D_um2_per_s``, ``snr``, ``pixel_size_um``, ``background_photons``.
    """
    rng = np.random.default_rng([int(seed), 7])

    def loguni(lo_hi):
        lo, hi = (float(v) for v in lo_hi)
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    D = loguni(D_um2_per_s)
    s = loguni(snr)
    px = rng.uniform(float(pixel_size_um[0]), float(pixel_size_um[1]), n)
    bg = loguni(background_photons)
    return pd.DataFrame({"D_um2_per_s": D, "snr": s, "pixel_size_um": px, "background_photons": bg})


def _sample_times(n_frames: int, frame_interval_s: float, exposure_s: float, substeps: int) -> np.ndarray:
    """Times (T, S) of the sub-frame positions: midpoints of ``substeps`` slices of each exposure."""
    frac = (np.arange(substeps) + 0.5) / substeps
    return np.arange(n_frames)[:, None] * frame_interval_s + frac[None, :] * exposure_s


def _paths(rng: np.random.Generator, D: np.ndarray, times: np.ndarray, n_mol: int, motion: str,
           confinement_um: float, alpha: float, D2_ratio: float, k_on: float, k_off: float):
    """Displacements from the start, shape (n, M, K, 2) in µm, and the per-stack effective D."""
    n = D.size
    K = times.size
    dt = np.diff(np.concatenate([[0.0], times]))  # first step: from t=0 to the first sample
    z = rng.standard_normal((n, n_mol, K, 2))
    D_eff = D.copy()
    if motion == "brownian":
        steps = z * np.sqrt(2.0 * D[:, None, None, None] * dt[None, None, :, None])
        return np.cumsum(steps, axis=2), D_eff
    if motion == "two_state":
        # Markov switching between D (state 0) and D * D2_ratio (state 1), start in the steady state
        p1 = k_on / (k_on + k_off) if (k_on + k_off) > 0 else 0.0
        state = (rng.random((n, n_mol)) < p1).astype(np.int8)
        states = np.empty((n, n_mol, K), dtype=np.int8)
        u = rng.random((n, n_mol, K))
        for k in range(K):
            rate = np.where(state == 0, k_on, k_off)
            flip = u[:, :, k] < -np.expm1(-rate * dt[k])
            state = np.where(flip, 1 - state, state).astype(np.int8)
            states[:, :, k] = state
        Dk = D[:, None, None] * np.where(states == 1, D2_ratio, 1.0)
        steps = z * np.sqrt(2.0 * Dk[..., None] * dt[None, None, :, None])
        D_eff = np.sum(Dk[:, 0, :] * dt[None, :], axis=1) / np.sum(dt)
        return np.cumsum(steps, axis=2), D_eff
    if motion == "confined":
        # Ornstein-Uhlenbeck per axis: stationary sd s = confinement_um, relaxation tau = s^2 / D
        s2 = confinement_um**2
        tau = s2 / D
        x = rng.standard_normal((n, n_mol, 2)) * confinement_um  # start in the stationary state
        out = np.empty((n, n_mol, K, 2))
        start = x.copy()
        for k in range(K):
            a = np.exp(-dt[k] / tau)[:, None, None]
            x = x * a + np.sqrt(s2 * (1.0 - a**2)) * z[:, :, k, :]
            out[:, :, k, :] = x
        return out - start[:, :, None, :], D_eff
    if motion == "fractional":
        if not 0.0 < alpha < 2.0:
            raise InvalidInputError(f"simulate_stacks: fractional motion needs 0 < alpha < 2, got {alpha}")
        H = alpha / 2.0
        t = times
        cov = 0.5 * (t[:, None] ** (2 * H) + t[None, :] ** (2 * H) - np.abs(t[:, None] - t[None, :]) ** (2 * H))
        L = np.linalg.cholesky(cov + 1e-15 * np.eye(K))
        # per axis: MSD_axis = 2 D t^alpha  ->  scale sqrt(2 D)
        pos = np.einsum("kj,nmjd->nmkd", L, z) * np.sqrt(2.0 * D)[:, None, None, None]
        return pos, D_eff
    raise InvalidInputError(f"simulate_stacks: unknown motion {motion!r} (brownian, confined, fractional, two_state)")


def simulate_stacks(
    D_um2_per_s,
    *,
    n_frames: int = 16,
    shape_px: tuple[int, int] = (32, 32),
    pixel_size_um=0.1,
    frame_interval_s: float = 0.005,
    exposure_s: float | None = None,
    psf_fwhm_nm: float | None = 250.0,
    wavelength_nm: float | None = None,
    numerical_aperture: float | None = None,
    photons=None,
    snr=None,
    background_photons=10.0,
    read_noise_adu: float = 1.5,
    gain_adu_per_e: float = 1.0,
    offset_adu: float = 100.0,
    substeps: int = 16,
    n_molecules: int = 1,
    motion: Motion = "brownian",
    confinement_um: float = 0.2,
    alpha: float = 1.0,
    D2_ratio: float = 0.01,
    k_on_per_s: float = 20.0,
    k_off_per_s: float = 20.0,
    centre: Literal["path_mean", "start", "random"] = "path_mean",
    seed: int = 0,
) -> ParticleStacks:
    """Simulate N single-molecule image stacks with motion blur, in physical units.

    Parameters
    ----------
    D_um2_per_s : float or array (N,)
        Diffusion coefficient of each stack in µm²/s (µm²/s^alpha for fractional motion);
        its length sets N (a scalar gives one stack).
    n_frames : int
        Frames per stack (T).
    shape_px : (int, int)
        Field size ``(Y, X)`` in pixels.
    pixel_size_um : float or array (N,)
        Pixel size in the sample plane, µm.
    frame_interval_s : float
        Time between frame starts, s.
    exposure_s : float, optional
        Exposure time per frame, s, ``0 < exposure_s <= frame_interval_s``; default = the
        frame interval (continuous acquisition).
    psf_fwhm_nm : float, optional
        FWHM of the Gaussian PSF, nm (``sigma = FWHM / 2.3548``). Ignored when both
        ``wavelength_nm`` and ``numerical_aperture`` are given.
    wavelength_nm, numerical_aperture : float, optional
        Emission wavelength and objective NA for ``sigma = 0.21 wavelength / NA``.
    photons : float or array (N,), optional
        Expected photons collected from a molecule per exposure (total over the spot).
    snr : float or array (N,), optional
        Instead of ``photons``: the peak SNR of a static molecule (:func:`photons_for_snr`).
    background_photons : float or array (N,)
        Expected background photons per pixel per frame.
    read_noise_adu, gain_adu_per_e, offset_adu : float
        Camera: Gaussian read noise (ADU), gain (ADU per photo-electron), offset (ADU).
    substeps : int
        Positions per exposure at which the spot is rendered (midpoint rule of the exposure
        integral).
    n_molecules : int
        Molecules per field (M); the first is centred by ``centre``, the others start
        uniformly in the field; all share the stack's D.
    motion : {"brownian", "confined", "fractional", "two_state"}
        Motion model (see the module docstring); ``confinement_um``, ``alpha``, ``D2_ratio``,
        ``k_on_per_s`` and ``k_off_per_s`` are its parameters.
    centre : {"path_mean", "start", "random"}
        Where the first molecule is in the field: its mean position over the stack at the
        field's centre (a crop around a tracked molecule), its start at the centre, or a
        uniform start; a random sub-pixel offset is added in every case.
    seed : int
        Seed; the result depends on it only (random numbers are drawn per chunk of
        :data:`CHUNK` stacks).

    Returns
    -------
    ParticleStacks

    Raises
    ------
    InvalidInputError
        On a non-positive D, pixel size, time or PSF, an exposure longer than the frame
        interval, both or neither of ``photons`` and ``snr``, or an unknown motion.

    Examples
    --------
    >>> sim = simulate_stacks([0.1, 1.0], snr=10.0, seed=0)
    >>> sim.stacks.shape, sim.stacks.dtype.name, sim.positions_um.shape
    ((2, 16, 32, 32), 'uint16', (2, 1, 16, 2))
    """
    D = np.atleast_1d(np.asarray(D_um2_per_s, dtype=float))
    if D.ndim != 1 or D.size == 0:
        raise InvalidInputError(f"simulate_stacks: D_um2_per_s must be a number or a 1D array, got shape {D.shape}")
    n = D.size
    D = _per_stack("D_um2_per_s", D, n)
    px = _per_stack("pixel_size_um", pixel_size_um, n)
    bg = _per_stack("background_photons", background_photons, n, positive=False)
    if exposure_s is None:
        exposure_s = frame_interval_s
    if not (frame_interval_s > 0 and 0 < exposure_s <= frame_interval_s * (1 + 1e-9)):
        raise InvalidInputError(f"simulate_stacks: need 0 < exposure_s ({exposure_s}) <= frame_interval_s "
                                f"({frame_interval_s})")
    if int(n_frames) < 1 or int(substeps) < 1 or int(n_molecules) < 1:
        raise InvalidInputError("simulate_stacks: n_frames, substeps and n_molecules must be >= 1")
    Y, X = (int(v) for v in shape_px)
    if min(Y, X) < 1:
        raise InvalidInputError(f"simulate_stacks: shape_px must be positive, got {shape_px!r}")
    if wavelength_nm is not None and numerical_aperture is not None:
        sigma_um = psf_sigma_from_na(wavelength_nm, numerical_aperture) / 1000.0
    elif psf_fwhm_nm is not None:
        sigma_um = psf_sigma_from_fwhm(psf_fwhm_nm) / 1000.0
    else:
        raise InvalidInputError("simulate_stacks: give psf_fwhm_nm, or wavelength_nm and numerical_aperture")
    sigma_px = sigma_um / px
    if (photons is None) == (snr is None):
        raise InvalidInputError("simulate_stacks: give exactly one of photons and snr")
    if snr is not None:
        snr_arr = _per_stack("snr", snr, n)
        ph = photons_for_snr(snr_arr, bg, sigma_px, read_noise_adu, gain_adu_per_e)
    else:
        ph = _per_stack("photons", photons, n, positive=False)
        frac = special.erf(0.5 / (np.sqrt(2.0) * sigma_px)) ** 2
        p = ph * frac
        snr_arr = p / np.sqrt(p + bg + (read_noise_adu / gain_adu_per_e) ** 2 + 1e-12)
    T, S, M = int(n_frames), int(substeps), int(n_molecules)
    times = _sample_times(T, frame_interval_s, exposure_s, S)

    stacks = np.empty((n, T, Y, X), dtype=np.uint16)
    paths = np.empty((n, M, T, S, 2))
    D_out = np.empty(n)
    field_um = np.array([Y, X], dtype=float)[None, :] * px[:, None]  # (n, 2)
    for c0 in range(0, n, CHUNK):
        sl = slice(c0, min(n, c0 + CHUNK))
        m = sl.stop - sl.start
        rng = np.random.default_rng([int(seed), c0 // CHUNK])
        disp, D_eff = _paths(rng, D[sl], times.ravel(), M, motion, confinement_um, alpha, D2_ratio,
                             k_on_per_s, k_off_per_s)  # (m, M, K, 2)
        fld = field_um[sl][:, None, None, :]
        if centre == "path_mean":
            anchor = fld[:, :1] / 2.0 - disp[:, :1].mean(axis=2, keepdims=True)
        elif centre == "start":
            anchor = fld[:, :1] / 2.0 + np.zeros_like(disp[:, :1, :1])
        elif centre == "random":
            anchor = rng.random((m, 1, 1, 2)) * fld[:, :1]
        else:
            raise InvalidInputError(f"simulate_stacks: centre must be path_mean, start or random, got {centre!r}")
        anchor = anchor + (rng.random((m, 1, 1, 2)) - 0.5) * px[sl][:, None, None, None]
        if M > 1:
            others = rng.random((m, M - 1, 1, 2)) * fld
            anchor = np.concatenate([anchor, others], axis=1)
        pos = anchor + disp  # (m, M, K, 2) in µm
        paths[sl] = pos.reshape(m, M, T, S, 2)
        D_out[sl] = D_eff
        # expected photons per pixel: mean over sub-steps of the pixel-integrated spots
        pos_px = pos / px[sl][:, None, None, None]
        sig = sigma_px[sl][:, None, None]
        fy = gaussian_pixel_fractions(pos_px[..., 0], sig, Y).reshape(m, M, T, S, Y)
        fx = gaussian_pixel_fractions(pos_px[..., 1], sig, X).reshape(m, M, T, S, X)
        w = (ph[sl] / S).astype(np.float32)[:, None, None, None, None]
        a = (fy * w).transpose(0, 2, 4, 1, 3).reshape(m, T, Y, M * S)
        b = fx.transpose(0, 2, 1, 3, 4).reshape(m, T, M * S, X)
        signal = np.matmul(a, b)  # (m, T, Y, X) float32
        # shot noise: background of each stack with one rate (exact guide table), signal where lit
        counts = np.empty_like(signal)
        for i in range(m):
            counts[i] = shot_noise(signal[i], float(bg[sl][i]), rng)
        stacks[sl] = camera_adu(counts, gain_adu_per_e, offset_adu, read_noise_adu, rng)
    positions = paths.mean(axis=3)
    truth = pd.DataFrame({
        "stack": np.arange(n),
        "D_um2_per_s": D_out,
        "pixel_size_um": px,
        "frame_interval_s": float(frame_interval_s),
        "exposure_s": float(exposure_s),
        "psf_sigma_um": float(sigma_um),
        "photons": ph,
        "background_photons": bg,
        "snr": snr_arr,
        "gain_adu_per_e": float(gain_adu_per_e),
        "offset_adu": float(offset_adu),
        "read_noise_adu": float(read_noise_adu),
        "motion": motion,
        "n_molecules": M,
        "seed": int(seed),
    })
    return ParticleStacks(stacks=stacks, truth=truth, positions_um=positions, paths_um=paths, path_times_s=times)
