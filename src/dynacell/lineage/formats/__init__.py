"""Lineage builders: one reader per format behind :func:`read_lineage`.

Formats: ``"ctc"`` (Cell Tracking Challenge ``man_track.txt`` / ``res_track.txt`` + masks),
``"blastospim"`` (BlastoSPIM MATLAB graph JSON + KLB label volumes), ``"acetree"`` (AceTree
``tTTT-nuclei`` files + ``CellDeaths.csv``, as in WormGUIDES), ``"geff"`` (GEFF zarr
store) and ``"trackmate"`` (a TrackMate XML file saved by Fiji). :func:`write_geff`,
:func:`~dynacell.lineage.formats.trackmate.write_trackmate` and :func:`to_networkx` export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dynacell.errors import InvalidInputError
from dynacell.lineage.formats.acetree import find_acetree_folder, read_acetree_lineage
from dynacell.lineage.formats.blastospim import is_blastospim_graph_name, read_blastospim_lineage
from dynacell.lineage.formats.ctc import TRACK_FILES, read_ctc_lineage
from dynacell.lineage.formats.geff_format import is_geff_store, read_geff, to_networkx, write_geff
from dynacell.lineage.formats.trackmate import is_trackmate_file, read_trackmate
from dynacell.lineage.graph import Lineage

__all__ = ["FORMATS", "detect_format", "read_lineage", "write_geff", "read_geff", "to_networkx"]

#: Format name → reader. Keyword arguments of :func:`read_lineage` go to the reader.
FORMATS = {
    "ctc": read_ctc_lineage,
    "blastospim": read_blastospim_lineage,
    "acetree": read_acetree_lineage,
    "geff": read_geff,
    "trackmate": read_trackmate,
}


def detect_format(path: str | Path) -> str:
    """Name of the lineage format of ``path`` (a key of :data:`FORMATS`).

    Rules, in order: a ``man_track.txt`` / ``res_track.txt`` file or a folder holding one →
    ``ctc``; a GEFF zarr store → ``geff``; any ``.json`` file, a folder holding
    ``LineageGraph.json`` or a ``*Graph*.json`` → ``blastospim``; a ``tTTT-nuclei`` file, or a
    folder holding such files or a ``nuclei_files`` folder → ``acetree``; an ``.xml`` file whose root
    element is ``<TrackMate>`` → ``trackmate``.

    Parameters
    ----------
    path : str or Path
        File or folder of a lineage.

    Returns
    -------
    str
        ``"ctc"``, ``"geff"``, ``"blastospim"``, ``"acetree"`` or ``"trackmate"``.

    Raises
    ------
    InvalidInputError
        If ``path`` does not exist or matches no format.
    """
    p = Path(path)
    if not p.exists():
        raise InvalidInputError(f"lineage path {p} does not exist")
    if p.is_file():
        if p.name in TRACK_FILES:
            return "ctc"
        if p.suffix.lower() == ".json":
            return "blastospim"
        if p.name.endswith("-nuclei"):
            return "acetree"
        if p.suffix.lower() == ".xml" and is_trackmate_file(p):
            return "trackmate"
    else:
        if any((p / n).is_file() for n in TRACK_FILES):
            return "ctc"
        if is_geff_store(p):
            return "geff"
        if (p / "LineageGraph.json").is_file() or any(is_blastospim_graph_name(f.name) for f in p.glob("*.json")):
            return "blastospim"
        try:
            find_acetree_folder(p)
            return "acetree"
        except InvalidInputError:
            pass
    raise InvalidInputError(
        f"{p}: cannot tell the lineage format; expected a CTC TRA/RES folder or man_track.txt/res_track.txt, "
        "a BlastoSPIM graph JSON (or its folder), an AceTree folder (tTTT-nuclei files), a GEFF store or a "
        "TrackMate XML file; "
        f"or name it with format= one of {sorted(FORMATS)}"
    )


def read_lineage(path: str | Path, format: str | None = None, **kw: Any) -> Lineage:
    """Read a lineage of any supported format.

    Parameters
    ----------
    path : str or Path
        CTC TRA/RES folder or track file, BlastoSPIM graph JSON or its folder, AceTree
        folder, GEFF store, or TrackMate XML file.
    format : {"ctc", "blastospim", "acetree", "geff", "trackmate"}, optional
        Skip detection (:func:`detect_format`).
    **kw
        Reader options: ``masks=`` (ctc), ``labels=`` (blastospim), ``deaths=`` (acetree),
        ``show_progress=`` (all but geff and trackmate), ``n_frames=`` (ctc).

    Returns
    -------
    Lineage

    Raises
    ------
    InvalidInputError
        Unknown format name, undetectable path, or a reader's own errors (``FormatError``
        for malformed files).

    Examples
    --------
    >>> lin = read_lineage("../shared/data/ctc/bacteria-phc/01_GT/TRA", masks=False)  # doctest: +SKIP
    >>> len(lin.divisions())  # doctest: +SKIP
    356
    """
    if format is None:
        format = detect_format(path)
    if format not in FORMATS:
        raise InvalidInputError(f"unknown lineage format {format!r}; expected one of {sorted(FORMATS)}")
    if not Path(path).exists():
        raise InvalidInputError(f"lineage path {path} does not exist")
    return FORMATS[format](path, **kw)
