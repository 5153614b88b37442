"""``dynacell simulate``: a simulated embryo, or a real lineage rendered as a movie."""

from __future__ import annotations

from pathlib import Path

import typer

PRESETS = ("default", "mouse-lightsheet", "hela-widefield")


def _parse_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    from dynacell.errors import InvalidInputError

    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        raise InvalidInputError(f"{option} takes numbers like '2.0,0.5,0.5' (z,y,x µm); got {text!r}") from None
    if len(vals) not in (1, 2, 3):
        raise InvalidInputError(f"{option} takes 1, 2 (y,x) or 3 (z,y,x) numbers; got {text!r}")
    return vals


def simulate(
    output: Path = typer.Option(
        ..., "-o", "--output",
        help="Output folder (CTC-style: images/, labels/, states.csv, params.json).",
    ),
    lineage: Path | None = typer.Option(
        None, "--lineage",
        help="Render this lineage (WormGUIDES AceTree folder, BlastoSPIM graph, CTC TRA folder, GEFF) "
        "instead of a simulated embryo.",
    ),
    ndim: int = typer.Option(3, "--ndim", help="2 (colony in a dish) or 3 (embryo) for a simulated embryo."),
    frames: int | None = typer.Option(
        None, "--frames",
        help="Number of frames (simulated embryo: default 30; lineage: default all).",
    ),
    start: int = typer.Option(0, "--start", help="First lineage frame to render (with --lineage)."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random draw."),
    n_start: int = typer.Option(8, "--n-start", help="Cells at frame 0 of a simulated embryo."),
    min_divisions: int = typer.Option(
        0, "--min-divisions",
        help="Guarantee at least this many divisions (simulated embryo).",
    ),
    min_deaths: int = typer.Option(0, "--min-deaths", help="Guarantee at least this many deaths (simulated embryo)."),
    preset: str = typer.Option("default", "--preset", help=f"Imaging preset: {', '.join(PRESETS)}."),
    voxel_size_um: str | None = typer.Option(
        None, "--voxel-size-um",
        help="Rendered voxel size, e.g. '2,0.5,0.5' (z,y,x µm).",
    ),
    lineage_voxel_size_um: str | None = typer.Option(
        None, "--lineage-voxel-size-um",
        help="µm per lineage pixel (z,y,x). Default: the reader's, 0.1625 for AceTree/WormGUIDES lineages, "
        "else the rendered voxel size.",
    ),
    scale: float = typer.Option(
        1.0, "--scale",
        help="Render at this fraction of the size in pixels (physical sizes unchanged).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output folder."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress bars."),
) -> None:
    """Simulate a fluorescence movie of nuclei with exact labels, lineage and states."""
    from rich.console import Console

    from dynacell.errors import InvalidInputError, OutputExistsError
    from dynacell.simulate import ImagingParams, render_lineage, simulate_embryo

    if output.exists() and not overwrite:
        raise OutputExistsError(f"output folder {output} exists; pass --overwrite to replace it")
    presets = {"default": ImagingParams, "mouse-lightsheet": ImagingParams.mouse_lightsheet,
               "hela-widefield": ImagingParams.hela_widefield}
    if preset not in presets:
        raise InvalidInputError(f"--preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    imaging = presets[preset]()
    vs = _parse_floats(voxel_size_um, "--voxel-size-um")
    if vs is not None:
        imaging = imaging.with_overrides(voxel_size_um=vs)
    if lineage is not None:
        from dynacell.lineage import read_lineage

        lin = read_lineage(lineage)
        sel = slice(start, None if frames is None else start + frames)
        lvs = _parse_floats(lineage_voxel_size_um, "--lineage-voxel-size-um")
        res = render_lineage(lin, imaging=imaging, frames=sel, scale=scale, seed=seed, progress=progress,
                             lineage_voxel_size_um=lvs)
    else:
        if ndim not in (2, 3):
            raise InvalidInputError(f"--ndim must be 2 or 3; got {ndim}")
        res = simulate_embryo(ndim=ndim, n_start=n_start, n_frames=30 if frames is None else frames,
                              min_divisions=min_divisions, min_deaths=min_deaths, imaging=imaging,
                              seed=seed, progress=progress)
    res.save(output, overwrite=overwrite)
    states = res.states()["state"].value_counts().to_dict()
    Console().print(
        f"simulated {res.images.shape[0]} frames {res.axes} {tuple(res.images.shape[1:])}, "
        f"{len(res.lineage)} nuclei-frames, {len(res.lineage.divisions())} divisions; states {states} -> {output}"
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the app."""
    app.command("simulate")(simulate)
