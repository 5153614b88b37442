"""``dynacell train CONFIG.yaml``: train a nucleus state classifier (see docs/models.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import overwrite_option, progress_option


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """

    @app.command("train")
    def train(
        config: Path = typer.Argument(..., help="training config YAML (dynacell.train.TrainConfig)"),
        overwrite: bool = overwrite_option(),
        progress: bool | None = progress_option(),
    ) -> None:
        """Train a state classifier; writes OUT/NAME/{weights.pt, model.yaml, config.yaml, history.csv}."""
        import json

        from dynacell.train import fit, load_config
        from dynacell.train.engine import progress_enabled

        cfg = load_config(config)
        folder = fit(cfg, overwrite=overwrite, progress=progress_enabled(progress))
        from dynacell.cards import read_yaml_mapping

        card = read_yaml_mapping(folder / "model.yaml", "model card")
        test = card["metrics"]["test"]
        typer.echo(json.dumps({"model": str(folder), "macro_f1": test["macro_f1"],
                               "balanced_accuracy": test["balanced_accuracy"], "ece": test["ece"], "n": test["n"]}))
