"""Helpers shared by the lineage builders: per-frame centroids, progress bars."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

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
    The image is first cropped to the bounding box of its foreground (max projections,
    axis after axis, each on the already-cropped block: large light-sheet volumes are
    mostly background); the centroids (unweighted centre of each label's pixels) come from
    :func:`skimage.measure.regionprops_table`.

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
    if lab.dtype.kind == "i" and lab.min() < 0:
        raise InvalidInputError(f"label image {source}: negative label ids found; ids must be >= 0 (0 = background)")
    box = _foreground_box(lab)
    if box is None:
        return {}
    crop = lab[box]
    offset = [s.start for s in box]
    from skimage.measure import regionprops_table

    props = regionprops_table(crop, properties=("label", "centroid"))
    axes = [props[f"centroid-{i}"] + off for i, off in enumerate(offset)]
    if len(axes) == 2:
        axes = [np.zeros_like(axes[0]), *axes]
    out: dict[int, tuple[float, float, float]] = {
        int(label): (float(z), float(y), float(x)) for label, z, y, x in zip(props["label"], *axes)
    }
    return out


def _foreground_box(lab: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of the non-zero voxels of a non-negative label image, or None if empty."""
    box: list[slice] = []
    sub = lab
    for axis in range(lab.ndim):
        others = tuple(j for j in range(lab.ndim) if j != axis)
        hits = np.flatnonzero(sub.max(axis=others) if others else sub)
        if hits.size == 0:
            return None
        sl = slice(int(hits[0]), int(hits[-1]) + 1)
        box.append(sl)
        sub = sub[(slice(None),) * axis + (sl,)]
    return tuple(box)


def progress(items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm progress bar when ``enabled`` (else yield them unchanged)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, leave=False)
