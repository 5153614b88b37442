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
    A dict view of :func:`dynacell.lineage.centroids.nucleus_centroids` (the one centroid function).

    Raises
    ------
    InvalidInputError
        If the image is not an integer image or holds negative ids.
    """
    from dynacell.lineage.centroids import nucleus_centroids

    ids, cen = nucleus_centroids(np.asarray(labels), source=source)
    return {int(i): (float(z), float(y), float(x)) for i, (z, y, x) in zip(ids.tolist(), cen.tolist())}


def progress(items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm progress bar when ``enabled`` (else yield them unchanged)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, leave=False)
