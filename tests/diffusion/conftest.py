"""Fixtures of the diffusion tests: a tiny trained model folder."""

from __future__ import annotations


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
