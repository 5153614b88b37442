"""``dynacell segment``: segment the nuclei of a movie; masks, areas over time, a figure, a record."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import (
    device_option,
    frame_interval_option,
    out_option,
    overwrite_option,
    progress_option,
    scene_option,
    voxel_size_option,
)


def register(app: typer.Typer) -> None:
    """Add the ``segment`` command to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("segment")(segment_command)


def segment_command(
    movie: Path = typer.Argument(..., help="Image movie: CTC folder, folder of TIFFs, TIFF stack, OME-Zarr or npz."),
    out: Path = out_option(),
    model: str = typer.Option("auto", "--model", "-m",
                              help="'auto' (nuclei-seg-2d-fast for 2D fluorescence, cells-seg-2d-phc for 2D phase "
                                   "contrast, nuclei-seg-3d for 3D), a shipped model name, a model folder, or "
                                   "'classical' (threshold + watershed)."),
    voxel_size_um: str | None = voxel_size_option(),
    frame_interval_s: float | None = frame_interval_option(),
    nucleus_diameter_um: float | None = typer.Option(
        None, "--nucleus-diameter-um", help="Typical nucleus diameter in µm (needs the voxel size). Default: "
        "estimated from the first frame."),
    nucleus_diameter_px: float | None = typer.Option(
        None, "--nucleus-diameter-px", help="Typical nucleus diameter in pixels (default: estimated)."),
    axes: str | None = typer.Option(None, "--axes", help="Axes of a stack without metadata, e.g. TZYX."),
    channel: int | None = typer.Option(
        None, "--channel", min=0, help="Nuclear channel (0-based) of a multi-channel stack, zarr, npz or vendor file."),
    scene: int | None = scene_option(),
    test_time_flips: int | None = typer.Option(
        None, "--test-time-flips",
        help="Flipped copies of each frame a learned model averages: 1 (fastest), 2 or 4. Default: the model's "
             "(1 for nuclei-seg-2d-fast, 4 for nuclei-seg-2d)."),
    device: str = device_option(),
    progress: bool | None = progress_option(),
    overwrite: bool = overwrite_option(),
) -> None:
    """Segment every frame; write OUT/masks/maskTTT.tif, OUT/areas.csv, OUT/areas.png and OUT/segment.json.

    Masks are uint16 instance images (0 = background) named with the movie's frame numbers
    (CTC result naming); ids are per frame. areas.csv has one row per nucleus per frame:
    t, label, centroid, area_um2 (2D) or volume_um3 (3D) when the voxel size is known (else
    area_px / volume_vox), equivalent diameter, mean and total intensity. segment.json records
    the model, its card (with the test-time flips used), the nucleus size used, per-frame timings and the sanity-check warnings.
    """
    import json
    import platform
    import time

    import numpy as np
    import tifffile

    import dynacell
    from dynacell.cli.options import parse_voxel_size
    from dynacell.errors import InvalidInputError
    from dynacell.io import open_movie
    from dynacell.io.writers import atomic_folder, frame_name, n_digits_for
    from dynacell.segment.measure import measure_frame
    from dynacell.segment.predict import (
        Segmenter,
        check_segmentation,
        fraction_range_factor,
        iter_segment,
        modality_warning,
        size_warning,
        training_fraction_for,
    )
    from dynacell.segment.select import auto_segmenter

    t_start = time.perf_counter()
    images = open_movie(movie, axes=axes, channel=channel, scene=scene, frame_interval_s=frame_interval_s)
    vs = parse_voxel_size(voxel_size_um, ndim=images.ndim_spatial) if voxel_size_um else images.voxel_size_um
    diam_px = nucleus_diameter_px
    if nucleus_diameter_um is not None:
        if vs is None:
            raise InvalidInputError("--nucleus-diameter-um needs the pixel size: give --voxel-size-um")
        diam_px = float(nucleus_diameter_um) / float(vs[-1])
    if model == "auto":
        model = auto_segmenter(images)
    seg = model if model == "classical" else Segmenter.load(model, device).with_test_time_flips(test_time_flips)
    name = "classical" if seg == "classical" else seg.name
    warnings_: list[str] = []
    note = modality_warning(images.frame(images.frame_indices[0]), seg)
    if note:
        warnings_.append(note)
        typer.echo(f"warning: {warnings_[-1]}", err=True)
    nd = n_digits_for(images.frame_indices)
    tables, stats = [], []
    with atomic_folder(out, overwrite=overwrite) as tmp:
        (tmp / "masks").mkdir()
        diam = None
        for t, lab, info in iter_segment(images, seg, voxel_size_um=vs, nucleus_diameter_px=diam_px,
                                         device=device, progress=progress):
            if lab.max() > np.iinfo(np.uint16).max:
                raise InvalidInputError(f"frame {t}: {lab.max()} objects do not fit a uint16 mask")
            tifffile.imwrite(tmp / "masks" / frame_name("mask", t, max(3, nd)), lab.astype(np.uint16),
                             compression="zlib")
            df = measure_frame(images.frame(t), lab, vs)
            df.insert(0, "t", t)
            tables.append(df)
            diam = info["nucleus_diameter_px"]
            stats.append({"t": t, "seconds": round(info["seconds"], 3), "n_objects": info["n_objects"],
                          "foreground_fraction": round(info["foreground_fraction"], 5)})
        warnings_ += check_segmentation(stats, training_fraction=training_fraction_for(seg, images.ndim_spatial),
                                        range_factor=fraction_range_factor(seg))
        size_note = size_warning(diam if diam_px is None else None, seg)
        if size_note:
            warnings_.append(size_note)
        import pandas as pd

        areas = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["t", "label"])
        if images.frame_interval_s is not None and len(areas):
            areas.insert(1, "time_s", areas["t"] * float(images.frame_interval_s))
        areas.to_csv(tmp / "areas.csv", index=False)
        _area_figure(areas, tmp / "areas.png", images.frame_interval_s)
        record = {
            "command": "dynacell segment", "movie": str(movie), "model": name,
            "model_folder": None if name == "classical" else str(seg.folder),
            "card": None if name == "classical" else seg.card.model_dump(mode="json", exclude={"metrics", "config"}),
            "voxel_size_um": list(vs) if vs is not None else None, "frame_interval_s": images.frame_interval_s,
            "nucleus_diameter_px": diam, "nucleus_diameter_source": _size_source(seg, diam_px, images.ndim_spatial),
            "n_frames": images.n_frames, "frames": stats, "warnings": warnings_,
            "seconds_total": round(time.perf_counter() - t_start, 2),
            "versions": {"dynacell": getattr(dynacell, "__version__", "0"), "python": platform.python_version()},
        }
        (tmp / "segment.json").write_text(json.dumps(record, indent=1, default=float))
    n = sum(s["n_objects"] for s in stats)
    typer.echo(f"segmented {images.n_frames} frames with {name}: {n} nuclei in all -> {out}")
    for w in warnings_:
        typer.echo(f"warning: {w}", err=True)


def _size_source(seg, diam_px: float | None, ndim_spatial: int) -> str:
    """How the nucleus size of ``dynacell segment`` was obtained (recorded in segment.json)."""
    if diam_px is not None:
        return "given"
    from dynacell.segment.predict import searches_size

    if searches_size(seg, ndim_spatial):
        return "model-based size search (LoG start, size of highest foreground confidence, calibrated)"
    return "estimated (LoG)"


def _area_figure(areas, path: Path, frame_interval_s: float | None) -> None:
    """Median nucleus area (volume) per frame with its interquartile range, and the object count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    col = next((c for c in ("area_um2", "volume_um3", "area_px", "volume_vox") if c in areas), None)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
    if col is not None and len(areas):
        g = areas.groupby("t")[col]
        x = g.median().index.to_numpy(dtype=float)
        unit = "frame"
        if frame_interval_s:
            x = x * frame_interval_s / 60.0
            unit = "min"
            if x.max() > 180:
                x, unit = x / 60.0, "h"
        a1.plot(x, g.median().to_numpy(), "k-")
        a1.fill_between(x, g.quantile(0.25).to_numpy(), g.quantile(0.75).to_numpy(), alpha=0.3)
        a1.set_xlabel(f"time ({unit})")
        a1.set_ylabel(col.replace("_um2", " (µm²)").replace("_um3", " (µm³)").replace("_px", " (px)")
                      .replace("_vox", " (voxels)"))
        a2.plot(x, areas.groupby("t").size().to_numpy(), "k.-")
        a2.set_xlabel(f"time ({unit})")
    a1.set_title("nucleus size (median, IQR)")
    a2.set_title("nuclei per frame")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
