"""Model card of a diffusion-coefficient model: training ranges that prediction enforces."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from dynacell.cards import ModelCard

__all__ = ["DiffusionCard"]


class DiffusionCard(ModelCard):
    """A :class:`~dynacell.cards.ModelCard` with the input layout and the training ranges.

    Attributes
    ----------
    task : "diffusion"
    n_frames : int
        Frames per stack the network was trained on (T).
    shape_px : list of int
        Field ``[Y, X]`` in pixels the network was trained on.
    training_ranges : dict
        ``[low, high]`` per quantity: ``D_um2_per_s``, ``pixel_size_um``, ``frame_interval_s``,
        ``exposure_s``, ``exposure_fraction``, ``psf_fwhm_nm``, ``psf_sigma_px``, ``snr``,
        ``photons``, ``background_photons``, ``log_dn`` (log of D in pixels² per frame).
        Prediction refuses a PSF size in pixels or an exposure fraction outside them and warns
        for a pixel size, frame interval or predicted D outside them.
    target : str
        What the network regresses (``log(D dt / a^2)`` with a Gaussian log-variance).
    """

    task: Literal["diffusion"] = "diffusion"
    n_frames: int
    shape_px: list[int]
    training_ranges: dict[str, list[float]]
    target: str = "log(D * frame_interval_s / pixel_size_um**2), Gaussian mean and log-variance"
    notes: dict[str, Any] = Field(default_factory=dict)
