"""Size limits checked before dynacell allocates memory for an input.

A few bytes of input can declare a huge object: a TIFF header announcing a 30000 × 30000 frame, a
``man_track.txt`` line ``1 0 2000000000 0`` (a track two billion frames long). dynacell checks
such sizes against the limits below *before* building any array or graph, and stops with a
one-line error naming the file, the value and how to raise the limit, instead of exhausting the
memory of a shared machine.

Each limit has a default that is far above any real time-lapse movie we know of and can be
changed for one process with an environment variable (e.g.
``DYNACELL_MAX_FRAME_VOXELS=4000000000 dynacell run ...``) or in Python with :func:`set_limits`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from dynacell.errors import InvalidInputError

__all__ = ["Limits", "get_limits", "set_limits", "check_frame_voxels", "check_crop_size", "ENV_VARS"]


@dataclass(frozen=True)
class Limits:
    """Caps on the sizes an input may declare.

    Attributes
    ----------
    max_frame_voxels : int
        Voxels of one frame ``([Z,] Y, X)``. Default ``2**29`` (536,870,912: e.g. a
        81 × 2048 × 2048 light-sheet volume fits, a 30000 × 30000 plane does not); a uint16 frame
        at the cap takes 1 GiB.
    max_frames : int
        Largest frame number a track file or lineage may name. Default 100,000 (69 days at one
        frame a minute).
    max_lineage_nodes : int
        Nodes (one per nucleus per frame) a lineage read from a track file may have. Default
        5,000,000 (about 5 GB as a graph).
    """

    max_frame_voxels: int = 2**29
    max_frames: int = 100_000
    max_lineage_nodes: int = 5_000_000


#: Environment variable of each limit.
ENV_VARS = {
    "max_frame_voxels": "DYNACELL_MAX_FRAME_VOXELS",
    "max_frames": "DYNACELL_MAX_FRAMES",
    "max_lineage_nodes": "DYNACELL_MAX_LINEAGE_NODES",
}

_overrides: dict[str, int] = {}


def get_limits() -> Limits:
    """The limits in force: :func:`set_limits` values, else the environment variables, else the defaults.

    Returns
    -------
    Limits

    Raises
    ------
    InvalidInputError
        If an environment variable is set to something other than a positive integer.
    """
    values: dict[str, int] = {}
    for name, var in ENV_VARS.items():
        if name in _overrides:
            values[name] = _overrides[name]
            continue
        raw = os.environ.get(var)
        if raw is None or not raw.strip():
            continue
        try:
            v = int(raw.replace("_", ""))
        except ValueError:
            v = 0
        if v <= 0:
            raise InvalidInputError(f"environment variable {var}={raw!r}: expected a positive integer")
        values[name] = v
    return Limits(**values)


def set_limits(**limits: int | None) -> Limits:
    """Change limits for this process (``None`` restores the environment / default value).

    Parameters
    ----------
    **limits : int or None
        ``max_frame_voxels=``, ``max_frames=``, ``max_lineage_nodes=``.

    Returns
    -------
    Limits
        The limits now in force.

    Raises
    ------
    InvalidInputError
        An unknown name or a value that is not a positive integer.
    """
    known = {f.name for f in dataclasses.fields(Limits)}
    for name, value in limits.items():
        if name not in known:
            raise InvalidInputError(f"unknown limit {name!r}; expected one of {sorted(known)}")
        if value is None:
            _overrides.pop(name, None)
        elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise InvalidInputError(f"limit {name}={value!r}: expected a positive integer")
        else:
            _overrides[name] = value
    return get_limits()


def check_frame_voxels(shape: tuple[int, ...], where: str) -> None:
    """Refuse a frame shape larger than :attr:`Limits.max_frame_voxels` (before reading any pixel).

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of one frame ``([Z,] Y, X)``.
    where : str
        The file (and frame) declaring it, for the message.

    Raises
    ------
    InvalidInputError
        If the frame has more voxels than the limit, or a negative size.
    """
    n = 1
    for s in shape:
        if int(s) < 0:
            raise InvalidInputError(f"{where}: negative frame size in shape {tuple(shape)}; the file is corrupt")
        n *= int(s)
    cap = get_limits().max_frame_voxels
    if n > cap:
        raise InvalidInputError(
            f"{where}: one frame of shape {tuple(int(s) for s in shape)} has {n:,} voxels, above the limit of "
            f"{cap:,}; if the file is right, raise the limit with {ENV_VARS['max_frame_voxels']}={n}"
        )


def check_crop_size(size: int | tuple[int, ...], frame_shape: tuple[int, ...], *, option: str = "--size",
                    source: str = "") -> None:
    """Refuse a crop size that no frame of the movie can fill (before any crop is allocated).

    A crop side may be at most twice the largest side of a frame (beyond that a crop is almost
    all padding), and one crop may hold at most :attr:`Limits.max_frame_voxels` voxels.

    Parameters
    ----------
    size : int or tuple of int
        Crop size in pixels: one number for every spatial axis, or one per axis.
    frame_shape : tuple of int
        Spatial shape of one frame ``([Z,] Y, X)``.
    option : str
        The command-line option that set ``size``, for the message.
    source : str
        The movie, for the message.

    Raises
    ------
    InvalidInputError
        A size that is not positive, larger than twice the frame's largest side, or over the voxel limit.
    """
    sizes = (int(size),) * len(frame_shape) if isinstance(size, (int,)) else tuple(int(s) for s in size)
    largest = max((int(n) for n in frame_shape), default=0)
    where = f"{option} {size if isinstance(size, int) else ' '.join(map(str, sizes))}"
    if any(s <= 0 for s in sizes):
        raise InvalidInputError(f"{where}: crop sizes must be > 0 pixels")
    if any(s > 2 * largest for s in sizes):
        raise InvalidInputError(
            f"{where}: a crop side of {max(sizes):,} px is more than twice the largest side of the frames of "
            f"{source or 'the movie'} ({tuple(int(n) for n in frame_shape)}); choose a crop about the size of a nucleus"
        )
    n = 1
    for s in sizes:
        n *= s
    if n > get_limits().max_frame_voxels:
        raise InvalidInputError(f"{where}: one crop would hold {n:,} voxels, above the limit of "
                                f"{get_limits().max_frame_voxels:,} ({ENV_VARS['max_frame_voxels']})")
