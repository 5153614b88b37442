"""``dynacell run``: the main job on one movie (see :func:`dynacell.pipeline.run`)."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import parse_voxel_size, voxel_size_option


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``."""

    @app.command("run")
    def run_command(
        movie: Path = typer.Argument(..., help="Movie: CTC folder, TIFF series/stack, OME-Zarr/zarr or npz; 2D+t or 3D+t."),
        out: Path = typer.Option(..., "-o", "--out", help="Output folder (must not exist unless --overwrite)."),
        labels: Path | None = typer.Option(None, "--labels", help="Label images (one per frame). Default: classical segmenter."),
        lineage: Path | None = typer.Option(None, "--lineage", help="Lineage (CTC res/man_track, BlastoSPIM JSON, GEFF). Default: linked."),
        model: str | None = typer.Option(None, "--model", help="State model name or folder. Default: nuclei-2d / nuclei-3d."),
        voxel_size_um: str | None = voxel_size_option(),
        frame_interval_s: float | None = typer.Option(None, "--frame-interval-s", help="Time between frames (s)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        scheduler: str | None = typer.Option(None, "--scheduler", help="Dask distributed scheduler address (tcp://host:port)."),
        gt: Path | None = typer.Option(None, "--gt", help="CTC ground-truth folder (NN_GT) to score states and tracks."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT after a successful run."),
        max_distance_um: float | None = typer.Option(
            None, "--max-distance-um", help="Linking gate (µm, px without voxel size). Default: from the motion."),
        seed: int = typer.Option(0, "--seed", help="Random seed (recorded in run.json)."),
        no_video: bool = typer.Option(False, "--no-video", help="Skip overlay.mp4."),
        no_progress: bool = typer.Option(False, "--no-progress", help="Hide progress bars."),
    ) -> None:
        """Movie -> labels, lineage, a state for every nucleus, report.html, overlay.mp4 (in OUT)."""
        from rich.console import Console

        from dynacell.pipeline import run

        vs = parse_voxel_size(voxel_size_um)
        result = run(
            movie, labels=labels, lineage=lineage, model=model, out=out,
            voxel_size_um=vs, frame_interval_s=frame_interval_s,
            device=device, scheduler=scheduler, gt=gt, overwrite=overwrite, seed=seed,
            progress=not no_progress, video=not no_video, max_distance_um=max_distance_um,
        )
        console = Console()
        console.print(summary_text(result))


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
