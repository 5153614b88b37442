"""Helpers shared by the lineage builders: per-frame centroids, progress bars."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["label_centroids", "progress", "as_int", "as_float"]

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
    A dict view of :func:`dynacell.io.objects.nucleus_centroids` (the one centroid function).

    Raises
    ------
    InvalidInputError
        If the image is not an integer image or holds negative ids.
    """
    from dynacell.io.objects import nucleus_centroids

    ids, cen = nucleus_centroids(np.asarray(labels), source=source)
    return {int(i): (float(z), float(y), float(x)) for i, (z, y, x) in zip(ids.tolist(), cen.tolist())}


def progress(items: Iterable[T], *, enabled: bool, desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``items`` in a tqdm progress bar when ``enabled`` (else yield them unchanged)."""
    if not enabled:
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, desc=desc, total=total, leave=False)


def as_int(value: object, where: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number read from a file (JSON / zarr attribute / text), checked; errors name ``where``.

    Parameters
    ----------
    value : object
        An int, a whole float or a string of one (``"12"``, ``"12.0"``); not a bool.
    where : str
        File and field, e.g. ``"store.geff: attribute dynacell.n_frames"``.
    minimum, maximum : int, optional
        Allowed range (inclusive).

    Returns
    -------
    int

    Raises
    ------
    InvalidInputError
        For anything else (text, NaN, infinity, fractions, bool, out of range).
    """
    import math
    import numbers

    v: object = value
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, str):
        try:
            v = float(v) if any(ch in v for ch in ".eE") else int(v.strip())
        except ValueError:
            v = None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise InvalidInputError(f"{where}: expected a whole number, found {value!r}")
    if isinstance(v, numbers.Integral):
        out = int(v)
    else:
        f = float(v)
        if not math.isfinite(f) or f != round(f):
            raise InvalidInputError(f"{where}: expected a whole number, found {value!r}")
        out = round(f)
    if minimum is not None and out < minimum:
        raise InvalidInputError(f"{where}: {out} is below the smallest allowed value {minimum}")
    if maximum is not None and out > maximum:
        raise InvalidInputError(f"{where}: {out:,} is above the limit of {maximum:,}")
    return out


def as_float(value: object, where: str) -> float:
    """A number read from a file (``NaN`` allowed: unknown), checked; errors name ``where``.

    Raises
    ------
    InvalidInputError
        For text that is not a number, a bool, or a non-scalar.
    """
    import numbers

    v: object = value
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            pass
    elif isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
        return float(v)
    raise InvalidInputError(f"{where}: expected a number, found {value!r}")
