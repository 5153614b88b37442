"""``dynacell evaluate``: metrics of a state classifier on labelled data, as JSON."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """

    @app.command("evaluate")
    def evaluate(
        movie: Path = typer.Argument(None, help="image movie (CTC folder, TIFF, zarr, npz); omit with --samples"),
        labels: Path = typer.Option(None, "--labels", help="label movie of MOVIE"),
        lineage: Path = typer.Option(None, "--lineage",
                                     help="lineage (man_track.txt, GEFF, ...); omitted: every nucleus is taken as stable"),
        samples: Path = typer.Option(None, "--samples", help="a sample set (.npz) instead of MOVIE"),
        context_labels: Path = typer.Option(None, "--context-labels",
                                            help="segmentation for the context channels of a 6-channel model "
                                                 "(default --labels), e.g. NN_ERR_SEG when --labels are TRA markers"),
        model: str = typer.Option(None, "--model", help="shipped model name or model folder "
                                  "(default: nuclei-2d for a 2D movie or sample set, nuclei-3d for 3D)"),
        rules: str = typer.Option("seed", "--rules", help="event-rule preset: seed or annotated-deaths"),
        out: Path = typer.Option(None, "-o", "--out", help="also write the JSON to this file"),
    ) -> None:
        """Print JSON with macro_f1, balanced_accuracy, per_class, confusion, ece, n."""
        import json

        from dynacell.cli.options import require_paths

        require_paths(movie=movie, labels=labels, lineage=lineage, samples=samples, context_labels=context_labels)
        from dynacell.errors import InvalidInputError
        from dynacell.states import default_model, load_model
        from dynacell.states.evaluate import evaluate_movie, evaluate_samples

        if samples is not None:
            if movie is not None:
                raise InvalidInputError("give either MOVIE (with --labels) or --samples, not both")
            from dynacell.samples import SampleSet

            ss = SampleSet.load(samples)
            clf = load_model(model or default_model(ss.x.ndim - 2))
            rep = evaluate_samples(clf, ss.x, ss.meta["state"].to_numpy())
        else:
            if movie is None or labels is None:
                raise InvalidInputError("evaluate needs MOVIE and --labels (and usually --lineage), or --samples SET")
            if model is None:
                from dynacell.io import open_movie

                model = default_model(open_movie(movie).ndim_spatial)
            clf = load_model(model)
            rep = evaluate_movie(clf, movie, labels, lineage, rules=rules, context_labels=context_labels)
        text = json.dumps(rep, indent=2)
        if out is not None:
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(out)
        typer.echo(text)
