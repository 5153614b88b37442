"""Consistency checks between movies (images vs labels)."""

from __future__ import annotations

import logging
import math
from typing import Any

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie

__all__ = ["check_same_grid", "missing_frames", "movie_notes", "nucleus_size_notes", "reading_notes",
           "PLAUSIBLE_DIAMETER_UM"]

logger = logging.getLogger(__name__)


def _describe(x: Any, name: str) -> tuple[str, tuple[int, ...], tuple[float, ...] | None]:
    if isinstance(x, Movie):
        return f"{name} {x.source}", x.frame_shape, x.voxel_size_um
    shape = tuple(int(s) for s in getattr(x, "shape", ()))
    if len(shape) < 3:
        raise InvalidInputError(f"{name}: expected a movie (T, [Z,] Y, X), got shape {shape}")
    return name, shape[1:], None


def check_same_grid(images: Any, labels: Any) -> None:
    """Check that a label movie lies on the pixel grid of an image movie.

    Parameters
    ----------
    images, labels : Movie or array ``(T, [Z,] Y, X)``
        The movies; only the spatial grid is compared (frame counts may differ: label
        frames are often sparse, e.g. CTC ``TRA`` masks).

    Raises
    ------
    InvalidInputError
        If the frame shapes differ (the message names both sources and shapes), or both voxel
        sizes are known and differ by more than 0.1 %.
    """
    name_i, shape_i, vs_i = _describe(images, "images")
    name_l, shape_l, vs_l = _describe(labels, "labels")
    if shape_i != shape_l:
        raise InvalidInputError(
            f"{name_l}: label frames have shape {shape_l} but {name_i} has frames of shape {shape_i}; "
            f"labels must be on the image grid — pass the matching labels or resample them"
        )
    if vs_i is not None and vs_l is not None and not all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(vs_i, vs_l)):
        raise InvalidInputError(
            f"{name_l}: voxel size {vs_l} µm differs from {vs_i} µm of {name_i}; open both with the same "
            f"voxel_size_um"
        )


def missing_frames(frame_indices) -> list[int]:
    """Frame numbers absent between the first and the last frame of a movie.

    Parameters
    ----------
    frame_indices : sequence of int
        The movie's frame numbers (``Movie.frame_indices``), increasing.

    Returns
    -------
    list of int
        The numbers inside ``first .. last`` that no frame carries (e.g. a file ``t003.tif`` absent from a
        folder), increasing; empty when the frames are consecutive.

    Examples
    --------
    >>> missing_frames([0, 1, 2, 4, 5, 8])
    [3, 6, 7]
    """
    numbers = [int(t) for t in frame_indices]
    if not numbers:
        return []
    present = set(numbers)
    return [t for t in range(numbers[0], numbers[-1] + 1) if t not in present]


def movie_notes(movie: Movie) -> list[str]:
    """Warnings for a job's report: unknown sizes, a short movie, a scene or channel chosen by default, missing frames.

    Each note is also logged as a warning. Nothing is guessed: with an unknown voxel size every
    distance stays in pixels, with an unknown frame interval every time in frames; no missing frame
    is invented.

    Parameters
    ----------
    movie : Movie
        The image movie ``(T, (Z), Y, X)`` with its physical sizes (``voxel_size_um`` in µm,
        ``frame_interval_s`` in s; None = unknown) and frame numbers (``frame_indices``).

    Returns
    -------
    list of str
        In this order, those that apply: the voxel size is unknown (naming the axes to give to
        ``--voxel-size-um``), the frame interval is unknown, fewer than 3 frames (a state uses frames
        t−1, t, t+1, so event states then lack temporal evidence), a multi-position file of which the
        first scene was read by default, a multi-channel file of which channel 0 was read by default
        (both from ``movie.metadata`` keys ``scenes``, ``channel_names`` and ``defaulted``, set by the vendor,
        OME-TIFF and OME-Zarr readers), frame numbers missing inside the
        movie (:func:`missing_frames`; e.g. a file absent from a folder of per-frame TIFFs: the linker
        links across the hole as if the frames were consecutive, and tracks are split there).
    """
    notes = []
    if movie.voxel_size_um is None:
        notes.append(
            f"The voxel size of {movie.source or 'the movie'} is unknown (no metadata, no --voxel-size-um): "
            "linking distances, nucleus sizes and positions are in pixels, not µm. Give --voxel-size-um "
            f"({'Y X' if movie.ndim_spatial == 2 else 'Z Y X'}) for physical units.")
    if movie.frame_interval_s is None:
        notes.append("The frame interval is unknown (no metadata, no --frame-interval-s): times are in frames.")
    if movie.n_frames < 3:
        notes.append(
            f"The movie has {movie.n_frames} frame(s): states use the frames before and after each nucleus "
            "(t-1, t, t+1), so with fewer than 3 frames mitotic / new-daughter / death calls have no temporal "
            "evidence and most nuclei will be called stable."
            + (f" It is read as one 3D volume of {movie.frame_shape[0]} z-planes: if these planes are time points "
               "(a 2D time-lapse saved as a z-stack), give --axes TYX." if movie.n_frames == 1 and
               movie.ndim_spatial == 3 else ""))
    meta = movie.metadata if isinstance(movie.metadata, dict) else {}
    scenes, defaulted = meta.get("scenes") or [], meta.get("defaulted") or []
    if len(scenes) > 1 and "scene" in defaulted:
        notes.append(
            f"{movie.source} holds {len(scenes)} scenes (stage positions) {scenes[:6]}"
            f"{' ...' if len(scenes) > 6 else ''}; this run read the first ({scenes[0]}). Run again with "
            f"{'--scene 1 for the other' if len(scenes) == 2 else f'--scene 1 .. {len(scenes) - 1} for the others'}.")
    names = meta.get("channel_names") or []
    if len(names) > 1 and "channel" in defaulted:
        notes.append(
            f"{movie.source} holds {len(names)} channels {names}; this run read channel 0 ({names[0]}). If that is not "
            "the nuclear channel, run again with --channel N.")
    notes += reading_notes(movie)
    holes = missing_frames(movie.frame_indices)
    if holes:
        shown = ", ".join(str(t) for t in holes[:10]) + (", ..." if len(holes) > 10 else "")
        notes.append(
            f"{len(holes)} frame(s) missing inside frames {movie.frame_indices[0]}..{movie.frame_indices[-1]} of "
            f"{movie.source or 'the movie'} (frame number(s) {shown}): no frame is invented; nuclei are linked across "
            "the hole as if the frames were consecutive (they had more time to move), a track crossing it is split "
            "there (end_reason 'gap'), and states use the frames on either side.")
    for n in notes:
        logger.warning(n)
    return notes


def reading_notes(movie: Movie) -> list[str]:
    """Notes on how the reader took the files: a series chosen by name, a binary mask labelled by objects.

    Parameters
    ----------
    movie : Movie
        A movie or label movie from :func:`dynacell.io.open_movie` / :func:`~dynacell.io.open_labels`
        (``metadata["series"]`` set when a folder held images and masks side by side, e.g. Cellpose's
        ``NAME.tif`` + ``NAME_cp_masks.png``; ``metadata["binary_mask"]`` when a binary mask was given as
        labels).

    Returns
    -------
    list of str
        The notes (none when the files were read as they are).
    """
    meta = movie.metadata if isinstance(movie.metadata, dict) else {}
    notes = []
    b = meta.get("binary_mask")
    if b:
        notes.append(
            f"{movie.source} is a binary mask (one value, {b['value']}, for all {b['objects_first_frame']} objects "
            "of the first frame), not instance labels: each connected object was given its own id. Nuclei that "
            "touch stay one object (one nucleus to the linker and the state model); give instance labels (one id "
            "per nucleus, e.g. from StarDist or Cellpose) or leave out --labels to let dynacell segment.")
    s = meta.get("series")
    if not s:
        return notes
    return notes + [f"{movie.source} holds two series of frame files, {s['read'].replace('#', 'TTT')} and "
            f"{s['also_in_folder'][0].replace('#', 'TTT')}; the {s['kind']} were read from "
            f"{s['read'].replace('#', 'TTT')} (by their names: mask files are named *_masks, *_cp_masks, *_labels "
            "or *_seg)."]


#: Median equivalent nucleus (or cell) diameters in µm that a voxel size in µm gives on real specimens: from
#: bacteria (about 1 µm) to large nuclei (tens of µm). Outside, the voxel size was probably given in nm or mm.
PLAUSIBLE_DIAMETER_UM = (0.5, 200.0)


def nucleus_size_notes(sizes_px, voxel_size_um, source: str = "the movie") -> list[str]:
    """A note when the voxel size makes the nuclei implausibly small or large (a size given in nm or mm).

    Parameters
    ----------
    sizes_px : array-like of int
        Pixels (2D) or voxels (3D) per nucleus, e.g. the ``size_px`` column of the label scan.
    voxel_size_um : sequence of float or None
        ``(Y, X)`` or ``(Z, Y, X)`` in µm; None: no note (sizes are in pixels).
    source : str
        The movie, for the note.

    Returns
    -------
    list of str
        One note (also logged as a warning) when the median equivalent diameter — ``sqrt(4 A / π)`` in 2D,
        ``(6 V / π)^(1/3)`` in 3D, with the pixel area or voxel volume from ``voxel_size_um`` — lies outside
        :data:`PLAUSIBLE_DIAMETER_UM`; else none.

    Examples
    --------
    >>> nucleus_size_notes([400, 500], (0.645, 0.645))
    []
    >>> nucleus_size_notes([400, 500], (645.0, 645.0))[0][:61]
    'With the voxel size (645.0, 645.0) µm the nuclei of the movie'
    """
    import numpy as np

    sizes = np.asarray(sizes_px, dtype=np.float64)
    if voxel_size_um is None or sizes.size == 0:
        return []
    vs = tuple(float(v) for v in voxel_size_um)
    unit = float(np.prod(vs))
    area_or_volume = sizes * unit
    d_um = float(np.median((4.0 * area_or_volume / np.pi) ** 0.5 if len(vs) == 2
                           else (6.0 * area_or_volume / np.pi) ** (1 / 3)))
    lo, hi = PLAUSIBLE_DIAMETER_UM
    if lo <= d_um <= hi:
        return []
    note = (f"With the voxel size {vs} µm the nuclei of {source} measure {d_um:.3g} µm across (median equivalent "
            f"diameter), outside the {lo:g}–{hi:g} µm of real cells and nuclei: was the voxel size given in "
            f"{'nm' if d_um > hi else 'mm'} instead of µm? Sizes, speeds and linking distances in µm are then wrong "
            "by the same factor.")
    logger.warning(note)
    return [note]
