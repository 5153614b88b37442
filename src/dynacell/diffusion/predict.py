"""Read D (µm²/s) and its uncertainty from single-molecule image stacks with a trained network.

A :class:`DiffusionPredictor` wraps a network of :mod:`dynacell.models.diffusion` and its
:class:`~dynacell.diffusion.card.DiffusionCard`. Prediction:

1. checks the acquisition against the card's training ranges: a PSF size in pixels or an
   exposure fraction (exposure / frame interval) outside them is refused
   (:class:`~dynacell.errors.InvalidInputError`); a pixel size or frame interval outside them only
   warns (the network reads D in pixels² per frame, which is what the training covered);
2. crops stacks larger than the trained field around the molecule (the brightest pixel of the
   smoothed time-average) and refuses smaller ones or another number of frames;
3. normalises the camera counts (:func:`~dynacell.diffusion.preprocess.normalise_stacks`);
4. runs the network on the 8 dihedral transforms of every stack (rotations by 90° and flips,
   under which Brownian motion is invariant) and combines them: the mean of the 8 predicted means
   of ``log D``, and as variance the mean predicted variance plus the variance of the 8 means;
5. converts ``log(D dt / a^2)`` to D in µm²/s; the 68 % interval is ``exp(mean ± sd)``; a D whose
   ``log(D dt / a^2)`` lies outside the trained range is flagged (``in_training_range``) and warned.

Two point estimates come out of the predicted log-normal ``log D ~ N(m, s^2)``: its median
``exp(m)`` (``D_um2_per_s``, unbiased in log D, the one the MSLE rewards) and ``exp(m - 1.5 s^2)``
(``D_min_rel_mse_um2_per_s``), the value that minimises the expected squared relative error
``E[((D_hat - D) / D)^2]`` under that log-normal (``E[1/D] / E[1/D^2]``); it is smaller than the
median, the more so the less certain the network is, and is what the relative RMSE rewards. The
factor 1.5 follows from the log-normal; it is not tuned on any data.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.diffusion.card import DiffusionCard
from dynacell.diffusion.preprocess import (
    D_from_log_dn,
    condition_features,
    normalise_stacks,
)
from dynacell.errors import InvalidInputError
from dynacell.simulate.imaging import psf_sigma_from_fwhm

__all__ = ["DEFAULT_MODEL", "MIN_REL_MSE_SHIFT", "PRETRAINED", "PRETRAINED_DIR", "DiffusionPredictor", "crop_around_molecule",
           "dihedral_transforms"]

#: Folder of the shipped diffusion models.
PRETRAINED_DIR = Path(__file__).parent / "pretrained"
#: The default shipped model.
DEFAULT_MODEL = "diffusion-2d"
#: Names of the shipped models.
PRETRAINED = ("diffusion-2d", "park-cnn", "resnet2d")

#: ``exp(m - k s^2)`` minimises the expected squared relative error of a log-normal ``N(m, s^2)`` at k = 1.5.
MIN_REL_MSE_SHIFT = 1.5

#: Relative tolerance on the PSF-size and exposure-fraction checks.
_TOL = 0.02


def dihedral_transforms(x: np.ndarray) -> list[np.ndarray]:
    """The 8 dihedral transforms (4 rotations by 90°, each with and without a flip) of the last two axes.

    Parameters
    ----------
    x : ndarray, shape (..., Y, X)

    Returns
    -------
    list of 8 ndarray
        Square inputs keep their shape; the first is ``x`` itself.
    """
    out = []
    for k in range(4):
        r = np.rot90(x, k, axes=(-2, -1))
        out += [r, np.flip(r, axis=-1)]
    return [np.ascontiguousarray(v) for v in out]


def crop_around_molecule(stacks: np.ndarray, shape_px: tuple[int, int]) -> np.ndarray:
    """Crop ``(N, T, Y, X)`` stacks to ``shape_px`` around the brightest point of the smoothed time-average.

    Parameters
    ----------
    stacks : numpy.ndarray
        ``(N, T, Y, X)`` image stacks.
    shape_px : tuple of int
        ``(Y, X)`` size of the crop.

    Returns
    -------
    numpy.ndarray
        ``(N, T, *shape_px)``, each stack cropped around its own brightest point.

    Raises
    ------
    InvalidInputError
        If a stack is smaller than ``shape_px``.
    """
    from scipy import ndimage

    N, T, Y, X = stacks.shape
    h, w = (int(v) for v in shape_px)
    if Y < h or X < w:
        raise InvalidInputError(f"stacks of {Y}x{X} pixels are smaller than the model's {h}x{w} field")
    if (Y, X) == (h, w):
        return stacks
    out = np.empty((N, T, h, w), dtype=stacks.dtype)
    for i in range(N):
        m = ndimage.gaussian_filter(stacks[i].astype(np.float32).mean(axis=0), 2.0)
        cy, cx = np.unravel_index(int(np.argmax(m)), m.shape)
        y0 = int(np.clip(cy - h // 2, 0, Y - h))
        x0 = int(np.clip(cx - w // 2, 0, X - w))
        out[i] = stacks[i, :, y0:y0 + h, x0:x0 + w]
    return out


class DiffusionPredictor:
    """A trained diffusion network with its card.

    Parameters
    ----------
    net : torch.nn.Module
        A network of :mod:`dynacell.models.diffusion` in eval mode.
    card : DiffusionCard
    folder : path, optional
        Where it was loaded from.
    """

    def __init__(self, net, card: DiffusionCard, folder: str | Path | None = None) -> None:
        self.net, self.card, self.folder = net, card, Path(folder) if folder else None

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> DiffusionPredictor:
        """Load a model folder (``model.yaml`` + ``weights.pt``).

        Raises
        ------
        FormatError
            Missing or invalid card or weights, or weights whose SHA-256 differs from the card's.
        """
        from dynacell.models.diffusion import build_diffusion_model
        from dynacell.models.runtime import load_model_folder, resolve_device

        folder = Path(folder)
        net, card = load_model_folder(folder, DiffusionCard,
                                      lambda c: build_diffusion_model(c.architecture, **c.model_kwargs),
                                      device=resolve_device(device))
        return cls(net, card, folder)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, device: str = "cpu") -> DiffusionPredictor:
        """Load a shipped model by name.

        Raises
        ------
        InvalidInputError
            If no shipped model has that name (the message lists the shipped ones).
        """
        from dynacell.models.runtime import shipped_model_folder

        return cls.from_folder(shipped_model_folder(name, PRETRAINED_DIR, "diffusion"), device)

    @classmethod
    def load(cls, model: str | Path | DiffusionPredictor, device: str = "cpu") -> DiffusionPredictor:
        """A predictor from a shipped name, a folder path or an instance."""
        if isinstance(model, DiffusionPredictor):
            return model
        p = Path(model)
        return cls.from_folder(p, device) if p.is_dir() else cls.from_pretrained(str(model), device)

    def check_acquisition(self, pixel_size_um: np.ndarray, frame_interval_s: float, exposure_s: float,
                          psf_fwhm_nm: float) -> np.ndarray:
        """Refuse a PSF size or exposure fraction outside the training ranges; warn for the rest.

        Returns
        -------
        ndarray, float64, shape (N,)
            The PSF sigma in pixels per stack.

        Raises
        ------
        InvalidInputError
            PSF sigma in pixels or exposure fraction outside the card's ranges (2 % tolerance), or a
            non-positive pixel size, frame interval or exposure.
        """
        r = self.card.training_ranges
        px = np.asarray(pixel_size_um, dtype=float)
        if not (np.all(px > 0) and frame_interval_s > 0 and exposure_s > 0):
            raise InvalidInputError("diffusion predict: pixel size, frame interval and exposure must be > 0")
        sig_px = psf_sigma_from_fwhm(psf_fwhm_nm) / 1000.0 / px
        lo, hi = r["psf_sigma_px"]
        if np.any(sig_px < lo * (1 - _TOL)) or np.any(sig_px > hi * (1 + _TOL)):
            raise InvalidInputError(
                f"diffusion predict: PSF sigma of {sig_px.min():.3g}-{sig_px.max():.3g} pixels (FWHM {psf_fwhm_nm} nm "
                f"over the pixel size) is outside model {self.card.name!r}'s training range {lo:.3g}-{hi:.3g} pixels")
        frac = exposure_s / frame_interval_s
        flo, fhi = r["exposure_fraction"]
        if not (flo * (1 - _TOL) <= frac <= fhi * (1 + _TOL)):
            raise InvalidInputError(
                f"diffusion predict: exposure / frame interval = {frac:.3g} is outside model {self.card.name!r}'s "
                f"training range {flo:.3g}-{fhi:.3g}")
        for key, val in (("pixel_size_um", px), ("frame_interval_s", np.array([frame_interval_s]))):
            lo_k, hi_k = r[key]
            if np.any(val < lo_k * (1 - _TOL)) or np.any(val > hi_k * (1 + _TOL)):
                warnings.warn(f"diffusion predict: {key} {val.min():.4g}-{val.max():.4g} is outside the training "
                              f"range {lo_k:.4g}-{hi_k:.4g} of {self.card.name!r}; D is read in pixels² per frame, "
                              "check the flag in_training_range", UserWarning, stacklevel=3)
        return sig_px

    def predict(self, stacks_adu: np.ndarray, *, pixel_size_um, frame_interval_s: float,
                exposure_s: float | None = None, psf_fwhm_nm: float | None = None, gain_adu_per_e: float = 1.0,
                offset_adu: float = 100.0, read_noise_adu: float = 0.0, tta: bool = True,
                batch_size: int = 128) -> pd.DataFrame:
        """D and its uncertainty for every stack.

        Parameters
        ----------
        stacks_adu : ndarray, shape (N, T, Y, X) or (T, Y, X)
            Raw camera stacks, one molecule each (T = the card's ``n_frames``; larger fields are
            cropped around the molecule).
        pixel_size_um : float or ndarray (N,)
            Pixel size in the sample plane, µm.
        frame_interval_s : float
            Time between frames, s.
        exposure_s : float, optional
            Exposure per frame, s (default: the frame interval).
        psf_fwhm_nm : float, optional
            PSF FWHM, nm (default: the card's training value).
        gain_adu_per_e, offset_adu, read_noise_adu : float
            The camera (ADU per photo-electron, offset ADU, read noise ADU).
        tta : bool
            Average over the 8 dihedral transforms.
        batch_size : int

        Returns
        -------
        pandas.DataFrame
            One row per stack: ``stack``, ``D_um2_per_s`` (``exp`` of the mean of log D),
            ``D_lo68_um2_per_s``, ``D_hi68_um2_per_s`` (68 % interval), ``log_D_sd`` (sd of the
            natural log of D), ``D_min_rel_mse_um2_per_s`` (``exp(mean - 1.5 sd^2)``, the
            minimum-relative-MSE point estimate, see the module notes), ``in_training_range``.

        Raises
        ------
        InvalidInputError
            Wrong array shape, frame count or field size, or an acquisition outside the ranges
            that :meth:`check_acquisition` refuses.
        """
        import torch

        x = np.asarray(stacks_adu)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise InvalidInputError(f"diffusion predict: expected stacks (N, T, Y, X), got shape {x.shape}")
        N, T = x.shape[:2]
        if T != self.card.n_frames:
            raise InvalidInputError(f"diffusion predict: model {self.card.name!r} reads {self.card.n_frames} frames "
                                    f"per stack, got {T}")
        exposure_s = frame_interval_s if exposure_s is None else float(exposure_s)
        fwhm = float(psf_fwhm_nm if psf_fwhm_nm is not None else self.card.training_ranges["psf_fwhm_nm"][0])
        px = np.broadcast_to(np.asarray(pixel_size_um, dtype=float), (N,)).copy()
        sig_px = self.check_acquisition(px, float(frame_interval_s), exposure_s, fwhm)
        x = crop_around_molecule(x, tuple(self.card.shape_px))
        xn = normalise_stacks(x, gain_adu_per_e=gain_adu_per_e, offset_adu=offset_adu, read_noise_adu=read_noise_adu)
        cond = condition_features(sig_px, exposure_s / frame_interval_s)
        views = dihedral_transforms(xn) if tta else [xn]
        dev = next(self.net.parameters()).device
        mus, lvs = [], []
        with torch.inference_mode():
            for v in views:
                outs = []
                for s in range(0, N, batch_size):
                    xb = torch.from_numpy(v[s:s + batch_size]).to(dev)
                    cb = torch.from_numpy(cond[s:s + batch_size]).to(dev)
                    outs.append(self.net(xb, cb).float().cpu().numpy())
                o = np.concatenate(outs) if outs else np.zeros((0, 2), np.float32)
                mus.append(o[:, 0])
                lvs.append(np.clip(o[:, 1], -8.0, 6.0))
        mu = np.mean(mus, axis=0).astype(float)
        var = np.mean(np.exp(lvs), axis=0) + np.var(mus, axis=0)
        sd = np.sqrt(var)
        lo, hi = self.card.training_ranges["log_dn"]
        inside = (mu >= lo) & (mu <= hi)
        if not np.all(inside):
            warnings.warn(f"diffusion predict: {int((~inside).sum())} of {N} stack(s) have a D outside the training "
                          f"range of {self.card.name!r} (flag in_training_range)", UserWarning, stacklevel=2)
        return pd.DataFrame({
            "stack": np.arange(N),
            "D_um2_per_s": D_from_log_dn(mu, px, frame_interval_s),
            "D_lo68_um2_per_s": D_from_log_dn(mu - sd, px, frame_interval_s),
            "D_hi68_um2_per_s": D_from_log_dn(mu + sd, px, frame_interval_s),
            "log_D_sd": sd,
            "D_min_rel_mse_um2_per_s": D_from_log_dn(mu - MIN_REL_MSE_SHIFT * var, px, frame_interval_s),
            "in_training_range": inside,
        })
