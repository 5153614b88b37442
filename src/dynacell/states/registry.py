"""Pretrained state classifiers: :func:`available_models`, :func:`load_model`, :class:`StateClassifier`.

A *model folder* holds ``weights.pt`` (a torch ``state_dict``, read with
``torch.load(weights_only=True)``) and ``model.yaml`` (the card written by
:func:`dynacell.train.fit`: architecture, classes, dims, crop size in px and µm,
normalisation, training data, split, held-out metrics, temperature, sha256 of the weights).
Models shipped with dynacell live in ``dynacell/states/pretrained/<name>/`` and load by name
(the trackastra / spotiflow ``from_pretrained`` pattern).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dynacell.errors import FormatError, InvalidInputError

__all__ = ["PRETRAINED_DIR", "StateClassifier", "available_models", "load_model"]

logger = logging.getLogger(__name__)

#: Folder of the models shipped inside the package.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def available_models() -> list[str]:
    """Names of the shipped models (folders of ``PRETRAINED_DIR`` holding a ``model.yaml``), sorted."""
    if not PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "model.yaml").is_file())


class StateClassifier:
    """A loaded nucleus state classifier: a torch model, its card and its temperature.

    Use :func:`load_model` to make one.

    Attributes
    ----------
    classes : tuple of str
        Class names in output order (a prefix-free subset of :data:`dynacell.STATES`).
    card : dict
        The model card (``model.yaml``).
    ndim : int
        2 or 3: spatial dimensionality of the crops it takes.
    crop_size : tuple of int
        Crop size per spatial axis in pixels (``(Y, X)`` or ``(Z, Y, X)``).
    temperature : float
        Temperature fitted on the validation set (Guo et al. 2017); logits are divided by it.
    path : pathlib.Path
        The model folder.
    channels : tuple of int
        Crop channels the network reads (card ``model_channels``).
    context : bool
        Whether it reads the segmentation-context channels ``[seg t−1, seg t+1]``
        (:func:`dynacell.samples.crops.context_mask`); crops must then have 6 channels.
    n_input_channels : int
        Channels of the crops it takes: 6 with ``context``, else 4 (6-channel crops are accepted
        by a 4-channel model, which reads its own channels only).
    """

    def __init__(self, model: Any, card: dict[str, Any], path: Path, device: str = "cpu") -> None:
        self.model = model.eval()
        self.card = card
        self.path = path
        self.device = device
        self.classes: tuple[str, ...] = tuple(card["classes"])
        self.ndim: int = int(card["ndim"])
        self.crop_size: tuple[int, ...] = tuple(int(s) for s in card["crop_size_px"])
        self.temperature: float = float(card.get("temperature", 1.0))
        self.channels: tuple[int, ...] = tuple(card.get("model_channels", (0, 1, 2, 3)))
        #: Whether the model reads the segmentation-context channels (6-channel crops).
        self.context: bool = max(self.channels) >= 4
        self.n_input_channels: int = 6 if self.context else 4

    @property
    def name(self) -> str:
        """The model's name (card ``name``)."""
        return str(self.card.get("name", self.path.name))

    def __repr__(self) -> str:
        return (f"StateClassifier(name={self.name!r}, architecture={self.card.get('architecture')!r}, "
                f"ndim={self.ndim}, crop_size={self.crop_size}, classes={self.classes})")

    def _check(self, x: np.ndarray) -> None:
        if x.ndim != self.ndim + 2 or x.shape[1] not in (4, 6) or x.shape[1] < self.n_input_channels:
            raise InvalidInputError(
                f"model {self.name!r} is {self.ndim}D and takes crops (N, {self.n_input_channels}, "
                f"{', '.join(map(str, self.crop_size))}); "
                f"got an array of shape {tuple(x.shape)}. "
                + ("Use a 3D model (e.g. nuclei-3d) for 3D movies." if x.ndim == 5 and self.ndim == 2 else
                   "Use a 2D model (e.g. nuclei-2d) for 2D movies." if x.ndim == 4 and self.ndim == 3 else
                   "Crop with dynacell.samples.crop_window (channels [t-1, t, t+1, mask]"
                   + (" and context_labels: [seg t-1, seg t+1])." if self.context else ")."))
            )
        if tuple(x.shape[2:]) != self.crop_size:
            raise InvalidInputError(
                f"model {self.name!r} was trained on crops of {self.crop_size} px, got {tuple(x.shape[2:])}; "
                f"crop with size={list(self.crop_size)}"
            )

    def predict_logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Raw logits (before temperature) ``(N, C)`` float32 of crops ``x`` ``(N, n_input_channels, *crop_size)``.

        Raises
        ------
        InvalidInputError
            If the crops' dimensionality or size does not match the model.
        """
        import torch

        x = np.asarray(x, dtype=np.float32)
        self._check(x)
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), batch_size):
                xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size][:, list(self.channels)]))
                out.append(self.model(xb.to(self.device)).float().cpu().numpy())
        if not out:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.concatenate(out)

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Calibrated class probabilities of crops.

        Parameters
        ----------
        x : numpy.ndarray, float32, shape (N, n_input_channels, *crop_size)
            Crops ``[t−1, t, t+1, mask(, seg t−1, seg t+1)]`` from :func:`dynacell.samples.crop_window`.
        batch_size : int
            Crops per forward pass.

        Returns
        -------
        numpy.ndarray, float32, shape (N, C)
            ``softmax(logits / temperature)``; columns in :attr:`classes` order.

        Raises
        ------
        InvalidInputError
            If the crops' dimensionality (2D model on 3D crops, or the reverse) or size
            does not match the model.
        """
        z = self.predict_logits(x, batch_size) / self.temperature
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Predicted state names, ``(N,)`` str, of crops ``x`` ``(N, n_input_channels, *crop_size)``."""
        p = self.predict_proba(x, batch_size)
        return np.asarray(self.classes, dtype=object)[p.argmax(axis=1)] if len(p) else np.array([], dtype=object)


def load_model(name_or_path: str | Path, device: str = "cpu", verify: bool = True) -> StateClassifier:
    """Load a state classifier by shipped name (see :func:`available_models`) or model-folder path.

    Parameters
    ----------
    name_or_path : str or pathlib.Path
        ``"nuclei-2d"``, ``"nuclei-3d"`` or a folder with ``weights.pt`` + ``model.yaml``.
    device : str
        torch device (``"cpu"`` or ``"cuda"``).
    verify : bool
        Check the weights' sha256 against the card.

    Returns
    -------
    StateClassifier

    Raises
    ------
    InvalidInputError
        If the name is neither a shipped model nor a folder (the message lists the shipped names).
    FormatError
        If the folder misses a file, the card is malformed or the weights do not match it.
    """
    import torch

    from dynacell.models import build_model
    from dynacell.train.fit import sha256_file

    path = Path(name_or_path)
    if str(name_or_path) in available_models():
        path = PRETRAINED_DIR / str(name_or_path)
    elif not path.is_dir():
        raise InvalidInputError(
            f"unknown state model {str(name_or_path)!r}: not a shipped model and not a folder; "
            f"shipped models: {', '.join(available_models()) or '(none)'}; or give a folder with weights.pt + model.yaml"
        )
    card_path, weights = path / "model.yaml", path / "weights.pt"
    for f in (card_path, weights):
        if not f.is_file():
            raise FormatError(f"model folder {path} has no {f.name}; a model folder holds weights.pt and model.yaml")
    try:
        card = yaml.safe_load(card_path.read_text())
        arch, classes, ndim = card["architecture"], card["classes"], int(card["ndim"])
        _ = card["crop_size_px"]
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"model card {card_path} is malformed ({exc!r}); expected the keys architecture, "
                          "classes, ndim, crop_size_px") from None
    if verify and card.get("weights_sha256") and sha256_file(weights) != card["weights_sha256"]:
        raise FormatError(f"{weights}: sha256 does not match the card {card_path}; the weights were changed "
                          "or corrupted: retrain or restore the folder")
    n_in = len(card.get("model_channels") or ()) or None
    model = build_model(arch, ndim, in_channels=n_in, n_classes=len(classes), **(card.get("model_kwargs") or {}))
    try:
        state = torch.load(weights, map_location=device, weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, KeyError) as exc:
        raise FormatError(f"{weights} could not be loaded into a {arch!r} model: {exc}") from None
    return StateClassifier(model.to(device), card, path, device)
