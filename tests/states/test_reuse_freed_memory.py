"""The allocator setting of the classify step (dynacell.states.speed.reuse_freed_memory)."""

from __future__ import annotations

import ctypes
import sys

import pytest

from dynacell.states import speed


class _FakeLibc:
    """Records mallopt calls; returns ``result`` (glibc: 1 = accepted, 0 = refused)."""

    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(speed, "_tuned", False)
    monkeypatch.delenv(speed.MALLOC_TUNE_ENV, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")


def test_sets_both_glibc_thresholds_once(fresh, monkeypatch) -> None:
    libc = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    assert speed.reuse_freed_memory(1 << 20, 3 << 20) is True
    assert libc.calls == [(-3, 1 << 20), (-1, 3 << 20)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert speed.reuse_freed_memory() is True
    assert len(libc.calls) == 2  # set once per process


def test_opt_out_and_refusals_leave_it_off(fresh, monkeypatch) -> None:
    libc = _FakeLibc()
    monkeypatch.setattr(ctypes, "CDLL", lambda name: libc)
    monkeypatch.setenv(speed.MALLOC_TUNE_ENV, "0")
    assert speed.reuse_freed_memory() is False
    assert libc.calls == []
    monkeypatch.delenv(speed.MALLOC_TUNE_ENV)
    libc.result = 0  # a value glibc refuses
    assert speed.reuse_freed_memory() is False
    assert speed._tuned is False

    def no_libc(name):
        raise OSError("not glibc")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert speed.reuse_freed_memory() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert speed.reuse_freed_memory() is False


def test_real_call_is_harmless() -> None:
    import numpy as np

    speed.reuse_freed_memory()  # on this machine: glibc or not, it must not raise
    a = np.ones(5 << 20, np.uint8)  # allocation still works after the setting
    assert int(a.sum()) == 5 << 20
