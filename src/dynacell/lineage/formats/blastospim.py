"""BlastoSPIM lineage graphs: MATLAB graph dumps ``LineageGraph.json`` / ``CombinedGraph_*.json``.

Format (BlastoSPIM processing pipeline, Nunley et al. 2024): a JSON object holding ``Nodes`` and ``Edges`` either at the top
level or under one top-level key starting with ``G`` (MATLAB ``jsonencode`` of a
``digraph``). ``Nodes`` is a list of records with ``Name = "TTT_LLL"`` (3-digit frame and
label id: the value of the nucleus in that frame's label volume) and optional fields such as
``Centroid``; ``Edges`` is a list of records ``EndNodes = [parent, child]``. The label
volumes are Keller-lab KLB files (``registered_label_images/*_TTTTT*.klb``), read with
``pyklb``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io.limits import check_frame_voxels, get_limits
from dynacell.lineage._tracks import assign_track_ids
from dynacell.lineage.formats._common import as_float, label_centroids, progress
from dynacell.lineage.graph import Lineage

__all__ = ["read_blastospim_lineage", "find_blastospim_graph", "blastospim_label_files", "is_blastospim_graph_name"]

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^(\d+)_(\d+)$")
_KLB_RE = re.compile(r"_(\d+)[^\d]*\.klb$")
LABEL_FOLDER = "registered_label_images"


def is_blastospim_graph_name(name: str) -> bool:
    """Whether a file name looks like a BlastoSPIM graph dump (``LineageGraph.json``, ``*Graph*.json``).

    Parameters
    ----------
    name : str
        A file name.

    Returns
    -------
    bool
        True for a ``.json`` name containing ``graph`` (case-insensitive).
    """
    return name.lower().endswith(".json") and "graph" in name.lower()


def find_blastospim_graph(path: str | Path) -> Path:
    """The graph JSON of a BlastoSPIM folder, or ``path`` itself if it is a file.

    Parameters
    ----------
    path : str or Path
        A graph JSON file or the folder holding it.

    Returns
    -------
    Path
        ``LineageGraph.json`` if present, else the only ``*Graph*.json`` of the folder.

    Raises
    ------
    InvalidInputError
        If the folder holds no ``*Graph*.json`` file, or several without a ``LineageGraph.json``.
    """
    p = Path(path)
    if p.is_file():
        return p
    if (p / "LineageGraph.json").is_file():
        return p / "LineageGraph.json"
    found = sorted(f for f in p.glob("*.json") if is_blastospim_graph_name(f.name)) if p.is_dir() else []
    if len(found) == 1:
        return found[0]
    raise InvalidInputError(
        f"{p}: expected one BlastoSPIM graph JSON (LineageGraph.json or CombinedGraph_*.json), found "
        f"{[f.name for f in found] or 'none'}; pass the JSON file itself"
    )


def blastospim_label_files(folder: str | Path) -> dict[int, Path]:
    """Frame number → KLB label volume (``*_TTTTT*.klb``) in ``folder``.

    Parameters
    ----------
    folder : str or Path
        Usually ``registered_label_images`` beside the graph JSON.

    Returns
    -------
    dict of int to Path
        Sorted by frame number (the last number before ``.klb``-like suffixes).
    """
    out: dict[int, Path] = {}
    for f in Path(folder).glob("*.klb"):
        m = _KLB_RE.search(f.name)
        if m:
            out[int(m.group(1))] = f
    return dict(sorted(out.items()))


def _graph_part(doc: Any, f: Path) -> dict:
    if isinstance(doc, dict) and "Nodes" in doc and "Edges" in doc:
        return doc
    if isinstance(doc, dict):
        keys = [k for k in doc if str(k).startswith("G") and isinstance(doc[k], dict)]
        if len(keys) == 1 and "Nodes" in doc[keys[0]] and "Edges" in doc[keys[0]]:
            return doc[keys[0]]
    found = list(doc)[:5] if isinstance(doc, dict) else type(doc).__name__
    raise FormatError(
        f"{f}: expected a MATLAB graph dump with 'Nodes' and 'Edges' at the top level or under one key "
        f"starting with 'G', found top-level {found}; export the lineage with jsonencode(G)"
    )


def _records(part: Any, what: str, f: Path) -> list[dict]:
    """Rows of a MATLAB table dump: a list of records, one record (a one-row table), or columns."""
    if isinstance(part, list):
        if not all(isinstance(r, dict) for r in part):
            raise FormatError(f"{f}: '{what}' must be a list of objects")
        return part
    if isinstance(part, dict):
        key = "EndNodes" if what == "Edges" else "Name"
        col = part.get(key)
        columnar = isinstance(col, list) and (what == "Nodes" or (col and isinstance(col[0], list)))
        if not columnar:
            return [part]
        n = len(col)
        return [{k: (v[i] if isinstance(v, list) and len(v) == n else v) for k, v in part.items()} for i in range(n)]
    raise FormatError(f"{f}: '{what}' must be a list of objects, found {type(part).__name__}")


def _parse_name(name: Any, f: Path, index: int) -> tuple[int, int]:
    m = _NAME_RE.match(str(name))
    if not m:
        raise FormatError(
            f"{f}: node {index} has name {name!r}; expected 'TTT_LLL' (frame number, underscore, label id, "
            "e.g. '006_004'); rename the nodes or convert the graph"
        )
    t, label = int(m.group(1)), int(m.group(2))
    if t > get_limits().max_frames:
        raise InvalidInputError(
            f"{f}: node {index} ({name!r}): frame {t:,} is above the limit of {get_limits().max_frames:,} frames; "
            "the name is probably corrupt"
        )
    if label > np.iinfo(np.int64).max:
        raise InvalidInputError(f"{f}: node {index} ({name!r}): label id {label} does not fit a 64-bit integer")
    if label < 1:
        raise InvalidInputError(f"{f}: node {index} ({name!r}): label id {label} must be >= 1 (0 is background)")
    return t, label


def _centroid(rec: dict, f: Path, index: int) -> tuple[float, float, float] | None:
    where = f"{f}: node {index} ({rec.get('Name')!r})"
    if "Centroid" in rec and rec["Centroid"] is not None:
        raw = rec["Centroid"]
        vals = raw if isinstance(raw, list) else [raw]
        if len(vals) == 1 and isinstance(vals[0], list):
            vals = vals[0]
        c = [as_float(v, f"{where}, field 'Centroid'") for v in vals]
        if len(c) == 3:
            return c[2], c[1], c[0]
        raise FormatError(f"{where}: 'Centroid' holds {len(c)} numbers {raw!r}; expected [x, y, z]")
    if all(k in rec for k in ("Centroid_X", "Centroid_Y", "Centroid_Z")):
        z, y, x = (as_float(rec[k], f"{where}, field {k!r}") for k in ("Centroid_Z", "Centroid_Y", "Centroid_X"))
        return z, y, x
    return None


def read_blastospim_lineage(
    path: str | Path,
    *,
    labels: bool | str | Path = False,
    show_progress: bool = False,
) -> Lineage:
    """Build a :class:`Lineage` from a BlastoSPIM graph JSON.

    Parameters
    ----------
    path : str or Path
        ``LineageGraph.json`` / ``CombinedGraph_*.json`` or the folder holding it.
    labels : bool or path
        Read the KLB label volumes (``True``: the ``registered_label_images`` folder beside
        the JSON; or a folder path), one frame at a time, to set every node's centroid from
        its voxels and to check label ids against nodes (mismatches are logged as warnings).
        Each ``(81, 2048, 2048)`` uint16 volume takes seconds to decompress: off by default.
    show_progress : bool
        Progress bar over label volumes.

    Returns
    -------
    Lineage
        ``ndim = 3``; nodes ``(TTT, LLL)`` with ``name`` and, where known, ``z, y, x`` in
        voxels (from ``Centroid`` / ``Centroid_X/Y/Z``, read as MATLAB ``regionprops``
        order ``[x, y, z]``; from the label volumes when ``labels`` is set); ``track_id``
        assigned by :meth:`Lineage.assign_tracks`.

    Raises
    ------
    FormatError
        Truncated or malformed JSON (the message gives line and column), no
        ``Nodes``/``Edges``, a node name not of the form ``TTT_LLL``.
    InvalidInputError
        An edge naming a node that is not in ``Nodes``, an edge backward in time, a node
        with two parents, a label folder that does not exist.
    """
    f = find_blastospim_graph(path)
    try:
        with open(f, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{f}: malformed or truncated JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "re-export the graph from MATLAB"
        ) from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"{f}: not a UTF-8 JSON text ({exc.reason})") from None
    part = _graph_part(doc, f)
    node_recs = _records(part["Nodes"], "Nodes", f)
    edge_recs = _records(part["Edges"], "Edges", f)
    lineage = Lineage(ndim=3, source=str(f))
    lineage.graph.graph.update({"format": "blastospim", "graph_file": str(f)})
    by_name: dict[str, tuple[int, int]] = {}
    for i, rec in enumerate(node_recs):
        if "Name" not in rec:
            raise FormatError(f"{f}: node {i} has no 'Name' field; expected 'TTT_LLL' names")
        name = str(rec["Name"])
        node = _parse_name(name, f, i)
        if node in lineage:
            raise InvalidInputError(f"{f}: node {i} ({name!r}) repeats frame {node[0]}, label {node[1]}")
        by_name[name] = node
        c = _centroid(rec, f, i)
        lineage.add_node(node, c, name=name)
        if c is None:
            lineage.graph.nodes[node].update(z=np.nan, y=np.nan, x=np.nan)
    for i, rec in enumerate(edge_recs):
        ends = rec.get("EndNodes")
        if not isinstance(ends, list) or len(ends) != 2:
            raise FormatError(f"{f}: edge {i} must hold 'EndNodes': [parent, child], found {ends!r}")
        parent_name, child_name = (str(e) for e in ends)
        for e in (parent_name, child_name):
            if e not in by_name:
                _parse_name(e, f, i)
                raise InvalidInputError(
                    f"{f}: edge {i} ({parent_name} -> {child_name}) names node {e!r}, which is not in 'Nodes'"
                )
        parent, child = by_name[parent_name], by_name[child_name]
        if child[0] <= parent[0]:
            raise InvalidInputError(
                f"{f}: edge {i} goes backward in time: {parent_name} (frame {parent[0]}) -> {child_name} "
                f"(frame {child[0]}); EndNodes must be [parent, child] with the child in a later frame"
            )
        lineage.add_edge(parent, child)
    try:
        lineage.validate()
    except InvalidInputError as exc:
        raise InvalidInputError(f"{f}: {exc}") from None
    if labels:
        folder = f.parent / LABEL_FOLDER if labels is True else Path(labels)
        if not folder.is_dir():
            raise InvalidInputError(f"{f}: label folder {folder} does not exist; pass labels=<folder of *.klb>")
        _centroids_from_klb(lineage, blastospim_label_files(folder), show_progress)
    assign_track_ids(lineage)
    logger.info("read %s: %d nodes, %d edges, %d divisions", f, len(lineage), lineage.graph.number_of_edges(),
                len(lineage.divisions()))
    return lineage


def _centroids_from_klb(lineage: Lineage, files: dict[int, Path], show_progress: bool) -> None:
    import pyklb

    g = lineage.graph
    for t, f in progress(files.items(), enabled=show_progress, desc="KLB labels", total=len(files)):
        try:
            header = pyklb.readheader(str(f))
        except Exception as exc:  # pyklb raises IOError/RuntimeError for corrupt files
            raise FormatError(f"{f} (frame {t}): cannot read the KLB header ({exc})") from exc
        check_frame_voxels(tuple(int(s) for s in header["imagesize_tczyx"][2:]), f"{f} (frame {t})")
        try:
            vol = pyklb.readfull(str(f))
        except Exception as exc:  # pyklb raises IOError/RuntimeError for corrupt files
            raise FormatError(f"{f} (frame {t}): cannot read the KLB volume ({exc})") from exc
        cents = label_centroids(vol, source=f"{f} (frame {t})")
        expected = {label for (tt, label) in g.nodes if tt == t}
        for label, c in cents.items():
            if label in expected:
                g.nodes[(t, label)].update(z=c[0], y=c[1], x=c[2])
        extra = sorted(cents.keys() - expected)
        lost = sorted(expected - cents.keys())
        if extra or lost:
            logger.warning(
                "%s (frame %d): label ids %s are in the volume but not in the lineage; nodes with ids %s are "
                "in the lineage but not in the volume", f, t, extra, lost,
            )
