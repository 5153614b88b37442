"""Read back a ``dynacell run`` output folder (for the napari reader and to re-render the report).

A run folder holds ``states.csv`` (one row per nucleus per frame), ``tracks.csv`` (one row per
track), ``lineage.geff`` (the lineage graph), ``ctc/`` (label masks whose values are the track
ids, plus ``res_track.txt``), ``run.json`` (inputs, parameters, counts, notes, timings),
``report.html`` and ``overlay.mp4``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = ["RunFolder", "is_run_folder", "load_run", "rebuild_report"]

_REQUIRED = ("states.csv", "run.json")


def is_run_folder(path: str | Path) -> bool:
    """True when ``path`` is a folder holding ``states.csv`` and ``run.json`` (a ``dynacell run`` output).

    Parameters
    ----------
    path : str or Path
        Any path.

    Returns
    -------
    bool
        Whether it is a ``dynacell run`` output folder.
    """
    p = Path(path)
    return p.is_dir() and all((p / n).is_file() for n in _REQUIRED)


@dataclass
class RunFolder:
    """The tables and metadata of a run folder (images and masks are opened lazily).

    Attributes
    ----------
    path : Path
        The folder.
    states : pandas.DataFrame
        ``states.csv``.
    tracks : pandas.DataFrame
        ``tracks.csv`` (empty when absent).
    info : dict
        ``run.json``.
    """

    path: Path
    states: pd.DataFrame
    tracks: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def parameters(self) -> dict[str, Any]:
        """``run.json["parameters"]``."""
        return dict(self.info.get("parameters") or {})

    @property
    def voxel_size_um(self) -> tuple[float, ...] | None:
        """Pixel size ``(Y, X)`` / ``(Z, Y, X)`` in µm, or None when the run did not know it."""
        vs = self.parameters.get("voxel_size_um")
        return tuple(float(v) for v in vs) if vs else None

    @property
    def frame_interval_s(self) -> float | None:
        """Time between frames in s, or None."""
        dt = self.parameters.get("frame_interval_s")
        return float(dt) if dt else None

    def labels(self):
        """The label movie of ``ctc/`` (values = track ids), as a :class:`~dynacell.io.Movie`.

        Raises
        ------
        InvalidInputError
            If ``ctc/`` is missing.
        """
        from dynacell.io import open_labels

        ctc = self.path / "ctc"
        if not ctc.is_dir():
            raise InvalidInputError(f"run folder {self.path} has no ctc/ label masks")
        return open_labels(ctc)

    def images(self, movie: str | Path | None = None):
        """The movie the run read (``run.json`` parameters ``movie``), or ``movie`` when given.

        Raises
        ------
        InvalidInputError
            If the movie's path is not recorded or no longer exists.
        """
        from dynacell.io import open_movie

        src = movie if movie is not None else self.parameters.get("movie")
        if not src or not Path(str(src)).exists():
            raise InvalidInputError(
                f"the movie of run folder {self.path} ({src!r}) cannot be found; give its path")
        return open_movie(src, voxel_size_um=self.voxel_size_um)

    def lineage(self):
        """The lineage (``lineage.geff``).

        Raises
        ------
        InvalidInputError
            If ``lineage.geff`` is missing.
        """
        from dynacell.lineage.formats import read_geff

        g = self.path / "lineage.geff"
        if not g.exists():
            raise InvalidInputError(f"run folder {self.path} has no lineage.geff")
        return read_geff(g)


def load_run(path: str | Path) -> RunFolder:
    """Open a ``dynacell run`` output folder.

    Parameters
    ----------
    path : str or Path
        The folder given to ``dynacell run -o``.

    Returns
    -------
    RunFolder

    Raises
    ------
    InvalidInputError
        If ``path`` is not a run folder (no ``states.csv`` / ``run.json``).
    """
    p = Path(path)
    if not is_run_folder(p):
        raise InvalidInputError(f"{p} is not a dynacell run folder (expected states.csv and run.json inside)")
    states = pd.read_csv(p / "states.csv")
    tracks = pd.read_csv(p / "tracks.csv") if (p / "tracks.csv").is_file() else pd.DataFrame()
    info = json.loads((p / "run.json").read_text(encoding="utf-8"))
    return RunFolder(path=p, states=states, tracks=tracks, info=info)


def rebuild_report(path: str | Path, out: str | Path | None = None, *, movie: str | Path | None = None) -> Path:
    """Render ``report.html`` again from a run folder (e.g. after a dynacell update), with thumbnails.

    Parameters
    ----------
    path : str or Path
        The run folder.
    out : str or Path, optional
        Output file (default ``path/report.html``).
    movie : str or Path, optional
        The movie, when it moved since the run (default: the path in ``run.json``). Without a
        readable movie the report has no thumbnails.

    Returns
    -------
    Path
        The written report.
    """
    from dynacell.viz.report import write_report

    run = load_run(path)
    lin = run.lineage()
    lin.n_frames = int(run.parameters.get("shape", [lin.n_frames])[0]) or lin.n_frames
    images = labels = None
    try:
        images, labels = run.images(movie), run.labels()
    except InvalidInputError:
        pass
    ev = run.info.get("evaluation")
    ev_tables = None
    if ev:
        from dynacell.metrics.states import evaluation_tables

        ev_tables = evaluation_tables(ev)
    rec = run.info.get("reconciliation") or {}
    return write_report(
        out or run.path / "report.html", states=run.states, lineage=lin, parameters=run.parameters,
        timings_s=run.info.get("timings_s") or {},
        reconciliation={"rule": rec.get("rule", ""), "changes": pd.DataFrame(rec.get("changes") or [])},
        evaluation=ev_tables, notes=list(run.info.get("notes") or []), images=images, labels=labels,
    )
