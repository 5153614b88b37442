"""Scale normalisation of crops by nucleus size (works without physical metadata).

A fixed pixel box sees very different things on different microscopes: a GOWT1 nucleus is
~48 px across (0.24 µm/px), a HeLa nucleus ~28 px (0.645 µm/px), a bacterium ~33 px (pixel size
unknown). The *nucleus-size rule* resamples every movie by one zoom factor so that its nuclei
have a common diameter in the crop:

``pixels_per_crop_px = median equivalent diameter of the label objects (px) / target_diameter_px``

The median is taken over every object of the first ``n_frames`` labelled frames (equivalent
diameter = diameter of the disc/ball of the object's area/volume,
``skimage.measure.regionprops_table(..., properties=["equivalent_diameter_area"])``). The factor is
computed once per movie from the label images (the masks that are cropped), recorded in the
sample-set attrs and the model card (``scale_normalization``), and applied identically at
inference by :func:`dynacell.states.classify_movie`: crops are sampled at
``c + (k − s//2) · pixels_per_crop_px`` (linear interpolation for images, nearest for the mask),
the physical-box code path of :func:`dynacell.samples.crop_windows` with a 1-px "voxel".
The factor is isotropic in pixels; for anisotropic 3D stacks use ``target_voxel_um`` instead.

Source: dynacell issue 3 (scale: nuclei of different cell lines and pixel sizes); the
equivalent diameter is the standard size measure of scikit-image's ``regionprops``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["nucleus_diameter_px", "scale_normalization", "scale_crop_kwargs", "SCALE_METHOD"]

logger = logging.getLogger(__name__)

#: Name of the rule recorded in sample-set attrs and model cards.
SCALE_METHOD = "nucleus-size"


def nucleus_diameter_px(labels, *, n_frames: int = 3) -> tuple[float, list[int], int]:
    """Median equivalent diameter (pixels) of the label objects of the first labelled frames.

    Parameters
    ----------
    labels : dynacell.io.Movie
        Integer labels ``(T, (Z), Y, X)``; 0 = background.
    n_frames : int
        Number of labelled frames (in frame order, empty frames skipped) to measure.

    Returns
    -------
    diameter_px : float
        Median over all objects of ``(2·area/π)^½`` (2D) or ``(6·volume/π)^⅓`` (3D), pixels.
    frames : list of int
        Frame numbers measured.
    n_objects : int
        Number of objects measured.

    Raises
    ------
    InvalidInputError
        If ``n_frames < 1`` or no labelled frame holds an object.
    """
    from skimage.measure import regionprops_table

    if int(n_frames) < 1:
        raise InvalidInputError(f"n_frames must be >= 1, got {n_frames!r}")
    diam: list[np.ndarray] = []
    used: list[int] = []
    for t in labels.frame_indices:
        lab = np.asarray(labels.frame(int(t)))
        if not lab.any():
            continue
        props = regionprops_table(lab.astype(np.int64), properties=("equivalent_diameter_area",))
        diam.append(np.asarray(props["equivalent_diameter_area"], dtype=float))
        used.append(int(t))
        if len(used) >= int(n_frames):
            break
    if not used:
        raise InvalidInputError(
            f"labels {labels.source or '(array)'}: no frame holds a labelled object, so the nucleus size "
            "cannot be measured; give label images with nuclei (ids > 0) or crop without target_diameter_px"
        )
    d = np.concatenate(diam)
    return float(np.median(d)), used, int(d.size)


def scale_normalization(labels, target_diameter_px: float, *, n_frames: int = 3) -> dict[str, Any]:
    """The per-movie zoom of the nucleus-size rule (see the module docstring).

    Parameters
    ----------
    labels : dynacell.io.Movie
        Integer labels ``(T, (Z), Y, X)`` of the movie to crop (the masks fed to the crops).
    target_diameter_px : float
        Nucleus diameter wanted in the crop, crop pixels (> 0).
    n_frames : int
        Labelled frames measured (the first ones).

    Returns
    -------
    dict
        JSON-ready: ``method`` (``"nucleus-size"``), ``target_diameter_px``, ``n_frames``,
        ``nucleus_diameter_px`` (median measured, px), ``frames`` (measured), ``n_objects``,
        ``pixels_per_crop_px`` (= nucleus_diameter_px / target_diameter_px; > 1 shrinks the
        movie), ``zoom`` (its inverse), ``source`` (the label movie).

    Raises
    ------
    InvalidInputError
        If ``target_diameter_px`` is not a positive finite number or no object is found.
    """
    tgt = float(target_diameter_px)
    if not (np.isfinite(tgt) and tgt > 0):
        raise InvalidInputError(f"target_diameter_px must be a positive number of pixels, got {target_diameter_px!r}")
    d, frames, n = nucleus_diameter_px(labels, n_frames=n_frames)
    factor = d / tgt
    logger.info("labels %s: median nucleus diameter %.1f px over %d objects (frames %s) -> %.3f px per crop px",
                labels.source or "(array)", d, n, frames, factor)
    return {"method": SCALE_METHOD, "target_diameter_px": tgt, "n_frames": int(n_frames),
            "nucleus_diameter_px": d, "frames": frames, "n_objects": n,
            "pixels_per_crop_px": factor, "zoom": 1.0 / factor, "source": labels.source}


def scale_crop_kwargs(scale: dict[str, Any], ndim: int) -> dict[str, Any]:
    """Arguments of the crop functions that apply a :func:`scale_normalization` result.

    Parameters
    ----------
    scale : dict
        Output of :func:`scale_normalization` (needs ``pixels_per_crop_px``).
    ndim : {2, 3}
        Spatial dimensionality.

    Returns
    -------
    dict
        ``voxel_size_um = (1.0,)*ndim`` and ``target_voxel_um = pixels_per_crop_px``: the source
        is sampled every ``pixels_per_crop_px`` pixels (units cancel: pixels per crop pixel).
    """
    return {"voxel_size_um": (1.0,) * int(ndim), "target_voxel_um": float(scale["pixels_per_crop_px"])}
