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

from dynacell.errors import InvalidInputError
from dynacell.states.card import StateModelCard

__all__ = ["PRETRAINED_DIR", "StateClassifier", "available_models", "load_model", "resolve_model"]

logger = logging.getLogger(__name__)

#: Dimensionalities whose CPU inference copy runs as a TorchScript graph optimised for inference
#: (:func:`dynacell.models.runtime.inference_graph`; see :meth:`StateClassifier._inference_net`).
_GRAPH_NDIMS: tuple[int, ...] = (2,)
#: Architectures whose forward pass has no branch on the input's values (a trace holds for every input).
_GRAPH_ARCHITECTURES: tuple[str, ...] = ("dcnet",)

#: Folder of the models shipped inside the package.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


#: The state model a run uses when none is named, by the movie's spatial dimensionality (the one home of
#: the default: ``dynacell run``, ``dynacell evaluate`` and the speed benchmark read it here). In 2D the
#: default is the recipe that generalises best to a dataset it never saw (leave-one-dataset-out,
#: docs/states-generalisation.md); ``nuclei-2d`` (real data only) stays available by name.
DEFAULT_MODELS: dict[int, str] = {2: "nuclei-2d-general", 3: "nuclei-3d"}


def default_model(ndim: int) -> str:
    """The name of the state model used when none is given.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality of the movie or of the crops.

    Returns
    -------
    str
        A shipped model name (:data:`DEFAULT_MODELS`).

    Raises
    ------
    InvalidInputError
        If ``ndim`` is neither 2 nor 3.
    """
    if int(ndim) not in DEFAULT_MODELS:
        raise InvalidInputError(f"no default state model for {ndim}D data; state models are 2D or 3D")
    return DEFAULT_MODELS[int(ndim)]


def available_models() -> list[str]:
    """Names of the shipped models (folders of ``PRETRAINED_DIR`` holding a ``model.yaml``), sorted.

    Returns
    -------
    list of str
        E.g. ``["nuclei-2d", "nuclei-2d-general", "nuclei-3d"]``.
    """
    from dynacell.models.runtime import shipped_models

    return shipped_models(PRETRAINED_DIR)


class StateClassifier:
    """A loaded nucleus state classifier: a torch model, its card and its temperature.

    Use :func:`load_model` to make one.

    Attributes
    ----------
    classes : tuple of str
        Class names in output order (a prefix-free subset of :data:`dynacell.STATES`).
    card : StateModelCard
        The validated model card (``model.yaml``).
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
    max_forward_crops : int
        Most crops per forward pass (about 2**18 crop voxels on CPU; unbounded on a GPU).
    """

    def __init__(self, model: Any, card: StateModelCard, path: Path, device: str = "cpu") -> None:
        self.model = model.eval()
        self._net: Any = None  # the inference copy of `model` (see _inference_net)
        self.card = card
        self.path = path
        self.device = device
        self.classes: tuple[str, ...] = tuple(card.classes)
        self.ndim: int = int(card.ndim)
        self.crop_size: tuple[int, ...] = tuple(int(s) for s in card.crop_size_px)
        self.temperature: float = float(card.temperature)
        self.channels: tuple[int, ...] = tuple(card.model_channels)
        #: Physical crop voxel (µm) when the model resamples crops to a fixed voxel size.
        self.target_voxel_um = card.target_voxel_um
        #: Whether the model reads the segmentation-context channels (6-channel crops).
        self.context: bool = max(self.channels) >= 4
        self.n_input_channels: int = 6 if self.context else 4
        #: Most crops per forward pass (the ``batch_size`` of the predict methods is capped to it): about
        #: 2**18 crop voxels on CPU, where smaller passes keep the feature maps in cache — nuclei-2d (48²) 113
        #: crops: 2,264 crops per CPU-s against 1,748 at 256; the 24³ nuclei-3d of 30 Nov 18: 365–381 against
        #: 311 at 64 (one thread, benchmarks/classify.py); the 16³ nuclei-3d of 1 Dec 64 (about 0.95 ms a crop);
        #: the logits do not depend on it.
        self.max_forward_crops: int = (max(8, 2 ** 18 // int(np.prod(self.crop_size))) if device == "cpu"
                                       else 1 << 30)

    @property
    def name(self) -> str:
        """The model's name (card ``name``)."""
        return str(self.card.name)

    def __repr__(self) -> str:
        return (f"StateClassifier(name={self.name!r}, architecture={self.card.architecture!r}, "
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
        from dynacell.models.runtime import forward_batched

        x = np.asarray(x, dtype=np.float32)
        self._check(x)
        if len(x) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return forward_batched(self._inference_net(), x, batch_size=min(int(batch_size), self.max_forward_crops),
                               device=self.device, channels=self.channels)

    def _inference_net(self) -> Any:
        """The network that :meth:`predict_logits` runs: a copy of :attr:`model` made at the first prediction.

        On CPU every BatchNorm is folded into its convolution (:func:`dynacell.models.runtime.fuse_conv_bn`)
        and the weights are stored channels-last, so the convolutions run in that layout: the same logits
        to float rounding (≤ 1e-5 on the shipped models), about 1.5× the crops per CPU-second in 2D and
        3D (``benchmarks/classify.py``, one thread). A 2D ``dcnet`` (a straight-line forward pass) then runs
        as PyTorch's TorchScript graph frozen and optimised for inference
        (:func:`dynacell.models.runtime.inference_graph`: oneDNN convolutions with prepacked weights), made
        once per process for the same weights: the same logits to 1e-5, about 20 % fewer CPU-s per crop for
        nuclei-2d, 0.03–0.05 CPU-s to make. 3D stays eager: the 4ncnn nuclei-3d gains ~40 % per crop, but the
        real 3D movies hold so few nuclei that making the graph costs as much (mouse-8cell slower, CHO 02
        faster; docs/states-generalisation.md, 1 Dec, session 13). :attr:`model` itself is left as loaded
        (training, export); changing it after the first prediction needs ``self._net = None``.
        """
        if self._net is None:
            import copy

            import torch

            from dynacell.models.runtime import fuse_conv_bn, inference_graph

            net = self.model.eval()
            if self.device == "cpu":
                net = fuse_conv_bn(copy.deepcopy(net))
                net = net.to(memory_format=torch.channels_last if self.ndim == 2 else torch.channels_last_3d)
                if self.ndim in _GRAPH_NDIMS and self.card.architecture in _GRAPH_ARCHITECTURES:
                    net = inference_graph(net, (len(self.channels), *self.crop_size))
            self._net = net
        return self._net

    @classmethod
    def from_pretrained(cls, name: str, device: str = "cpu") -> StateClassifier:
        """Load a shipped model by name (``nuclei-2d``, ``nuclei-3d``; see :func:`available_models`).

        Raises
        ------
        InvalidInputError
            If no shipped model has that name (the message lists them).
        FormatError
            If its folder is damaged.
        """
        from dynacell.models.runtime import shipped_model_folder

        return cls.from_folder(shipped_model_folder(name, PRETRAINED_DIR, "state"), device=device)

    @classmethod
    def from_folder(cls, path: str | Path, device: str = "cpu", verify: bool = True) -> StateClassifier:
        """Load a model folder (``weights.pt`` + ``model.yaml``), validating the card and the weights' sha256.

        Raises
        ------
        FormatError
            If a file is missing, the card is invalid (names the file and field), the weights do not
            match the card's sha256, or the weights do not fit the architecture.
        """
        from dynacell.models import build_model
        from dynacell.models.runtime import load_model_folder

        path = Path(path)
        model, card = load_model_folder(
            path, StateModelCard, lambda c: build_model(c.architecture, c.ndim, in_channels=len(c.model_channels),
                                                        n_classes=len(c.classes), **c.model_kwargs),
            device=device, verify=verify)
        return cls(model, card, path, device)

    def predict_proba(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Calibrated class probabilities of crops.

        Parameters
        ----------
        x : numpy.ndarray, float32, shape (N, n_input_channels, *crop_size)
            Crops ``[t−1, t, t+1, mask(, seg t−1, seg t+1)]`` from :func:`dynacell.samples.crop_window`.
        batch_size : int
            Crops per forward pass (at most :attr:`max_forward_crops`).

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
        from dynacell.models.runtime import softmax

        return softmax(self.predict_logits(x, batch_size), self.temperature).astype(np.float32)

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
        ``"no shipped state model NAME; shipped: ..."`` if the name is neither a shipped model nor a
        folder (the one message of every task, :func:`dynacell.models.runtime.shipped_model_folder`).
    FormatError
        If the folder misses a file, the card is invalid or the weights do not match it.
    """
    from dynacell.models.runtime import shipped_model_folder

    p = Path(name_or_path)
    folder = p if p.is_dir() else shipped_model_folder(str(name_or_path), PRETRAINED_DIR, "state")
    return StateClassifier.from_folder(folder, device=device, verify=verify)


def resolve_model(model: Any, ndim: int, device: str) -> tuple[Any, str]:
    """The state classifier of a run: by name, folder, object, or the default for the data.

    Parameters
    ----------
    model : str, Path, StateClassifier or None
        A shipped model name (:func:`available_models`), a model folder, an already loaded
        classifier (any object with ``classes``, ``predict_proba`` and ``crop_size``), or None for
        the default :func:`default_model` of ``ndim``.
    ndim : {2, 3}
        Spatial dimensionality of the movie.
    device : str
        Resolved torch device (``"cpu"`` / ``"cuda"``).

    Returns
    -------
    tuple
        ``(classifier, name)``.

    Raises
    ------
    InvalidInputError
        If the name is neither a shipped model nor an existing folder (:func:`load_model`'s message,
        which lists the shipped models), or the model's dimensionality differs from the movie's.
    """
    from dynacell.states.classify import model_ndim

    if model is None or isinstance(model, (str, Path)):
        name = str(model) if model is not None else default_model(ndim)
        clf = load_model(name, device=device)
        name = clf.name
    else:
        clf, name = model, str(getattr(model, "name", type(model).__name__))
    nd = model_ndim(clf)
    if nd is not None and nd != ndim:
        raise InvalidInputError(
            f"model {name!r} is a {nd}D model but the movie is {ndim}D; use a {ndim}D model (e.g. {default_model(ndim)})"
        )
    return clf, name
