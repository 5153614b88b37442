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
    scene_option,
    seed_option,
    voxel_size_option,
)


def register(app: typer.Typer) -> None:
    """Add the ``run`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """

    @app.command("run")
    def run_command(
        movie: Path = typer.Argument(..., help="Movie: CTC folder, TIFF stack or folder of TIFF/PNG/JPEG frames, "
                                                "ND2/CZI/LIF file, OME-Zarr/zarr or npz; 2D+t or 3D+t."),
        out: Path = out_option(),
        labels: Path | None = typer.Option(None, "--labels", help="Label images (one per frame). Default: segment the movie (--segmenter)."),
        lineage: Path | None = typer.Option(None, "--lineage", help="Lineage (CTC res/man_track, BlastoSPIM JSON, "
                                            "GEFF, TrackMate XML: spots matched to the masks). Default: linked."),
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
        scene: int | None = scene_option(),
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
                channel=channel, scene=scene,
                voxel_size_um=parse_voxel_size(voxel_size_um), frame_interval_s=frame_interval_s,
                max_distance=max_distance, motion_prior=motion_prior, device=device, scheduler=scheduler,
                gt=None if gt is None else str(gt),
                overwrite=overwrite, video=video, progress=progress, seed=seed, dead_evidence=dead_evidence)
        except ValidationError as exc:
            problems = "; ".join(f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in exc.errors())
            raise InvalidInputError(problems) from None
        if _whole_process():  # the whole process is this run: not for library callers or tests
            settle_run_imports()
        result = run_config(config)
        Console().print(summary_text(result))


def _whole_process() -> bool:
    """:func:`dynacell.cli.main._is_process_entry` of the running entry module (``python -m dynacell.cli.main`` runs
    it as ``__main__``: importing ``dynacell.cli.main`` again would build a second copy of the app)."""
    import sys

    entry = sys.modules.get("dynacell.cli.main") or sys.modules.get("__main__")
    check = getattr(entry, "_is_process_entry", None)
    return bool(check()) if callable(check) else False


#: Libraries and modules every ``dynacell run`` imports (torch, pandas, networkx, scipy, matplotlib, the GEFF
#: writer, the steps' modules); :func:`settle_run_imports` imports them before the run, not inside its steps.
RUN_IMPORTS: tuple[str, ...] = (
    "torch", "pandas", "networkx", "scipy.ndimage", "scipy.spatial.distance", "PIL.Image", "jinja2", "geff", "zarr",
    "dynacell.pipeline", "dynacell.io.scan", "dynacell.io.ctc", "dynacell.track.select", "dynacell.states.classify",
    # what classify_movie imports on its first call (the crops, the nucleus-size rule, the allocator setting, the
    # track context): ~0.02-0.03 CPU-s of compiling that the classify step no longer pays (moved, not saved)
    "dynacell.samples.crops", "dynacell.samples.scale", "dynacell.states.speed", "dynacell.lineage.centroids",
    "dynacell.states.reconcile", "dynacell.states.relink", "dynacell.states.tables", "dynacell.segment.select",
    "dynacell.lineage.formats", "dynacell.lineage.stats", "dynacell.motion.analysis", "dynacell.metrics.states",
    "dynacell.viz.report",
)


def settle_run_imports(modules: tuple[str, ...] = RUN_IMPORTS) -> int:
    """Import the run's libraries with the garbage collector paused, collect once, then freeze what survives.

    Every full (generation-2) collection of Python's garbage collector walks every object alive, and a run's
    libraries are ~300,000 of them (modules, classes, functions) that live until the process ends:
    ``dynacell run --no-video`` on GOWT1 01 made 7 full collections, 0.63–0.73 CPU-s in all (four during the
    imports, three walking the imported modules again later). Here the imports run without collections; one
    :func:`gc.collect` then frees the garbage they left (~9,000 objects), and :func:`gc.freeze` moves the
    survivors — no movie data exists yet — to the collector's permanent generation, so that later collections
    walk only what the run makes: 4 full collections, 0.24–0.31 CPU-s (docs/states-generalisation.md, "End to
    end, eighth pass"). Nothing is frozen that was garbage, and no object of the run is frozen; no collector
    callback is installed (a signal stays deliverable). Costs: matplotlib and the GEFF writer are imported even
    when the run then fails on its input, and the peak memory is 15–35 MB higher. Called by the ``dynacell run``
    command when it is the whole process, after its arguments are checked.

    Parameters
    ----------
    modules : tuple of str
        Modules to import first (default :data:`RUN_IMPORTS`).

    Returns
    -------
    int
        Objects moved to the permanent generation (:func:`gc.get_freeze_count`).

    Raises
    ------
    ImportError
        When one of ``modules`` cannot be imported (the collector is still re-enabled).
    """
    import gc
    import importlib

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        gc.collect()
        gc.freeze()
        # a second, near-empty full collection: the collector's count of long-lived objects, which paces the
        # next full collections, becomes that of the unfrozen objects (~0) instead of the ~300,000 frozen ones
        gc.collect()
        if was_enabled:
            gc.enable()
    return gc.get_freeze_count()


def summary_text(result) -> str:
    """A few lines describing a finished run (counts, changes, scores, where the outputs are).

    Parameters
    ----------
    result : RunResult
        The finished run.

    Returns
    -------
    str
        The lines, joined.
    """
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
