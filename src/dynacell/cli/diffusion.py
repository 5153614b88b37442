"""``dynacell diffusion simulate|train|predict|benchmark``: D of single molecules from image stacks (docs/diffusion.md)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from dynacell.cli.options import (
    echo_json,
    frame_interval_option,
    out_option,
    overwrite_option,
    progress_option,
    seed_option,
    voxel_size_option,
)


def _read_stacks(path: Path):
    """``(N, T, Y, X)`` stacks from a TIFF (3D = one stack) or a ``.npy`` file."""
    import numpy as np
    import tifffile

    from dynacell.errors import FormatError, InvalidInputError

    if not path.exists():
        raise InvalidInputError(f"{path}: stacks file not found")
    try:
        arr = np.load(path) if path.suffix == ".npy" else tifffile.imread(path)
    except Exception as exc:  # tifffile / numpy raise several types for a foreign file
        raise FormatError(f"{path}: cannot read stacks ({type(exc).__name__}: {exc})") from None
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise FormatError(f"{path}: expected stacks (N, T, Y, X) or one stack (T, Y, X), got shape {arr.shape}")
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        n, t, y, x = (int(v) for v in np.argwhere(~np.isfinite(arr))[0])
        raise InvalidInputError(f"{path}: {int(np.count_nonzero(~np.isfinite(arr)))} NaN or infinite pixel value(s), "
                                f"the first in stack {n}, frame {t} at (y, x) = ({y}, {x}); intensities must be finite")
    return arr


def _pixel_size(voxel_size: str | None) -> float:
    from dynacell.cli.options import parse_voxel_size
    from dynacell.errors import InvalidInputError

    vs = parse_voxel_size(voxel_size, ndim=2)
    if vs is None:
        raise InvalidInputError("--voxel-size-um Y X is required (the pixel size in the sample plane, µm)")
    if abs(vs[0] - vs[1]) > 1e-9 * max(vs):
        raise InvalidInputError(f"--voxel-size-um: square pixels are needed (Y = X), got {vs[0]} and {vs[1]}")
    return float(vs[0])


def register(app: typer.Typer) -> None:
    """Add the ``diffusion`` command group to ``app``.

    Parameters
    ----------
    app : typer.Typer
        The ``dynacell`` application.
    """
    dg = typer.Typer(help="Diffusion coefficient of single molecules from raw image stacks (beside trajectory "
                          "estimators).", no_args_is_help=True)

    @dg.command("simulate")
    def simulate(
        out: Path = out_option("Folder to write: stacks.tif (N, T, Y, X) uint16 ADU, truth.csv, positions.csv."),
        n: int = typer.Option(100, "--n", help="number of stacks"),
        n_frames: int = typer.Option(16, "--frames", help="frames per stack"),
        size: int = typer.Option(32, "--size", help="field size in pixels (square)"),
        D: tuple[float, float] = typer.Option((0.01, 10.0), "--D-um2-per-s", help="D range (log-uniform), µm²/s"),
        snr: tuple[float, float] = typer.Option((2.0, 50.0), "--snr", help="peak SNR range (log-uniform)"),
        pixel: tuple[float, float] = typer.Option((0.1, 0.16), "--pixel-size-um", help="pixel size range, µm"),
        background: tuple[float, float] = typer.Option((2.0, 30.0), "--background-photons",
                                                       help="background photons per pixel range (log-uniform)"),
        frame_interval_s: float = typer.Option(0.005, "--frame-interval-s", help="time between frames, s"),
        exposure_s: float | None = typer.Option(None, "--exposure-s", help="exposure per frame, s (default: interval)"),
        psf_fwhm_nm: float = typer.Option(250.0, "--psf-fwhm-nm", help="PSF FWHM, nm"),
        motion: str = typer.Option("brownian", "--motion", help="brownian, confined, fractional or two_state"),
        seed: int = seed_option(),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Simulate single-molecule stacks with motion blur; writes the stacks and the ground truth."""
        import numpy as np
        import tifffile

        from dynacell.io.writers import atomic_folder
        from dynacell.simulate.particles import draw_conditions, simulate_stacks

        cond = draw_conditions(n, seed=seed, D_um2_per_s=D, snr=snr, pixel_size_um=pixel, background_photons=background)
        sim = simulate_stacks(cond["D_um2_per_s"].to_numpy(), n_frames=n_frames, shape_px=(size, size),
                              pixel_size_um=cond["pixel_size_um"].to_numpy(), frame_interval_s=frame_interval_s,
                              exposure_s=exposure_s, psf_fwhm_nm=psf_fwhm_nm, snr=cond["snr"].to_numpy(),
                              background_photons=cond["background_photons"].to_numpy(), motion=motion, seed=seed)
        with atomic_folder(out, overwrite=overwrite) as tmp:
            tifffile.imwrite(Path(tmp) / "stacks.tif", sim.stacks, metadata={"axes": "QTYX"})
            sim.truth.to_csv(Path(tmp) / "truth.csv", index=False)
            N, M, T, _ = sim.positions_um.shape
            import pandas as pd

            pd.DataFrame({"stack": np.repeat(np.arange(N), M * T), "molecule": np.tile(np.repeat(np.arange(M), T), N),
                          "frame": np.tile(np.arange(T), N * M), "y_um": sim.positions_um[..., 0].ravel(),
                          "x_um": sim.positions_um[..., 1].ravel()}).to_csv(Path(tmp) / "positions.csv", index=False)
        echo_json({"out": str(out), "n_stacks": n, "shape": list(sim.stacks.shape), "seed": seed})

    @dg.command("train")
    def train(
        config: Path = typer.Argument(..., help="diffusion training config YAML (see src/dynacell/diffusion/configs)"),
        out: Path = out_option("Model folder to write (weights.pt, model.yaml, history.csv)."),
        overwrite: bool = overwrite_option(),
        progress: bool | None = progress_option(),
    ) -> None:
        """Train a diffusion network on on-the-fly simulation (validation: a fixed simulated set)."""
        from dynacell.train.diffusion import load_train_config, train_diffusion

        cfg = load_train_config(config)
        cmd = "dynacell " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        folder = train_diffusion(cfg, out, progress=progress, overwrite=overwrite, command=cmd)
        echo_json({"model": str(folder)})

    @dg.command("predict")
    def predict(
        stacks: Path = typer.Argument(..., help="TIFF (N, T, Y, X) or (T, Y, X), or .npy, raw camera ADU"),
        out: Path = out_option("Folder to write: predictions.csv (one row per stack)."),
        voxel_size: str | None = voxel_size_option(),
        frame_interval_s: float | None = frame_interval_option(),
        exposure_s: float | None = typer.Option(None, "--exposure-s", help="exposure per frame, s (default: interval)"),
        psf_fwhm_nm: float | None = typer.Option(None, "--psf-fwhm-nm", help="PSF FWHM, nm (default: the model's)"),
        gain: float = typer.Option(1.0, "--gain-adu-per-e", help="camera gain, ADU per photo-electron"),
        offset: float = typer.Option(100.0, "--offset-adu", help="camera offset, ADU"),
        read_noise: float = typer.Option(1.5, "--read-noise-adu", help="camera read noise, ADU"),
        model: str = typer.Option("diffusion-2d", "--model", help="shipped model name or model folder"),
        baselines: bool = typer.Option(True, "--baselines/--no-baselines",
                                       help="also the trajectory estimators (seed MSD, CVE, optimal MSD fit)"),
        no_tta: bool = typer.Option(False, "--no-tta", help="skip the 8-fold dihedral test-time averaging"),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """D (µm²/s) with a 68 % interval per stack, beside the trajectory estimators' D."""
        from dynacell.diffusion.baselines import trajectory_estimates
        from dynacell.diffusion.predict import DiffusionPredictor
        from dynacell.errors import InvalidInputError
        from dynacell.io.writers import atomic_folder
        from dynacell.simulate.imaging import psf_sigma_from_fwhm

        if out.exists() and (out.is_file() or any(out.iterdir())) and not overwrite:
            raise InvalidInputError(f"--out {out}: exists and is not empty (use --overwrite)")
        if frame_interval_s is None:
            raise InvalidInputError("--frame-interval-s is required")
        px = _pixel_size(voxel_size)
        arr = _read_stacks(stacks)
        pred = DiffusionPredictor.load(model)
        df = pred.predict(arr, pixel_size_um=px, frame_interval_s=frame_interval_s, exposure_s=exposure_s,
                          psf_fwhm_nm=psf_fwhm_nm, gain_adu_per_e=gain, offset_adu=offset, read_noise_adu=read_noise,
                          tta=not no_tta)
        if baselines:
            fwhm = psf_fwhm_nm or pred.card.training_ranges["psf_fwhm_nm"][0]
            tr = trajectory_estimates(arr, pixel_size_um=px, frame_interval_s=frame_interval_s, exposure_s=exposure_s,
                                      psf_sigma_px=psf_sigma_from_fwhm(fwhm) / 1000.0 / px)
            df = df.merge(tr, on="stack")
        df.insert(1, "model", pred.card.name)
        with atomic_folder(out, overwrite=overwrite) as tmp:
            df.to_csv(Path(tmp) / "predictions.csv", index=False)
        echo_json({"out": str(out), "n_stacks": len(df), "model": pred.card.name,
               "median_D_um2_per_s": float(df["D_um2_per_s"].median()) if len(df) else None})

    @dg.command("benchmark")
    def benchmark(
        out: Path = out_option("Folder to write: results.csv (per stack), table.csv/.md, figures."),
        n: int = typer.Option(1500, "--n", help="stacks of the held-out grid"),
        seed: int = typer.Option(2024, "--seed", help="seed of the held-out grid (never used in training)"),
        models: list[str] = typer.Option(["diffusion-2d"], "--model", help="model names or folders (repeatable)"),
        overwrite: bool = overwrite_option(),
    ) -> None:
        """Held-out simulated grid: image models beside the trajectory estimators and the Cramér–Rao line."""
        from dynacell.diffusion.benchmark import run_benchmark

        res = run_benchmark(out, n=n, seed=seed, models=models, overwrite=overwrite)
        echo_json(res)

    app.add_typer(dg, name="diffusion")
