"""Helpers of the io reliability tests: tiny TIFFs, and a child process with a memory cap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

#: Address-space cap of the memory-capped child processes (imports of numpy, scipy, skimage, zarr
#: and traccuracy take about 0.7 GiB of address space; the inputs are tiny).
MEMORY_CAP_BYTES = 2 * 1024**3


def run_capped(code: str, cap_bytes: int = MEMORY_CAP_BYTES, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python with ``RLIMIT_AS`` = ``cap_bytes``: a blow-up fails, the machine is spared."""
    prelude = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({int(cap_bytes)}, {int(cap_bytes)}))
    """)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout_s, env=env)


def write_stack(path, *, kind: str = "plain", T: int = 12, size: int = 32) -> np.ndarray:
    """A multi-frame TIFF ``(T, size, size)`` uint8: ``plain`` (shaped, uncompressed), ``zlib`` or ``imagej``."""
    data = (np.arange(T * size * size) % 251).astype(np.uint8).reshape(T, size, size)
    if kind == "plain":
        tifffile.imwrite(path, data)
    elif kind == "zlib":
        tifffile.imwrite(path, data, compression="zlib")
    elif kind == "imagej":
        tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TYX"})
    else:
        raise ValueError(kind)
    return data


@pytest.fixture
def capped():
    """:func:`run_capped`: run code in a child Python under a memory cap."""
    return run_capped


@pytest.fixture
def stack_writer():
    """:func:`write_stack`: write a small multi-frame TIFF."""
    return write_stack
