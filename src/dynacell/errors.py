"""Exceptions raised by dynacell.

Every user-facing error derives from :class:`DynacellError`. Bad input raises
:class:`InvalidInputError`, which is also a :class:`ValueError` so that generic
callers can catch it. Messages say which input, what was expected, what was found
and what to do; the CLI prints them on one line and exits non-zero.
"""

from __future__ import annotations

__all__ = ["DynacellError", "InvalidInputError", "FormatError", "OutputExistsError"]


class DynacellError(Exception):
    """Base class of every error dynacell raises on purpose."""


class InvalidInputError(DynacellError, ValueError):
    """Input data or arguments are malformed, inconsistent or of the wrong kind."""


class FormatError(InvalidInputError):
    """A file could not be read as the format it claims (truncated, malformed, unknown)."""


class OutputExistsError(DynacellError, FileExistsError):
    """An output path exists and overwriting was not asked for (``--overwrite``)."""
