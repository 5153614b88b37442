"""``dynacell particles``: detect and link particles (beads, spots) in a movie with trackpy."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import out_option, overwrite_option, progress_option

def read_image_series(path: Path, frames: tuple[int, int] | None = None, channel: int | None = None):
    """Frames of a movie as float32 ``(T, Y, X)`` with their frame numbers, read by :func:`dynacell.io.open_movie`.

    A folder of PNG/JPEG/TIFF frames (numbered by the last number in each name), a stack, zarr, npz or
    vendor file: whatever ``open_movie`` reads, with its frame numbers (a missing file leaves a gap that
    trackpy's ``memory`` bridges) and its checks (NaN pixels, frame shapes, colour images).

    Parameters
    ----------
    path : Path
        A folder of images, or a movie.
    frames : tuple of int, optional
        ``(start, stop)`` positions in the series, stop excluded; None = all.
    channel : int, optional
        Channel of a colour image series or multi-channel file (0-based). Default for a PNG/JPEG series:
        the average of its colour channels (``open_movie(channel="mean")``).

    Returns
    -------
    numpy.ndarray
        float32 ``(T, Y, X)``.
    list of int
        The frame number of each.

    Raises
    ------
    InvalidInputError
        No images, mixed shapes, a 3D movie, a colour series without ``channel``, NaN pixels, or a frame
        range outside the movie.
    """
    import numpy as np

    from dynacell.errors import InvalidInputError
    from dynacell.io import detect_format, open_movie
    from dynacell.io.movie import load_in_memory, select_frames

    if channel is None and Path(path).is_dir() and detect_format(path) == "image-series":
        channel = "mean"  # colour video frames: their brightness (a grey series reads the same)
    mv = open_movie(path, channel=channel)
    if mv.ndim_spatial != 2:
        raise InvalidInputError(f"{path}: dynacell particles handles 2D movies, this one is {mv.ndim_spatial}D")
    idx = list(mv.frame_indices)
    lo, hi = frames if frames else (0, len(idx))
    if not 0 <= lo < hi <= len(idx):
        raise InvalidInputError(f"--frames {lo}:{hi} is outside the {len(idx)} frames of {path}")
    mv = load_in_memory(select_frames(mv, idx[lo:hi]))  # one read of the movie, not one graph per frame
    data = np.empty((hi - lo, *mv.frame_shape), np.float32)
    for i, t in enumerate(idx[lo:hi]):  # Movie.frame: NaN / inf pixels are an error naming the frame
        data[i] = mv.frame(t)
    return data, idx[lo:hi]


def particles_command(
    movie: Path = typer.Argument(..., help="A folder of PNG/TIFF/JPEG frames or a movie dynacell reads."),
    out: Path = out_option(),
    pixel_size_um: float = typer.Option(..., "--pixel-size-um", help="Pixel size (µm)."),
    frame_interval_s: float = typer.Option(..., "--frame-interval-s", help="Time between frames (s)."),
    diameter_px: int = typer.Option(11, "--diameter-px", help="Feature diameter (odd number of pixels)."),
    minmass: float = typer.Option(20.0, "--minmass", help="Smallest integrated brightness of a feature."),
    invert: bool = typer.Option(False, "--invert", help="Dark particles on a bright background."),
    search_range_px: float = typer.Option(5.0, "--search-range-px", help="Largest displacement per frame (px)."),
    memory: int = typer.Option(3, "--memory", min=0, help="Frames a particle may vanish and keep its id."),
    min_length: int = typer.Option(25, "--min-length", min=2, help="Drop tracks shorter than this (frames)."),
    frames: str | None = typer.Option(None, "--frames", help="Frame range START:STOP (0-based, STOP excluded)."),
    channel: int | None = typer.Option(None, "--channel", min=0,
                                       help="Channel (0-based) of a colour image series or multi-channel file. "
                                            "Default for PNG/JPEG frames: the average of the colour channels."),
    progress: bool | None = progress_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Detect particles (trackpy.batch), link them (trackpy.link) and write OUT/tracks.csv
    (t, track_id, y, x in pixels, mass, size, ecc) and OUT/run.json (units and parameters), then print a
    JSON summary. Feed OUT to ``dynacell motion``.
    """
    import json
    import logging

    import numpy as np

    from dynacell.errors import InvalidInputError
    from dynacell.io.writers import atomic_folder

    if diameter_px < 3 or diameter_px % 2 == 0:
        raise InvalidInputError(f"--diameter-px must be an odd number >= 3, got {diameter_px}")
    for name, v in (("--pixel-size-um", pixel_size_um), ("--frame-interval-s", frame_interval_s)):
        if not np.isfinite(v) or v <= 0:
            raise InvalidInputError(f"{name} must be > 0, got {v}")
    rng = None
    if frames:
        try:
            a, b = (int(v) for v in frames.split(":"))
        except ValueError:
            raise InvalidInputError(f"--frames: expected START:STOP, got {frames!r}") from None
        rng = (a, b)
    data, frame_numbers = read_image_series(movie, rng, channel)
    import trackpy as tp

    from dynacell.train.engine import progress_enabled

    tp.quiet(not progress_enabled(progress))
    logging.getLogger("trackpy").setLevel(logging.WARNING)
    feats = tp.batch(list(data), diameter_px, minmass=minmass, invert=invert, processes=1)
    if feats.empty:
        raise InvalidInputError(f"{movie}: no particle found (try a lower --minmass or --invert)")
    feats["frame"] = np.asarray(frame_numbers)[feats["frame"].to_numpy()]
    linked = tp.link(feats, search_range_px, memory=memory)
    linked = tp.filter_stubs(linked, min_length)
    if linked.empty:
        raise InvalidInputError(f"{movie}: no track of {min_length} or more frames (lower --min-length)")
    table = linked.rename(columns={"frame": "t", "particle": "track_id"})
    table["track_id"] = table["track_id"].astype(np.int64) + 1
    cols = ["t", "track_id", "y", "x"] + [c for c in ("mass", "size", "ecc", "signal") if c in table.columns]
    table = table[cols].sort_values(["track_id", "t"]).reset_index(drop=True)
    summary = {"n_frames": len(frame_numbers), "n_features": len(feats), "n_tracks": int(table["track_id"].nunique()),
               "n_localisations": len(table), "voxel_size_um": [pixel_size_um, pixel_size_um],
               "frame_interval_s": frame_interval_s,
               "parameters": {"movie": str(movie), "diameter_px": diameter_px, "minmass": minmass, "invert": invert,
                              "search_range_px": search_range_px, "memory": memory, "min_length": min_length,
                              "frames": [frame_numbers[0], frame_numbers[-1] + 1], "channel": channel,
                              "trackpy": tp.__version__}}
    with atomic_folder(out, overwrite=overwrite) as tmp:
        table.to_csv(tmp / "tracks.csv", index=False)
        (tmp / "run.json").write_text(json.dumps(summary, indent=2))
    typer.echo(json.dumps(summary, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``particles`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("particles")(particles_command)
