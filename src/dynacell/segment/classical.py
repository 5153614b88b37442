"""Classical nucleus segmentation: the fallback used when no label images are given.

This is NOT a trained segmenter. It is the textbook pipeline for bright nuclei on a dark
background (Gaussian smoothing, Otsu threshold, distance-transform watershed), built from
scikit-image, and it is named ``classical`` wherever its output is recorded (``run.json``,
``report.html``) so that nobody mistakes its masks for a model's.

Source: N. Otsu, "A threshold selection method from gray-level histograms", IEEE SMC 9 (1979);
marker-controlled watershed on the Euclidean distance transform, as in the scikit-image
gallery example "Watershed segmentation".
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = ["ClassicalParams", "segment_frame", "segment_movie", "METHOD_NAME"]

logger = logging.getLogger(__name__)

#: Name recorded in run.json and the report for masks made by this module.
METHOD_NAME = "classical"


@dataclass(frozen=True)
class ClassicalParams:
    """Parameters of the classical segmenter, in physical units where a voxel size is known.

    Parameters
    ----------
    smoothing_sigma_um : float
        Standard deviation of the Gaussian smoothing in µm (converted to pixels per axis with
        the voxel size; taken as pixels when the voxel size is unknown).
    min_distance_um : float
        Minimum distance between two watershed seeds (distance-transform maxima) in µm; about
        the radius of the smallest nucleus to split (pixels when the voxel size is unknown).
    min_size_px : int
        Objects with fewer pixels/voxels are removed (debris, noise).
    """

    smoothing_sigma_um: float = 1.0
    min_distance_um: float = 4.0
    min_size_px: int = 20


def _spacing(ndim: int, voxel_size_um: tuple[float, ...] | None) -> np.ndarray:
    if voxel_size_um is None:
        return np.ones(ndim)
    vs = np.asarray(voxel_size_um, dtype=float)
    if vs.shape != (ndim,):
        raise InvalidInputError(
            f"classical segmentation: voxel_size_um has {vs.size} values for a {ndim}-D frame; give one per spatial axis"
        )
    return vs


def segment_frame(
    image: np.ndarray,
    *,
    voxel_size_um: tuple[float, ...] | None = None,
    params: ClassicalParams | None = None,
) -> np.ndarray:
    """Segment the nuclei of one frame with smoothing, Otsu threshold and watershed.

    Parameters
    ----------
    image : numpy.ndarray
        One frame, shape ``((Z), Y, X)``, any real dtype (intensities).
    voxel_size_um : tuple of float, optional
        Voxel size in µm in axis order ``((Z), Y, X)``; anisotropy is honoured by the smoothing
        and the distance transform. Pixels are taken as isotropic 1 µm when absent.
    params : ClassicalParams, optional
        Segmenter parameters (defaults: ``ClassicalParams()``).

    Returns
    -------
    numpy.ndarray
        Label image, shape ``((Z), Y, X)``, int32, 0 = background, ids 1..N (N may be 0 for a
        frame with no foreground).

    Raises
    ------
    InvalidInputError
        If the frame is not 2-D or 3-D or the voxel size does not match.

    Notes
    -----
    Steps: Gaussian smoothing (σ = ``smoothing_sigma_um`` / voxel size per axis); Otsu
    threshold of the smoothed frame; removal of objects smaller than ``min_size_px``;
    Euclidean distance transform with ``sampling = voxel_size_um``; seeds at its local maxima
    at least ``min_distance_um`` apart (one seed per connected component at least); watershed
    of the negated distance inside the foreground.
    """
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import relabel_sequential, watershed

    params = params or ClassicalParams()
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise InvalidInputError(f"classical segmentation: expected a 2-D or 3-D frame, got shape {image.shape}")
    spacing = _spacing(image.ndim, voxel_size_um)
    sigma_px = params.smoothing_sigma_um / spacing
    smooth = gaussian(image.astype(np.float32), sigma=sigma_px, preserve_range=True)
    if float(smooth.max()) <= float(smooth.min()):
        return np.zeros(image.shape, dtype=np.int32)
    foreground = smooth > threshold_otsu(smooth)
    foreground = remove_small_objects(foreground, max_size=max(params.min_size_px - 1, 0))
    if not foreground.any():
        return np.zeros(image.shape, dtype=np.int32)
    distance = ndi.distance_transform_edt(foreground, sampling=spacing)
    components, _ = ndi.label(foreground)
    min_distance_px = max(1, int(round(params.min_distance_um / float(spacing[-1]))))
    peaks = peak_local_max(distance, min_distance=min_distance_px, labels=components, exclude_border=False)
    markers = np.zeros(image.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=np.int32)
    labels = watershed(-distance, markers, mask=foreground).astype(np.int32)
    # components without any seed (flat plateaus) keep their connected-component shape
    unseeded = foreground & (labels == 0)
    if unseeded.any():
        extra, _ = ndi.label(unseeded)
        labels[unseeded] = extra[unseeded] + labels.max()
    labels = remove_small_objects(labels, max_size=max(params.min_size_px - 1, 0))
    return relabel_sequential(labels)[0].astype(np.int32)


def segment_movie(
    images: Movie,
    store: str | Path,
    *,
    params: ClassicalParams | None = None,
    progress: bool = True,
) -> Movie:
    """Segment every frame of a movie with :func:`segment_frame`, streaming frame by frame.

    Parameters
    ----------
    images : Movie
        Intensities, shape ``(T, (Z), Y, X)``.
    store : str or Path
        Folder of a zarr array (created; one chunk per frame) that receives the labels, so
        that memory stays flat in ``T``.
    params : ClassicalParams, optional
        Segmenter parameters.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Movie
        Labels, shape ``(T, (Z), Y, X)``, int32, read lazily from ``store``; ids are per frame
        (not consistent over time); ``metadata["segmenter"] == "classical"``.
    """
    import dask.array as da
    import zarr
    from tqdm.auto import tqdm

    params = params or ClassicalParams()
    arr = zarr.create_array(
        str(store), shape=images.shape, chunks=(1, *images.frame_shape), dtype="int32", fill_value=0
    )
    for i, t in enumerate(tqdm(images.frame_indices, desc="segment (classical)", disable=not progress)):
        arr[i] = segment_frame(images.frame(t), voxel_size_um=images.voxel_size_um, params=params)
    logger.info("classical segmentation of %d frames written to %s", images.n_frames, store)
    return Movie(
        data=da.from_zarr(str(store)),
        axes=images.axes,
        voxel_size_um=images.voxel_size_um,
        frame_interval_s=images.frame_interval_s,
        frame_indices=images.frame_indices,
        source=f"{METHOD_NAME} segmentation of {images.source}",
        metadata={"segmenter": METHOD_NAME, "params": asdict(params)},
    )
