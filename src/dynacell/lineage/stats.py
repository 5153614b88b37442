"""Lineage statistics a biologist reads: cell-cycle durations, division times, sister synchrony, fates.

Everything is computed from a :class:`~dynacell.lineage.graph.Lineage` (no image needed) and,
when it is known, the time between frames. Durations are given in frames and, with a frame
interval, in minutes.

Definitions (one track = one cell between its birth and its division or its end):

- **track length**: number of frames from the track's first to its last frame, ``end - start + 1``.
- **fate** of a track: ``divides`` (its last node has two or more children), ``reaches_end``
  (it is still there at the last frame of the movie), ``ends`` (it stops before the last frame:
  a death, a cell leaving the field of view, or a lost track) or ``continues`` (its last node has
  one child that has another parent as well, which a valid lineage does not have).
- **cell-cycle duration** (birth to division): the track length of a cell that was born by a
  division inside the movie and divides inside the movie. It equals the time between the
  division that made the cell and the division that ends it. Cells present at the first frame
  or still present at the end are *censored* (their full cycle was not seen) and get no duration.
- **generation**: 0 for a track that starts without a parent (present at the start of the movie
  or appearing later), parent's generation + 1 for a daughter. It counts divisions seen in the
  movie, not divisions since fertilisation.
- **division time**: the last frame of a dividing track (the mother's last frame before the
  daughters appear).
- **sister synchrony**: for two sisters that both divide, the difference of their division
  times, ``|division_a - division_b|``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage, Node

__all__ = [
    "FATES",
    "track_fates",
    "LineageStats",
    "track_table",
    "sister_pairs",
    "generation_table",
    "lineage_statistics",
]

#: Fate of a track (column ``fate`` of :func:`track_table` and ``tracks.csv``).
FATES = ("divides", "ends", "reaches_end", "continues")

_TRACK_COLUMNS = ["track_id", "parent_track_id", "generation", "start", "end", "n_nodes", "length_frames",
                  "fate", "n_children", "complete_cycle", "cycle_frames", "division_frame"]


def _check_interval(frame_interval_s: float | None) -> float | None:
    if frame_interval_s is None:
        return None
    v = float(frame_interval_s)
    if not np.isfinite(v) or v <= 0:
        raise InvalidInputError(f"frame interval must be a finite number of seconds > 0, got {frame_interval_s!r}")
    return v


def track_fates(lineage: Lineage) -> tuple[dict[int, str], dict[int, Node]]:
    """Fate (one of :data:`FATES`) and last node of every track — the one definition of a track's fate.

    ``divides``: the last node has ≥ 2 children; ``continues``: a single child (a gap-closed link or a
    track-id change); ``reaches_end``: the last node is at the movie's last frame (``lineage.n_frames − 1``);
    ``ends``: it disappears before.

    Parameters
    ----------
    lineage : Lineage
        The lineage, track ids assigned.

    Returns
    -------
    fates : dict of int to str
        ``track_id -> fate``.
    last : dict of int to tuple
        ``track_id -> (t, label)`` of the track's last node.
    """
    g = lineage.graph
    lineage.assign_tracks()
    last: dict[int, Node] = {}
    for n, d in g.nodes(data=True):
        tid = int(d["track_id"])
        if tid not in last or n > last[tid]:
            last[tid] = n
    last_frame = lineage.n_frames - 1
    fates: dict[int, str] = {}
    for tid, node in last.items():
        deg = g.out_degree(node)
        fates[tid] = ("divides" if deg >= 2 else "continues" if deg == 1
                      else "reaches_end" if node[0] >= last_frame else "ends")
    return fates, last


def track_table(lineage: Lineage, frame_interval_s: float | None = None) -> pd.DataFrame:
    """One row per track with its generation, length, fate and cell-cycle duration.

    Parameters
    ----------
    lineage : Lineage
        The lineage (``track_id`` is assigned where missing). Its ``n_frames`` decides which
        tracks reach the end of the movie.
    frame_interval_s : float, optional
        Time between frames in seconds. When given, the columns ``length_min``,
        ``cycle_min`` and ``division_time_min`` (minutes from frame 0) are added.

    Returns
    -------
    pandas.DataFrame
        Columns ``track_id, parent_track_id`` (0 = none), ``generation`` (int),
        ``start, end`` (frames), ``n_nodes``, ``length_frames`` (``end - start + 1``),
        ``fate`` (one of :data:`FATES`), ``n_children`` (daughter tracks),
        ``complete_cycle`` (bool: born by a division and divides, both inside the movie),
        ``cycle_frames`` (float, NaN unless ``complete_cycle``), ``division_frame`` (float,
        the last frame of a dividing track, else NaN); plus the minute columns above.
        Sorted by ``track_id``.

    Raises
    ------
    InvalidInputError
        If ``frame_interval_s`` is not a finite number > 0.

    Examples
    --------
    >>> lin = Lineage(n_frames=4)
    >>> for n in [(0, 1), (1, 1), (2, 2), (2, 3), (3, 2)]:
    ...     lin.add_node(n)
    >>> for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 3)), ((2, 2), (3, 2))]:
    ...     lin.add_edge(*e)
    >>> track_table(lin, frame_interval_s=600)[["track_id", "fate", "length_min"]]
       track_id         fate  length_min
    0         1      divides        20.0
    1         2  reaches_end        20.0
    2         3         ends        10.0
    """
    interval = _check_interval(frame_interval_s)
    g = lineage.graph
    tracks = lineage.tracks()
    if tracks.empty:
        out = pd.DataFrame(columns=_TRACK_COLUMNS)
        if interval is not None:
            out = out.assign(length_min=[], cycle_min=[], division_time_min=[])
        return out
    last: dict[int, Node] = {}
    for n, d in g.nodes(data=True):
        tid = int(d["track_id"])
        if tid not in last or n > last[tid]:
            last[tid] = n
    n_children = tracks.groupby("parent_track_id").size()
    parent = dict(zip(tracks["track_id"].astype(int), tracks["parent_track_id"].astype(int)))
    generation: dict[int, int] = {}
    for tid in sorted(parent):  # a daughter's id is larger than its mother's (ids follow first (t, label))
        p = parent[tid]
        chain = [tid]
        while p and p not in generation:  # robust to any id order
            chain.append(p)
            p = parent.get(p, 0)
        base = generation[p] + 1 if p else 0
        for k, t_id in enumerate(reversed(chain)):
            generation[t_id] = base + k
    fate_of, _ = track_fates(lineage)
    fates = [fate_of[int(tid)] for tid in tracks["track_id"]]
    out = tracks.copy()
    out["generation"] = out["track_id"].map(generation).astype(int)
    out["length_frames"] = (out["end"] - out["start"] + 1).astype(int)
    out["fate"] = fates
    out["n_children"] = out["track_id"].map(n_children).fillna(0).astype(int)
    born = out["parent_track_id"] > 0
    divides = out["fate"] == "divides"
    out["complete_cycle"] = born & divides
    out["cycle_frames"] = out["length_frames"].where(out["complete_cycle"]).astype(float)
    out["division_frame"] = out["end"].where(divides).astype(float)
    out = out[_TRACK_COLUMNS]
    if interval is not None:
        to_min = interval / 60.0
        out["length_min"] = out["length_frames"] * to_min
        out["cycle_min"] = out["cycle_frames"] * to_min
        out["division_time_min"] = out["division_frame"] * to_min
    return out.sort_values("track_id").reset_index(drop=True)


def sister_pairs(tracks: pd.DataFrame, frame_interval_s: float | None = None) -> pd.DataFrame:
    """Sister cells (two daughters of one division) and the synchrony of their own divisions.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Output of :func:`track_table`.
    frame_interval_s : float, optional
        Time between frames in seconds; adds ``delta_min``.

    Returns
    -------
    pandas.DataFrame
        One row per pair of daughter tracks of a division with exactly two daughters:
        ``mother_track_id, sister_a, sister_b, fate_a, fate_b, division_a, division_b``
        (frames, NaN when that sister does not divide) and ``delta_frames``
        (``|division_a - division_b|``, NaN unless both divide); ``delta_min`` with a frame
        interval.

    Raises
    ------
    InvalidInputError
        If ``frame_interval_s`` is not a finite number > 0.
    """
    interval = _check_interval(frame_interval_s)
    cols = ["mother_track_id", "sister_a", "sister_b", "fate_a", "fate_b", "division_a", "division_b",
            "delta_frames"]
    rows: list[dict[str, Any]] = []
    if len(tracks):
        by_id = tracks.set_index("track_id")
        for mother, group in tracks[tracks["parent_track_id"] > 0].groupby("parent_track_id"):
            if len(group) != 2:
                continue
            a, b = sorted(int(v) for v in group["track_id"])
            da, db = float(by_id.at[a, "division_frame"]), float(by_id.at[b, "division_frame"])
            rows.append({"mother_track_id": int(mother), "sister_a": a, "sister_b": b,
                         "fate_a": by_id.at[a, "fate"], "fate_b": by_id.at[b, "fate"],
                         "division_a": da, "division_b": db, "delta_frames": abs(da - db)})
    out = pd.DataFrame(rows, columns=cols)
    out["delta_frames"] = out["delta_frames"].astype(float)
    if interval is not None:
        out["delta_min"] = out["delta_frames"] * interval / 60.0
    return out


def generation_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """Cell-cycle durations summarised per generation.

    Parameters
    ----------
    tracks : pandas.DataFrame
        Output of :func:`track_table` (with ``cycle_min`` when the frame interval was known).

    Returns
    -------
    pandas.DataFrame
        One row per generation: ``generation, n_tracks, n_divide, n_complete_cycles``,
        ``cycle_frames_median, cycle_frames_mean, cycle_frames_sd`` (NaN without complete
        cycles; sd needs two), and the same three in minutes (``cycle_min_*``) when present.
    """
    rows = []
    has_min = "cycle_min" in tracks
    for gen, grp in tracks.groupby("generation"):
        cyc = grp["cycle_frames"].dropna().to_numpy(dtype=float)
        row: dict[str, Any] = {"generation": int(gen), "n_tracks": int(len(grp)),
                               "n_divide": int((grp["fate"] == "divides").sum()),
                               "n_complete_cycles": int(cyc.size)}
        series = [("cycle_frames", cyc)]
        if has_min:
            series.append(("cycle_min", grp["cycle_min"].dropna().to_numpy(dtype=float)))
        for name, v in series:
            row[f"{name}_median"] = float(np.median(v)) if v.size else np.nan
            row[f"{name}_mean"] = float(np.mean(v)) if v.size else np.nan
            row[f"{name}_sd"] = float(np.std(v, ddof=1)) if v.size > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class LineageStats:
    """All lineage statistics of one lineage (see :func:`lineage_statistics`).

    Attributes
    ----------
    tracks : pandas.DataFrame
        :func:`track_table`.
    sisters : pandas.DataFrame
        :func:`sister_pairs`.
    generations : pandas.DataFrame
        :func:`generation_table`.
    summary : dict
        Headline numbers: ``n_tracks``, ``n_divisions``, ``fates`` (count of each fate),
        ``n_complete_cycles``, ``cycle_frames_median``, ``sister_delta_frames_median``,
        ``n_sister_pairs_both_divide``, ``track_length_frames_median``, ``frame_interval_s``
        and, with a frame interval, the ``*_min`` versions.
    frame_interval_s : float or None
        Time between frames used (None: durations in frames only).
    """

    tracks: pd.DataFrame
    sisters: pd.DataFrame
    generations: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    frame_interval_s: float | None = None


def _median(values: pd.Series) -> float | None:
    v = values.dropna()
    return float(v.median()) if len(v) else None


def lineage_statistics(lineage: Lineage, frame_interval_s: float | None = None) -> LineageStats:
    """Track lengths, fates, cell-cycle durations per generation, division times and sister synchrony.

    Parameters
    ----------
    lineage : Lineage
        The lineage of a run or of a ground truth.
    frame_interval_s : float, optional
        Time between frames in seconds (from the movie's metadata or ``--frame-interval-s``);
        without it every duration is in frames.

    Returns
    -------
    LineageStats

    Raises
    ------
    InvalidInputError
        If ``frame_interval_s`` is not a finite number > 0.

    Examples
    --------
    >>> lin = Lineage(n_frames=3)
    >>> for n in [(0, 1), (1, 1), (2, 2), (2, 3)]:
    ...     lin.add_node(n)
    >>> lin.add_edge((0, 1), (1, 1)); lin.add_edge((1, 1), (2, 2)); lin.add_edge((1, 1), (2, 3))
    >>> s = lineage_statistics(lin, frame_interval_s=300)
    >>> s.summary["fates"], s.summary["n_divisions"]
    ({'divides': 1, 'ends': 0, 'reaches_end': 2, 'continues': 0}, 1)
    """
    interval = _check_interval(frame_interval_s)
    tracks = track_table(lineage, interval)
    sisters = sister_pairs(tracks, interval)
    generations = generation_table(tracks)
    both = sisters["delta_frames"].notna() if len(sisters) else pd.Series(dtype=bool)
    summary: dict[str, Any] = {
        "n_tracks": int(len(tracks)),
        "n_divisions": len(lineage.divisions()),
        "fates": {f: int((tracks["fate"] == f).sum()) for f in FATES},
        "n_complete_cycles": int(tracks["complete_cycle"].sum()) if len(tracks) else 0,
        "track_length_frames_median": _median(tracks["length_frames"].astype(float)),
        "cycle_frames_median": _median(tracks["cycle_frames"]),
        "n_sister_pairs_both_divide": int(both.sum()),
        "sister_delta_frames_median": _median(sisters["delta_frames"]),
        "frame_interval_s": interval,
    }
    if interval is not None:
        for key in ("track_length", "cycle", "sister_delta"):
            v = summary[f"{key}_frames_median"]
            summary[f"{key}_min_median"] = None if v is None else v * interval / 60.0
    return LineageStats(tracks=tracks, sisters=sisters, generations=generations, summary=summary,
                        frame_interval_s=interval)
