"""TrackMate XML export of a lineage, so that Fiji users can open dynacell's tracks.

TrackMate (Fiji, ``Plugins › Tracking › TrackMate``, then *Load a TrackMate file*) stores a
tracking model as one XML file: ``<TrackMate><Model>`` holds the spots (one per nucleus per
frame, with ``POSITION_X/Y/Z`` in physical units, ``POSITION_T`` in the time unit and
``FRAME``), and the tracks (one ``<Track>`` per lineage tree, listing its edges by spot id);
``<Settings><ImageData>`` names the image and its calibration. A TrackMate track is a whole
tree, divisions included; dynacell's ``track_id`` (one id per cell between divisions) is kept
as the spot feature ``DYNACELL_TRACK_ID`` and the label as ``DYNACELL_LABEL``.

Spot ids are ``0 .. n-1`` in ``(t, label)`` order; the file is written to a temporary name
and renamed, and :func:`write_trackmate` re-reads what it wrote (:func:`read_trackmate`) to
check nodes and edges before renaming.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import networkx as nx
import numpy as np

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError
from dynacell.io._meta import length_to_um, time_to_s
from dynacell.lineage.graph import Lineage

__all__ = ["write_trackmate", "read_trackmate", "is_trackmate_file"]

#: TrackMate version written in the file (the XML layout of TrackMate 7).
TRACKMATE_VERSION = "7.11.1"

# (feature, name, shortname, dimension, isint)
_SPOT_FEATURES = [
    ("QUALITY", "Quality", "Quality", "QUALITY", False),
    ("POSITION_X", "X", "X", "POSITION", False),
    ("POSITION_Y", "Y", "Y", "POSITION", False),
    ("POSITION_Z", "Z", "Z", "POSITION", False),
    ("POSITION_T", "T", "T", "TIME", False),
    ("FRAME", "Frame", "Frame", "NONE", True),
    ("RADIUS", "Radius", "R", "LENGTH", False),
    ("VISIBILITY", "Visibility", "Visibility", "NONE", True),
    ("DYNACELL_TRACK_ID", "dynacell track id", "Cell", "NONE", True),
    ("DYNACELL_LABEL", "dynacell label", "Label", "NONE", True),
]
_EDGE_FEATURES = [
    ("SPOT_SOURCE_ID", "Source spot ID", "Source ID", "NONE", True),
    ("SPOT_TARGET_ID", "Target spot ID", "Target ID", "NONE", True),
    ("EDGE_TIME", "Edge time", "Edge T", "TIME", False),
]
_TRACK_FEATURES = [
    ("TRACK_ID", "Track ID", "ID", "NONE", True),
    ("TRACK_INDEX", "Track index", "Index", "NONE", True),
    ("NUMBER_SPOTS", "Number of spots in track", "N spots", "NONE", True),
    ("NUMBER_SPLITS", "Number of split events", "N splits", "NONE", True),
    ("TRACK_START", "Track start", "Track start", "TIME", False),
    ("TRACK_STOP", "Track stop", "Track stop", "TIME", False),
]


def _declare(parent: ET.Element, tag: str, features: Sequence[tuple[str, str, str, str, bool]]) -> None:
    el = ET.SubElement(parent, tag)
    for feat, name, short, dim, isint in features:
        ET.SubElement(el, "Feature", feature=feat, name=name, shortname=short, dimension=dim,
                      isint="true" if isint else "false")


def _num(v: float) -> str:
    return repr(float(v))


def write_trackmate(
    lineage: Lineage,
    path: str | Path,
    *,
    voxel_size_um: Sequence[float] | None = None,
    frame_interval_s: float | None = None,
    radius_um: float | None = None,
    image_path: str | Path | None = None,
    image_shape: Sequence[int] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a lineage as a TrackMate XML file.

    Parameters
    ----------
    lineage : Lineage
        Nodes ``(t, label)`` with centroids ``z, y, x`` in pixels (nodes without a centroid
        are refused). ``track_id`` is assigned where missing.
    path : str or Path
        Output ``.xml`` file.
    voxel_size_um : sequence of float, optional
        ``(Y, X)`` or ``(Z, Y, X)`` in µm: positions are written in µm
        (``spatialunits="micrometer"``). Without it positions stay in pixels (``"pixel"``).
    frame_interval_s : float, optional
        Time between frames in s: ``POSITION_T`` in seconds (``timeunits="second"``). Without it
        ``POSITION_T`` is the frame number (``"frame"``).
    radius_um : float, optional
        Spot radius shown in TrackMate (physical units as above). Default: half the node's
        ``diameter_px`` where present, else 5 pixels.
    image_path : str or Path, optional
        The movie the lineage belongs to, written in ``<ImageData>`` so TrackMate can find it.
    image_shape : sequence of int, optional
        ``(T, (Z), Y, X)`` of that movie, for ``<ImageData>`` (default from the centroids).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    InvalidInputError
        A node without a centroid, a voxel size that is not 2 or 3 positive numbers, or a
        frame interval that is not > 0.
    FormatError
        If the written file does not read back as the same nodes and edges (a bug).

    Examples
    --------
    >>> lin = Lineage(n_frames=2)
    >>> lin.add_node((0, 1), (10.0, 20.0)); lin.add_node((1, 1), (11.0, 21.0)); lin.add_edge((0, 1), (1, 1))
    >>> import tempfile, os
    >>> p = write_trackmate(lin, os.path.join(tempfile.mkdtemp(), "t.xml"), voxel_size_um=(0.5, 0.5))
    >>> sorted(read_trackmate(p).graph.edges)
    [((0, 1), (1, 1))]
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"TrackMate file {path} exists; pass --overwrite to replace it")
    if voxel_size_um is not None:
        vs = [float(v) for v in voxel_size_um]
        if len(vs) not in (2, 3) or any(not np.isfinite(v) or v <= 0 for v in vs):
            raise InvalidInputError(f"TrackMate export: voxel size must be 2 or 3 numbers > 0 µm, got {voxel_size_um!r}")
        scale_zyx = np.array(vs if len(vs) == 3 else [1.0, *vs])
        space_unit = "micrometer"
    else:
        scale_zyx = np.ones(3)
        space_unit = "pixel"
    if frame_interval_s is not None and not (np.isfinite(frame_interval_s) and frame_interval_s > 0):
        raise InvalidInputError(f"TrackMate export: frame interval must be > 0 s, got {frame_interval_s!r}")
    dt = float(frame_interval_s) if frame_interval_s is not None else 1.0
    time_unit = "second" if frame_interval_s is not None else "frame"
    lineage.assign_tracks()
    g = lineage.graph
    nodes = sorted(g.nodes)
    ids = {n: i for i, n in enumerate(nodes)}
    default_r = radius_um if radius_um is not None else 5.0 * float(scale_zyx[-1])

    root = ET.Element("TrackMate", version=TRACKMATE_VERSION)
    ET.SubElement(root, "Log").text = f"Exported by dynacell from {lineage.source or 'a lineage'}."
    model = ET.SubElement(root, "Model", spatialunits=space_unit, timeunits=time_unit)
    feats = ET.SubElement(model, "FeatureDeclarations")
    _declare(feats, "SpotFeatures", _SPOT_FEATURES)
    _declare(feats, "EdgeFeatures", _EDGE_FEATURES)
    _declare(feats, "TrackFeatures", _TRACK_FEATURES)
    all_spots = ET.SubElement(model, "AllSpots", nspots=str(len(nodes)))
    by_frame: dict[int, list] = {}
    for n in nodes:
        by_frame.setdefault(n[0], []).append(n)
    for t in sorted(by_frame):
        frame_el = ET.SubElement(all_spots, "SpotsInFrame", frame=str(t))
        for n in by_frame[t]:
            d = g.nodes[n]
            if "y" not in d or not (np.isfinite(d["y"]) and np.isfinite(d["x"])):
                raise InvalidInputError(f"TrackMate export: lineage node {n} has no centroid (read the lineage "
                                        "with its masks, e.g. a CTC TRA folder with its man_trackTTT.tif files)")
            z, y, x = np.array([d.get("z", 0.0), d["y"], d["x"]], dtype=float) * scale_zyx
            r = radius_um if radius_um is not None else (
                0.5 * float(d["diameter_px"]) * float(scale_zyx[-1]) if d.get("diameter_px") else default_r)
            ET.SubElement(frame_el, "Spot", ID=str(ids[n]), name=f"t{n[0]}_l{n[1]}", QUALITY="1.0",
                          POSITION_X=_num(x), POSITION_Y=_num(y), POSITION_Z=_num(z), POSITION_T=_num(t * dt),
                          FRAME=str(t), RADIUS=_num(r), VISIBILITY="1",
                          DYNACELL_TRACK_ID=str(int(d.get("track_id", 0))), DYNACELL_LABEL=str(n[1]))
    all_tracks = ET.SubElement(model, "AllTracks")
    filtered = ET.SubElement(model, "FilteredTracks")
    trees = [sorted(c) for c in nx.weakly_connected_components(g) if len(c) > 1]
    trees.sort(key=lambda c: c[0])
    for k, comp in enumerate(trees):
        sub = g.subgraph(comp)
        times = [n[0] * dt for n in comp]
        tr = ET.SubElement(all_tracks, "Track", name=f"Track_{k}", TRACK_ID=str(k), TRACK_INDEX=str(k),
                           NUMBER_SPOTS=str(len(comp)),
                           NUMBER_SPLITS=str(sum(1 for n in comp if sub.out_degree(n) >= 2)),
                           TRACK_START=_num(min(times)), TRACK_STOP=_num(max(times)))
        for u, v in sorted(sub.edges):
            ET.SubElement(tr, "Edge", SPOT_SOURCE_ID=str(ids[u]), SPOT_TARGET_ID=str(ids[v]),
                          EDGE_TIME=_num(0.5 * (u[0] + v[0]) * dt))
        ET.SubElement(filtered, "TrackID", TRACK_ID=str(k))
    settings = ET.SubElement(root, "Settings")
    shape = list(image_shape) if image_shape is not None else None
    n_t = shape[0] if shape else lineage.n_frames
    spatial = shape[1:] if shape else None
    ys = [g.nodes[n]["y"] for n in nodes] or [0.0]
    xs = [g.nodes[n]["x"] for n in nodes] or [0.0]
    zs = [g.nodes[n].get("z", 0.0) for n in nodes] or [0.0]
    height = spatial[-2] if spatial else int(np.ceil(max(ys))) + 1
    width = spatial[-1] if spatial else int(np.ceil(max(xs))) + 1
    nslices = spatial[0] if spatial and len(spatial) == 3 else (int(np.ceil(max(zs))) + 1 if lineage.ndim == 3 else 1)
    img = Path(image_path) if image_path is not None else None
    ET.SubElement(settings, "ImageData", filename=img.name if img else "", folder=str(img.parent) if img else "",
                  width=str(width), height=str(height), nslices=str(nslices), nframes=str(n_t),
                  pixelwidth=_num(scale_zyx[2]), pixelheight=_num(scale_zyx[1]), voxeldepth=_num(scale_zyx[0]),
                  timeinterval=_num(dt))
    ET.SubElement(root, "GUIState", state="ConfigureViews")
    ET.SubElement(root, "DisplaySettings").text = "{}"
    ET.indent(root)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=True)
        back = read_trackmate(tmp)
        if set(back.graph.nodes) != set(nodes) or set(back.graph.edges) != set(g.edges):
            raise FormatError(f"TrackMate export of {len(nodes)} nodes did not read back identically")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def is_trackmate_file(path: str | Path) -> bool:
    """Whether ``path`` is an XML file whose root element is ``<TrackMate>`` (reads only its first 4 KiB).

    Parameters
    ----------
    path : str or Path
        A file.

    Returns
    -------
    bool
        False for a folder, an unreadable file or any other XML.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b"<TrackMate" in head


def read_trackmate(path: str | Path) -> Lineage:
    """Read a TrackMate XML file (saved by Fiji's TrackMate, or by :func:`write_trackmate`) into a lineage.

    What TrackMate shows is what is read: spots with ``VISIBILITY="0"`` (removed by a spot
    filter) are left out unless a shown track links them, and so are the tracks that a track filter
    hid (tracks not listed in ``<FilteredTracks>``) with their spots; visible spots in no track are
    kept as one-frame nuclei.
    Gap-closing links (a spot linked to one several frames later) are kept as edges across the
    gap. Nodes are ``(FRAME, label)`` with the label from ``DYNACELL_LABEL`` when present (a file
    dynacell wrote: the label ids of its masks), else numbered 1, 2, ... per frame in spot-id order
    (``graph.graph["node_labels"] = "spot order"``: not label ids of any mask, so such a lineage
    cannot be given to ``dynacell run --lineage``). Centroids are converted to pixels with the
    ``<ImageData>`` calibration.

    The physical units are recorded when the file states them: ``lineage.graph.graph
    ["voxel_size_um"]`` (``(Z, Y, X)`` µm; from ``pixelwidth``/``pixelheight``/``voxeldepth`` when
    ``<Model spatialunits>`` is a length such as ``micron``) and ``["frame_interval_s"]`` (from
    ``timeinterval`` when ``timeunits`` is a time such as ``sec`` or ``min``). A file in ``pixel``
    or ``frame`` units records neither; ``["spatial_unit"]`` and ``["time_unit"]`` keep the words.

    Parameters
    ----------
    path : str or Path
        TrackMate ``.xml`` file (TrackMate 3 to 7 layout).

    Returns
    -------
    Lineage
        ``ndim`` 3 when ``nslices > 1`` (or, without ``<ImageData>``, when the spots' Z differ), else 2.

    Raises
    ------
    InvalidInputError
        If the file does not exist.
    FormatError
        If it is not TrackMate XML, a spot lacks ``ID``/``FRAME``/a position, an edge names a spot
        that does not exist or links two spots of one frame, or two links enter one spot (a track
        merge: a lineage allows divisions, not merges) — each message names the spots and frames.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"TrackMate file {path} does not exist")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise FormatError(f"{path}: not an XML file ({exc})") from None
    model = root.find("Model")
    if root.tag != "TrackMate" or model is None:
        raise FormatError(f"{path}: not a TrackMate file (no <TrackMate><Model>)")
    img = root.find("Settings/ImageData")
    space_unit, time_unit = model.get("spatialunits"), model.get("timeunits")
    cal = np.ones(3)
    nslices, nframes, interval = None, None, None
    if img is not None:
        try:
            cal = np.array([float(img.get("voxeldepth", 1)), float(img.get("pixelheight", 1)),
                            float(img.get("pixelwidth", 1))])
            nslices = int(img.get("nslices", 1))
            nframes = int(img.get("nframes", 0)) or None
            interval = float(img.get("timeinterval", 0)) or None
        except ValueError as exc:
            raise FormatError(f"{path}: <ImageData> holds a value that is not a number ({exc})") from None
        if not np.all(np.isfinite(cal) & (cal > 0)):
            raise FormatError(f"{path}: <ImageData> pixel sizes must be > 0, got voxeldepth/pixelheight/pixelwidth "
                              f"{cal.tolist()}")
    shown = None
    if model.find("FilteredTracks") is not None:
        shown = {t.get("TRACK_ID") for t in model.iter("TrackID")}
    spots: dict[str, tuple[int, np.ndarray, dict]] = {}
    hidden_spots: set[str] = set()
    for spot in model.iter("Spot"):
        sid = spot.get("ID")
        if spot.get("VISIBILITY", "1").strip() in ("0", "false"):
            hidden_spots.add(sid)  # kept only if a shown track links it (a spot filter changed after tracking)
        try:
            t = int(float(spot.get("FRAME")))
            zyx = np.array([float(spot.get("POSITION_Z", 0)), float(spot.get("POSITION_Y")),
                            float(spot.get("POSITION_X"))])
        except (TypeError, ValueError):
            raise FormatError(f"{path}: spot ID={sid!r} lacks a FRAME or a POSITION_X/POSITION_Y number") from None
        spots[sid] = (t, zyx, dict(spot.attrib))
    edges: list[tuple[str, str, str]] = []
    for track in model.iter("Track"):
        if shown is not None and track.get("TRACK_ID") not in shown:
            hidden_spots.update(e.get(k) for e in track.iter("Edge") for k in ("SPOT_SOURCE_ID", "SPOT_TARGET_ID"))
            continue
        name = track.get("name") or f"TRACK_ID={track.get('TRACK_ID')}"
        edges += [(e.get("SPOT_SOURCE_ID"), e.get("SPOT_TARGET_ID"), name) for e in track.iter("Edge")]
    in_shown = {s for e in edges for s in e[:2]}
    for sid in hidden_spots - in_shown:
        spots.pop(sid, None)
    ndim = 3 if (nslices or 1) > 1 else 2
    if nslices is None and len({float(v[1][0]) for v in spots.values()}) > 1:
        ndim = 3
    lin = Lineage(n_frames=nframes, ndim=ndim, source=str(path))
    g = lin.graph
    g.graph.update({"format": "trackmate", "spatial_unit": space_unit, "time_unit": time_unit})
    um = length_to_um(1.0, space_unit) if space_unit else None  # None for 'pixel'
    if um is not None:
        g.graph["voxel_size_um"] = tuple(float(v) for v in (cal * um if ndim == 3 else cal[1:] * um))
    sec = time_to_s(1.0, time_unit) if time_unit else None  # None for 'frame'
    if sec is not None and interval is not None:
        g.graph["frame_interval_s"] = interval * sec
    by_id = {}
    per_frame: dict[int, int] = {}
    for sid in sorted(spots, key=lambda s: (spots[s][0], _spot_order(s))):
        t, zyx, attrib = spots[sid]
        if attrib.get("DYNACELL_LABEL") is not None:
            label = int(attrib["DYNACELL_LABEL"])
        else:
            per_frame[t] = per_frame.get(t, 0) + 1
            label = per_frame[t]
        attrs = {}
        if attrib.get("DYNACELL_TRACK_ID") is not None:
            attrs["track_id"] = int(attrib["DYNACELL_TRACK_ID"])
        lin.add_node((t, label), zyx / cal, **attrs)
        by_id[sid] = (t, label)
    g.graph["node_labels"] = "mask ids" if len(per_frame) == 0 else "spot order"
    for s, d, name in edges:
        for sid in (s, d):
            if sid not in by_id:
                why = "is not in <AllSpots>"
                raise FormatError(f"{path}: track {name!r} links spot ID={s} -> ID={d}, but spot ID={sid} {why}")
        a, b = by_id[s], by_id[d]
        if a[0] == b[0]:
            raise FormatError(f"{path}: track {name!r} links spots ID={s} and ID={d}, both in frame {a[0]}; "
                              "links must join different frames")
        a, b = (a, b) if a[0] < b[0] else (b, a)
        if g.in_degree(b) and not g.has_edge(a, b):
            other = next(iter(g.predecessors(b)))
            target = d if by_id[d] == b else s
            raise FormatError(
                f"{path}: track {name!r} merges two tracks: spot ID={target} (frame {b[0]}) is linked from frames "
                f"{other[0]} and {a[0]}. dynacell's lineages allow divisions, not merges; split the track in "
                "TrackMate (or track without merging) and save again")
        lin.add_edge(a, b)
    return lin


def _spot_order(sid: str) -> tuple[int, str]:
    """Numeric spot ids in number order, then any others as text."""
    return (int(sid), "") if sid is not None and sid.lstrip("-").isdigit() else (1 << 62, str(sid))
