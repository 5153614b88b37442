"""Per-nucleus measurements over time: area (2D) or volume (3D), equivalent diameter, intensity.

The "area over time" of a segmented movie: one row per nucleus per frame, in physical units
when the voxel size is known. Built on ``skimage.measure.regionprops_table`` (with
``spacing`` = voxel size, so anisotropic voxels are weighted correctly).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = ["measure_frame", "measure_objects", "relative_area_error"]


def measure_frame(image: np.ndarray, labels: np.ndarray, voxel_size_um: tuple[float, ...] | None = None) -> pd.DataFrame:
    """Measurements of the objects of one frame.

    Parameters
    ----------
    image : numpy.ndarray
        Intensities ``((Z), Y, X)``.
    labels : numpy.ndarray
        Integer labels of the same shape, 0 = background.
    voxel_size_um : tuple of float, optional
        Voxel size (µm, axis order).

    Returns
    -------
    pandas.DataFrame
        Columns ``label``, ``z`` (3D), ``y``, ``x`` (centroid, pixels), ``area_px`` (2D) or
        ``volume_vox`` (3D), ``equivalent_diameter_px`` (diameter of the disc/ball of the
        same pixel count), ``mean_intensity``, ``total_intensity`` (sum over the object,
        image units); with a voxel size also ``area_um2`` or ``volume_um3`` and
        ``equivalent_diameter_um``.

    Raises
    ------
    InvalidInputError
        If shapes differ or the voxel size does not match.
    """
    from skimage.measure import regionprops_table

    img, lab = np.asarray(image), np.asarray(labels)
    if img.shape != lab.shape:
        raise InvalidInputError(f"measure: image shape {img.shape} != labels shape {lab.shape}")
    nd = lab.ndim
    if voxel_size_um is not None and len(voxel_size_um) != nd:
        raise InvalidInputError(f"measure: voxel_size_um {voxel_size_um} does not match a {nd}-D frame")
    props = regionprops_table(lab.astype(np.int64), intensity_image=img.astype(np.float64),
                              properties=("label", "centroid", "area", "intensity_mean"))
    df = pd.DataFrame(props)
    axes = ["z", "y", "x"][-nd:]
    df = df.rename(columns={f"centroid-{i}": a for i, a in enumerate(axes)})
    size = "area_px" if nd == 2 else "volume_vox"
    df = df.rename(columns={"area": size, "intensity_mean": "mean_intensity"})
    df["label"] = df["label"].astype(int)
    df[size] = df[size].astype(int)
    df["total_intensity"] = df["mean_intensity"] * df[size]
    if nd == 2:
        df["equivalent_diameter_px"] = np.sqrt(4 * df[size] / np.pi)
    else:
        df["equivalent_diameter_px"] = np.cbrt(6 * df[size] / np.pi)
    if voxel_size_um is not None:
        vox = float(np.prod(voxel_size_um))
        if nd == 2:
            df["area_um2"] = df[size] * vox
            df["equivalent_diameter_um"] = np.sqrt(4 * df["area_um2"] / np.pi)
        else:
            df["volume_um3"] = df[size] * vox
            df["equivalent_diameter_um"] = np.cbrt(6 * df["volume_um3"] / np.pi)
    return df


def measure_objects(images: Movie, labels: Movie, voxel_size_um: tuple[float, ...] | None = None,
                    frame_interval_s: float | None = None) -> pd.DataFrame:
    """Area / volume, equivalent diameter and intensity of every nucleus in every frame.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    labels : Movie
        Labels with the same frame shape; only frames present in both are measured.
    voxel_size_um : tuple of float, optional
        Voxel size (µm); default the labels' or the images' voxel size.
    frame_interval_s : float, optional
        Time between frames (s); default the images'. Adds ``time_s`` = ``t × interval``.

    Returns
    -------
    pandas.DataFrame
        ``t`` then the columns of :func:`measure_frame` (and ``time_s``), sorted by ``(t, label)``.

    Raises
    ------
    InvalidInputError
        If frame shapes differ.
    """
    if images.frame_shape != labels.frame_shape:
        raise InvalidInputError(f"measure: image frames {images.frame_shape} and label frames {labels.frame_shape} differ")
    vs = voxel_size_um or labels.voxel_size_um or images.voxel_size_um
    dt = frame_interval_s or images.frame_interval_s
    rows = []
    for t in labels.frame_indices:
        if not images.has_frame(t):
            continue
        df = measure_frame(images.frame(t), labels.frame(t), vs)
        df.insert(0, "t", int(t))
        rows.append(df)
    if not rows:
        return pd.DataFrame(columns=["t", "label"])
    out = pd.concat(rows, ignore_index=True)
    if dt is not None:
        out.insert(1, "time_s", out["t"] * float(dt))
    return out.sort_values(["t", "label"]).reset_index(drop=True)


def relative_area_error(reference: np.ndarray, predicted: np.ndarray, iou_threshold: float = 0.5) -> np.ndarray:
    """Relative area (volume) error of matched objects: ``(predicted − reference) / reference``.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        Integer label images of equal shape.
    iou_threshold : float
        Objects are matched one-to-one at IoU ≥ this (Hungarian assignment).

    Returns
    -------
    numpy.ndarray
        One value per matched pair (empty when nothing matches).
    """
    from scipy.optimize import linear_sum_assignment

    from dynacell.metrics.segmentation import overlap_matrix

    ref_ids, pred_ids, _, iou = overlap_matrix(reference, predicted)
    if iou.size == 0:
        return np.zeros(0)
    w = np.where(iou >= iou_threshold, iou, 0.0)
    r, c = linear_sum_assignment(-w)
    keep = w[r, c] >= iou_threshold
    ref_area = np.bincount(np.asarray(reference).astype(np.int64).ravel())[ref_ids[r[keep]]]
    pred_area = np.bincount(np.asarray(predicted).astype(np.int64).ravel())[pred_ids[c[keep]]]
    return (pred_area - ref_area) / ref_area
