"""``dynacell forecast train|evaluate|evaluate-tracks|predict``: next frames and next positions (docs/forecasting.md)."""

from __future__ import annotations

import json
import logging
import shlex
import sys
from pathlib import Path

import typer

from dynacell.cli.options import (
    echo_json,
    out_option,
    overwrite_option,
    progress_option,
    seed_option,
    voxel_size_option,
)

logger = logging.getLogger(__name__)


def _name(fm) -> str:
    """Name of a frame model (its card) or method."""
    card = getattr(fm, "card", None)
    return card.name if card is not None else fm.name


def register(app: typer.Typer) -> None:
    """Add the ``forecast`` command group to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    fc = typer.Typer(help="Forecasting: next frames of a movie, next positions of tracks (always beside baselines).",
                     no_args_is_help=True)

    @fc.command("train")
    def train(
        config: Path = typer.Argument(..., help="forecast training config YAML (task: frames or positions)"),
        out: Path = out_option("Model folder to write (weights.pt, model.yaml, config.yaml, history.csv)."),
        overwrite: bool = overwrite_option(),
        progress: bool | None = progress_option(),
    ) -> None:
        """Train a next-frame or position model; prints held-out metrics beside the baselines as JSON."""
        from dynacell.train.forecast import (
            FrameTrainConfig,
            load_forecast_config,
            train_frames,
            train_positions,
        )

        cfg = load_forecast_config(config)
        cmd = "dynacell " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        fn = train_frames if isinstance(cfg, FrameTrainConfig) else train_positions
        res = fn(cfg, out, overwrite=overwrite, progress=progress, training_command=cmd)
        echo_json(res)

    @fc.command("evaluate")
    def evaluate(
        movie: Path = typer.Argument(..., help="movie (CTC folder, TIFF, zarr, npz)"),
        model: str = typer.Option("frames-unet", "--model",
                                  help="shipped model name, model folder, or method frames-mc-linear|frames-mc-brightness"),
        k: int | None = typer.Option(None, "--k", help="window length (must equal the model's K)"),
        axes: str | None = typer.Option(None, "--axes", help="axes of a TIFF stack, e.g. TYX"),
        z: str = typer.Option("max", "--z", help="3D movies: z-slice index or 'max' (projection)"),
        downsample: int = typer.Option(1, "--downsample", help="block-averaging factor along Y and X"),
        voxel_size_um: str | None = voxel_size_option(),
        test_fraction: float = typer.Option(0.2, "--test-fraction",
                                            help="evaluate on this last fraction of the frames (1 = all windows)"),
        seed: int = seed_option(),
    ) -> None:
        """Next-frame MSE/MAE/SSIM and centre-of-mass error (95 % CI) of a model and the four baselines (JSON)."""
        from dynacell.cli.options import parse_voxel_size
        from dynacell.errors import InvalidInputError
        from dynacell.forecast import (
            FrameForecaster,
            MotionCompensatedForecaster,
            gapless_targets,
            load_frames,
            normalize_movie,
            resolve_model,
        )
        from dynacell.forecast.evaluate import evaluate_frames

        fm = resolve_model(model)
        if not isinstance(fm, (FrameForecaster, MotionCompensatedForecaster)):
            raise InvalidInputError(f"model {model!r} is a position model; use 'dynacell forecast evaluate-tracks'")
        if k is not None and k != fm.k:
            raise InvalidInputError(f"--k {k}: model {model!r} reads windows of K = {fm.k} frames")
        vs = parse_voxel_size(voxel_size_um) if voxel_size_um else None
        zz = z if z == "max" else int(z)
        raw, px, info = load_frames(movie, axes=axes, z=zz, downsample=downsample, voxel_size_um=vs)
        numbers = info["frame_indices"]
        if not 0 < test_fraction <= 1:
            raise InvalidInputError(f"--test-fraction must be in (0, 1], got {test_fraction}")
        first = max(fm.k, len(raw) - max(1, round(len(raw) * test_fraction)))
        fit_frames = range(first) if first > fm.k else None
        frames, _ = normalize_movie(raw, fit_frames=fit_frames)
        extra = {}
        targets = gapless_targets(numbers, fm.k, range(first, len(frames)))
        if len(targets) < len(frames) - first:  # windows across a missing frame would mix two time steps
            extra["windows_left_out_across_missing_frames"] = len(frames) - first - len(targets)
            logger.warning("%s: %d test window(s) span a missing frame and are left out", movie,
                           len(frames) - first - len(targets))
        if not targets:
            raise InvalidInputError(f"{movie}: every test window of {fm.k} + 1 frames spans a missing frame "
                                    f"(frames {numbers[0]}..{numbers[-1]}, {len(numbers)} present)")
        if isinstance(fm, MotionCompensatedForecaster):
            fit_targets = gapless_targets(numbers, fm.k, range(fm.k, first))
            if not fit_targets:
                raise InvalidInputError(f"{fm.name} is fitted on the frames before the tested ones: "
                                        f"use --test-fraction < 1 so that more than {fm.k} consecutive frames come "
                                        f"first")
            fm.fit(frames, fit_targets)
            extra["fitted_on_targets"] = fm.fitted_on["targets"]
        res = evaluate_frames(frames, targets, model=fm, pixel_size_um=px, seed=seed)
        res.update({"movie": str(movie), "model": _name(fm), "pixel_size_um": px, "downsample": downsample,
                    "seed": seed, **extra})
        echo_json(res)

    @fc.command("evaluate-tracks")
    def evaluate_tracks(
        tracks: Path = typer.Argument(..., help="tracks CSV (t, ID|track_id, (z,) y, x px) or a lineage"),
        model: str = typer.Option("positions-2d", "--model", help="shipped model name or model folder"),
        horizon: int = typer.Option(1, "--horizon", help="steps ahead"),
        voxel_size_um: str | None = voxel_size_option(),
        test_fraction: float = typer.Option(0.15, "--test-fraction",
                                            help="fraction of lineage trees tested (the Kalman filter is fitted on the others)"),
        seed: int = seed_option(),
    ) -> None:
        """Average / final displacement error (µm) of a position model and the baselines on held-out trees (JSON)."""
        from dynacell.cli.options import parse_voxel_size
        from dynacell.errors import InvalidInputError
        from dynacell.forecast import PositionForecaster, history_windows, resolve_model
        from dynacell.forecast.evaluate import evaluate_positions
        from dynacell.train.forecast import (
            TrackSpec,
            load_track_spec,
            position_split,
            tree_groups,
        )

        pm = resolve_model(model)
        if not isinstance(pm, PositionForecaster):
            raise InvalidInputError(f"model {model!r} is a frame model; use 'dynacell forecast evaluate'")
        vs = list(parse_voxel_size(voxel_size_um)) if voxel_size_um else None
        if vs is not None and len(vs) == 2:
            vs = [1.0, *vs]
        df, scale = load_track_spec(TrackSpec(name=tracks.name, path=str(tracks), scale_zyx=vs))
        win = history_windows(df, history=pm.history, horizon=horizon, scale_zyx=scale)
        if len(win["past"]) == 0:
            raise InvalidInputError(f"{tracks}: no track has {pm.history + horizon} consecutive frames")
        if win["past"].shape[2] != pm.ndim:
            raise InvalidInputError(f"{tracks}: {win['past'].shape[2]}D tracks, model {model!r} is {pm.ndim}D")
        parts = position_split(win, tree_groups(df), tracks.name, (1 - test_fraction, 0.0, test_fraction), seed)
        res = evaluate_positions(win, parts, model=pm, horizon=horizon)
        res.update({"tracks": str(tracks), "model": pm.card.name, "scale_zyx_um": scale, "seed": seed})
        echo_json(res)

    @fc.command("predict")
    def predict(
        source: Path = typer.Argument(..., help="a movie (frame model) or a tracks CSV / lineage (position model)"),
        out: Path = out_option("Output folder: predicted frames (TIFF) or positions (CSV) and forecast.json."),
        model: str = typer.Option("frames-unet", "--model",
                                  help="shipped model name, model folder, or method frames-mc-linear|frames-mc-brightness"),
        steps: int = typer.Option(1, "--steps", help="frames / steps ahead to predict"),
        method: str = typer.Option("model", "--method",
                                   help="positions: model, constant_position, constant_velocity, kalman or "
                                        "kalman_prw (persistent random walk fitted to the tracks)"),
        axes: str | None = typer.Option(None, "--axes", help="axes of a TIFF stack"),
        z: str = typer.Option("max", "--z", help="3D movies: z-slice index or 'max'"),
        downsample: int = typer.Option(1, "--downsample", help="block-averaging factor along Y and X"),
        voxel_size_um: str | None = voxel_size_option(),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Write the next frames of a movie (roll-out from its last K frames) or the next positions of tracks."""
        import numpy as np
        import tifffile

        from dynacell.cli.options import parse_voxel_size
        from dynacell.errors import InvalidInputError
        from dynacell.forecast import (
            FrameForecaster,
            MotionCompensatedForecaster,
            gapless_targets,
            load_frames,
            normalize_movie,
            predict_next_positions,
            resolve_model,
        )
        from dynacell.io.writers import atomic_folder

        if steps < 1:
            raise InvalidInputError(f"--steps must be >= 1, got {steps}")
        fm = resolve_model(model) if method == "model" else None
        vs = list(parse_voxel_size(voxel_size_um)) if voxel_size_um else None
        if isinstance(fm, (FrameForecaster, MotionCompensatedForecaster)):
            raw, px, info = load_frames(source, axes=axes, z=z if z == "max" else int(z), downsample=downsample,
                                        voxel_size_um=vs)
            numbers = info["frame_indices"]
            if len(numbers) >= fm.k and numbers[-1] - numbers[-fm.k] != fm.k - 1:
                raise InvalidInputError(f"{source}: the last {fm.k} frames the forecast starts from are not consecutive "
                                        f"(frame numbers {list(numbers[-fm.k:])}): a frame is missing among them")
            frames, (lo, hi) = normalize_movie(raw)
            if isinstance(fm, MotionCompensatedForecaster):
                fit_targets = gapless_targets(numbers, fm.k, range(fm.k, len(frames)))
                if not fit_targets:
                    raise InvalidInputError(f"{fm.name} is fitted on the movie itself: it needs more than {fm.k} "
                                            f"consecutive frames")
                fm.fit(frames, fit_targets)
            pred = fm.rollout(frames, steps) * (hi - lo) + lo
            with atomic_folder(out, overwrite=overwrite) as tmp:
                for i, f in enumerate(pred, start=1):  # named by frame number (the movie's numbering)
                    tifffile.imwrite(tmp / f"pred{int(numbers[-1]) + i:03d}.tif", f.astype(np.float32))
                (tmp / "forecast.json").write_text(json.dumps(
                    {"model": _name(fm), "source": str(source), "steps": steps, "last_frame": int(numbers[-1]),
                     "pixel_size_um": px, "downsample": downsample, "intensity_scale": [lo, hi]}, indent=1))
            echo_json({"out": str(out), "frames": steps})
            return
        from dynacell.train.forecast import TrackSpec, load_track_spec

        if vs is not None and len(vs) == 2:
            vs = [1.0, *vs]
        df, scale = load_track_spec(TrackSpec(name=source.name, path=str(source), scale_zyx=vs))
        table = predict_next_positions(df, method=method, model=fm, horizon=steps, scale_zyx=scale)
        with atomic_folder(out, overwrite=overwrite) as tmp:
            table.to_csv(tmp / "positions.csv", index=False)
            (tmp / "forecast.json").write_text(json.dumps(
                {"method": method, "model": getattr(getattr(fm, "card", None), "name", None), "source": str(source),
                 "steps": steps, "scale_zyx_um": scale, "tracks": int(table["track_id"].nunique())}, indent=1))
        echo_json({"out": str(out), "tracks": int(table["track_id"].nunique())})

    app.add_typer(fc, name="forecast")
