"""Helpers of the motion tests: run the CLI in-process."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``dynacell <args>`` through ``main()``; return (exit code, stdout, stderr)."""
    from dynacell.cli.main import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["dynacell", "-q", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
