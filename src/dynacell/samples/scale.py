"""Scale normalisation of crops by nucleus size (works without physical metadata).

A fixed pixel box sees very different things on different microscopes: a GOWT1 nucleus is
~48 px across (0.24 µm/px), a HeLa nucleus ~28 px (0.645 µm/px), a bacterium ~33 px (pixel size
unknown). The *nucleus-size rule* resamples every movie by one zoom factor so that its nuclei
have a common diameter in the crop:

``pixels_per_crop_px = median equivalent diameter of the label objects (px) / target_diameter_px``

The median is taken over every object of the first ``n_frames`` labelled frames (equivalent
diameter = diameter of the disc/ball of the object's area/volume,
``skimage.measure.regionprops_table(..., properties=["equivalent_diameter_area"])``, computed here from
the pixel counts with the same formula: identical values). The factor is
computed once per movie from the label images (the masks that are cropped), recorded in the
sample-set attrs and the model card (``scale_normalization``), and applied identically at
inference by :func:`dynacell.states.classify_movie`: crops are sampled at
``c + (k − s//2) · pixels_per_crop_px`` (linear interpolation for images, nearest for the mask),
the physical-box code path of :func:`dynacell.samples.crop_windows` with a 1-px "voxel".
The factor is isotropic in pixels. **Physical variant (3D with a known voxel size).** With
``voxel_size_um`` the diameter is measured in µm (``regionprops_table(..., spacing=voxel_size_um)``)
and the crop voxel becomes ``target_voxel_um = nucleus_diameter_um / target_diameter_px``
(isotropic µm): anisotropic stacks become isotropic and every embryo's nuclei span the same number
of crop voxels (a 2.3 µm C. elegans nucleus and a 16 µm mouse nucleus alike).

Source: dynacell issue 3 (scale: nuclei of different cell lines and pixel sizes); the
equivalent diameter is the standard size measure of scikit-image's ``regionprops``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["SCALE_METHOD", "nucleus_diameter_px", "scale_crop_kwargs", "scale_normalization", "scale_voxel_size"]

logger = logging.getLogger(__name__)

#: Name of the rule recorded in sample-set attrs and model cards.
SCALE_METHOD = "nucleus-size"


def _equivalent_diameters(counts: np.ndarray, ndim: int, spacing) -> np.ndarray:
    """Equivalent diameters of objects of ``counts`` pixels/voxels, as scikit-image computes them.

    ``regionprops``' ``equivalent_diameter_area`` is ``(2·ndim·area/π)^(1/ndim)`` with
    ``area = pixel count · prod(spacing)``; the same float operations in the same order, so the
    values are identical (tested against ``regionprops_table``).
    """
    import math

    pixel_area = np.prod(np.full(ndim, 1.0) if spacing is None else np.asarray(spacing, dtype=float))
    area = counts.astype(np.int64) * pixel_area
    e = 1 / ndim
    # the power per object with the C library's pow, as skimage's scalar property does (numpy's array
    # power takes a sqrt path for 0.5 that can differ in the last bit)
    return np.array([v ** e for v in (2 * ndim * area / math.pi).tolist()], dtype=float)


def _label_counts(lab: np.ndarray) -> np.ndarray:
    """Pixels of every label id > 0 present in ``lab`` (in id order), by one ``numpy.bincount``."""
    flat = lab.ravel()
    if flat.dtype.kind not in "ub":
        flat = flat[flat > 0] if flat.size and flat.min() < 0 else flat
    counts = np.bincount(flat.astype(np.intp, copy=False))
    counts = counts[1:]
    return counts[counts > 0]


def nucleus_diameter_px(labels, *, n_frames: int = 3,
                        voxel_size_um=None, objects: dict | None = None) -> tuple[float, list[int], int]:
    """Median equivalent diameter (pixels, or µm with ``voxel_size_um``) of the label objects of the first labelled frames.

    Parameters
    ----------
    labels : dynacell.io.Movie
        Integer labels ``(T, (Z), Y, X)``; 0 = background.
    n_frames : int
        Number of labelled frames (in frame order, empty frames skipped) to measure.
    voxel_size_um : tuple of float, optional
        Pixel/voxel size (µm, spatial axes order): measure in µm (anisotropic voxels weighted).
    objects : dict, optional
        ``{t: (ids, centroids, sizes, boxes)}`` of frames of ``labels`` already measured
        (:func:`dynacell.io.scan.scan_labels` with ``objects=``, as ``dynacell run`` does): those
        frames' pixel counts (``sizes``) are used without reading the frame again.

    Returns
    -------
    diameter : float
        Median over all objects of ``(2·area/π)^½`` (2D) or ``(6·volume/π)^⅓`` (3D), pixels
        (µm with ``voxel_size_um``).
    frames : list of int
        Frame numbers measured.
    n_objects : int
        Number of objects measured.

    Raises
    ------
    InvalidInputError
        If ``n_frames < 1`` or no labelled frame holds an object.
    """
    if int(n_frames) < 1:
        raise InvalidInputError(f"n_frames must be >= 1, got {n_frames!r}")
    diam: list[np.ndarray] = []
    used: list[int] = []
    spacing = None if voxel_size_um is None else tuple(float(v) for v in voxel_size_um)
    for t in labels.frame_indices:
        if objects is not None and int(t) in objects:
            ids, _, counts, _ = objects[int(t)]
            counts = np.asarray(counts)[np.asarray(ids) > 0]
        else:
            counts = _label_counts(np.asarray(labels.frame(int(t))))
        if counts.size == 0:
            continue
        diam.append(_equivalent_diameters(counts, labels.ndim_spatial, spacing))
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


def scale_normalization(labels, target_diameter_px: float, *, n_frames: int = 3,
                        voxel_size_um=None, objects: dict | None = None) -> dict[str, Any]:
    """The per-movie zoom of the nucleus-size rule (see the module docstring).

    Parameters
    ----------
    labels : dynacell.io.Movie
        Integer labels ``(T, (Z), Y, X)`` of the movie to crop (the masks fed to the crops).
    target_diameter_px : float
        Nucleus diameter wanted in the crop, crop pixels (> 0).
    n_frames : int
        Labelled frames measured (the first ones).
    voxel_size_um : tuple of float, optional
        Voxel size of the movie (µm): the physical variant (see the module docstring); the
        result then holds ``nucleus_diameter_um``, ``voxel_size_um`` and ``target_voxel_um``
        (= nucleus_diameter_um / target_diameter_px, the isotropic crop voxel in µm).
    objects : dict, optional
        Frames already measured, as in :func:`nucleus_diameter_px` (same result, no re-reading).

    Returns
    -------
    dict
        JSON-ready: ``method`` (``"nucleus-size"``), ``units`` (``"px"`` or ``"um"``),
        ``target_diameter_px``, ``n_frames``, ``frames`` (measured), ``n_objects``, ``source`` (the
        label movie); in pixels ``nucleus_diameter_px`` (median measured),
        ``pixels_per_crop_px`` (= nucleus_diameter_px / target_diameter_px; > 1 shrinks the
        movie) and ``zoom`` (its inverse); in µm ``nucleus_diameter_um``, ``voxel_size_um``,
        ``target_voxel_um``.

    Raises
    ------
    InvalidInputError
        If ``target_diameter_px`` is not a positive finite number or no object is found.
    """
    tgt = float(target_diameter_px)
    if not (np.isfinite(tgt) and tgt > 0):
        raise InvalidInputError(f"target_diameter_px must be a positive number of pixels, got {target_diameter_px!r}")
    if voxel_size_um is not None:
        vs = [float(v) for v in voxel_size_um]
        if len(vs) != labels.ndim_spatial or not all(np.isfinite(v) and v > 0 for v in vs):
            raise InvalidInputError(f"labels {labels.source or '(array)'}: voxel_size_um {voxel_size_um!r} must hold "
                                    f"{labels.ndim_spatial} positive sizes (µm)")
        d, frames, n = nucleus_diameter_px(labels, n_frames=n_frames, voxel_size_um=vs, objects=objects)
        logger.info("labels %s: median nucleus diameter %.2f µm over %d objects (frames %s) -> crop voxel %.3f µm",
                    labels.source or "(array)", d, n, frames, d / tgt)
        return {"method": SCALE_METHOD, "units": "um", "target_diameter_px": tgt, "n_frames": int(n_frames),
                "nucleus_diameter_um": d, "frames": frames, "n_objects": n, "voxel_size_um": vs,
                "target_voxel_um": d / tgt, "source": labels.source}
    d, frames, n = nucleus_diameter_px(labels, n_frames=n_frames, objects=objects)
    factor = d / tgt
    logger.info("labels %s: median nucleus diameter %.1f px over %d objects (frames %s) -> %.3f px per crop px",
                labels.source or "(array)", d, n, frames, factor)
    return {"method": SCALE_METHOD, "units": "px", "target_diameter_px": tgt, "n_frames": int(n_frames),
            "nucleus_diameter_px": d, "frames": frames, "n_objects": n,
            "pixels_per_crop_px": factor, "zoom": 1.0 / factor, "source": labels.source}


def scale_voxel_size(ndim: int, voxel_size_um) -> tuple[float, ...] | None:
    """Voxel size the nucleus-size rule measures in: the physical variant in 3D, pixels in 2D.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality of the movie.
    voxel_size_um : tuple of float or None
        The movie's voxel size (µm), if known.

    Returns
    -------
    tuple of float or None
        ``voxel_size_um`` for 3D movies with a known voxel size (anisotropic z), else None (the
        rule works in pixels, as for the 2D models, whose data often carry no pixel size).
    """
    if int(ndim) == 3 and voxel_size_um is not None:
        return tuple(float(v) for v in voxel_size_um)
    return None


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
        is sampled every ``pixels_per_crop_px`` pixels (units cancel: pixels per crop pixel);
        for the physical variant the movie's ``voxel_size_um`` and ``target_voxel_um`` (µm).
    """
    if scale.get("units") == "um":
        return {"voxel_size_um": tuple(scale["voxel_size_um"]), "target_voxel_um": float(scale["target_voxel_um"])}
    return {"voxel_size_um": (1.0,) * int(ndim), "target_voxel_um": float(scale["pixels_per_crop_px"])}
