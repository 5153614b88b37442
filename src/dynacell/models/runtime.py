"""Running a network: device choice, batched forward passes, softmax, loading weights.

The one home of these helpers for every task's inference (states, segmentation, forecasting,
diffusion) and for the training engine's evaluation; inference code imports this module, never
:mod:`dynacell.train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["resolve_device", "forward_batched", "softmax", "load_state_dict"]

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> str:
    """The torch device to run on.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``"auto"`` = CUDA when a GPU is present, else CPU.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    InvalidInputError
        For another name, or ``"cuda"`` without a GPU.
    """
    import torch

    if device not in DEVICES:
        raise InvalidInputError(f"device must be one of {list(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    return device


def forward_batched(model: Any, x: np.ndarray, *, batch_size: int = 256, device: str = "cpu",
                    channels: tuple[int, ...] | None = None) -> np.ndarray:
    """Outputs of ``model`` on ``x`` in eval mode and inference mode, ``batch_size`` inputs at a time.

    Parameters
    ----------
    model : torch.nn.Module
        Any network taking ``(B, C, ...)`` float32.
    x : numpy.ndarray, float32, shape (N, C, ...)
        Inputs.
    batch_size : int
        Inputs per forward pass.
    device : str
        Torch device of the model.
    channels : tuple of int, optional
        Input channels to keep (``x[:, channels]``) before the forward pass.

    Returns
    -------
    numpy.ndarray, float32
        The concatenated outputs ``(N, ...)``; ``(0, 0)`` when ``N = 0``.
    """
    import torch

    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            if channels is not None:
                xb = xb[:, list(channels)]
            xb = torch.from_numpy(np.ascontiguousarray(xb, dtype=np.float32)).to(device)
            out.append(model(xb).float().cpu().numpy())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)


def softmax(z: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits divided by a temperature (Guo et al. 2017), numerically stable.

    Parameters
    ----------
    z : numpy.ndarray, shape (N, C)
        Logits.
    temperature : float
        > 0; 1 = plain softmax.

    Returns
    -------
    numpy.ndarray, shape (N, C)
        Probabilities, rows sum to 1, same float dtype as ``z`` (float64 for integer input).

    Examples
    --------
    >>> import numpy as np
    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    if temperature <= 0:
        raise InvalidInputError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def load_state_dict(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Load a ``state_dict`` saved with ``torch.save`` safely (``weights_only=True``).

    Raises
    ------
    dynacell.errors.FormatError
        If the file cannot be read as a torch state dict.
    """
    import torch

    from dynacell.errors import FormatError

    try:
        return torch.load(Path(path), map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise FormatError(f"{path}: cannot load weights ({type(exc).__name__}: {exc})") from None
