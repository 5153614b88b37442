"""Exceptions raised by dynacell.

Every user-facing error derives from :class:`DynacellError`. Bad input raises
:class:`InvalidInputError`, which is also a :class:`ValueError` so that generic
callers can catch it. Messages say which input, what was expected, what was found
and what to do; the CLI prints them on one line and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DynacellError", "InvalidInputError", "FormatError", "OutputExistsError", "input_role",
           "validation_problems"]


class DynacellError(Exception):
    """Base class of every error dynacell raises on purpose."""


class InvalidInputError(DynacellError, ValueError):
    """Input data or arguments are malformed, inconsistent or of the wrong kind."""


class FormatError(InvalidInputError):
    """A file could not be read as the format it claims (truncated, malformed, unknown)."""


class OutputExistsError(DynacellError, FileExistsError):
    """An output path exists and overwriting was not asked for (``--overwrite``)."""


@contextmanager
def input_role(role: str) -> Iterator[None]:
    """Prefix the message of an :class:`InvalidInputError` raised in the block with the input's role.

    A job reading several inputs (``dynacell run``: movie, labels, lineage, ground truth) wraps the
    reading of each so that the one-line error says which input is wrong.

    Parameters
    ----------
    role : str
        What the input is, as the user named it, e.g. ``"labels (--labels)"``.

    Yields
    ------
    None
        The block runs with the prefix in force.

    Raises
    ------
    InvalidInputError
        Re-raised as the same class (a :class:`FormatError` stays one) with the message
        ``"{role}: {message}"``, chained to the original.

    Examples
    --------
    >>> try:
    ...     with input_role("movie"):
    ...         raise FormatError("t000.tif: truncated")
    ... except FormatError as exc:
    ...     print(exc)
    movie: t000.tif: truncated
    """
    try:
        yield
    except InvalidInputError as exc:
        raise type(exc)(f"{role}: {exc}") from exc


def validation_problems(exc, *, prefix: str = "", whole: str = "") -> str:
    """One line naming each wrong field of a pydantic ``ValidationError`` and what is wrong with it.

    The one formatting of validation errors in the messages of dynacell (model cards, training
    configurations, run parameters).

    Parameters
    ----------
    exc : pydantic.ValidationError
        The error (anything with pydantic's ``errors()``: dicts with ``loc`` and ``msg``).
    prefix : str
        Written before each field's dotted path (e.g. ``"field "``).
    whole : str
        The name written for an error of the whole document (an empty path).

    Returns
    -------
    str
        ``"{prefix}{a.b}: {msg}; ..."`` in pydantic's order.

    Examples
    --------
    >>> class Exc:
    ...     def errors(self):
    ...         return [{"loc": ("seed",), "msg": "bad"}, {"loc": ("engine", "epochs"), "msg": "too small"}]
    >>> validation_problems(Exc(), prefix="field ")
    'field seed: bad; field engine.epochs: too small'
    """
    return "; ".join(f"{prefix}{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in exc.errors())
