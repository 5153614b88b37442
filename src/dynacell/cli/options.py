"""Options shared by every ``dynacell`` command: one spelling, one parser, one help text.

Every command that writes takes ``-o/--out`` and ``--overwrite``; every command that reads a movie
takes ``--voxel-size-um`` (one number per spatial axis, as scikit-image's ``spacing=``: 2D
``--voxel-size-um 0.645 0.645``, 3D ``--voxel-size-um 2.0 0.208 0.208``; a comma list
``0.645,0.645`` is the same) and ``--frame-interval-s``; long loops take
``--progress/--no-progress`` (default: bars only when stderr is a terminal).

Because click options have a fixed number of values, :func:`merge_multi_value_options` (called by
:func:`dynacell.cli.main.main` on ``sys.argv``) joins the numbers that follow a multi-value option
into one comma-separated token before parsing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import typer

from dynacell.errors import InvalidInputError

__all__ = [
    "MULTI_VALUE_OPTIONS", "merge_multi_value_options", "parse_voxel_size", "out_option", "overwrite_option",
    "voxel_size_option", "frame_interval_option", "progress_option", "seed_option", "device_option",
    "require_paths", "motion_prior_option", "echo_json", "scene_option",
]

#: Options that take one number per spatial axis.
MULTI_VALUE_OPTIONS = ("--voxel-size-um", "--lineage-voxel-size-um", "--target-voxel-um")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return not token.startswith("--")


def merge_multi_value_options(argv: Sequence[str]) -> list[str]:
    """Join ``--voxel-size-um 2.0 0.208 0.208`` into ``--voxel-size-um 2.0,0.208,0.208``.

    Parameters
    ----------
    argv : sequence of str
        Command-line arguments (without the program name).

    Returns
    -------
    list of str

    Examples
    --------
    >>> merge_multi_value_options(["run", "m.tif", "--voxel-size-um", "0.6", "0.6", "-o", "x"])
    ['run', 'm.tif', '--voxel-size-um', '0.6,0.6', '-o', 'x']
    """
    out: list[str] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        tok = argv[i]
        out.append(tok)
        i += 1
        if tok in MULTI_VALUE_OPTIONS:
            vals = []
            while i < len(argv) and _is_number(argv[i]) and len(vals) < 3:
                vals.append(argv[i])
                i += 1
            if vals:
                out.append(",".join(vals))
    return out


def parse_voxel_size(value: str | Sequence[float] | None, *, option: str = "--voxel-size-um",
                     ndim: int | None = None) -> tuple[float, ...] | None:
    """Parse a voxel size given on the command line into a tuple in spatial-axes order (µm).

    Parameters
    ----------
    value : str, sequence of float or None
        ``"0.645,0.645"``, ``"2.0,0.208,0.208"`` (also space-separated), or numbers; None = not given.
    option : str
        The option's name, for error messages.
    ndim : int, optional
        Expected number of spatial axes (2 or 3) when already known.

    Returns
    -------
    tuple of float or None
        ``(Y, X)`` or ``(Z, Y, X)`` in µm.

    Raises
    ------
    InvalidInputError
        Not 2 or 3 numbers, a number that is not finite and > 0, or a count that differs from ``ndim``.

    Examples
    --------
    >>> parse_voxel_size("2.0,0.208 0.208")
    (2.0, 0.208, 0.208)
    """
    if value is None:
        return None
    if isinstance(value, str):
        tokens = [t for t in value.replace(",", " ").split() if t]
    else:
        tokens = list(value)
    try:
        vals = tuple(float(t) for t in tokens)
    except ValueError:
        raise InvalidInputError(f"{option}: expected 2 (Y X) or 3 (Z Y X) numbers in µm, got {value!r}") from None
    if len(vals) not in (2, 3):
        raise InvalidInputError(
            f"{option}: give one size per spatial axis — 2 numbers for a 2D movie (Y X, e.g. 0.645 0.645) "
            f"or 3 for a 3D movie (Z Y X, e.g. 2.0 0.208 0.208); got {len(vals)}: {value!r}")
    if any(not math.isfinite(v) or v <= 0 for v in vals):
        raise InvalidInputError(f"{option}: sizes must be finite and > 0 µm, got {value!r}")
    if ndim is not None and len(vals) != ndim:
        raise InvalidInputError(f"{option}: the movie is {ndim}D, so give {ndim} numbers; got {len(vals)}: {value!r}")
    return vals


def out_option(help: str = "Output folder (must not exist unless --overwrite).") -> Path:  # noqa: A002
    """``-o/--out PATH`` (required).

    Parameters
    ----------
    help : str
        The option's help text.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(..., "-o", "--out", help=help)


def overwrite_option() -> bool:
    """``--overwrite``: replace an existing output after success.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(False, "--overwrite", help="Replace OUT (only after the new result is complete).")


def scene_option() -> int | None:
    """``--scene N``: the stage position (0-based) of a multi-position ND2, CZI, LIF, OME-TIFF or OME-Zarr movie.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(None, "--scene", min=0,
                        help="Scene (stage position, 0-based) of a multi-position ND2, CZI, LIF or OME-TIFF file or "
                             "OME-Zarr store (bioformats2raw layout). "
                             "Default: the first (the run says so when there are several).")


def voxel_size_option() -> str | None:
    """``--voxel-size-um Y X`` or ``Z Y X`` (µm); parse with :func:`parse_voxel_size`.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(None, "--voxel-size-um", metavar="[Z] Y X",
                        help="Voxel size in µm, one number per spatial axis: 2D 'Y X', 3D 'Z Y X'. "
                             "Default: from the file's metadata.")


def frame_interval_option() -> float | None:
    """``--frame-interval-s T``.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(None, "--frame-interval-s", help="Time between frames in s. Default: from the file's metadata.")


def progress_option() -> bool | None:
    """``--progress/--no-progress`` (default: bars only when stderr is a terminal).

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(None, "--progress/--no-progress", help="Show progress bars (default: when stderr is a terminal).")


def seed_option() -> int:
    """``--seed N`` (recorded in outputs).

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option(0, "--seed", help="Random seed (recorded in the outputs).")


def device_option() -> str:
    """``--device auto|cpu|cuda``.

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option("auto", "--device", help="auto, cpu or cuda.")


def motion_prior_option() -> str:
    """``--motion-prior flow|velocity|kalman|MODEL``: the linker's motion prior (:func:`dynacell.track.link_labels`).

    Returns
    -------
    typer.models.OptionInfo
        The option, as the default of a command's parameter.
    """
    return typer.Option("flow", "--motion-prior",
                        help="Expected motion of each nucleus when linking: flow (drift + neighbours' motion), "
                             "velocity (its track's last step), kalman, or a position model name/folder "
                             "(positions-2d, positions-3d).")


def require_paths(**paths: Path | None) -> None:
    """Fail fast, before any heavy import, when an input path does not exist.

    Parameters
    ----------
    **paths
        ``role=path`` pairs (``movie=...``, ``labels=...``); None values are skipped.

    Raises
    ------
    InvalidInputError
        Naming the role and the path of the first missing one.
    """
    for role, p in paths.items():
        if p is not None and not Path(p).exists():
            raise InvalidInputError(f"{role}: {p}: no such file or folder; check the path")


def _hide_flag_types() -> None:
    """Typer's help prints ``<bool>`` beside on/off flags; a flag takes no value, so print nothing there."""
    from typer.core import TyperOption

    if getattr(TyperOption, "_dynacell_no_bool", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    TyperOption.display_type_rich = display_type_rich
    TyperOption._dynacell_no_bool = True


_hide_flag_types()


def echo_json(obj) -> None:
    """Print a command's result on stdout as indented JSON (numbers NumPy or Python; others as float).

    Parameters
    ----------
    obj : object
        A JSON-serialisable mapping or list; a value JSON does not know (a NumPy scalar) is written
        as ``float(value)``.
    """
    typer.echo(json.dumps(obj, indent=1, default=float))
