"""When to draw progress bars: :func:`progress_enabled` (no heavy imports; used by every job and command)."""

from __future__ import annotations

import sys

__all__ = ["progress_enabled"]


def progress_enabled(progress: bool | None = None) -> bool:
    """Whether to draw progress bars: ``progress`` when given, else only when stderr is a terminal.

    Parameters
    ----------
    progress : bool or None
        ``True``/``False`` force bars on/off (``--progress/--no-progress``); ``None`` = automatic.

    Returns
    -------
    bool
    """
    if progress is not None:
        return bool(progress)
    return bool(getattr(sys.stderr, "isatty", lambda: False)())
