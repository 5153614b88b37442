"""``dynacell models list``: the shipped state classifiers and their held-out metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import overwrite_option


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    models_app = typer.Typer(help="Pretrained nucleus state classifiers shipped with dynacell.", no_args_is_help=True)

    @models_app.command("list")
    def list_models() -> None:
        """Print the shipped models: architecture, dims, crop, classes and held-out test metrics."""
        import yaml
        from rich.console import Console
        from rich.table import Table

        from dynacell.states.registry import PRETRAINED_DIR, available_models

        table = Table(title="dynacell state classifiers (held-out test set)")
        for col in ("name", "architecture", "ndim", "crop px", "classes", "macro-F1", "bal. acc.", "ECE", "n test",
                    "split"):
            table.add_column(col)
        for name in available_models():
            card = yaml.safe_load((PRETRAINED_DIR / name / "model.yaml").read_text())
            test = card.get("metrics", {}).get("test", {})
            split = card.get("split", {})
            table.add_row(name, str(card.get("architecture")), str(card.get("ndim")),
                          "×".join(map(str, card.get("crop_size_px", []))), ",".join(card.get("classes", [])),
                          f"{test.get('macro_f1', float('nan')):.3f}", f"{test.get('balanced_accuracy', float('nan')):.3f}",
                          f"{test.get('ece') or float('nan'):.3f}", str(test.get("n", "")),
                          f"test {split.get('group_column')} {'+'.join(split['test_groups'])}" if split.get("test_groups")
                          else f"by {split.get('by')} seed {split.get('seed')}")
        Console(width=200).print(table)

    @models_app.command("show")
    def show(name: str = typer.Argument(..., help="shipped name or model folder")) -> None:
        """Print a model's card (model.yaml)."""
        import yaml

        from dynacell.states import load_model

        typer.echo(yaml.safe_dump(load_model(name).card, sort_keys=False, allow_unicode=True))

    @models_app.command("export")
    def export(
        name: str = typer.Argument(..., help="shipped name (nuclei-2d, nuclei-3d) or model folder"),
        out: Path = typer.Option(..., "-o", "--out", help="output bioimage.io package (.zip)"),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Export a state model to the bioimage.io model format (validated with bioimageio.spec)."""
        from dynacell.export.bioimageio import export_bioimageio

        typer.echo(str(export_bioimageio(name, out, overwrite=overwrite)))

    app.add_typer(models_app, name="models")
