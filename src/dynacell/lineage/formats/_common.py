"""Helpers shared by the lineage builders: per-frame centroids, progress bars."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
from scipy import ndimage as ndi

from dynacell.errors import InvalidInputError

__all__ = ["label_centroids", "progress"]

T = TypeVar("T")


def label_centroids(labels: np.ndarray, *, source: str = "") -> dict[int, tuple[float, float, float]]:
    """Centroid of every nucleus of one label image.

    Parameters
    ----------
    labels : numpy.ndarray of int, shape ``([Z,] Y, X)``
        Instance label image of one frame; 0 is background.
    source : str
        File (and frame) the image came from, for error messages.

    Returns
    -------
    dict of int to tuple of float
        ``label -> (z, y, x)`` in pixels (array-index units; ``z = 0.0`` in 2D), for every
        label present (``label >= 1``).

    Notes
    -----
    The image is first cropped to the bounding box of its foreground
    (:func:`scipy.ndimage.find_objects`); the present labels are found with
    :func:`numpy.bincount` (no sort) and the centroids with
    :func:`scipy.ndimage.center_of_mass` (the unweighted centre of each label's pixels).

    Raises
    ------
    InvalidInputError
        If the image is not an integer image or holds negative ids.
    """
    lab = np.asarray(labels)
    if lab.size == 0:
        return {}
    if lab.dtype.kind not in "iu":
        raise InvalidInputError(
            f"label image {source}: expected an integer instance image, found dtype {lab.dtype}; "
            "pass the label masks (man_trackTTT.tif / maskTTT.tif), not the intensity images"
        )
    if lab.min() < 0:
        raise InvalidInputError(f"label image {source}: negative label ids found; ids must be >= 0 (0 = background)")
    foreground = lab > 0
    if not foreground.any():
        return {}
    # Crop to the foreground's bounding box first: large light-sheet volumes are mostly background.
    box = ndi.find_objects(foreground.astype(np.uint8))[0]
    crop = lab[box]
    offset = [s.start for s in box]
    counts = np.bincount(crop.ravel())
    present = np.flatnonzero(counts)
    present = present[present > 0]
    com = ndi.center_of_mass(np.ones(crop.shape, dtype=np.uint8), crop, present)
    com = [[float(v) + o for v, o in zip(c, offset)] for c in com]
    out: dict[int, tuple[float, float, float]] = {}
    for label, c in zip(present.tolist(), com):
        c = [float(v) for v in c]
        if len(c) == 2:
            c = [0.0, *c]
        out[int(label)] = (c[0], c[1], c[2])
    return out


def progress(items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm progress bar when ``enabled`` (else yield them unchanged)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, leave=False)
