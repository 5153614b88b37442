"""Nucleus states: the pretrained classifier registry and whole-movie classification.

:func:`available_models` and :func:`load_model` return a :class:`StateClassifier`
(``classes``, ``card``, ``ndim``, ``crop_size``, ``predict_proba``);
:func:`classify_movie` (in :mod:`dynacell.states.classify`) classifies every nucleus of a movie.
"""

from typing import Any

from dynacell.states.registry import PRETRAINED_DIR, StateClassifier, available_models, default_model, load_model

__all__ = ["PRETRAINED_DIR", "StateClassifier", "available_models", "classify_movie", "default_model", "load_model"]


def __getattr__(name: str) -> Any:
    if name == "classify_movie":
        from dynacell.states.classify import classify_movie

        return classify_movie
    raise AttributeError(f"module 'dynacell.states' has no attribute {name!r}")
