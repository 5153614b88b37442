"""Running a network: device choice, batched forward passes, softmax, loading weights.

The one home of these helpers for every task's inference (states, segmentation, forecasting,
diffusion) and for the training engine's evaluation; inference code imports this module, never
:mod:`dynacell.train`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["resolve_device", "forward_batched", "softmax", "load_state_dict", "load_model_folder", "shipped_models",
           "shipped_model_folder",
           "fuse_conv_bn", "inference_graph", "threads_beside_worker"]

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
    if channels is not None and x.ndim > 1 and list(channels) == list(range(x.shape[1])):
        channels = None  # every channel in order: no copy of the batch
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

    Parameters
    ----------
    path : path
        The weights file (``weights.pt``).
    device : str
        Torch device the tensors are mapped to.

    Returns
    -------
    dict
        Parameter and buffer names to tensors.

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


def shipped_models(pretrained_dir: str | Path) -> list[str]:
    """Names of the model folders (holding a ``model.yaml``) in a task's ``pretrained/`` folder, sorted.

    Parameters
    ----------
    pretrained_dir : path
        The task's folder of shipped models.

    Returns
    -------
    list of str
        Folder names; empty when the folder does not exist.
    """
    root = Path(pretrained_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "model.yaml").is_file())


def shipped_model_folder(name: str, pretrained_dir: str | Path, task: str) -> Path:
    """The folder of the shipped model ``name`` of one task (the one check behind every ``from_pretrained``).

    Parameters
    ----------
    name : str
        A shipped model's name (a folder of ``pretrained_dir`` holding a ``model.yaml``).
    pretrained_dir : path
        The task's folder of shipped models.
    task : str
        The task's word for the message (``"state"``, ``"segmentation"``, ``"diffusion"``, ``"forecast"``).

    Returns
    -------
    pathlib.Path
        ``pretrained_dir / name``.

    Raises
    ------
    InvalidInputError
        ``"no shipped {task} model {name!r}; shipped: a, b, c"`` when no shipped model has that name.
    """
    names = shipped_models(pretrained_dir)
    if str(name) not in names:
        raise InvalidInputError(f"no shipped {task} model {str(name)!r}; shipped: {', '.join(names) or 'none'}")
    return Path(pretrained_dir) / str(name)


def load_model_folder(folder: str | Path, card_cls: type, build: Any, *, device: str = "cpu",
                      verify: bool = True) -> tuple[Any, Any]:
    """Load a model folder of any task: validate its card, check the weights' SHA-256, build and load the network.

    Parameters
    ----------
    folder : path
        Folder with ``model.yaml`` and ``weights.pt``.
    card_cls : type
        The task's :class:`dynacell.cards.ModelCard` subclass.
    build : callable
        ``build(card) -> torch.nn.Module``: the untrained network the card describes.
    device : str
        Resolved torch device.
    verify : bool
        Compare the weights' SHA-256 with the card's ``weights_sha256``.

    Returns
    -------
    network : torch.nn.Module
        On ``device``, in eval mode.
    card : ModelCard
        The validated card.

    Raises
    ------
    dynacell.errors.FormatError
        Invalid card (names the file and field), missing weights, a SHA-256 mismatch, or weights that
        do not fit the network.
    """
    from dynacell.cards import WEIGHTS_FILE, load_card, sha256_file
    from dynacell.errors import FormatError

    folder = Path(folder)
    card = load_card(folder, card_cls)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FormatError(f"model folder {folder} has no {WEIGHTS_FILE}; a model folder holds weights.pt and model.yaml")
    if verify and sha256_file(weights) != card.weights_sha256:
        raise FormatError(f"{weights}: SHA-256 does not match the card's weights_sha256 ({folder / 'model.yaml'}); "
                          "the weights were changed or corrupted: retrain or restore the folder")
    try:
        net = build(card)
        net.load_state_dict(load_state_dict(weights, device))
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{weights} could not be loaded into a {card.architecture!r} model: {exc}") from None
    return net.to(device).eval(), card


def fuse_conv_bn(net: Any) -> Any:
    """Fold every BatchNorm that directly follows a convolution into it (inference only).

    Two places are folded: consecutive ``conv, BatchNorm`` items of an ``nn.Sequential``, and the
    ``(conv, BatchNorm)`` attribute pairs a module lists in its ``conv_bn_pairs`` class attribute
    (e.g. :class:`dynacell.models.dcnet.ConvBlock`, whose forward is ``bn1(conv1(x))``).

    The convolution's weights and bias absorb the BatchNorm's running statistics and affine
    parameters (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`) and the BatchNorm becomes an
    ``nn.Identity``: the same outputs up to float rounding, one pass over the feature map fewer
    per block (a 700×1100 HeLa frame through ``nuclei-seg-2d``: about 20 % less CPU time).

    Parameters
    ----------
    net : torch.nn.Module
        A network in eval mode (its BatchNorms use running statistics).

    Returns
    -------
    torch.nn.Module
        ``net``, modified in place.

    Raises
    ------
    InvalidInputError
        If ``net`` is in training mode (batch statistics cannot be folded).
    """
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if net.training:
        raise InvalidInputError("fuse_conv_bn: the network is in training mode; call net.eval() first")
    convs = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    for mod in net.modules():
        for conv_name, bn_name in getattr(mod, "conv_bn_pairs", ()):
            conv, bn = getattr(mod, conv_name), getattr(mod, bn_name)
            if isinstance(conv, convs) and isinstance(bn, norms) and bn.track_running_stats:
                setattr(mod, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(mod, bn_name, torch.nn.Identity())
        if not isinstance(mod, torch.nn.Sequential):
            continue
        for i in range(len(mod) - 1):
            conv, bn = mod[i], mod[i + 1]
            if isinstance(conv, convs) and isinstance(bn, norms) and bn.track_running_stats:
                mod[i] = fuse_conv_bn_eval(conv, bn)
                mod[i + 1] = torch.nn.Identity()
    return net




#: Graphs made by :func:`inference_graph` in this process, by the network's class, input shape and weights.
_GRAPHS: dict[tuple, Any] = {}


@functools.cache
def _graph_module() -> tuple[type, type]:
    """The module classes of :func:`inference_graph`, defined at first use (torch is imported lazily)."""
    import torch

    class TracedForward(torch.nn.Module):
        """Holds a traced function so that TorchScript can freeze and optimise it as a module."""

        def __init__(self, fn: Any) -> None:
            super().__init__()
            self.fn = fn

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fn(x)

    class InferenceGraph(torch.nn.Module):
        """A frozen, optimised TorchScript graph run as it is: the graph executor's own profiling and
        re-optimisation passes are off (``torch.jit.optimized_execution(False)``), so the first call costs what
        the others do (fresh process, nuclei-2d, 113 crops: 0.03–0.04 CPU-s instead of 0.09–0.12)."""

        def __init__(self, graph: Any) -> None:
            super().__init__()
            self.graph = graph

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.jit.optimized_execution(False):
                return self.graph(x)

    return TracedForward, InferenceGraph


def inference_graph(net: Any, example_shape: tuple[int, ...], *, atol: float = 1e-5) -> Any:
    """``net`` as a TorchScript graph frozen and optimised for CPU inference by PyTorch, made once per process.

    The network's forward pass on a batch of 2 random inputs is traced as a function
    (:func:`torch.jit.trace`: the weights become constants; tracing the module itself would wrap each of its
    submodules, 3× the time), frozen (:func:`torch.jit.freeze`) and passed through
    :func:`torch.jit.optimize_for_inference`, which hands the convolutions to oneDNN with prepacked weights.
    The graph is checked against ``net`` on another batch size (largest difference at most ``atol`` times the
    largest output, at least 1) and kept for the process under the network's class, the input shape and a
    digest of its weights and buffers: a second classifier with the same weights reuses it, a changed network
    gets a new graph. ``net`` itself is returned when tracing fails or the check does not hold (e.g. a forward
    that fixes the batch size), and for a network off the CPU. A trace records one path through the forward
    pass: a network that branches on its input's *values* must not be passed.

    TorchScript is deprecated in torch 2.13; its deprecation warnings are silenced here as in
    :mod:`dynacell.export.bioimageio`, and where it is gone ``net`` is returned.

    Parameters
    ----------
    net : torch.nn.Module
        A CPU network in eval mode taking one float32 tensor ``(N, *example_shape)`` (BatchNorms already
        folded where wanted, see :func:`fuse_conv_bn`).
    example_shape : tuple of int
        Shape of one input without the batch axis; the batch size stays free.
    atol : float
        Relative tolerance of the check.

    Returns
    -------
    torch.nn.Module
        The optimised graph (run without the executor's re-optimisation), or ``net`` itself.

    Raises
    ------
    InvalidInputError
        If ``net`` is in training mode.
    """
    import hashlib
    import warnings

    import torch

    if net.training:
        raise InvalidInputError("inference_graph: the network is in training mode; call net.eval() first")
    params = list(net.parameters())
    tensors = [*params, *net.buffers()]
    if any(t.device.type != "cpu" for t in tensors):
        return net
    digest = hashlib.sha1()
    for t in tensors:
        digest.update(str((tuple(t.shape), t.dtype)).encode())
        digest.update(t.detach().contiguous().numpy().tobytes())
    key = (type(net).__module__, type(net).__qualname__, tuple(int(s) for s in example_shape), digest.hexdigest())
    if key in _GRAPHS:
        return _GRAPHS[key]
    x = torch.from_numpy(np.random.default_rng(0).random((5, *key[2]), dtype=np.float32))
    traced_forward, inference_module = _graph_module()
    graph = net
    grads = [p.requires_grad for p in params]
    threads = torch.get_num_threads()
    try:
        # made on one thread: each of the few small operations of tracing, prepacking and the check would
        # otherwise open a parallel region (2 threads on a busy 2-core machine: 0.5-0.9 CPU-s instead of 0.04)
        torch.set_num_threads(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for p in params:  # a traced function holds the weights as constants, which must not need gradients
                p.requires_grad_(False)
            fn = torch.jit.trace(lambda t: net(t), x[:2], check_trace=False)
            frozen = torch.jit.freeze(torch.jit.script(traced_forward(fn)).eval())
            opt = inference_module(torch.jit.optimize_for_inference(frozen))
            with torch.inference_mode():
                ref, got = net(x[2:]), opt(x[2:])  # another batch size than traced: the graph must not fix it
        if got.shape == ref.shape and float((got - ref).abs().max()) <= atol * max(1.0, float(ref.abs().max())):
            graph = opt
    except Exception:  # noqa: BLE001 - any failure of TorchScript leaves the eager network in use
        graph = net
    finally:
        torch.set_num_threads(threads)
        for p, g in zip(params, grads):
            p.requires_grad_(g)
    _GRAPHS[key] = graph
    return graph


@contextmanager
def threads_beside_worker(workers: int = 1) -> Iterator[int]:
    """Run torch on the CPU threads a background worker leaves free, for the ``with`` block.

    The classify step cuts the next frames' crops in a background thread while the network runs
    (:func:`dynacell.states.classify.classify_movie`); with torch's default of one thread per core the two
    compete for the cores. Inside the block torch uses ``max(1, threads - workers)`` threads
    (:func:`torch.set_num_threads`); the count before is restored on exit, also after an error.
    Measured on GOWT1 01 (2D, 2,052 nuclei, 2 cores, quiet machine): the classify step 1.52–1.95 → 1.23–1.60 s
    wall with one model thread beside the crop thread, the same calls (docs/states-generalisation.md,
    "End to end, thirteenth pass").

    Parameters
    ----------
    workers : int
        Threads the caller keeps busy beside torch (>= 0).

    Yields
    ------
    int
        The torch thread count inside the block.

    Raises
    ------
    InvalidInputError
        If ``workers < 0``.
    """
    import torch

    if int(workers) < 0:
        raise InvalidInputError(f"threads_beside_worker: workers must be >= 0, got {workers!r}")
    before = torch.get_num_threads()
    inside = max(1, before - int(workers))
    if inside != before:
        torch.set_num_threads(inside)
    try:
        yield inside
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
