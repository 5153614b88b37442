"""Test-time adaptation of a state classifier's class priors to a new movie (label shift).

How often a nucleus is mitotic or a new daughter differs widely between movies: 2–6 % of the
nuclei of a HeLa or GOWT1 movie, about half of them in a dense bacterial colony. A classifier
trained with class-balanced batches (``balance: sampler``, the shipped recipe) answers as if
the three classes were equally frequent, so on a movie where events are rare it calls too many.
The EM re-estimation of Saerens, Latinne & Decaestecker (2002, *Neural Computation* 14:21–41)
estimates the new movie's class frequencies from the classifier's own probabilities on all of
its nuclei — no labels needed — and corrects every probability by Bayes' rule:

.. math::

    p'(y \\mid x) \\propto p(y \\mid x)\\,\\pi'(y) / \\pi(y), \\qquad
    \\pi'(y) = \\operatorname{mean}_x p'(y \\mid x),

iterated from :math:`\\pi' = \\pi` to a fixed point (each step does not lower the likelihood of
the movie's crops under the shifted prior). :math:`\\pi` is the prior the probabilities refer to:
uniform for a class-balanced model, the training class frequencies otherwise
(:func:`source_prior`). The assumption is pure label shift — ``p(x | y)`` the same in training and
in the new movie — which an out-of-domain movie breaks; measured on leave-one-dataset-out folds
in docs/states-generalisation.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = ["PriorAdaptation", "adapt_priors", "adapt_states_table", "shift_priors", "source_prior"]


@dataclass(frozen=True)
class PriorAdaptation:
    """Result of :func:`adapt_priors`.

    Attributes
    ----------
    proba : numpy.ndarray, float64, shape (N, C)
        Adapted probabilities (with the ``strength`` of the call); rows sum to 1.
    prior : numpy.ndarray, float64, shape (C,)
        Estimated class frequencies of the new data :math:`\\pi'` (sums to 1).
    source_prior : numpy.ndarray, float64, shape (C,)
        The prior :math:`\\pi` the input probabilities referred to.
    n_iter : int
        EM iterations run.
    converged : bool
        Whether the prior moved less than ``tol`` (max abs. change) before ``max_iter``.
    """

    proba: np.ndarray
    prior: np.ndarray
    source_prior: np.ndarray
    n_iter: int
    converged: bool


def _as_prior(p: Any, n_classes: int, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    if p.shape != (n_classes,) or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise InvalidInputError(f"{name} must be {n_classes} positive finite numbers, got {p.tolist()}")
    return p / p.sum()


def shift_priors(proba: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Probabilities under a known class prior: Bayes' rule ``p'(y|x) ∝ p(y|x) · target(y) / source(y)``.

    Parameters
    ----------
    proba : numpy.ndarray, shape (N, C)
        Class probabilities referring to the prior ``source``; rows sum to 1.
    source, target : numpy.ndarray, shape (C,)
        Positive class priors (normalised here). E.g. ``source`` uniform for a class-balanced model
        and ``target`` its training class frequencies: the model's calls as if it had been trained
        on the natural frequencies (the ``train-freq`` variant of ``benchmarks/states_lodo_prior.py``).

    Returns
    -------
    numpy.ndarray, float64, shape (N, C)
        Rows sum to 1.

    Raises
    ------
    InvalidInputError
        If a prior is not C positive finite numbers.
    """
    p = np.asarray(proba, dtype=np.float64)
    n_classes = p.shape[-1]
    w = p * (_as_prior(target, n_classes, "target") / _as_prior(source, n_classes, "source"))
    return w / w.sum(-1, keepdims=True)


def adapt_priors(proba: np.ndarray, source: np.ndarray | None = None, *, max_iter: int = 1000,
                 tol: float = 1e-6, min_prior: float = 1e-4, strength: float = 1.0) -> PriorAdaptation:
    """Re-estimate class priors on unlabelled data and correct the probabilities (EM, Saerens et al. 2002).

    Parameters
    ----------
    proba : numpy.ndarray, shape (N, C)
        Calibrated class probabilities of the N samples of one new data set (one movie), rows
        summing to 1 (renormalised if they do not, e.g. float32 rounding).
    source : numpy.ndarray, shape (C,), optional
        The class prior :math:`\\pi` the probabilities refer to (training frequencies, or uniform
        for a class-balanced model; :func:`source_prior`). Default: uniform.
    max_iter : int
        Most EM iterations.
    tol : float
        Stop when no prior entry moves by more than this.
    min_prior : float
        Floor of every estimated prior entry at each step, before renormalising (so an entry ends
        at least ``min_prior / (1 + C * min_prior)``): a class the data seems not to hold is kept
        possible and the ratio :math:`\\pi'/\\pi` stays finite.
    strength : float
        Exponent :math:`\\lambda \\in [0, 1]` of the final correction,
        :math:`p'(y \\mid x) \\propto p(y \\mid x) (\\pi'(y)/\\pi(y))^\\lambda` (the prior itself is always
        the full EM estimate). 1 is Saerens et al.'s posterior (best for accuracy); smaller values stop
        short of it, which keeps more calls of a rare class (better for macro-F1 when events are rare).

    Returns
    -------
    PriorAdaptation
        Adapted probabilities, the estimated prior, the source prior and the iterations.

    Raises
    ------
    InvalidInputError
        If ``proba`` is not a 2D array of non-negative finite numbers with positive row sums,
        ``source`` is not C positive numbers, ``max_iter < 1`` or ``min_prior`` is outside
        ``[0, 1/C)``, or ``strength`` outside ``[0, 1]``.

    Notes
    -----
    With no samples the input is returned unchanged (prior = source). The fixed point is the
    maximum-likelihood prior of the data under the model (Saerens et al. 2002, section 2.2).
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise InvalidInputError(f"proba must be an (N, C) array of non-negative finite numbers, got shape {p.shape}")
    n_classes = p.shape[1]
    if int(max_iter) < 1:
        raise InvalidInputError(f"max_iter must be >= 1, got {max_iter!r}")
    if not 0.0 <= float(min_prior) < 1.0 / n_classes:
        raise InvalidInputError(f"min_prior must be in [0, 1/C) = [0, {1.0 / n_classes:.3g}), got {min_prior!r}")
    if not 0.0 <= float(strength) <= 1.0:
        raise InvalidInputError(f"strength must be in [0, 1], got {strength!r}")
    pi0 = np.full(n_classes, 1.0 / n_classes) if source is None else _as_prior(source, n_classes, "source")
    if len(p) == 0:
        return PriorAdaptation(p.copy(), pi0.copy(), pi0, 0, True)
    rows = p.sum(1, keepdims=True)
    if np.any(rows <= 0):
        raise InvalidInputError("proba has a row summing to 0")
    p = p / rows
    prior, adapted, converged, it = pi0.copy(), p, False, 0
    for it in range(1, int(max_iter) + 1):
        w = p * (prior / pi0)
        adapted = w / w.sum(1, keepdims=True)
        new = np.maximum(adapted.mean(0), float(min_prior))
        new /= new.sum()
        moved = float(np.max(np.abs(new - prior)))
        prior = new
        if moved < tol:
            converged = True
            break
    w = p * (prior / pi0) ** float(strength)
    adapted = w / w.sum(1, keepdims=True)
    return PriorAdaptation(adapted, prior, pi0, it, converged)


def source_prior(model: Any) -> np.ndarray:
    """The class prior a state classifier's probabilities refer to, from its card.

    Parameters
    ----------
    model : StateClassifier
        A loaded classifier (:func:`dynacell.states.load_model`) with ``classes`` and ``card``.

    Returns
    -------
    numpy.ndarray, float64, shape (C,)
        Uniform when the card's ``balance`` is ``sampler`` or ``loss`` (class-balanced training:
        the network sees every class equally often or equally weighted); otherwise the training
        side's class counts of the card (``training_data.samples.train``), normalised.

    Raises
    ------
    InvalidInputError
        If the model was trained without balancing and its card does not record the training
        counts of every class.
    """
    classes = list(model.classes)
    card = model.card
    if getattr(card, "balance", "sampler") in ("sampler", "loss"):
        return np.full(len(classes), 1.0 / len(classes))
    counts = ((getattr(card, "training_data", None) or {}).get("samples") or {}).get("train") or {}
    if not all(counts.get(c, 0) > 0 for c in classes):
        raise InvalidInputError(f"model {model.name!r} (balance {card.balance!r}) does not record its training class "
                                f"counts for {classes}; give the source prior explicitly")
    return _as_prior([counts[c] for c in classes], len(classes), "training counts")


def adapt_states_table(table: pd.DataFrame, classes: list[str] | tuple[str, ...], source: np.ndarray | None = None,
                       **kwargs: Any) -> tuple[pd.DataFrame, PriorAdaptation]:
    """Adapt the probabilities of a movie's state table (``states.csv``) to the movie's own class priors.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per nucleus from :func:`dynacell.states.classify.classify_movie`, with columns
        ``p_<class>`` for every class of ``classes`` and ``state``.
    classes : sequence of str
        The classifier's classes (its output order); other ``p_*`` columns are left as they are.
    source : numpy.ndarray, shape (C,), optional
        The prior the probabilities refer to (:func:`source_prior`); default uniform.
    **kwargs
        ``max_iter``, ``tol``, ``min_prior`` of :func:`adapt_priors`.

    Returns
    -------
    table : pandas.DataFrame
        A copy with the ``p_<class>`` columns adapted and ``state`` the new argmax.
    result : PriorAdaptation
        The estimated prior and iterations (its ``proba`` is the adapted columns).

    Raises
    ------
    InvalidInputError
        If a ``p_<class>`` column is missing (and as :func:`adapt_priors`).
    """
    cols = [f"p_{c}" for c in classes]
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise InvalidInputError(f"state table lacks the columns {missing}")
    result = adapt_priors(table[cols].to_numpy(dtype=np.float64), source, **kwargs)
    out = table.copy()
    out[cols] = result.proba
    if len(out):
        out["state"] = np.asarray(classes, dtype=object)[result.proba.argmax(1)]
    return out, result
