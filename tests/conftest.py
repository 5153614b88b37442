"""Shared test fixtures: the real data beside the checkout, temporary outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (tests marked 'data' need ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test when it is absent."""
    return _need(SHARED_DATA)


@pytest.fixture(scope="session")
def ctc(shared_data: Path) -> Path:
    """Path of ``../shared/data/ctc``."""
    return _need(shared_data / "ctc")


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``dynacell <args>`` in-process (``_helpers.run_main``); returns (exit code, stdout, stderr)."""
    from _helpers import run_main

    return lambda *args: run_main(monkeypatch, capsys, *args)
