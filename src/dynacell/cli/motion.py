"""``dynacell motion``: MSD, diffusion coefficients, velocity correlations and displacement moments of tracks."""

from __future__ import annotations

from pathlib import Path

import typer

from dynacell.cli.options import (
    frame_interval_option,
    out_option,
    overwrite_option,
    voxel_size_option,
)


def motion_command(
    tracks: Path = typer.Argument(..., help="A tracks CSV (t/frame, track_id/particle/trajectory/ID, [z,] y, x in "
                                            "pixels, or TrackMate's exported spot table), a dynacell run or "
                                            "particles output folder, a CTC result (*_track.txt + masks), a GEFF "
                                            "store or a TrackMate XML file (units from its calibration)."),
    out: Path = out_option(),
    pixel_size_um: float | None = typer.Option(None, "--pixel-size-um", help="Pixel size in µm (Y and X). "
                                               "Default: from the source (run.json, a TrackMate file) when it "
                                               "records one."),
    voxel_size_um: str | None = voxel_size_option(),
    frame_interval_s: float | None = frame_interval_option(),
    exposure_s: float | None = typer.Option(None, "--exposure-s", help="Exposure per frame (s) for the motion-blur "
                                            "correction. Default: no blur."),
    sigma_um: float | None = typer.Option(None, "--sigma-um", help="Known localisation error (µm per axis). Default: "
                                          "from the table's y_err/x_err, else estimated."),
    drift: bool = typer.Option(False, "--subtract-drift", help="Subtract the ensemble drift before the statistics."),
    max_lag: int = typer.Option(100, "--max-lag", min=1, help="Largest MSD lag (frames)."),
    drop_nan: bool = typer.Option(False, "--drop-nan", help="Drop rows with NaN positions (they become gaps) "
                                  "instead of stopping."),
    overwrite: bool = overwrite_option(),
) -> None:
    """Motion statistics of tracks; writes msd.csv, diffusion.json, correlations.csv, moments.csv, figures and
    report.html into OUT and prints a JSON summary (n_tracks, D_um2_per_s, D_method, alpha, D_by_method, ...).
    """
    import json

    from dynacell.cli.options import parse_voxel_size
    from dynacell.errors import InvalidInputError
    from dynacell.io.writers import atomic_folder
    from dynacell.motion.analysis import analyze
    from dynacell.motion.report import write_motion_outputs
    from dynacell.motion.tracks import read_tracks

    if pixel_size_um is not None and voxel_size_um is not None:
        raise InvalidInputError("give --pixel-size-um or --voxel-size-um, not both")
    vs = parse_voxel_size(voxel_size_um) if voxel_size_um is not None else pixel_size_um
    tr = read_tracks(tracks, vs, frame_interval_s, drop_nan=drop_nan)
    res = analyze(tr, exposure_s=exposure_s, sigma_um=sigma_um, drift=drift, max_lag=max_lag)
    params = {"tracks": str(tracks), "voxel_size_um": tr.meta.get("voxel_size_um"),
              "frame_interval_s": tr.frame_interval_s, "exposure_s": exposure_s, "sigma_um": sigma_um,
              "subtract_drift": drift, "max_lag": max_lag, "drop_nan": drop_nan}
    with atomic_folder(out, overwrite=overwrite) as tmp:
        summary = write_motion_outputs(res, tmp, parameters=params)
    typer.echo(json.dumps(summary, indent=2))


def register(app: typer.Typer) -> None:
    """Add ``motion`` to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    app.command("motion")(motion_command)
