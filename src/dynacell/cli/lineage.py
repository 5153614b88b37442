"""``dynacell lineage``: read a lineage of any supported format and print a JSON summary."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import frame_interval_option, voxel_size_option


def register(app: typer.Typer) -> None:
    """Add the ``lineage`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("lineage")(lineage_command)


def lineage_command(
    path: Path = typer.Argument(
        ..., help="CTC TRA/RES folder or man_track.txt/res_track.txt, BlastoSPIM graph JSON or its folder, "
        "AceTree folder (tTTT-nuclei files), GEFF store, or TrackMate XML file (Fiji)."
    ),
    format: str | None = typer.Option(
        None, "--format", "-f", help="ctc, blastospim, acetree, geff or trackmate (default: detected from PATH)."
    ),
    rules: str = typer.Option(
        "seed", "--rules", help="Event rules: 'seed' (track ends before the last frame are deaths) or "
        "'annotated-deaths' (deaths only from explicit annotations such as CellDeaths.csv)."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Use only the first N frames of the lineage (tracks are cut there)."
    ),
    geff: Path | None = typer.Option(None, "--geff", help="Also write the lineage to this GEFF store."),
    trackmate: Path | None = typer.Option(
        None, "--trackmate", help="Also write the lineage as a TrackMate XML file (open it in Fiji's TrackMate)."),
    voxel_size_um: str | None = voxel_size_option(),
    frame_interval_s: float | None = frame_interval_option(),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --geff / --trackmate output."),
) -> None:
    """Print a JSON summary of a lineage: frames, nodes, tracks, divisions, deaths and the count of every state.

    "deaths" counts explicit death annotations where the data has them (WormGUIDES
    CellDeaths.csv), else the track ends before the last frame labelled death by --rules.
    "frames" is the number of frames spanned (first_frame to the last frame).
    --trackmate writes positions in µm and times in s when --voxel-size-um and
    --frame-interval-s are given (else in pixels and frames).
    """
    import json

    from dynacell.lineage import EventRules, detect_format, first_frames, read_lineage, summarize, write_geff

    from dynacell.cli.options import parse_voxel_size
    from dynacell.errors import OutputExistsError

    for opt, target in (("--geff", geff), ("--trackmate", trackmate)):
        if target is not None and target.exists() and not overwrite:
            raise OutputExistsError(f"{opt} {target} exists; pass --overwrite to replace it")
    vs = parse_voxel_size(voxel_size_um)
    fmt = format or detect_format(path)
    rule_set = EventRules.preset(rules)
    # positions come from the CTC masks; only the TrackMate export needs them
    kw = {"masks": trackmate is not None} if fmt == "ctc" else {}
    lin = read_lineage(path, format=fmt, **kw)
    if frames is not None:
        lin = first_frames(lin, frames)
    payload = {"format": fmt, "rules": rules, **summarize(lin, rule_set)}
    if geff is not None:  # after the summary: a lineage that cannot be labelled writes nothing
        write_geff(lin, geff, overwrite=overwrite)
    if trackmate is not None:
        from dynacell.lineage.formats.trackmate import write_trackmate

        write_trackmate(lin, trackmate, voxel_size_um=vs, frame_interval_s=frame_interval_s, overwrite=overwrite)
    typer.echo(json.dumps(payload, indent=2))
