"""``dynacell simulate``: a simulated embryo, or a real lineage rendered as a movie."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import overwrite_option, progress_option, seed_option

PRESETS = ("default", "mouse-lightsheet", "hela-widefield")


def simulate(
    output: Path = typer.Option(
        ..., "-o", "--out",
        help="Output folder (CTC-style: images/, labels/, states.csv, params.json).",
    ),
    lineage: Path | None = typer.Option(
        None, "--lineage",
        help="Render this lineage (WormGUIDES AceTree folder, BlastoSPIM graph, CTC TRA folder, GEFF) "
        "instead of a simulated embryo.",
    ),
    ndim: int = typer.Option(3, "--ndim", help="2 (colony in a dish) or 3 (embryo) for a simulated embryo."),
    frames: int | None = typer.Option(
        None, "--frames", min=1,
        help="Number of frames (simulated embryo: default 30; lineage: default all).",
    ),
    start: int = typer.Option(0, "--start", min=0, help="First lineage frame to render (with --lineage)."),
    seed: int = seed_option(),
    n_start: int = typer.Option(8, "--n-start", min=1, help="Cells at frame 0 of a simulated embryo."),
    min_divisions: int = typer.Option(
        0, "--min-divisions", min=0,
        help="Guarantee at least this many divisions (simulated embryo).",
    ),
    min_deaths: int = typer.Option(0, "--min-deaths", min=0, help="Guarantee at least this many deaths (simulated embryo)."),
    preset: str = typer.Option("default", "--preset", help=f"Imaging preset: {', '.join(PRESETS)}."),
    voxel_size_um: str | None = typer.Option(
        None, "--voxel-size-um", metavar="[Z] Y X",
        help="Rendered voxel size in µm, one number per spatial axis (e.g. 3D: 2.0 0.5 0.5). Default: the preset's.",
    ),
    lineage_voxel_size_um: str | None = typer.Option(
        None, "--lineage-voxel-size-um", metavar="[Z] Y X",
        help="µm per lineage pixel, one number per axis (Z Y X). Default: the reader's, 0.1625 for AceTree/WormGUIDES lineages, "
        "else the rendered voxel size.",
    ),
    scale: float = typer.Option(
        1.0, "--scale",
        help="Render at this fraction of the size in pixels (physical sizes unchanged).",
    ),
    overwrite: bool = overwrite_option(),
    progress: bool | None = progress_option(),
) -> None:
    """Simulate a fluorescence movie of nuclei with exact labels, lineage and states."""
    from rich.console import Console

    from dynacell.errors import InvalidInputError, OutputExistsError
    from dynacell.cli.options import parse_voxel_size
    from dynacell.simulate import ImagingParams, render_lineage, simulate_embryo
    from dynacell.train.engine import progress_enabled

    progress = progress_enabled(progress)

    if output.exists() and not overwrite:
        raise OutputExistsError(f"output folder {output} exists; pass --overwrite to replace it")
    if not scale > 0:
        raise InvalidInputError(f"--scale must be > 0 (a fraction of the size in pixels); got {scale}")
    presets = {"default": ImagingParams, "mouse-lightsheet": ImagingParams.mouse_lightsheet,
               "hela-widefield": ImagingParams.hela_widefield}
    if preset not in presets:
        raise InvalidInputError(f"--preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    imaging = presets[preset]()
    vs = parse_voxel_size(voxel_size_um)
    if vs is not None:
        imaging = imaging.with_overrides(voxel_size_um=vs)
    if lineage is not None:
        from dynacell.lineage import read_lineage

        lin = read_lineage(lineage)
        sel = slice(start, None if frames is None else start + frames)
        lvs = parse_voxel_size(lineage_voxel_size_um, option="--lineage-voxel-size-um")
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
    """Add ``simulate`` to the app.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("simulate")(simulate)
