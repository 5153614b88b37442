"""Fixtures of the diffusion tests: a tiny trained model folder and a CLI runner."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A BlurNet trained for 2 batches of 4 stacks through the real training path (a smoke run, ~2 s)."""
    from dynacell.train.diffusion import DiffusionTrainConfig, train_diffusion
    from dynacell.train.engine import EngineConfig

    cfg = DiffusionTrainConfig(name="tiny", architecture="blurnet", model_kwargs={"width": 4}, batch_size=4,
                               batches_per_epoch=2, n_val=8,
                               engine=EngineConfig(monitor="val_nll", mode="min", max_epochs=1, patience=1,
                                                   accelerator="cpu"))
    return train_diffusion(cfg, tmp_path_factory.mktemp("models") / "tiny", progress=False, command="pytest")


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``dynacell <args>``; return (exit code, stdout, stderr)."""
    from dynacell.cli.main import main

    def _run(*args):
        monkeypatch.setattr(sys, "argv", ["dynacell", "-q", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
