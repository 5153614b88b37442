"""``dynacell extract``: build a sample set (crops + metadata) from a movie, its labels and its lineage."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import overwrite_option, progress_option, seed_option, voxel_size_option
from dynacell.errors import InvalidInputError

_STATES = ("stable", "mitotic", "new_daughter", "death", "unknown")


def parse_frames(text: str | None) -> range | None:
    """Parse ``--frames`` ``"a:b"`` (frames ``a .. b-1``, like a Python slice), ``"a:"``, ``":b"`` or ``"a"``.

    Parameters
    ----------
    text : str or None
        The option value.

    Returns
    -------
    range or None
        The frame numbers (``"a:"`` is open-ended: intersect it with the movie's frames, never
        expand it); None for no option.

    Raises
    ------
    InvalidInputError
        If the text is not of that form or the range is empty.
    """
    if text is None or text.strip() == "":
        return None
    parts = text.split(":")
    try:
        if len(parts) == 1:
            a = int(parts[0])
            return range(a, a + 1)
        if len(parts) == 2:
            a = int(parts[0]) if parts[0].strip() else 0
            b = int(parts[1]) if parts[1].strip() else 1 << 30
            if a < 0 or b <= a:
                raise ValueError
            return range(a, b)
    except ValueError:
        pass
    raise InvalidInputError(
        f"--frames {text!r}: expected 'a:b' (frames a to b-1), 'a:', ':b' or one frame number, with 0 <= a < b"
    )


def parse_floats(text: str | None, option: str) -> tuple[float, ...] | None:
    """Parse a comma-separated list of positive floats (``"2.0,0.208,0.208"``).

    Parameters
    ----------
    text : str or None
        The option value.
    option : str
        The option's name, for messages.

    Returns
    -------
    tuple of float or None
        The values; None when ``text`` is None.

    Raises
    ------
    InvalidInputError
        If a value is not a positive number.
    """
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        vals = ()
    if not vals or any(not (v > 0) for v in vals):
        raise InvalidInputError(f"{option} {text!r}: expected positive numbers in µm separated by commas, e.g. 2.0,0.208,0.208")
    return vals


def default_dataset_name(movie: Path) -> str:
    """A dataset name from a movie path: ``.../bacteria-phc/01`` → ``bacteria-phc_01``.

    Parameters
    ----------
    movie : Path
        Movie file or folder.

    Returns
    -------
    str
        The file stem or folder name, prefixed by the parent folder's name when it is a
        number (CTC sequence folders ``01``, ``02``).
    """
    movie = Path(movie)
    name = movie.stem if movie.is_file() else movie.name
    if name.isdigit() and movie.parent.name:
        return f"{movie.parent.name}_{name}"
    return name


def register(app: typer.Typer) -> None:
    """Add the ``extract`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """

    @app.command("extract")
    def extract(
        movie: Path = typer.Argument(..., help="Image movie: CTC folder (NN/ with tTTT.tif), TIFF folder or stack, zarr, npz."),
        labels: Path = typer.Option(..., "--labels", "-l", help="Label movie (e.g. NN_GT/TRA, NN_ERR_SEG, labels/ folder)."),
        lineage: str = typer.Option(
            "none", "--lineage",
            help="Lineage (CTC man_track.txt or TRA folder, BlastoSPIM JSON, GEFF), or 'none': every nucleus "
                 "is extracted with state --assume-state (unknown by default)."),
        output: Path = typer.Option(..., "-o", "--out", help="Output sample set (.npz)."),
        size: str = typer.Option("32", "--size", help="Crop size in pixels: one number or one per axis (Z,Y,X)."),
        rules: str = typer.Option("seed", "--rules", help="Event-rules preset: seed or annotated-deaths."),
        frames: str = typer.Option(None, "--frames", help="Frames a:b (a to b-1), like a Python slice."),
        voxel_size_um: str = voxel_size_option(),
        target_voxel_um: str = typer.Option(
            None, "--target-voxel-um", help="Resample crops to this voxel size in µm: one number, or one per axis (Z Y X)."),
        target_diameter_px: float = typer.Option(
            None, "--target-diameter", help="Zoom each movie so its median nucleus diameter is this many pixels "
            "(scale normalisation of the shipped nuclei-2d model: 18)."),
        dataset: str = typer.Option(None, "--dataset", help="Dataset name stored in the set (default from MOVIE)."),
        states: str = typer.Option("stable,mitotic,new_daughter,death", "--states",
                                   help="States to keep (with a lineage), comma-separated."),
        max_per_class: int = typer.Option(None, "--max-per-class", help="Random subset per state (seeded)."),
        seed: int = seed_option(),
        assume_state: str = typer.Option(
            "unknown", "--assume-state", help="State given to every nucleus without a lineage (unknown or stable)."),
        seed_layout: Path = typer.Option(None, "--seed-layout", help="Also export the seed's folder layout here."),
        overwrite: bool = overwrite_option(),
        progress: bool | None = progress_option(),
        context: bool = typer.Option(False, "--context/--no-context",
                                     help="Add the segmentation-context channels seg t-1, seg t+1 (6 channels)."),
        context_labels: Path = typer.Option(None, "--context-labels",
                                            help="Segmentation read for --context (default --labels), e.g. a full "
                                                 "automatic segmentation when --labels covers some frames only."),
    ) -> None:
        """Crop every labelled nucleus into a sample set (channels t-1, t, t+1 and mask; one .npz file).

        Without a lineage (--lineage none, e.g. the 3D mouse-8cell whose label ids change between frames),
        every nucleus is cropped with state --assume-state: 'unknown' (a set to classify) or 'stable'
        where you know no event happens.
        """
        from dynacell.cli.options import parse_voxel_size, require_paths

        require_paths(movie=movie, labels=labels, context_labels=context_labels)
        from dynacell.errors import OutputExistsError
        from dynacell.io import open_labels, open_movie
        from dynacell.samples import build_sample_set, export_seed_layout
        from dynacell.train.engine import progress_enabled

        out = output if output.suffix == ".npz" else output.with_name(output.name + ".npz")
        if out.exists() and not overwrite:
            raise OutputExistsError(f"output {out} exists; pass --overwrite to replace it")
        if seed_layout is not None and seed_layout.exists() and not overwrite:
            raise OutputExistsError(f"--seed-layout {seed_layout} exists; pass --overwrite to replace it")
        state_list = tuple(s.strip() for s in states.split(",") if s.strip())
        for s in (*state_list, assume_state):
            if s not in _STATES:
                raise InvalidInputError(f"state {s!r} is unknown; choose from {list(_STATES)}")
        sizes = parse_floats(size, "--size")
        if any(int(s) != s for s in sizes):
            raise InvalidInputError(f"--size {size!r}: sizes must be whole numbers of pixels")
        size_arg = int(sizes[0]) if len(sizes) == 1 else tuple(int(s) for s in sizes)
        vs = parse_voxel_size(voxel_size_um)
        tv = parse_floats(target_voxel_um, "--target-voxel-um")
        frame_range = parse_frames(frames)
        if lineage.strip().lower() != "none":
            from dynacell.lineage.events import EventRules

            EventRules.preset(rules)  # an unknown preset fails before any file is read
        images = open_movie(movie, voxel_size_um=vs)
        from dynacell.io.limits import check_crop_size

        check_crop_size(size_arg, images.frame_shape, option="--size", source=str(movie))  # before any allocation
        label_movie = open_labels(labels, voxel_size_um=vs)
        ctx_movie = None if context_labels is None else open_labels(context_labels, voxel_size_um=vs)
        frame_list = None
        if frame_range is not None:
            # intersect with the movie's frames (an open range 'a:' must not be expanded)
            frame_list = [t for t in images.frame_indices if t in frame_range]
            if not frame_list:
                raise InvalidInputError(
                    f"--frames {frames!r} selects no frame of {movie} (its frames are "
                    f"{images.frame_indices[0]}..{images.frame_indices[-1]}); choose frames inside that range"
                )
        lin = None
        if lineage.strip().lower() != "none":
            from dynacell.lineage import detect_format, read_lineage
            from dynacell.lineage.checks import as_mask_ids

            fmt = detect_format(lineage)
            # crops are centred on the mask centroids, so CTC mask centroids need not be read here
            lin = read_lineage(lineage, format=fmt, **({"masks": False} if fmt == "ctc" else {}))
            lin = as_mask_ids(lin, label_movie, str(lineage))
        samples = build_sample_set(
            images, label_movie, lin, rules,
            size=size_arg, dataset=dataset or default_dataset_name(movie), frames=frame_list,
            states=state_list, max_per_class=max_per_class, seed=seed, voxel_size_um=vs,
            target_voxel_um=(tv[0] if tv and len(tv) == 1 else tv), assume_state=assume_state,
            progress=progress_enabled(progress),
            target_diameter_px=target_diameter_px, context=context or ctx_movie is not None,
            context_labels=ctx_movie,
        )
        if len(samples) == 0:
            raise InvalidInputError(
                f"no sample to write: no nucleus of {labels} in the chosen frames"
                + ("" if lin is None else f" has a lineage node in a state of --states {states!r}")
                + f"; nothing written to {out} — check --frames, --states and the warnings above"
            )
        path = samples.save(out, overwrite=overwrite)
        if seed_layout is not None:
            export_seed_layout(samples, seed_layout, overwrite=overwrite)
        counts = ", ".join(f"{k} {v}" for k, v in samples.counts().items()) or "none"
        skipped = samples.attrs.get("skipped") or {}
        skip_txt = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in skipped.items() if v)
        extra_ids = samples.attrs.get("label_ids_not_in_lineage") or 0
        typer.echo(f"{path}: {len(samples)} samples {'x'.join(map(str, samples.size))} px ({counts})"
                   + (f"; lineage nodes skipped: {skip_txt}" if skip_txt else "")
                   + (f"; label ids not in the lineage: {extra_ids}" if extra_ids else ""))
