"""``dynacell run``: the main job on one movie (see :func:`dynacell.pipeline.run`)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import (
    device_option,
    frame_interval_option,
    motion_prior_option,
    out_option,
    overwrite_option,
    parse_voxel_size,
    progress_option,
    seed_option,
    voxel_size_option,
)


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    def run_command(
        movie: Path = typer.Argument(..., help="Movie: CTC folder, TIFF series/stack, OME-Zarr/zarr or npz; 2D+t or 3D+t."),
        out: Path = out_option(),
        labels: Path | None = typer.Option(None, "--labels", help="Label images (one per frame). Default: segment the movie (--segmenter)."),
        lineage: Path | None = typer.Option(None, "--lineage", help="Lineage (CTC res/man_track, BlastoSPIM JSON, GEFF). Default: linked."),
        model: str | None = typer.Option(None, "--model", help="State model name or folder. Default: nuclei-2d / nuclei-3d."),
        segmenter: str = typer.Option(
            "auto", "--segmenter",
            help="Segmenter when no --labels are given: auto (nuclei-seg-2d-fast for 2D, nuclei-seg-3d for 3D), classical, "
                 "a model name or folder."),
        test_time_flips: int | None = typer.Option(
            None, "--test-time-flips",
            help="Flipped copies of each frame the learned segmenter averages: 1 (fastest), 2 or 4. "
                 "Default: the model's (1 for nuclei-seg-2d-fast, 4 for nuclei-seg-2d)."),
        axes: str | None = typer.Option(None, "--axes", help="Axes of a TIFF stack without axis metadata, e.g. TZYX."),
        channel: int | None = typer.Option(
            None, "--channel", min=0,
            help="Nuclear channel (0-based) of a multi-channel stack, zarr, npz or vendor file."),
        voxel_size_um: str | None = voxel_size_option(),
        frame_interval_s: float | None = frame_interval_option(),
        device: str = device_option(),
        scheduler: str | None = typer.Option(None, "--scheduler", help="Dask distributed scheduler address (tcp://host:port)."),
        gt: Path | None = typer.Option(None, "--gt", help="CTC ground-truth folder (NN_GT) to score states and tracks."),
        overwrite: bool = overwrite_option(),
        max_distance: float | None = typer.Option(
            None, "--max-distance", help="Linking gate: µm when the voxel size is known, else pixels. Default: from the motion."),
        motion_prior: str = motion_prior_option(),
        seed: int = seed_option(),
        video: bool = typer.Option(True, "--video/--no-video", help="Write overlay.mp4."),
        dead_evidence: str | None = typer.Option(
            None, "--dead-evidence",
            help="A background/live/dead segmentation model (name or folder) whose dead class supports death calls "
                 "at track ends inside the field (off by default; trained on rendered apoptosis only)."),
        progress: bool | None = progress_option(),
    ) -> None:
        """Movie -> labels, lineage, a state for every nucleus, report.html, overlay.mp4 (in OUT)."""
        from dynacell.cli.options import require_paths

        require_paths(movie=movie, labels=labels, lineage=lineage, gt=gt)  # before the heavy imports
        from pydantic import ValidationError
        from rich.console import Console

        from dynacell.errors import InvalidInputError
        from dynacell.pipeline import run_config
        from dynacell.runconfig import RunConfig

        try:
            config = RunConfig(
                movie=str(movie), out=str(out), labels=None if labels is None else str(labels),
                lineage=None if lineage is None else str(lineage), model=model, segmenter=segmenter,
                test_time_flips=test_time_flips, axes=axes,
                channel=channel,
                voxel_size_um=parse_voxel_size(voxel_size_um), frame_interval_s=frame_interval_s,
                max_distance=max_distance, motion_prior=motion_prior, device=device, scheduler=scheduler,
                gt=None if gt is None else str(gt),
                overwrite=overwrite, video=video, progress=progress, seed=seed, dead_evidence=dead_evidence)
        except ValidationError as exc:
            problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(problems) from None
        result = run_config(config)
        Console().print(summary_text(result))


def summary_text(result) -> str:
    """A few lines describing a finished run (counts, changes, scores, where the outputs are)."""
    info = result.info
    c = info["counts"]
    lines = [
        f"dynacell run: {c['frames']} frames, {c['nuclei']} nuclei, {c['tracks']} tracks, "
        f"{c['divisions']} divisions -> {result.out}",
        "states: " + ", ".join(f"{k} {v}" for k, v in sorted(c["states"].items())),
        f"reconciliation changed {info['reconciliation']['n_changed']} state(s)",
    ]
    if c.get("track_ends"):
        lines.append("track ends: " + ", ".join(f"{k} {v}" for k, v in sorted(c["track_ends"].items())))
    ev = result.evaluation
    if ev:
        for name in ("states_before", "states_after"):
            rep = ev.get(name)
            if rep:
                lines.append(f"vs GT ({name}): macro-F1 {rep['macro_f1']:.3f}, balanced accuracy "
                             f"{rep['balanced_accuracy']:.3f}, n {rep['n']}")
        tr = {k: v for k, v in (ev.get("tracking") or {}).items() if isinstance(v, (int, float))}
        if tr:
            lines.append("tracking: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in tr.items()))
    lines.append(f"wall time {sum(result.timings_s.values()):.1f} s; report: {result.out / 'report.html'}")
    return "\n".join(lines)
