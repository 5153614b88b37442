"""``dynacell models list``: the shipped state classifiers and their held-out metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import overwrite_option


def _lodo_summary(lodo: dict) -> str:
    """``dataset value`` pairs of a card's ``metrics.leave_one_dataset_out`` (seed 0 where several seeds are given).

    Parameters
    ----------
    lodo : dict
        The card's leave-one-dataset-out block: per held-out dataset a mapping with ``macro_f1`` (a number, or
        a mapping of seeds to numbers); other entries (``what``, ``command``, ...) are skipped.

    Returns
    -------
    str
        E.g. ``"bacteria-phc 0.753, hela02 0.723, gowt1 0.493"``; ``"–"`` when the card has none.
    """
    parts = []
    for dataset, figures in lodo.items():
        if not isinstance(figures, dict) or "macro_f1" not in figures:
            continue
        f1 = figures["macro_f1"]
        if isinstance(f1, dict):
            f1 = f1.get("seed_0", next(iter(f1.values()), None))
        if isinstance(f1, (int, float)):
            parts.append(f"{dataset} {f1:.3f}")
    return ", ".join(parts) or "–"


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
        from rich.console import Console
        from rich.table import Table

        from dynacell.cards import read_yaml_mapping
        from dynacell.states.registry import PRETRAINED_DIR, available_models

        table = Table(title="dynacell state classifiers (held-out test side of the card; a new dataset: leave-one-dataset-out)")
        for col in ("name", "architecture", "ndim", "crop px", "classes", "macro-F1", "bal. acc.", "ECE", "n test",
                    "split", "new dataset (LODO macro-F1)"):
            table.add_column(col)
        for name in available_models():
            card = read_yaml_mapping(PRETRAINED_DIR / name / "model.yaml", "model card")
            test = card.get("metrics", {}).get("test", {})
            split = card.get("split", {})
            table.add_row(name, str(card.get("architecture")), str(card.get("ndim")),
                          "×".join(map(str, card.get("crop_size_px", []))), ",".join(card.get("classes", [])),
                          f"{test.get('macro_f1', float('nan')):.3f}", f"{test.get('balanced_accuracy', float('nan')):.3f}",
                          f"{test.get('ece') or float('nan'):.3f}", str(test.get("n", "")),
                          f"test {split.get('group_column')} {'+'.join(split['test_groups'])}" if split.get("test_groups")
                          else f"by {split.get('by')} seed {split.get('seed')}",
                          _lodo_summary(card.get("metrics", {}).get("leave_one_dataset_out") or {}))
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
