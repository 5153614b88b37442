"""Tracks tables for motion statistics: one reader for every layout, with units and checks.

The canonical form is :class:`Tracks`: a table ``track_id, t, [z_um,] y_um, x_um`` (positions in µm,
``t`` = integer frame number) sorted by ``(track_id, t)``, plus the frame interval (s).

Accepted layouts (positions in pixels, converted with the voxel size):

* dynacell (``dynacell run``'s ``states.csv``, any ``t, track_id, [z,] y, x`` table);
* trackpy (``frame, particle, [z,] y, x``);
* saspt / quot (``frame, trajectory, y, x`` with per-localisation ``y_err, x_err`` in pixels);
* btrack (``ID, t, [z,] y, x``);
* laptrack's ``predict_dataframe`` (``frame, track_id, [z,] y, x``, or ``position_y, position_x``);
* TrackMate's spot table exported from Fiji (``TRACK_ID, FRAME, POSITION_X, POSITION_Y,
  [POSITION_Z, POSITION_T]``): positions already in the unit its units row names (``(micron)``;
  ``(pixel)`` needs the pixel size), the frame interval from ``POSITION_T`` / ``FRAME``;
* a lineage (CTC ``man_track.txt``/``res_track.txt`` + masks, GEFF, AceTree, BlastoSPIM, a
  TrackMate XML file) through :func:`dynacell.lineage.read_lineage` (one track = one chain of
  single-child edges); units recorded by the file (a calibrated TrackMate file) are used.

Rules (never a silently wrong D):

* a missing voxel size or frame interval raises :class:`~dynacell.errors.InvalidInputError`;
* duplicate ``(track_id, t)`` rows and non-integer frames raise;
* NaN / infinite positions raise (name the first track and frame), unless ``drop_nan=True``, which
  drops those rows (the track then has a gap);
* gaps (missing frames inside a track) are kept: the MSD pairs only frames exactly ``n`` apart, and
  the step-based estimators (CVE, MLE, MSD fit) use each run of consecutive frames as its own
  trajectory (:meth:`Tracks.segments`);
* tracks with a single frame carry no displacement: they are dropped and counted in
  ``Tracks.n_dropped_single``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io._meta import length_to_um, time_to_s

__all__ = ["LAYOUTS", "POSITION_ALIASES", "TRACKMATE_COLUMNS", "Tracks", "read_tracks", "tracks_from_dataframe",
           "tracks_from_lineage"]

#: Recognised column layouts: name → (frame column, track column).
LAYOUTS: dict[str, tuple[str, str]] = {
    "dynacell": ("t", "track_id"),
    "trackpy": ("frame", "particle"),
    "saspt": ("frame", "trajectory"),
    "btrack": ("t", "ID"),
    "laptrack": ("frame", "track_id"),
}
#: Other names of the position columns (laptrack's documented ``position_y``, ``position_x``), read when
#: ``y`` / ``x`` / ``z`` are absent.
POSITION_ALIASES: dict[str, str] = {"position_z": "z", "position_y": "y", "position_x": "x"}


@dataclass(frozen=True)
class Tracks:
    """Tracks with physical units.

    Attributes
    ----------
    table : pandas.DataFrame
        ``track_id`` (int64), ``t`` (int64 frame number), ``y_um``, ``x_um`` (float64) and
        ``z_um`` for 3D; sorted by ``(track_id, t)``, no NaN, ≥ 2 frames per track.
    frame_interval_s : float
        Time between frames (s).
    ndim : int
        2 or 3 spatial axes.
    source : str
        Where the tracks came from.
    sigma_um : float or None
        Median per-localisation error (µm per axis) when the table gives one (saspt ``y_err, x_err``).
    n_dropped_single : int
        Single-frame tracks dropped.
    n_dropped_nan : int
        Rows dropped for NaN positions (only with ``drop_nan=True``).
    """

    table: pd.DataFrame
    frame_interval_s: float
    ndim: int
    source: str = ""
    sigma_um: float | None = None
    n_dropped_single: int = 0
    n_dropped_nan: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def pos_columns(self) -> list[str]:
        """Position columns in axis order (``z_um`` first in 3D)."""
        return ["z_um", "y_um", "x_um"] if self.ndim == 3 else ["y_um", "x_um"]

    @property
    def n_tracks(self) -> int:
        """Number of distinct ``track_id`` values in the table."""
        return int(self.table["track_id"].nunique())

    @property
    def n_gaps(self) -> int:
        """Number of missing-frame gaps inside tracks."""
        dt = np.diff(self.table["t"].to_numpy())
        same = np.diff(self.table["track_id"].to_numpy()) == 0
        return int(np.sum(same & (dt > 1)))

    def positions(self) -> list[np.ndarray]:
        """Positions of each track, ``(T_i, d)`` µm (gaps not filled), in ``track_id`` order."""
        pos = self.table[self.pos_columns].to_numpy(np.float64)
        ids = self.table["track_id"].to_numpy()
        cut = np.flatnonzero(np.diff(ids)) + 1
        return np.split(pos, cut)

    def segments(self, min_frames: int = 2) -> list[np.ndarray]:
        """Runs of consecutive frames, ``(T_i, d)`` µm, each at least ``min_frames`` long.

        A track with gaps gives one segment per run of consecutive frames (the step-based
        estimators never treat a two-frame jump as one step).
        """
        tab = self.table
        pos = tab[self.pos_columns].to_numpy(np.float64)
        ids = tab["track_id"].to_numpy()
        t = tab["t"].to_numpy()
        brk = (np.diff(ids) != 0) | (np.diff(t) != 1)
        cut = np.flatnonzero(brk) + 1
        return [s for s in np.split(pos, cut) if s.shape[0] >= min_frames]

    def to_pixels_frame(self, voxel_size_um) -> pd.DataFrame:
        """trackpy-style table ``frame, particle, [z,] y, x`` in pixels (for comparisons)."""
        vs = _voxel_tuple(voxel_size_um, self.ndim)
        out = pd.DataFrame({"frame": self.table["t"].to_numpy(), "particle": self.table["track_id"].to_numpy()})
        for c, s in zip(self.pos_columns, vs):
            out[c[:-3]] = self.table[c].to_numpy() / s
        return out


def _voxel_tuple(voxel_size_um, ndim: int) -> tuple[float, ...]:
    if voxel_size_um is None:
        raise InvalidInputError("the pixel size is unknown: give --pixel-size-um (or --voxel-size-um Z Y X for 3D); "
                                "motion statistics are never computed in pixels silently")
    if np.isscalar(voxel_size_um):
        vs = (float(voxel_size_um),) * ndim
    else:
        vs = tuple(float(v) for v in voxel_size_um)
        if len(vs) == 2 and ndim == 3:
            raise InvalidInputError(f"3D tracks need a voxel size Z Y X (3 numbers), got {voxel_size_um!r}")
        if len(vs) == 3 and ndim == 2:
            vs = vs[1:]
        if len(vs) != ndim:
            raise InvalidInputError(f"voxel size {voxel_size_um!r} does not match {ndim}D tracks")
    if any(not math.isfinite(v) or v <= 0 for v in vs):
        raise InvalidInputError(f"voxel size must be finite and > 0 µm, got {voxel_size_um!r}")
    return vs


def _check_interval(frame_interval_s) -> float:
    if frame_interval_s is None:
        raise InvalidInputError("the frame interval is unknown: give --frame-interval-s "
                                "(motion statistics are never computed per frame silently)")
    dt = float(frame_interval_s)
    if not math.isfinite(dt) or dt <= 0:
        raise InvalidInputError(f"frame interval must be finite and > 0 s, got {frame_interval_s!r}")
    return dt


def _detect_columns(df: pd.DataFrame, source: str) -> tuple[str, str, str]:
    cols = set(df.columns)
    for name, (tc, ic) in LAYOUTS.items():
        if tc in cols and ic in cols and {"y", "x"} <= cols:
            return name, tc, ic
    raise InvalidInputError(
        f"{source}: cannot tell the tracks layout from columns {sorted(cols)[:12]}; expected one of "
        + "; ".join(f"{k}: {tc}, {ic}, [z,] y, x" for k, (tc, ic) in LAYOUTS.items())
        + " (y, x may be named position_y, position_x)"
        + "; TrackMate spot table: " + ", ".join(TRACKMATE_COLUMNS))


#: Columns of TrackMate's spot table (Fiji: TrackMate › Tracks/Spots table › Export to CSV).
TRACKMATE_COLUMNS = ("TRACK_ID", "FRAME", "POSITION_X", "POSITION_Y")


def _unit_cell(text) -> str | None:
    """``"(micron)"`` → ``"micron"``; None for an empty or unbracketed cell."""
    m = re.fullmatch(r"\s*\((.+)\)\s*", str(text)) if isinstance(text, str) else None
    return m.group(1) if m else None


def _trackmate_table(df: pd.DataFrame, voxel_size_um, frame_interval_s, source: str,
                     drop_nan: bool, ndim: int | None) -> Tracks:
    """TrackMate's spot table (positions in the image's calibrated unit) → :class:`Tracks`.

    TrackMate 7 and later write three rows under the header (feature names, short names and units
    such as ``(micron)``, ``(sec)``); the units row sets the position unit and, with ``POSITION_T``
    and ``FRAME``, the frame interval. Spots in no track (empty ``TRACK_ID``) are dropped and
    counted with the single-frame tracks.
    """
    frame = pd.to_numeric(df["FRAME"], errors="coerce")
    lead = 0
    while lead < min(3, len(df)) and pd.isna(frame.iloc[lead]):
        lead += 1
    head, df = df.iloc[:lead], df.iloc[lead:].reset_index(drop=True)
    space = next((u for u in map(_unit_cell, head["POSITION_X"]) if u), None)
    tunit = next((u for u in map(_unit_cell, head["POSITION_T"]) if u), None) if "POSITION_T" in head else None
    if space is None:
        raise InvalidInputError(
            f"{source}: a TrackMate spot table without its units row (TrackMate before version 7, or edited): it does "
            "not say whether POSITION_X/POSITION_Y are in µm or in pixels. Give the TrackMate XML file instead "
            "(File › Save in TrackMate; it records the calibration), or export the table again with TrackMate 7+")
    um = length_to_um(1.0, space)
    if um is not None and voxel_size_um is not None:
        raise InvalidInputError(f"{source}: the positions are already in {space} (the table's units row); leave out "
                                "--pixel-size-um / --voxel-size-um")
    if um is None and space.lower() not in ("pixel", "pixels"):
        raise InvalidInputError(f"{source}: unknown position unit {space!r} in the table's units row")
    sec = time_to_s(1.0, tunit) if tunit else None
    if sec is not None and "POSITION_T" in df:
        t_pos = pd.to_numeric(df["POSITION_T"], errors="coerce").to_numpy(np.float64)
        fr = pd.to_numeric(df["FRAME"], errors="coerce").to_numpy(np.float64)
        ok = np.isfinite(t_pos) & np.isfinite(fr) & (fr > 0)
        if ok.any():
            ratios = t_pos[ok] / fr[ok] * sec
            table_dt = float(np.median(ratios))
            if table_dt <= 0 or np.max(np.abs(ratios - table_dt)) > 1e-3 * table_dt:
                raise InvalidInputError(f"{source}: POSITION_T is not FRAME × one frame interval (from "
                                        f"{ratios.min():.6g} to {ratios.max():.6g} s per frame)")
            if frame_interval_s is not None and abs(float(frame_interval_s) - table_dt) > 1e-3 * table_dt:
                raise InvalidInputError(f"{source}: --frame-interval-s {frame_interval_s} differs from the table's "
                                        f"{table_dt:.6g} s (POSITION_T / FRAME in {tunit}); leave it out or fix the "
                                        "calibration in Fiji")
            frame_interval_s = table_dt
    track = pd.to_numeric(df["TRACK_ID"], errors="coerce")
    lone = track.isna()
    out = pd.DataFrame({"t": df["FRAME"], "track_id": track, "y": df["POSITION_Y"], "x": df["POSITION_X"]})
    if "POSITION_Z" in df:
        out["z"] = pd.to_numeric(df["POSITION_Z"], errors="coerce")
    out = out[~lone.to_numpy()].reset_index(drop=True)
    if out.empty:
        raise InvalidInputError(f"{source}: no spot of the TrackMate table belongs to a track (TRACK_ID empty)")
    tr = tracks_from_dataframe(out, voxel_size_um if um is None else um, frame_interval_s, source=source,
                               drop_nan=drop_nan, ndim=ndim)
    meta = {**tr.meta, "layout": "trackmate", "position_unit": space,
            "voxel_size_um": tr.meta["voxel_size_um"] if um is None else None}
    return replace(tr, n_dropped_single=tr.n_dropped_single + int(lone.sum()), meta=meta)


def tracks_from_dataframe(df: pd.DataFrame, voxel_size_um, frame_interval_s: float, *, source: str = "table",
                          drop_nan: bool = False, ndim: int | None = None) -> Tracks:
    """Validate a tracks table in pixels and convert it to :class:`Tracks` (µm).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per localisation, in one of the :data:`LAYOUTS` (positions in pixels), or TrackMate's
        spot table (:data:`TRACKMATE_COLUMNS`, with its header rows; positions in its stated unit).
    voxel_size_um : float or sequence of float
        Pixel size (one number, isotropic) or ``(Y, X)`` / ``(Z, Y, X)`` in µm.
    frame_interval_s : float
        Time between frames (s).
    source : str
        Name used in error messages.
    drop_nan : bool
        Drop rows with NaN positions instead of raising.
    ndim : int, optional
        Force 2 or 3 spatial axes (default: 3 when a ``z`` column with non-constant values exists).

    Returns
    -------
    Tracks

    Raises
    ------
    InvalidInputError
        Unknown layout, missing units, non-integer frames, duplicate (track, frame) rows, NaN
        positions (unless ``drop_nan``), or no track with at least 2 frames; for a TrackMate table
        also a missing units row, a pixel size given for positions already in µm, or a
        ``--frame-interval-s`` that differs from ``POSITION_T / FRAME``.

    Examples
    --------
    >>> df = pd.DataFrame({"frame": [0, 1, 2, 0], "particle": [1, 1, 1, 2], "y": [0., 1., 2., 5.],
    ...                    "x": [0., 0., 0., 5.]})
    >>> tr = tracks_from_dataframe(df, 0.5, 0.1)
    >>> tr.n_tracks, tr.n_dropped_single, tr.table["y_um"].tolist()
    (1, 1, [0.0, 0.5, 1.0])
    """
    if set(TRACKMATE_COLUMNS) <= set(df.columns):
        return _trackmate_table(df, voxel_size_um, frame_interval_s, source, drop_nan, ndim)
    aliases = {a: c for a, c in POSITION_ALIASES.items() if a in df.columns and c not in df.columns}
    if aliases:
        df = df.rename(columns=aliases)
    layout, tc, ic = _detect_columns(df, source)
    dt = _check_interval(frame_interval_s)
    if ndim is None:
        ndim = 3 if "z" in df.columns and df["z"].nunique(dropna=True) > 1 else 2
    vs = _voxel_tuple(voxel_size_um, ndim)
    axes = ["z", "y", "x"] if ndim == 3 else ["y", "x"]
    t_raw = pd.to_numeric(df[tc], errors="coerce").to_numpy(np.float64)
    if not np.all(np.isfinite(t_raw)) or np.any(t_raw != np.round(t_raw)):
        bad = int(np.flatnonzero(~np.isfinite(t_raw) | (t_raw != np.round(t_raw)))[0])
        raise InvalidInputError(f"{source}: column {tc!r} must hold whole frame numbers; data row {bad} (counting from 0) "
                                f"has {str(df[tc].iloc[bad])!r}")
    ids_raw = df[ic]
    if ids_raw.isna().any():
        raise InvalidInputError(f"{source}: column {ic!r} has missing track ids (row {int(np.flatnonzero(ids_raw.isna())[0])})")
    idv = pd.to_numeric(ids_raw, errors="coerce")
    if idv.isna().any() or np.any(idv.to_numpy() != np.round(idv.to_numpy())):
        ids = pd.factorize(ids_raw, sort=True)[0].astype(np.int64) + 1
    else:
        ids = idv.to_numpy().astype(np.int64)
    out = pd.DataFrame({"track_id": ids, "t": t_raw.astype(np.int64)})
    for a, s in zip(axes, vs):
        out[f"{a}_um"] = pd.to_numeric(df[a], errors="coerce").to_numpy(np.float64) * s
    pos_cols = [f"{a}_um" for a in axes]
    finite = np.all(np.isfinite(out[pos_cols].to_numpy()), axis=1)
    n_nan = int(np.sum(~finite))
    if n_nan and not drop_nan:
        r = int(np.flatnonzero(~finite)[0])
        raise InvalidInputError(f"{source}: {n_nan} rows have NaN/non-numeric positions (first: track {ids[r]}, "
                                f"frame {int(t_raw[r])}); remove them or pass drop_nan (--drop-nan on the command line; they become gaps)")
    out = out[finite]
    dup = out.duplicated(["track_id", "t"], keep=False)
    if dup.any():
        r = out[dup].iloc[0]
        raise InvalidInputError(f"{source}: {int(dup.sum())} rows share a (track, frame) pair, e.g. track "
                                f"{int(r['track_id'])} at frame {int(r['t'])}; one position per track and frame")
    out = out.sort_values(["track_id", "t"], kind="stable").reset_index(drop=True)
    sizes = out.groupby("track_id")["t"].transform("size")
    n_single = int(out.loc[sizes == 1, "track_id"].nunique())
    out = out[sizes >= 2].reset_index(drop=True)
    if out.empty:
        raise InvalidInputError(f"{source}: no track has 2 or more frames; nothing moves")
    sigma = None
    if {"y_err", "x_err"} <= set(df.columns):
        errs = df.loc[finite, ["y_err", "x_err"]].to_numpy(np.float64) * np.array(vs[-2:])
        errs = errs[np.all(np.isfinite(errs), axis=1)]
        if errs.size:
            sigma = float(np.median(errs))
    return Tracks(out, dt, ndim, source, sigma, n_single, n_nan, {"layout": layout, "voxel_size_um": list(vs)})


def tracks_from_lineage(lineage, voxel_size_um, frame_interval_s: float | None, *, source: str = "lineage",
                        drop_nan: bool = False) -> Tracks:
    """:class:`Tracks` from a :class:`dynacell.lineage.Lineage` (one track per chain of single-child edges).

    A ``frame_interval_s`` or ``voxel_size_um`` of None takes the lineage's recorded one
    (``lineage.graph.graph["frame_interval_s"]`` / ``["voxel_size_um"]``, set by readers whose
    file states it, such as a calibrated TrackMate XML file), else raises. Nodes without a centroid
    (a CTC lineage whose masks cover only some frames) have NaN positions: pass ``drop_nan=True`` to
    drop them (they become gaps).

    Parameters
    ----------
    lineage : dynacell.lineage.Lineage
        The lineage; node positions in pixels.
    voxel_size_um : sequence of float or None
        Voxel size per spatial axis (µm), as in :func:`tracks_from_dataframe`; None: the lineage's
        recorded one.
    frame_interval_s : float or None
        Time between frames (s); None: the lineage's recorded one.
    source : str
        Name of the input, for messages.
    drop_nan : bool
        Drop the nodes without a centroid.

    Returns
    -------
    Tracks
        The tracks in µm and s.
    """
    recorded = lineage.graph.graph if getattr(lineage, "graph", None) is not None else {}
    if frame_interval_s is None:
        frame_interval_s = recorded.get("frame_interval_s") or None
    if voxel_size_um is None:
        voxel_size_um = recorded.get("voxel_size_um") or None
    if voxel_size_um is None and recorded.get("position_um_per_unit"):  # positions already in µm (a GEFF in µm)
        voxel_size_um = float(recorded["position_um_per_unit"])
    df = lineage.to_dataframe()
    if df.empty:
        raise InvalidInputError(f"{source}: the lineage has no nodes")
    df = df[["t", "track_id", "z", "y", "x"]]
    ndim = 3 if getattr(lineage, "ndim", 2) == 3 else None
    return tracks_from_dataframe(df, voxel_size_um, frame_interval_s, source=source, ndim=ndim, drop_nan=drop_nan)


def _run_json_units(folder: Path) -> tuple[list | None, float | None]:
    p = folder / "run.json"
    if not p.exists():
        return None, None
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError):
        return None, None
    for where in (d, d.get("parameters", {}) if isinstance(d, dict) else {}):
        if isinstance(where, dict) and ("voxel_size_um" in where or "frame_interval_s" in where):
            return where.get("voxel_size_um"), where.get("frame_interval_s")
    return None, None


def read_tracks(path: str | Path, voxel_size_um=None, frame_interval_s: float | None = None, *,
                drop_nan: bool = False) -> Tracks:
    """Read tracks from a CSV, a ``dynacell run`` folder, a CTC result or a GEFF / lineage store.

    Parameters
    ----------
    path : str or Path
        * a ``.csv`` tracks table in any of :data:`LAYOUTS`, or TrackMate's exported spot table;
        * a ``dynacell run`` output folder (reads ``states.csv``) or a ``dynacell particles`` output
          folder (reads ``tracks.csv``); units from ``run.json`` unless given;
        * anything :func:`dynacell.lineage.read_lineage` reads (CTC ``*_track.txt`` or its folder with
          masks, GEFF store, AceTree folder, TrackMate ``.xml`` ...).
    voxel_size_um : float or sequence of float, optional
        Pixel / voxel size (µm). Required unless the source records it.
    frame_interval_s : float, optional
        Time between frames (s). Required unless the source records it.
    drop_nan : bool
        Drop rows with NaN positions (see :func:`tracks_from_dataframe`).

    Returns
    -------
    Tracks

    Raises
    ------
    InvalidInputError
        Missing path or units, unreadable layout, or any rule of :func:`tracks_from_dataframe`.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"tracks: {p} does not exist")
    if p.is_dir() and ((p / "states.csv").exists() or (p / "tracks.csv").exists()):
        vs_json, dt_json = _run_json_units(p)
        vs = voxel_size_um if voxel_size_um is not None else vs_json
        dt = frame_interval_s if frame_interval_s is not None else dt_json
        f = p / "states.csv" if (p / "states.csv").exists() else p / "tracks.csv"
        df = pd.read_csv(f)
        return tracks_from_dataframe(df, vs, dt, source=str(f), drop_nan=drop_nan)
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt") and not p.name.endswith("_track.txt"):
        try:
            df = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise FormatError(f"{p}: not a readable CSV table ({exc})") from None
        return tracks_from_dataframe(df, voxel_size_um, frame_interval_s, source=str(p), drop_nan=drop_nan)
    from dynacell.lineage import read_lineage

    lin = read_lineage(p)
    return tracks_from_lineage(lin, voxel_size_um, frame_interval_s, source=str(p), drop_nan=drop_nan)
