"""Cell Tracking Challenge (CTC) track files and result folders.

Format: Maška et al., "The Cell Tracking Challenge: 10 years of objective benchmarking",
Nature Methods 20, 1010–1020 (2023), and the CTC "Submission instructions": a text file with one
line ``L B E P`` per track (label, first frame, last frame, parent label, 0 = none) beside masks
``maskTTT.tif`` (results) or ``man_trackTTT.tif`` (ground truth) whose pixel values are ``L``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io.limits import ENV_VARS, Limits, get_limits

__all__ = ["read_ctc_tracks", "validate_tracks", "write_ctc_result", "TRACK_FILES", "TRACK_COLUMNS"]

logger = logging.getLogger(__name__)

#: Track-file names looked for, in order, when a folder is given.
TRACK_FILES = ("man_track.txt", "res_track.txt")
#: Columns of the table returned by :func:`read_ctc_tracks`.
TRACK_COLUMNS = ["label", "begin", "end", "parent"]


def find_track_file(path: str | Path) -> Path:
    """The CTC track file at ``path``: the file itself, or ``man_track.txt`` / ``res_track.txt`` in a folder.

    Parameters
    ----------
    path : str or Path
        A track file or a CTC ``TRA`` / ``RES`` folder.

    Returns
    -------
    Path
        The track file (``man_track.txt`` is preferred to ``res_track.txt``).

    Raises
    ------
    InvalidInputError
        If ``path`` does not exist or the folder holds no track file.
    """
    p = Path(path)
    if p.is_dir():
        for name in TRACK_FILES:
            if (p / name).is_file():
                return p / name
        raise InvalidInputError(f"{p}: no {' or '.join(TRACK_FILES)} in this folder; point at a CTC TRA or RES folder")
    if not p.is_file():
        raise InvalidInputError(f"{p}: no such track file; check the path")
    return p


def read_ctc_tracks(path: str | Path) -> pd.DataFrame:
    """Read and validate a CTC track file (``man_track.txt`` / ``res_track.txt``).

    Parameters
    ----------
    path : str or Path
        The text file, or a CTC ``TRA`` / ``RES`` folder holding one.

    Returns
    -------
    pandas.DataFrame
        One row per track, in file order, columns ``label, begin, end, parent`` (int64): the
        track's label in the masks, its first and last frame numbers (inclusive) and the parent
        track's label (0 = no parent). ``attrs["source"]`` is the file read.

    Raises
    ------
    FormatError
        A line that is not four integers (names the file, line number and the line).
    InvalidInputError
        A label ``<= 0``, a negative frame, ``begin > end``, a duplicated label, a parent that
        is the track itself or not listed in the file, a child that begins before its parent
        ends, a value beyond 64-bit integers, a frame above ``max_frames`` or more nucleus-frames
        in total than ``max_lineage_nodes`` (limits of :mod:`dynacell.io.limits`, checked line by
        line before anything is built; all name the file and line).
    """
    p = find_track_file(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{p}: cannot read the track file ({exc}); expected text lines 'L B E P'") from exc
    rows: list[tuple[int, int, int, int]] = []
    line_of: dict[int, int] = {}
    limits = get_limits()
    n_nodes = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 4:
                raise ValueError
            label, begin, end, parent = (int(f) for f in fields)
        except ValueError:
            raise FormatError(
                f"{p}, line {lineno}: {line.strip()!r} is not four integers 'L B E P' (label, begin, end, parent); "
                f"fix or remove the line"
            ) from None
        where = f"{p}, line {lineno} ({line.strip()!r})"
        _check_sizes(where, label, begin, end, parent, limits)
        n_nodes += end - begin + 1 if end >= begin else 0
        if n_nodes > limits.max_lineage_nodes:
            raise InvalidInputError(
                f"{where}: the tracks up to this line span {n_nodes:,} nucleus-frames, above the limit of "
                f"{limits.max_lineage_nodes:,}; if the file is right, raise the limit with "
                f"{ENV_VARS['max_lineage_nodes']}"
            )
        if label <= 0:
            raise InvalidInputError(f"{where}: label must be > 0 (0 is background), found {label}")
        if begin < 0 or end < 0 or parent < 0:
            raise InvalidInputError(f"{where}: frames and parent must be >= 0")
        if begin > end:
            raise InvalidInputError(f"{where}: track {label} begins at frame {begin} after it ends at {end}")
        if parent == label:
            raise InvalidInputError(f"{where}: track {label} is its own parent; use 0 for no parent")
        if label in line_of:
            raise InvalidInputError(f"{where}: track {label} is listed twice (first on line {line_of[label]})")
        line_of[label] = lineno
        rows.append((label, begin, end, parent))
    df = pd.DataFrame(rows, columns=TRACK_COLUMNS, dtype="int64")
    _check_parents(df, lambda label: f"{p}, line {line_of[label]}")
    if df.empty:
        logger.warning("%s: the track file holds no tracks", p)
    df.attrs["source"] = str(p)
    return df


_INT64_MAX = int(np.iinfo(np.int64).max)


def _check_sizes(where: str, label: int, begin: int, end: int, parent: int, limits: Limits) -> None:
    """Refuse values that overflow int64 or frames beyond :attr:`Limits.max_frames` (before anything is built)."""
    for name, v in (("label", label), ("parent", parent), ("begin frame", begin), ("end frame", end)):
        if abs(v) > _INT64_MAX:
            raise InvalidInputError(f"{where}: {name} {v} does not fit a 64-bit integer; the line is corrupt")
    for name, v in (("begin frame", begin), ("end frame", end)):
        if v > limits.max_frames:
            raise InvalidInputError(
                f"{where}: {name} {v:,} is above the limit of {limits.max_frames:,} frames; the line is probably "
                f"corrupt (if not, raise the limit with {ENV_VARS['max_frames']})"
            )


def _check_parents(df: pd.DataFrame, where) -> None:
    ends = dict(zip(df["label"].tolist(), df["end"].tolist()))
    for label, begin, parent in zip(df["label"].tolist(), df["begin"].tolist(), df["parent"].tolist()):
        if parent == 0:
            continue
        if parent not in ends:
            raise InvalidInputError(
                f"{where(label)}: track {label} has parent {parent}, which is not listed; add the parent's track "
                f"or set the parent to 0"
            )
        if ends[parent] >= begin:
            raise InvalidInputError(
                f"{where(label)}: track {label} begins at frame {begin} but its parent {parent} ends at "
                f"{ends[parent]}; a child must begin after its parent ends"
            )


def validate_tracks(tracks: pd.DataFrame, source: str = "tracks") -> pd.DataFrame:
    """Check a CTC track table (columns ``label, begin, end, parent``) and return it as int64.

    Parameters
    ----------
    tracks : pandas.DataFrame
        One row per track (see :func:`read_ctc_tracks`).
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        Columns ``label, begin, end, parent`` (int64), in the given row order.

    Raises
    ------
    InvalidInputError
        Missing columns, non-integer values, labels ``<= 0`` or duplicated, negative frames,
        ``begin > end``, unknown parents or a child beginning before its parent ends.
    """
    missing = [c for c in TRACK_COLUMNS if c not in tracks.columns]
    if missing:
        raise InvalidInputError(
            f"{source}: track table lacks columns {missing} (has {list(tracks.columns)}); expected {TRACK_COLUMNS}"
        )
    df = tracks[TRACK_COLUMNS].copy()
    for c in TRACK_COLUMNS:
        values = pd.to_numeric(df[c], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InvalidInputError(f"{source}, row {i}: column {c!r} = {df[c].iloc[i]!r} is not an integer")
        if (values.abs() > _INT64_MAX).any():
            i = int(np.flatnonzero((values.abs() > _INT64_MAX).to_numpy())[0])
            raise InvalidInputError(f"{source}, row {i}: column {c!r} = {df[c].iloc[i]!r} does not fit a 64-bit integer")
        df[c] = values.astype("int64")
    rows = df.to_numpy()
    limits = get_limits()
    for i, (label, begin, end, parent) in enumerate(rows):
        where = f"{source}, row {i} (track {label})"
        _check_sizes(where, int(label), int(begin), int(end), int(parent), limits)
        if label <= 0:
            raise InvalidInputError(f"{where}: label must be > 0 (0 is background)")
        if begin < 0 or parent < 0:
            raise InvalidInputError(f"{where}: frames and parent must be >= 0")
        if begin > end:
            raise InvalidInputError(f"{where}: begins at frame {begin} after it ends at {end}")
        if parent == label:
            raise InvalidInputError(f"{where}: is its own parent; use 0 for no parent")
    dup = df["label"][df["label"].duplicated()]
    if len(dup):
        raise InvalidInputError(f"{source}: track {int(dup.iloc[0])} is listed twice; labels must be unique")
    _check_parents(df, lambda label: f"{source} (track {label})")
    return df


def _lineage_tracks(lineage: Any) -> tuple[pd.DataFrame, dict[int, dict[int, int]]]:
    """CTC table and per-frame label → track id map of a :class:`dynacell.lineage.Lineage`.

    Duck-typed: ``io`` sits below ``lineage`` and does not import it.
    """
    lineage.assign_tracks()
    table = lineage.tracks()
    df = pd.DataFrame({
        "label": table["track_id"].astype("int64"), "begin": table["start"].astype("int64"),
        "end": table["end"].astype("int64"), "parent": table["parent_track_id"].astype("int64"),
    })
    node_track: dict[int, dict[int, int]] = {}
    for (t, label), d in lineage.graph.nodes(data=True):
        node_track.setdefault(int(t), {})[int(label)] = int(d["track_id"])
    return df, node_track


#: Largest label id relabelled through a dense lookup table (beyond the frame's size: a sorted search).
_LUT_MAX_ID = 1 << 20


def _present_ids(mask: np.ndarray) -> np.ndarray:
    """Sorted nonzero ids of a label image: a count per id (O(pixels)) when the ids are small, else a sort."""
    flat = mask.ravel()
    if flat.size and mask.dtype != np.bool_ and mask.dtype.kind in "ui":
        lo, hi = int(flat.min()), int(flat.max())
        if lo >= 0 and hi <= max(flat.size, _LUT_MAX_ID):
            ids = np.flatnonzero(np.bincount(flat if np.can_cast(flat.dtype, np.intp) else flat.astype(np.intp)))
            return ids[ids != 0].astype(mask.dtype)
    present = np.unique(mask)
    return present[present != 0]


def _relabel_in_boxes(mask: np.ndarray, ids: np.ndarray, new_ids: np.ndarray, boxes: np.ndarray,
                      dtype: type) -> np.ndarray:
    """``mask`` with id ``ids[k]`` replaced by ``new_ids[k]`` and 0 elsewhere, looking only inside ``boxes[k]``.

    The same array as ``lut[mask]`` with ``lut[ids] = new_ids`` (``lut`` 0 elsewhere) when ``ids`` are all the
    nonzero ids of ``mask`` and each box ``(lo_0, ..., lo_{d-1}, hi_0, ..., hi_{d-1})`` holds every pixel of its
    id (tested against the lookup). Boxes may overlap: each writes only its own id's pixels.
    """
    out = np.zeros(mask.shape, dtype=dtype)
    nd = mask.ndim
    for label, new, box in zip(ids.tolist(), np.asarray(new_ids).tolist(), np.asarray(boxes).tolist(), strict=True):
        region = tuple(slice(box[a], box[nd + a]) for a in range(nd))
        view = out[region]
        view[mask[region] == label] = new
    return out


def write_ctc_result(
    folder: str | Path,
    masks: Any,
    tracks: Any,
    *,
    frame_indices: Sequence[int] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    frame_ids: Mapping[int, np.ndarray] | None = None,
    frame_boxes: Mapping[int, np.ndarray] | None = None,
) -> Path:
    """Write a CTC result folder: ``maskTTT.tif`` (uint16) and ``res_track.txt`` (``L B E P``), atomically.

    Parameters
    ----------
    folder : str or Path
        Output folder (e.g. ``01_RES``); written in a temporary sibling and renamed into place.
    masks : Movie, array ``(T, [Z,] Y, X)`` or iterable of ``([Z,] Y, X)`` integer arrays
        Label images, one per frame, 0 = background.
    tracks : pandas.DataFrame or Lineage
        Either a CTC table with columns ``label, begin, end, parent`` whose labels are the
        mask values (masks are written unchanged), or a :class:`dynacell.lineage.Lineage` with
        nodes ``(t, label)`` of the masks: each node's label is replaced by its ``track_id``
        and the table comes from ``Lineage.tracks()``.
    frame_indices : sequence of int, optional
        Frame number of each mask (``TTT``); default the Movie's, else 0, 1, ...
    overwrite : bool
        Replace an existing non-empty folder.
    progress : bool
        Show a progress bar.
    frame_ids : Mapping of int to numpy.ndarray, optional
        ``{t: sorted nonzero ids of mask t}`` when already known (:func:`dynacell.io.scan.scan_labels`
        returns them for the same masks): those frames are not counted again. Must describe
        ``masks`` exactly.
    frame_boxes : Mapping of int to numpy.ndarray, optional
        ``{t: boxes}``, the bounding box ``(lo_0, ..., hi_0, ...)`` (``hi`` exclusive) of each id of
        ``frame_ids[t]``, in that order (the scan's :func:`dynacell.io.scan.frame_objects`); must hold every
        pixel of its id. With a lineage, a frame whose boxes cover little of it is relabelled box by box
        (:func:`_relabel_in_boxes`) instead of by a lookup over every pixel: the same mask.

    Returns
    -------
    Path
        The folder; :func:`read_ctc_tracks` and :func:`dynacell.io.open_labels` read it back.

    Raises
    ------
    InvalidInputError
        An invalid track table (see :func:`validate_tracks`); non-integer masks; a mask label
        that is not a track active at that frame (names frame and label); a track id above
        65535 (CTC masks are uint16).
    OutputExistsError
        If ``folder`` exists, is not empty and ``overwrite`` is False.

    Notes
    -----
    CTC "Submission instructions" (celltrackingchallenge.net): masks and ``res_track.txt``
    share one folder; a track's label is the same in every frame it occupies.
    """
    from tqdm.auto import tqdm

    from dynacell.io.objects import boxes_cover_little
    from dynacell.io.writers import (
        atomic_folder,
        frame_name,
        iter_frames,
        n_digits_for,
        write_zlib_tiff,
    )

    folder = Path(folder)
    node_track = None
    if isinstance(tracks, pd.DataFrame):
        table = validate_tracks(tracks, f"{folder} (tracks)")
    elif hasattr(tracks, "tracks") and hasattr(tracks, "graph"):
        table, node_track = _lineage_tracks(tracks)
    else:
        raise InvalidInputError(
            f"{folder}: tracks must be a DataFrame with columns {TRACK_COLUMNS} or a Lineage, "
            f"got {type(tracks).__name__}"
        )
    if len(table) and int(table["label"].max()) > np.iinfo(np.uint16).max:
        raise InvalidInputError(f"{folder}: track id {int(table['label'].max())} exceeds 65535 (CTC masks are uint16)")
    span = {int(r.label): (int(r.begin), int(r.end)) for r in table.itertuples()}
    numbers, it = iter_frames(masks, frame_indices)
    n_digits = n_digits_for(numbers) if numbers else 4
    written: list[int] = []
    with atomic_folder(folder, overwrite=overwrite) as tmp:
        for i, mask in enumerate(tqdm(it, total=len(numbers) if numbers else None, disable=not progress,
                                      desc=f"writing {folder.name}", leave=False)):
            t = numbers[i] if numbers is not None else i
            mask = np.asarray(mask)
            if not (np.issubdtype(mask.dtype, np.integer) or mask.dtype == np.bool_):
                raise InvalidInputError(f"{folder}: mask of frame {t} has dtype {mask.dtype}; labels must be integers")
            known = None if frame_ids is None else frame_ids.get(int(t))
            present = _present_ids(mask) if known is None else np.asarray(known)
            if present.size and present.min() < 0:
                raise InvalidInputError(f"{folder}: mask of frame {t} has negative label {int(present.min())}")
            if node_track is not None:
                at_t = node_track.get(t, {})
                # sparse lookup (sorted ids -> track ids): memory O(number of labels), whatever the ids' size
                tids = np.zeros(present.size, dtype=np.int64)
                for k, label in enumerate(present.tolist()):
                    tid = at_t.get(label)
                    if tid is None:
                        raise InvalidInputError(
                            f"{folder}: label {label} in frame {t} is not a node of the lineage; track the masks "
                            f"again or remove the label"
                        )
                    tids[k] = tid
                absent = set(at_t) - set(present.tolist())
                if absent:
                    logger.warning("frame %d: lineage nodes with labels %s have no pixels in the mask", t,
                                   sorted(absent)[:10])
                boxes = None if known is None or frame_boxes is None else frame_boxes.get(int(t))
                small = tids.size == 0 or int(tids.max()) <= np.iinfo(np.uint16).max
                if present.size and boxes_cover_little(mask.shape, boxes, present.size):
                    mask = _relabel_in_boxes(mask, present, tids, boxes, np.uint16 if small else np.int64)
                elif present.size and int(present[-1]) <= max(mask.size, _LUT_MAX_ID):
                    # id -> track id, one gather (straight to the uint16 of the file when the ids fit)
                    lut = np.zeros(int(present[-1]) + 1, dtype=np.uint16 if small else np.int64)
                    lut[present] = tids
                    mask = lut[mask]
                elif present.size:
                    fg = mask != 0
                    out = np.zeros(mask.shape, dtype=np.int64)
                    out[fg] = tids[np.searchsorted(present, mask[fg])]
                    mask = out
                else:
                    mask = np.zeros(mask.shape, dtype=np.int64)
                present = np.unique(tids)
            for label in present.tolist():
                b_e = span.get(int(label))
                if b_e is None or not b_e[0] <= t <= b_e[1]:
                    raise InvalidInputError(
                        f"{folder}: label {label} in frame {t} is not a track active at that frame "
                        f"({'not in the table' if b_e is None else f'track spans {b_e[0]}..{b_e[1]}'}); "
                        f"fix the masks or the track table"
                    )
            if present.size and present.max() > np.iinfo(np.uint16).max:
                raise InvalidInputError(f"{folder}: label {int(present.max())} in frame {t} exceeds 65535")
            write_zlib_tiff(tmp / frame_name("mask", t, n_digits), mask.astype(np.uint16, copy=False))
            written.append(t)
        if written and len(table) and int(table["end"].max()) > max(written):
            logger.warning("%s: tracks end at frame %d but masks stop at frame %d", folder,
                           int(table["end"].max()), max(written))
        lines = [f"{r.label} {r.begin} {r.end} {r.parent}\n" for r in table.sort_values("label").itertuples()]
        (tmp / "res_track.txt").write_text("".join(lines))
    logger.info("wrote CTC result %s: %d masks, %d tracks", folder, len(written), len(table))
    return folder
