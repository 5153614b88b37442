"""Exceptions raised by dynacell.

Every user-facing error derives from :class:`DynacellError`. Bad input raises
:class:`InvalidInputError`, which is also a :class:`ValueError` so that generic
callers can catch it. Messages say which input, what was expected, what was found
and what to do; the CLI prints them on one line and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DynacellError", "InvalidInputError", "FormatError", "OutputExistsError", "input_role"]


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
