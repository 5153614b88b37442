"""``dynacell benchmark``: state classifiers compared on the same split; classification speed; segmenters."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import progress_option


def register(app: typer.Typer) -> None:
    """Add the ``benchmark`` command group to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    bench = typer.Typer(help="Benchmarks: state classifiers on one split, speed, segmenters on held-out frames.",
                        no_args_is_help=True)

    @bench.command("states")
    def states(
        config: Path = typer.Argument(..., help="training config YAML: data, split, seed, optimisation"),
        out: Path = typer.Option(..., "-o", "--out", help="folder for models, results.csv/md and figures"),
        models: str = typer.Option(None, "--models",
                                   help="comma-separated runs (default: cnn-only,3ncnn,4ncnn,convlstm,dcnet, plus "
                                        "4ncnn+context,dcnet-no-context when the config reads the segmentation context)"),
        ablation: bool = typer.Option(False, "--ablation", help="run dcnet with each component switched off instead"),
        progress: bool | None = progress_option(),
        reuse: list[Path] = typer.Option([], "--reuse", help="model folder of an earlier identical run (repeatable)"),
        baseline_crop: int = typer.Option(None, "--baseline-crop",
                                          help="centre crop (px) for the seed's models (the seed cropped 64 to 32)"),
    ) -> None:
        """Train every model on the same samples, split and seed; print the test table, write figures."""
        from dynacell.errors import InvalidInputError
        from dynacell.train import load_config
        from dynacell.train.benchmark import ABLATION, BASELINES, CONTEXT_RUNS, benchmark_states
        from dynacell.train.engine import progress_enabled

        progress = progress_enabled(progress)

        cfg = load_config(config)
        known = BASELINES | (CONTEXT_RUNS if cfg.context else {})
        if ablation:
            runs = ABLATION
        else:
            names = list(known) if models is None else [m.strip() for m in models.split(",") if m.strip()]
            bad = [m for m in names if m not in known]
            if bad:
                raise InvalidInputError(f"--models: unknown {bad}; choose from {list(known)}")
            runs = {m: known[m] for m in names}
        table = benchmark_states(cfg, out, runs, progress=progress, reuse=list(reuse), baseline_crop=baseline_crop)
        typer.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))

    @bench.command("speed")
    def speed(
        n: int = typer.Option(2048, "--n", help="crops per measurement"),
        threads: int = typer.Option(2, "--threads", help="torch CPU threads"),
    ) -> None:
        """Nuclei classified per second from crops (2D 32², 3D 32³): dcnet and the seed's 4ncnn."""
        from dynacell.states.speed import speed_table

        typer.echo(speed_table(n=n, threads=threads).to_string(index=False))

    @bench.command("segmentation")
    def segmentation(
        models: str = typer.Option("nuclei-seg-2d-fast,nuclei-seg-2d,cells-seg-2d-phc,classical", "--models",
                                   help="comma-separated: shipped segmenter names, model folders, classical"),
        datasets: str = typer.Option(None, "--datasets",
                                     help="comma-separated datasets of the shared data (their test frames; default: "
                                          "all of dynacell.segment.benchmark.DATASETS)"),
        out: Path = typer.Option(None, "-o", "--out", help="folder for the CSVs and overlay figures"),
        threads: int = typer.Option(1, "--threads", help="torch CPU threads"),
        no_speed: bool = typer.Option(False, "--no-speed", help="skip the seconds-per-frame measurement"),
        diameter_from_card: bool = typer.Option(False, "--diameter-from-card",
                                                help="give the models the training-side nucleus diameter of their card"),
    ) -> None:
        """Every segmenter on the held-out test frames of every dataset: SEG, object F1/AP, pixel IoU, speed."""
        from dynacell.segment.benchmark import DATASETS, run_benchmark

        run_benchmark(models.split(","), DATASETS if datasets is None else datasets.split(","), out, threads=threads, with_speed=not no_speed,
                      diameter_from_card=diameter_from_card, echo=typer.echo)

    app.add_typer(bench, name="benchmark")
