"""Test-time adaptation of a state classifier's normalisation statistics to a new movie (AdaBN).

A classifier trained on some movies meets a new one whose crops look different: phase contrast
instead of fluorescence, another gain, contrast or texture (covariate shift; the leave-one-dataset-out
diagnosis of docs/states-generalisation.md). Every BatchNorm of the network normalises its input
with the mean and variance it saw in training; AdaBN (Li, Wang, Shi, Liu & Hou 2016, "Revisiting
batch normalization for practical domain adaptation", arXiv:1603.04779) re-estimates those
statistics on the new movie's own crops — no labels, no gradient step, the learned weights
untouched — so that each layer's input is standardised with the statistics of the data it actually
sees. A blend keeps part of the training statistics:

.. math::

    \\mu = \\alpha\\,\\mu_{\\text{movie}} + (1 - \\alpha)\\,\\mu_{\\text{train}}, \\qquad
    \\sigma^2 = \\alpha\\,\\sigma^2_{\\text{movie}} + (1 - \\alpha)\\,\\sigma^2_{\\text{train}}.

The statistics are re-estimated on the unfolded network (its BatchNorms still separate modules);
:class:`dynacell.states.StateClassifier` folds them into the convolutions
(:func:`dynacell.models.runtime.fuse_conv_bn`) only when it first predicts, so the adapted model
is folded with its new statistics. The label-shift counterpart (class frequencies) is
:mod:`dynacell.states.prior`; measured on leave-one-dataset-out folds in docs/states-generalisation.md.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError

__all__ = ["adapt_batchnorm", "adapt_classifier"]


def _batchnorms(net: Any) -> list[Any]:
    import torch

    kinds = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    return [m for m in net.modules() if isinstance(m, kinds) and m.track_running_stats]


def adapt_batchnorm(net: Any, x: np.ndarray, *, alpha: float = 1.0, batch_size: int = 256,
                    channels: tuple[int, ...] | None = None, device: str = "cpu", seed: int = 0,
                    weights: np.ndarray | None = None) -> Any:
    """A copy of ``net`` whose BatchNorm running statistics are re-estimated on the inputs ``x`` (AdaBN).

    Parameters
    ----------
    net : torch.nn.Module
        A network with unfolded BatchNorm layers (``track_running_stats``); it is not modified.
    x : numpy.ndarray, float32, shape (N, C, ...)
        Inputs of the new data set (one movie's crops); labels are never needed.
    alpha : float
        Weight of the new statistics in ``[0, 1]``: 1 replaces the training statistics (AdaBN), 0
        keeps them (the copy then gives the same outputs as ``net``), in between blends mean and
        variance linearly.
    batch_size : int
        Most inputs per forward pass (``x`` is cut into near-equal passes). Each BatchNorm's new
        statistics are the average of its per-pass batch statistics weighted by the passes' sizes, and
        every pass normalises with its own batch statistics, as in training; ``x`` is visited in a
        seeded random order so that each pass mixes the movie's frames and states.
    channels : tuple of int, optional
        Input channels to keep (``x[:, channels]``) before the forward pass, as
        :func:`dynacell.models.runtime.forward_batched` does.
    device : str
        Torch device of ``net``.
    seed : int
        Seed of the visiting order (and of the draw with ``weights``).
    weights : numpy.ndarray, shape (N,), optional
        Non-negative weights of the inputs: the statistics are then estimated on ``N`` inputs drawn
        with replacement with probability proportional to them (e.g. equal total weight per predicted
        class, :func:`adapt_classifier` ``balance``). Default: every input once.

    Returns
    -------
    torch.nn.Module
        The adapted copy, in eval mode, BatchNorms unfolded.

    Raises
    ------
    InvalidInputError
        If ``alpha`` is outside ``[0, 1]``, ``batch_size < 2``, ``x`` holds fewer than 2 inputs,
        ``weights`` are not N non-negative finite numbers with a positive sum, or
        ``net`` has no BatchNorm with running statistics (e.g. one already folded by
        :func:`dynacell.models.runtime.fuse_conv_bn`).
    """
    import torch

    if not 0.0 <= float(alpha) <= 1.0:
        raise InvalidInputError(f"alpha must be in [0, 1], got {alpha!r}")
    if int(batch_size) < 2:
        raise InvalidInputError(f"batch_size must be >= 2 (batch statistics), got {batch_size!r}")
    if len(x) < 2:
        raise InvalidInputError(f"need at least 2 inputs to estimate normalisation statistics, got {len(x)}")
    out = copy.deepcopy(net).eval()
    norms = _batchnorms(out)
    if not norms:
        raise InvalidInputError("the network has no BatchNorm layer with running statistics to adapt "
                                "(adapt before folding them into the convolutions)")
    old = [(bn.running_mean.clone(), bn.running_var.clone(), bn.momentum) for bn in norms]
    for bn in norms:
        bn.reset_running_stats()
        bn.train()  # only the BatchNorms: dropout etc. stay in eval mode
    rng = np.random.default_rng(seed)
    if weights is None:
        order = rng.permutation(len(x))
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape != (len(x),) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise InvalidInputError(f"weights must be {len(x)} non-negative finite numbers with a positive sum")
        order = rng.choice(len(x), size=len(x), p=w / w.sum())
    seen = 0
    with torch.no_grad():
        # near-equal passes (no pass of a single input, which has no variance)
        for idx in np.array_split(order, -(-len(x) // int(batch_size))):
            for bn in norms:  # running = mean of the passes' statistics weighted by their sizes
                bn.momentum = len(idx) / (seen + len(idx))
            seen += len(idx)
            xb = np.asarray(x[np.sort(idx)], dtype=np.float32)
            if channels is not None:
                xb = xb[:, list(channels)]
            out(torch.from_numpy(np.ascontiguousarray(xb)).to(device))
    a = float(alpha)
    for bn, (mean, var, momentum) in zip(norms, old, strict=True):
        bn.running_mean.copy_(a * bn.running_mean + (1.0 - a) * mean)
        bn.running_var.copy_(a * bn.running_var + (1.0 - a) * var)
        bn.momentum = momentum
    return out.eval()


def adapt_classifier(model: Any, crops: np.ndarray, *, alpha: float = 1.0, batch_size: int = 256,
                     balance: bool = False) -> Any:
    """A state classifier whose BatchNorm statistics are adapted to one movie's crops (AdaBN).

    Parameters
    ----------
    model : StateClassifier
        A loaded classifier (:func:`dynacell.states.load_model`); it is not modified.
    crops : numpy.ndarray, float32, shape (N, C, *crop_size)
        The crops of the movie's nuclei (all of them, as the classifier will be asked about), channels
        as :meth:`StateClassifier.predict_proba` takes them.
    alpha : float
        Weight of the movie's statistics (:func:`adapt_batchnorm`).
    batch_size : int
        Crops per forward pass of the estimate.
    balance : bool
        Estimate the statistics on the crops re-weighted so that each class the classifier *calls*
        (argmax of its unadapted probabilities; no labels) carries the same total weight, as in its
        class-balanced training batches. Without it a movie of 95 % stable nuclei moves every
        statistic towards the stable crops' (the label shift of the movie confounds the covariate
        shift AdaBN corrects).

    Returns
    -------
    StateClassifier
        A new classifier (same card, path, device and temperature) over the adapted network; it folds
        the adapted BatchNorms into its convolutions at its first prediction on CPU.

    Raises
    ------
    InvalidInputError
        If the crops do not fit the model, or as :func:`adapt_batchnorm`.
    """
    from dynacell.states.registry import StateClassifier

    crops = np.asarray(crops, dtype=np.float32)
    model._check(crops)
    weights = None
    if balance:
        calls = model.predict_proba(crops).argmax(1)
        weights = 1.0 / np.bincount(calls)[calls]
    net = adapt_batchnorm(model.model, crops, alpha=alpha, batch_size=batch_size, channels=model.channels,
                          device=model.device, weights=weights)
    return StateClassifier(net, model.card, model.path, model.device)
