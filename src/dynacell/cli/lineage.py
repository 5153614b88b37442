"""``dynacell lineage``: read a lineage of any supported format and print a JSON summary."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``lineage`` command to ``app``."""
    app.command("lineage")(lineage_command)


def lineage_command(
    path: Path = typer.Argument(
        ..., help="CTC TRA/RES folder or man_track.txt/res_track.txt, BlastoSPIM graph JSON or its folder, "
        "AceTree folder (tTTT-nuclei files), or GEFF store."
    ),
    format: str | None = typer.Option(
        None, "--format", "-f", help="ctc, blastospim, acetree or geff (default: detected from PATH)."
    ),
    rules: str = typer.Option(
        "seed", "--rules", help="Event rules: 'seed' (track ends before the last frame are deaths) or "
        "'annotated-deaths' (deaths only from explicit annotations such as CellDeaths.csv)."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Use only the first N frames of the lineage (tracks are cut there)."
    ),
    geff: Path | None = typer.Option(None, "--geff", help="Also write the lineage to this GEFF store."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --geff output."),
) -> None:
    """Print a JSON summary of a lineage: frames, nodes, tracks, divisions, deaths and the count of every state.

    "deaths" counts explicit death annotations where the data has them (WormGUIDES
    CellDeaths.csv), else the track ends before the last frame labelled death by --rules.
    "frames" is the number of frames spanned (first_frame to the last frame).
    """
    import json

    from dynacell.lineage import EventRules, detect_format, first_frames, read_lineage, summarize, write_geff

    if geff is not None and geff.exists() and not overwrite:
        from dynacell.errors import OutputExistsError

        raise OutputExistsError(f"--geff {geff} exists; pass --overwrite to replace it")
    fmt = format or detect_format(path)
    rule_set = EventRules.preset(rules)
    kw = {"masks": False} if fmt == "ctc" else {}
    lin = read_lineage(path, format=fmt, **kw)
    if frames is not None:
        lin = first_frames(lin, frames)
    payload = {"format": fmt, "rules": rules, **summarize(lin, rule_set)}
    if geff is not None:  # after the summary: a lineage that cannot be labelled writes nothing
        write_geff(lin, geff, overwrite=overwrite)
    typer.echo(json.dumps(payload, indent=2))
