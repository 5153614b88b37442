"""CLI commands for tracks: ``dynacell evaluate-tracks`` (CTC measures with traccuracy)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import progress_option


def evaluate_tracks_command(
    out: Path = typer.Argument(..., help="A dynacell run output folder (holding ctc/) or a CTC result (RES) folder."),
    gt: Path = typer.Option(..., "--gt", help="CTC ground truth: the NN_GT folder (holding TRA/) or the TRA folder."),
    frame_buffer: int = typer.Option(1, "--frame-buffer", min=0, help="Division frame tolerance (frames)."),
    all_keys: bool = typer.Option(False, "--all", help="Also print the evaluated frames and counts of every kind."),
    progress: bool | None = progress_option(),
) -> None:
    """Score tracks against CTC ground truth; print JSON with TRA, DET, division precision/recall/F1, edge errors.

    Sparse ground truth (masks on some frames only) is scored on the frames that have
    ground-truth masks; the frames used are listed with --all.
    """
    import json

    from dynacell.metrics.tracking import RESULT_KEYS, evaluate_tracks
    from dynacell.train.engine import progress_enabled

    res = evaluate_tracks(out, gt, frame_buffer=frame_buffer, progress=progress_enabled(progress))
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
