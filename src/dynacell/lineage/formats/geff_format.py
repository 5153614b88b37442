"""GEFF (Graph Exchange File Format, zarr) read and write with the ``geff`` library, and networkx export.

GEFF: the community format for tracking graphs (geff.readthedocs.io, spec 1.x). A dynacell
lineage is written with integer node ids ``0 .. N-1`` and node properties ``t, label, z, y,
x, track_id, death`` (+ ``name``, ``diameter_px`` where present); axes ``t`` (time) and
``z, y, x`` or ``y, x`` (space, pixels). ``n_frames``, ``ndim`` and ``source`` travel in the
zarr attributes under ``"dynacell"``, with the lineage's JSON-serialisable graph attributes
(``lineage.graph.graph``: format, scales, ``death_annotations``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import networkx as nx
import numpy as np

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError
from dynacell.io._meta import length_to_um, time_to_s
from dynacell.io.limits import get_limits
from dynacell.io.writers import atomic_folder
from dynacell.lineage.formats._common import as_float, as_int
from dynacell.lineage.graph import Lineage

__all__ = ["write_geff", "read_geff", "to_networkx", "is_geff_store"]

logger = logging.getLogger(__name__)

_OPTIONAL_PROPS = {"name": "", "diameter_px": np.nan}


def _json_safe(d: dict) -> dict:
    """The JSON-serialisable items of a graph-attribute dict (tuples become lists)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, tuple):
            v = list(v)
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = v
    return out


def is_geff_store(path: str | Path) -> bool:
    """Whether ``path`` is a zarr group whose attributes hold GEFF metadata.

    Parameters
    ----------
    path : str or Path
        A folder.

    Returns
    -------
    bool
        True when ``path`` opens as a zarr group with a ``"geff"`` attribute.
    """
    import zarr

    p = Path(path)
    if not p.is_dir():
        return False
    try:
        group = zarr.open_group(str(p), mode="r")
    except Exception:  # not a zarr group at all
        return False
    return "geff" in group.attrs


def to_networkx(lineage: Lineage) -> nx.DiGraph:
    """The lineage as a :class:`networkx.DiGraph` (a copy; nodes ``(t, label)`` with all attributes).

    Parameters
    ----------
    lineage : Lineage
        The lineage.

    Returns
    -------
    networkx.DiGraph
        Nodes ``(t, label)`` with attributes ``z, y, x`` (pixels), ``track_id`` and extras;
        edges parent → child.
    """
    return lineage.to_networkx()


def write_geff(lineage: Lineage, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``lineage`` to a GEFF zarr store (atomically: temporary path, then rename).

    Parameters
    ----------
    lineage : Lineage
        The lineage; every node gets ``t, label, z, y, x`` (pixels; NaN where unknown),
        ``track_id`` (assigned if missing) and ``death`` (False unless annotated).
    path : str or Path
        Output store, conventionally ``*.geff`` or ``*.zarr``.
    overwrite : bool
        Replace an existing store.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    import geff
    import zarr

    out = Path(path)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    lin = lineage.copy()
    lin.assign_tracks()
    g = nx.DiGraph()
    index = {n: i for i, n in enumerate(sorted(lin.graph.nodes))}
    present = {k for _, d in lin.graph.nodes(data=True) for k in _OPTIONAL_PROPS if k in d}
    for n, i in index.items():
        d = lin.graph.nodes[n]
        props = {
            "t": int(n[0]), "label": int(n[1]),
            "z": float(d.get("z", np.nan)), "y": float(d.get("y", np.nan)), "x": float(d.get("x", np.nan)),
            "track_id": int(d["track_id"]), "death": bool(d.get("death", False)),
        }
        for k in present:
            v = d.get(k, _OPTIONAL_PROPS[k])
            props[k] = str(v) if k == "name" else float(v)
        g.add_node(i, **props)
    g.add_edges_from((index[u], index[v]) for u, v in lin.graph.edges)
    space = ["z", "y", "x"] if lin.ndim == 3 else ["y", "x"]
    with atomic_folder(out, overwrite=overwrite, suffix=".zarr") as tmp:  # the output contract of dynacell.io
        tmp.rmdir()  # geff refuses an existing path: it creates the store itself
        geff.write(g, str(tmp), axis_names=["t", *space], axis_types=["time"] + ["space"] * len(space),
                   axis_units=[None] + ["pixel"] * len(space))
        group = zarr.open_group(str(tmp), mode="a")
        meta = dict(group.attrs["geff"])
        meta["track_node_props"] = {"tracklet": "track_id"}
        group.attrs["geff"] = meta
        group.attrs["dynacell"] = {"n_frames": int(lin.n_frames), "ndim": int(lin.ndim), "source": lin.source,
                                   "graph": _json_safe(lin.graph.graph)}
    logger.info("wrote %s: %d nodes, %d edges", out, g.number_of_nodes(), g.number_of_edges())
    return out


def _space_axes(space: list[str]) -> dict[str, str]:
    """dynacell's ``z, y, x`` → the GEFF space-axis names: by the axis letter in the name (``x``,
    ``POSITION_X``, ``centroid_x``), else in the listed order taken as ``(z,) y, x``."""
    by_letter = {}
    for name in space:
        low = name.lower()
        letter = low if low in ("x", "y", "z") else (low[-1] if len(low) > 2 and low[-2] in "_-" else "")
        if letter in ("x", "y", "z") and letter not in by_letter:
            by_letter[letter] = name
    if len(by_letter) == len(space):
        return by_letter
    return dict(zip(["z", "y", "x"][-len(space):], space)) if space else {}


def _frame_property(graph, time_name: str, time_unit: str | None) -> str | None:
    """``"frame"`` / ``"FRAME"`` when the time axis holds physical times and every node has that integer property.

    Physical times: values that are not whole numbers, or — with a time unit (``second``, ``min`` ...) —
    whole values that never step by one (0, 60, 120 s); a time axis in a time unit that steps by one
    frame (some tools label frame numbers ``second``) is read as frames, as before.
    """
    try:
        values = np.array([float(d[time_name]) for _, d in graph.nodes(data=True) if d.get(time_name) is not None])
    except (TypeError, ValueError):
        return None  # not numbers at all: as_int names the node
    whole = bool(np.all(values == np.round(values)))
    steps = np.diff(np.unique(values))
    physical = not whole or (time_to_s(1.0, time_unit) is not None and time_unit is not None
                             and len(steps) > 0 and int(np.gcd.reduce(steps.astype(np.int64))) > 1)
    if not physical:
        return None
    for name in ("frame", "FRAME"):
        got = [d.get(name) for _, d in graph.nodes(data=True)]
        if all(isinstance(v, (int, np.integer)) or (isinstance(v, float) and v == round(v)) for v in got):
            return name
    if time_unit and whole:
        raise FormatError(f"the time axis {time_name!r} is in {time_unit}, not in frames, and the nodes carry no "
                          "integer 'frame' property; dynacell needs frame numbers (write the frame of each node as "
                          "'frame', or the time axis in frames)")
    return None


def read_geff(path: str | Path) -> Lineage:
    """Read a GEFF store into a :class:`Lineage`.

    Parameters
    ----------
    path : str or Path
        A GEFF zarr store (written by :func:`write_geff` or by another tool).

    Returns
    -------
    Lineage
        Nodes ``(t, label)``: ``t`` from the ``t`` property (or the time axis; when that axis holds
        physical times — not whole numbers, or in a time unit and never stepping by one — from an
        integer ``frame`` / ``FRAME`` property, as geff's TrackMate converter writes); ``label``
        from ``label`` or ``seg_id``, else the rank of the node id within its frame (1, 2, ...; then
        ``graph.graph["node_labels"] = "spot order"``: not label ids of a mask, so
        :func:`dynacell.lineage.checks.as_mask_ids` matches them to the masks by position).
        ``z, y, x`` from the space axes, matched by the letter in their names (``x``,
        ``POSITION_X`` ...), else in the listed order (else NaN; ``z = 0`` for 2D); axes in a length unit
        (``micron`` ...) rather than pixels record ``graph.graph["position_um_per_unit"]``.
        All other properties (``track_id``, ``death``, ``name``, ...) are kept.

    Raises
    ------
    FormatError
        If the store is not a valid GEFF or has no time property.
    InvalidInputError
        If two nodes share ``(t, label)`` or an edge goes backward in time.
    """
    import geff
    import zarr

    p = Path(path)
    if not is_geff_store(p):
        raise FormatError(f"{p}: not a GEFF store (a zarr group with 'geff' attributes)")
    try:
        graph, meta = geff.read(str(p))
    except Exception as exc:  # geff raises pydantic / zarr / value errors for invalid stores
        raise FormatError(f"{p}: invalid GEFF store ({exc})") from exc
    extra = zarr.open_group(str(p), mode="r").attrs.get("dynacell", {})
    if not isinstance(extra, dict):
        raise FormatError(f"{p}: attribute 'dynacell' is {type(extra).__name__}, expected a mapping; rewrite the store")
    extra = dict(extra)
    max_frames = get_limits().max_frames
    if extra.get("n_frames") is not None:
        extra["n_frames"] = as_int(extra["n_frames"], f"{p}: attribute dynacell.n_frames", minimum=0,
                                   maximum=max_frames + 1)
    if "ndim" in extra and as_int(extra["ndim"], f"{p}: attribute dynacell.ndim") not in (2, 3):
        raise FormatError(f"{p}: attribute dynacell.ndim = {extra['ndim']!r}; expected 2 or 3")
    axes = list(meta.axes or [])
    time_name = next((a.name for a in axes if a.type == "time"), "t")
    space = [a.name for a in axes if a.type == "space"]
    time_unit = next((a.unit for a in axes if a.type == "time"), None)
    try:
        frame_prop = _frame_property(graph, time_name, time_unit)
    except FormatError as exc:
        raise FormatError(f"{p}: {exc}") from None
    if frame_prop is not None:  # the time axis holds physical times (e.g. TrackMate's POSITION_T in min)
        logger.info("%s: time axis %r is not in frames; frame numbers from node property %r", p, time_name,
                    frame_prop)
        for n in graph.nodes:
            graph.nodes[n][f"{time_name}_axis"] = graph.nodes[n].pop(time_name)
        time_name = frame_prop
    ndim = int(extra.get("ndim", 3 if len(space) == 3 else 2))
    coord_names = _space_axes(space)
    z_name = coord_names.get("z")
    if "ndim" not in extra and ndim == 3 and z_name is not None and len(
            {graph.nodes[n].get(z_name) for n in graph.nodes}) <= 1:
        ndim = 2  # a Z axis that never changes (TrackMate writes POSITION_Z = 0 for 2D movies): a 2D lineage
    nodes = sorted(graph.nodes)
    for n in nodes:
        if time_name not in graph.nodes[n]:
            raise FormatError(f"{p}: node {n} has no time property {time_name!r}")
        graph.nodes[n][time_name] = as_int(graph.nodes[n][time_name], f"{p}: node {n}, property {time_name!r}",
                                           minimum=0, maximum=max_frames)
    rank: dict = {}
    if not any("label" in graph.nodes[n] or "seg_id" in graph.nodes[n] for n in nodes):
        per_frame: dict[int, int] = {}
        for n in nodes:
            t = int(graph.nodes[n][time_name])
            per_frame[t] = per_frame.get(t, 0) + 1
            rank[n] = per_frame[t]
    lineage = Lineage(n_frames=extra.get("n_frames"), ndim=ndim, source=str(extra.get("source") or p))
    lineage.graph.graph.update(extra.get("graph", {}))
    lineage.graph.graph["format"] = "geff"
    if rank:  # labels numbered per frame, not the label ids of any mask (dynacell run --lineage matches by position)
        lineage.graph.graph["node_labels"] = "spot order"
    units = {length_to_um(1.0, a.unit) if a.unit else None for a in axes if a.type == "space"}
    if len(units) == 1 and None not in units:  # positions in a physical length unit, not pixels
        lineage.graph.graph["position_um_per_unit"] = float(units.pop())
    key: dict = {}
    for n in nodes:
        d = dict(graph.nodes[n])
        t = int(d.pop(time_name))
        label = as_int(d.pop("label", d.pop("seg_id", rank.get(n, 0))), f"{p}: node {n}, property 'label'",
                       minimum=0, maximum=int(np.iinfo(np.int64).max))
        k = (t, label)
        if k in lineage:
            raise InvalidInputError(f"{p}: nodes {key[k]} and {n} both are frame {t}, label {label}")
        key[k] = n
        for c in ("z", "y", "x"):
            src = c if c in d else coord_names.get(c)
            d[c] = (as_float(d.pop(src), f"{p}: node {n}, property {src!r}") if src in d
                    else (0.0 if c == "z" and ndim == 2 else np.nan))
        if "death" in d:
            d["death"] = bool(d["death"])
        lineage.add_node(k, **d)
    last = max((k[0] for k in key), default=-1)
    if extra.get("n_frames") is not None and last >= extra["n_frames"]:
        raise FormatError(
            f"{p}: attribute dynacell.n_frames = {extra['n_frames']} but node {key[max(key)]} is at frame {last}; "
            f"the store is inconsistent (n_frames must be at least {last + 1}) — rewrite it"
        )
    inv = {v: k for k, v in key.items()}
    try:
        for u, v in graph.edges:
            lineage.add_edge(inv[u], inv[v])
        lineage.validate()
    except InvalidInputError as exc:  # name the store: the graph's own messages only name nodes
        raise InvalidInputError(f"{p}: {exc}; fix the edges of the GEFF graph") from None
    return lineage
