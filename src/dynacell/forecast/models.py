"""Forecast models: model cards, loaders (``from_pretrained`` / ``from_folder``) and predictors.

A model folder holds ``weights.pt`` and ``model.yaml`` (:mod:`dynacell.cards`). Shipped models
live in ``dynacell/forecast/pretrained/<name>/``:

* frame models (:class:`FrameForecastCard`, task ``forecast-frames``) predict the next frame of a
  normalised movie from K frames (:class:`FrameForecaster`);
* position models (:class:`PositionForecastCard`, task ``forecast-positions``) predict the next
  positions of a track in µm from its last L positions (:class:`PositionForecaster`).

Named *methods* (no weights file; fitted on the movie's own past before use) resolve by name too:
``"frames-mc-linear"`` (:class:`dynacell.forecast.motion.MotionCompensatedForecaster`).

This module never imports :mod:`dynacell.train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from dynacell.cards import CARD_FILE, ModelCard
from dynacell.errors import FormatError, InvalidInputError

__all__ = [
    "DEFAULT_FRAME_MODEL",
    "DEFAULT_POSITION_MODEL",
    "FRAME_METHODS",
    "PRETRAINED_DIR",
    "FrameForecastCard",
    "FrameForecaster",
    "PositionForecastCard",
    "PositionForecaster",
    "available_models",
    "from_folder",
    "from_pretrained",
    "resolve_model",
]

#: Folder of the models shipped with dynacell.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: Name of the default next-frame model.
DEFAULT_FRAME_MODEL = "frames-unet"
#: Name of the default position model.
DEFAULT_POSITION_MODEL = "positions-2d"
#: Next-frame methods usable by name (no weights file; fitted on the movie's own past before use):
#: ``frames-mc-linear`` and the same with weights varying with the local brightness (``modulate="brightness"``).
FRAME_METHODS = ("frames-mc-linear", "frames-mc-brightness")


class FrameForecastCard(ModelCard):
    """Card of a next-frame model.

    Attributes
    ----------
    k : int
        Input frames per window.
    loss : str
        Training loss (``"mse"`` or ``"l1"``).
    normalization : dict
        How a movie is scaled before the model sees it (percentiles mapped to 0 and 1).
    downsample : dict
        Down-sampling factor used per training movie.
    """

    task: Literal["forecast-frames"] = "forecast-frames"
    k: int
    loss: str
    normalization: dict[str, Any]
    downsample: dict[str, Any]


class PositionForecastCard(ModelCard):
    """Card of a position model.

    Attributes
    ----------
    history : int
        Positions of history L the model reads.
    horizon : int
        Future positions H it predicts at once.
    step_scale_um : float
        Steps are divided by this length (µm) before the network and its output multiplied back;
        ``0`` = per-window scaling by the mean step length of the history.
    """

    task: Literal["forecast-positions"] = "forecast-positions"
    history: int
    horizon: int
    step_scale_um: float


class FrameForecaster:
    """A next-frame network with its card.

    Parameters
    ----------
    net : torch.nn.Module
        A network of :data:`dynacell.models.forecast.FRAME_ARCHITECTURES`.
    card : FrameForecastCard
    path : Path, optional
        Folder it was loaded from.
    """

    def __init__(self, net: Any, card: FrameForecastCard, path: Path | None = None) -> None:
        self.net, self.card, self.path = net.eval(), card, path
        self.k = int(card.k)

    def __repr__(self) -> str:
        return f"FrameForecaster({self.card.name!r}, {self.card.architecture}, k={self.k})"

    def predict(self, windows: np.ndarray, batch_size: int = 4) -> np.ndarray:
        """Next frame of each window.

        Parameters
        ----------
        windows : numpy.ndarray, float32, shape (N, K, Y, X)
            Normalised frames (:func:`dynacell.forecast.frames.normalize_movie`), oldest first.
        batch_size : int

        Returns
        -------
        numpy.ndarray, float32, shape (N, Y, X)

        Raises
        ------
        InvalidInputError
            If the windows do not hold K frames.
        """
        from dynacell.models.runtime import forward_batched

        windows = np.asarray(windows, dtype=np.float32)
        if windows.ndim != 4 or windows.shape[1] != self.k:
            raise InvalidInputError(f"model {self.card.name!r} needs windows (N, {self.k}, Y, X), got {windows.shape}")
        if len(windows) == 0:
            return np.zeros((0,) + windows.shape[2:], np.float32)
        return forward_batched(self.net, windows, batch_size=batch_size)[:, 0]

    def rollout(self, frames: np.ndarray, steps: int) -> np.ndarray:
        """Predict ``steps`` frames ahead by feeding predictions back (multi-step roll-out).

        Parameters
        ----------
        frames : numpy.ndarray, shape (≥ K, Y, X)
            Normalised frames; the last K start the roll-out.
        steps : int

        Returns
        -------
        numpy.ndarray, float32, shape (steps, Y, X)
        """
        from dynacell.forecast.frames import rollout

        return rollout(self.predict, frames, self.k, steps)


class PositionForecaster:
    """A position network with its card.

    Parameters
    ----------
    net : torch.nn.Module
        A :class:`~dynacell.models.forecast.PositionTransformer`.
    card : PositionForecastCard
    path : Path, optional
    """

    def __init__(self, net: Any, card: PositionForecastCard, path: Path | None = None) -> None:
        self.net, self.card, self.path = net.eval(), card, path
        self.history = int(card.history)
        self.ndim = int(card.ndim)

    def __repr__(self) -> str:
        return f"PositionForecaster({self.card.name!r}, history={self.history}, ndim={self.ndim})"

    def _scale(self, steps: np.ndarray) -> np.ndarray:
        if self.card.step_scale_um > 0:
            return np.full((len(steps), 1, 1), self.card.step_scale_um)
        s = np.linalg.norm(steps, axis=2).mean(axis=1)
        return np.maximum(s, 1e-6).reshape(-1, 1, 1)

    def predict(self, past_um: np.ndarray, horizon: int = 1, batch_size: int = 8192) -> np.ndarray:
        """Next positions (µm) of each history; beyond the trained horizon, roll out step by step.

        Parameters
        ----------
        past_um : numpy.ndarray, shape (N, L, D)
            The last L positions of each track in µm, L = ``self.history``, D = ``self.ndim``.
        horizon : int
        batch_size : int

        Returns
        -------
        numpy.ndarray, float64, shape (N, horizon, D)

        Raises
        ------
        InvalidInputError
            If the histories have another length or dimensionality.
        """
        from dynacell.models.runtime import forward_batched

        past = np.asarray(past_um, dtype=np.float64)
        if past.ndim != 3 or past.shape[1:] != (self.history, self.ndim):
            raise InvalidInputError(
                f"model {self.card.name!r} needs histories (N, {self.history}, {self.ndim}) in µm, got {past.shape}")
        if len(past) == 0:
            return np.zeros((0, horizon, self.ndim))
        out = []
        while sum(o.shape[1] for o in out) < horizon:
            steps = np.diff(past, axis=1)
            s = self._scale(steps)
            rel = forward_batched(self.net, (steps / s).astype(np.float32), batch_size=batch_size).astype(np.float64)
            pos = past[:, -1:, :] + rel * s
            out.append(pos)
            past = np.concatenate([past, pos], axis=1)[:, -self.history:]
        return np.concatenate(out, axis=1)[:, :horizon]


def available_models() -> list[str]:
    """Names of the shipped forecast models.

    Returns
    -------
    list of str
        Sorted names.
    """
    from dynacell.models.runtime import shipped_models

    return shipped_models(PRETRAINED_DIR)


def _card_class(folder: Path) -> type[ModelCard]:
    import yaml

    try:
        task = (yaml.safe_load((folder / CARD_FILE).read_text(encoding="utf-8")) or {}).get("task")
    except (OSError, yaml.YAMLError) as exc:
        raise FormatError(f"{folder / CARD_FILE}: cannot read the model card ({exc})") from None
    if task == "forecast-frames":
        return FrameForecastCard
    if task == "forecast-positions":
        return PositionForecastCard
    raise FormatError(f"{folder / CARD_FILE}: task {task!r} is not a forecast model "
                      "(expected 'forecast-frames' or 'forecast-positions')")


def from_folder(path: str | Path, *, verify: bool = True) -> FrameForecaster | PositionForecaster:
    """Load a forecast model folder (``model.yaml`` + ``weights.pt``).

    Parameters
    ----------
    path : str or Path
    verify : bool
        Check the SHA-256 of the weights against the card.

    Returns
    -------
    FrameForecaster or PositionForecaster
        According to the card's task.

    Raises
    ------
    FormatError
        For a missing or invalid card, unknown architecture, weights that do not match the card.
    """
    from dynacell.models.forecast import FRAME_ARCHITECTURES, POSITION_ARCHITECTURES
    from dynacell.models.runtime import load_model_folder

    folder = Path(path)
    if not (folder / CARD_FILE).is_file():
        raise FormatError(f"{folder}: not a model folder (no {CARD_FILE})")
    cls = _card_class(folder)
    table = FRAME_ARCHITECTURES if cls is FrameForecastCard else POSITION_ARCHITECTURES

    def build(card):
        if card.architecture not in table:
            raise FormatError(f"{folder / CARD_FILE}: unknown architecture {card.architecture!r}; known: {sorted(table)}")
        return table[card.architecture](**card.model_kwargs)

    net, card = load_model_folder(folder, cls, build, verify=verify)
    if cls is FrameForecastCard:
        return FrameForecaster(net, card, folder)
    return PositionForecaster(net, card, folder)


def from_pretrained(name: str) -> FrameForecaster | PositionForecaster:
    """Load a shipped forecast model by name (see :func:`available_models`).

    Parameters
    ----------
    name : str
        A shipped model's name.

    Returns
    -------
    FrameForecaster or PositionForecaster
        The model, by its card's task.

    Raises
    ------
    InvalidInputError
        For an unknown name (the message lists the shipped models).
    """
    from dynacell.models.runtime import shipped_model_folder

    return from_folder(shipped_model_folder(name, PRETRAINED_DIR, "forecast"))


def resolve_model(name_or_path: str | Path):
    """A next-frame method or shipped model by name, else a model folder by path.

    Parameters
    ----------
    name_or_path : str or Path
        A method of :data:`FRAME_METHODS`, a shipped model's name, or a model folder.

    Returns
    -------
    FrameForecaster, PositionForecaster or MotionCompensatedForecaster
        A method (:data:`FRAME_METHODS`) comes unfitted: fit it on the movie's past first.

    Raises
    ------
    InvalidInputError
        If it is neither a method, a shipped name nor an existing folder.
    """
    p = Path(name_or_path)
    if str(name_or_path) in FRAME_METHODS:
        from dynacell.forecast.motion import MotionCompensatedForecaster

        modulate = "brightness" if str(name_or_path) == "frames-mc-brightness" else None
        return MotionCompensatedForecaster(name=str(name_or_path), modulate=modulate)
    if str(name_or_path) in available_models():
        return from_pretrained(str(name_or_path))
    if p.is_dir():
        return from_folder(p)
    raise InvalidInputError(f"model {str(name_or_path)!r} is neither a forecast method ({sorted(FRAME_METHODS)}), "
                            f"a shipped forecast model ({available_models()}) nor a model folder")
