"""Dimension-agnostic building blocks: pick the 2D or 3D torch layer by ``ndim``."""

from __future__ import annotations

from torch import nn

from dynacell.errors import InvalidInputError

__all__ = ["conv_nd", "batchnorm_nd", "maxpool_nd", "avgpool_nd", "check_ndim"]


def check_ndim(ndim: int) -> int:
    """Return ``ndim`` if it is 2 or 3.

    Parameters
    ----------
    ndim : int
        Spatial dimensionality.

    Returns
    -------
    int
        ``ndim``.

    Raises
    ------
    InvalidInputError
        If ``ndim`` is not 2 or 3.
    """
    if ndim not in (2, 3):
        raise InvalidInputError(f"model ndim must be 2 (Y, X crops) or 3 (Z, Y, X crops), got {ndim!r}")
    return int(ndim)


def conv_nd(ndim: int) -> type[nn.Module]:
    """``nn.Conv2d`` for ``ndim=2``, ``nn.Conv3d`` for ``ndim=3``.

    Parameters
    ----------
    ndim : int
        Spatial dimensionality, 2 or 3.

    Returns
    -------
    type
        The layer class.
    """
    return nn.Conv2d if check_ndim(ndim) == 2 else nn.Conv3d


def batchnorm_nd(ndim: int) -> type[nn.Module]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d``.

    Parameters
    ----------
    ndim : int
        Spatial dimensionality, 2 or 3.

    Returns
    -------
    type
        The layer class.
    """
    return nn.BatchNorm2d if check_ndim(ndim) == 2 else nn.BatchNorm3d


def maxpool_nd(ndim: int) -> type[nn.Module]:
    """``nn.MaxPool2d`` or ``nn.MaxPool3d``.

    Parameters
    ----------
    ndim : int
        Spatial dimensionality, 2 or 3.

    Returns
    -------
    type
        The layer class.
    """
    return nn.MaxPool2d if check_ndim(ndim) == 2 else nn.MaxPool3d


def avgpool_nd(ndim: int) -> type[nn.Module]:
    """``nn.AvgPool2d`` or ``nn.AvgPool3d``.

    Parameters
    ----------
    ndim : int
        Spatial dimensionality, 2 or 3.

    Returns
    -------
    type
        The layer class.
    """
    return nn.AvgPool2d if check_ndim(ndim) == 2 else nn.AvgPool3d
