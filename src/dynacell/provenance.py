"""Run provenance: step timings, peak memory, package versions, host (for ``run.json`` and reports)."""

from __future__ import annotations

import logging
import os
import platform
import time
from contextlib import contextmanager
from typing import Any

from dynacell import __version__

__all__ = ["StepTimer", "versions", "peak_rss_mb", "host"]

logger = logging.getLogger(__name__)

#: Packages whose versions every run records.
RECORDED_PACKAGES = ("numpy", "torch", "dask", "distributed", "laptrack", "traccuracy", "geff", "scikit-image",
                     "tifffile", "zarr", "imageio", "av", "pandas", "networkx", "lightning", "pydantic")


class StepTimer:
    """Wall time (s), CPU time (s) and peak resident memory (MB) after each named step of a job.

    ``timings`` holds the wall-clock seconds of each step, ``cpu_s`` the CPU seconds of this process
    (all its threads, :func:`time.process_time`) over the same step: on a shared machine the wall
    time is an upper bound and the CPU time the figure comparable across runs.

    Examples
    --------
    >>> timer = StepTimer()
    >>> with timer.step("open"):
    ...     pass
    >>> list(timer.timings)
    ['open']
    """

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}

    @contextmanager
    def step(self, name: str):
        """Time the block as step ``name`` (logged at INFO)."""
        logger.info("step %s ...", name)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)
            self.cpu_s[name] = round(time.process_time() - c0, 3)
            self.peak_rss_mb[name] = round(peak_rss_mb(), 1)
            logger.info("step %s done in %.2f s (%.2f CPU-s)", name, self.timings[name], self.cpu_s[name])

    def record(self) -> dict[str, Any]:
        """The timing and memory entries of ``run.json``.

        Returns
        -------
        dict
            ``timings_s`` (wall s per step), ``timings_cpu_s`` (CPU s per step), ``peak_rss_mb`` (the
            process's peak resident memory so far, MB) and ``peak_rss_mb_after_step`` (MB after each step).
        """
        return {"timings_s": self.timings, "timings_cpu_s": self.cpu_s, "peak_rss_mb": round(peak_rss_mb(), 1),
                "peak_rss_mb_after_step": self.peak_rss_mb}


def versions() -> dict[str, str]:
    """Python, dynacell and :data:`RECORDED_PACKAGES` versions (``"not installed"`` when absent).

    Returns
    -------
    dict
        Package name → version string.
    """
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "dynacell": __version__}
    for pkg in RECORDED_PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (``getrusage``; Linux reports KiB).

    Returns
    -------
    float
        Peak resident memory of the process, MB.
    """
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def host() -> dict[str, Any]:
    """Platform string and CPU count.

    Returns
    -------
    dict
        ``platform`` (the platform string) and ``cpus`` (the CPU count).
    """
    return {"platform": platform.platform(), "cpus": os.cpu_count()}
