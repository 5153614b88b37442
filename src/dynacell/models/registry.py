"""Build a classifier by name: :func:`build_model`, :data:`MODEL_NAMES`."""

from __future__ import annotations

from typing import Any

from torch import nn

from dynacell.errors import InvalidInputError
from dynacell.models.dcnet import DCNet
from dynacell.models.seed import SeedCNN, SeedConvLSTM

__all__ = ["MODEL_NAMES", "build_model", "model_channels", "count_parameters"]

#: Channels of the window ``[t−1, t, t+1, mask]`` each model reads, by model name.
_CHANNELS: dict[str, tuple[int, ...]] = {
    "4ncnn": (0, 1, 2, 3),
    "3ncnn": (0, 1, 2),
    "cnn-only": (1,),
    "convlstm": (0, 1, 2),
    "dcnet": (0, 1, 2, 3),
}

#: Names accepted by :func:`build_model`.
MODEL_NAMES: tuple[str, ...] = tuple(_CHANNELS)


def _check_name(name: str) -> str:
    if name not in _CHANNELS:
        raise InvalidInputError(
            f"unknown model architecture {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return name


#: Models that can also read the segmentation-context channels ``[seg t−1, seg t+1]``.
CONTEXT_MODELS: tuple[str, ...] = ("4ncnn", "dcnet")


def model_channels(name: str, context: bool = False) -> tuple[int, ...]:
    """Indices into the crop channels ``[t−1, t, t+1, mask(, seg t−1, seg t+1)]`` that model ``name`` reads.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    context : bool
        Also read the segmentation-context channels 4 and 5 (6-channel crops,
        :func:`dynacell.samples.crops.context_mask`); only for :data:`CONTEXT_MODELS`.

    Returns
    -------
    tuple of int

    Raises
    ------
    InvalidInputError
        If ``name`` is not in :data:`MODEL_NAMES`, or ``context`` is asked of a model that
        cannot take it.
    """
    chans = _CHANNELS[_check_name(name)]
    if context:
        if name not in CONTEXT_MODELS:
            raise InvalidInputError(
                f"model {name!r} reads {chans} only; segmentation context works with {', '.join(CONTEXT_MODELS)}")
        chans = (*chans, 4, 5)
    return chans


def build_model(name: str, ndim: int, in_channels: int | None = None, n_classes: int = 4,
                **kw: Any) -> nn.Module:
    """Build the classifier ``name`` for ``ndim``-D crops.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`: ``4ncnn``, ``3ncnn``, ``cnn-only``, ``convlstm`` (the
        seed's, the seed state classifier) or ``dcnet`` (dynacell's, :mod:`dynacell.models.dcnet`).
    ndim : {2, 3}
        Spatial dimensionality of the crops (Conv2d or Conv3d).
    in_channels : int, optional
        Channels the model reads; default ``len(model_channels(name))``.
    n_classes : int
        Number of classes (logits).
    **kw
        Architecture options (e.g. ``width``, ``residual`` for ``dcnet``).

    Returns
    -------
    torch.nn.Module
        Maps ``(N, in_channels, [Z,] Y, X)`` float32 to logits ``(N, n_classes)``.

    Raises
    ------
    InvalidInputError
        Unknown name, bad ``ndim``, a channel count the model cannot take, or unknown options.
    """
    _check_name(name)
    expected = len(_CHANNELS[name])
    if in_channels is None:
        in_channels = expected
    if in_channels != expected and not (name in CONTEXT_MODELS and in_channels == expected + 2):
        raise InvalidInputError(
            f"model {name!r} reads {expected} channels (indices {_CHANNELS[name]} of [t-1, t, t+1, mask]), "
            f"got in_channels={in_channels}")
    if n_classes < 2:
        raise InvalidInputError(f"n_classes must be >= 2, got {n_classes}")
    try:
        if name == "convlstm":
            return SeedConvLSTM(ndim, in_channels, n_classes, **kw)
        if name == "dcnet":
            return DCNet(ndim, in_channels, n_classes, **kw)
        return SeedCNN(ndim, in_channels, n_classes, **kw)
    except TypeError as exc:
        raise InvalidInputError(f"model {name!r}: bad architecture option ({exc})") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``.

    Parameters
    ----------
    model : torch.nn.Module
        The network.

    Returns
    -------
    int
        Sum of the sizes of its parameters that require gradients.
    """
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
