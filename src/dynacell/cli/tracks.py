"""CLI commands for tracks: ``dynacell evaluate-tracks`` (CTC measures with traccuracy)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import progress_option, voxel_size_option


def evaluate_tracks_command(
    out: Path = typer.Argument(..., help="A dynacell run output folder (holding ctc/), a CTC result (RES) folder, or "
                                         "point tracks without masks: a TrackMate XML file or a GEFF store."),
    gt: Path = typer.Option(..., "--gt", help="CTC ground truth: the NN_GT folder (holding TRA/) or the TRA folder."),
    frame_buffer: int = typer.Option(1, "--frame-buffer", min=0, help="Division frame tolerance (frames)."),
    all_keys: bool = typer.Option(False, "--all", help="Also print the evaluated frames and counts of every kind."),
    voxel_size_um: str | None = voxel_size_option(),
    progress: bool | None = progress_option(),
) -> None:
    """Score tracks against CTC ground truth; print JSON with TRA, DET, division precision/recall/F1, edge errors.

    Sparse ground truth (masks on some frames only) is scored on the frames that have
    ground-truth masks; the frames used are listed with --all. Point tracks (a TrackMate file
    from Fiji, a GEFF store of another tracker) are matched by position: a point inside a
    reference mask matches that nucleus ("matching" says so); --voxel-size-um places points
    given in µm on the reference masks.
    """
    import json

    from dynacell.cli.options import parse_voxel_size
    from dynacell.metrics.tracking import RESULT_KEYS, evaluate_point_tracks, evaluate_tracks, is_ctc_result
    from dynacell.train.engine import progress_enabled

    if is_ctc_result(out):
        res = evaluate_tracks(out, gt, frame_buffer=frame_buffer, progress=progress_enabled(progress))
    else:
        from dynacell.lineage import read_lineage

        res = evaluate_point_tracks(read_lineage(out), gt, frame_buffer=frame_buffer,
                                    progress=progress_enabled(progress), voxel_size_um=parse_voxel_size(voxel_size_um))
    if not all_keys:
        res = {k: res[k] for k in RESULT_KEYS} | {"n_frames_evaluated": len(res["frames_evaluated"]),
                                                  "matching": res["matching"], "frame_buffer": res["frame_buffer"]}
    typer.echo(json.dumps(res, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``evaluate-tracks`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("evaluate-tracks")(evaluate_tracks_command)
