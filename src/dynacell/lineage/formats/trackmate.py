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
from dynacell.lineage.graph import Lineage

__all__ = ["write_trackmate", "read_trackmate"]

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


def read_trackmate(path: str | Path) -> Lineage:
    """Read a TrackMate XML file (as written by :func:`write_trackmate` or by TrackMate) into a lineage.

    Nodes are ``(FRAME, label)`` with the label from ``DYNACELL_LABEL`` when present, else
    numbered 1, 2, ... per frame in spot-id order. Centroids are converted back to pixels
    with the ``<ImageData>`` calibration.

    Parameters
    ----------
    path : str or Path
        TrackMate ``.xml`` file.

    Returns
    -------
    Lineage
        ``ndim`` 3 when ``nslices > 1``, else 2.

    Raises
    ------
    InvalidInputError
        If the file does not exist.
    FormatError
        If it is not TrackMate XML, or an edge names a spot that does not exist.
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
    cal = np.ones(3)
    nslices, nframes = 1, None
    if img is not None:
        cal = np.array([float(img.get("voxeldepth", 1)), float(img.get("pixelheight", 1)),
                        float(img.get("pixelwidth", 1))])
        nslices = int(img.get("nslices", 1))
        nframes = int(img.get("nframes", 0)) or None
    lin = Lineage(n_frames=nframes, ndim=3 if nslices > 1 else 2, source=str(path))
    by_id = {}
    per_frame: dict[int, int] = {}
    for spot in model.iter("Spot"):
        t = int(float(spot.get("FRAME", 0)))
        if spot.get("DYNACELL_LABEL") is not None:
            label = int(spot.get("DYNACELL_LABEL"))
        else:
            per_frame[t] = per_frame.get(t, 0) + 1
            label = per_frame[t]
        zyx = np.array([float(spot.get("POSITION_Z", 0)), float(spot.get("POSITION_Y", 0)),
                        float(spot.get("POSITION_X", 0))]) / cal
        attrs = {}
        if spot.get("DYNACELL_TRACK_ID") is not None:
            attrs["track_id"] = int(spot.get("DYNACELL_TRACK_ID"))
        lin.add_node((t, label), zyx, **attrs)
        by_id[spot.get("ID")] = (t, label)
    for edge in model.iter("Edge"):
        s, d = edge.get("SPOT_SOURCE_ID"), edge.get("SPOT_TARGET_ID")
        if s not in by_id or d not in by_id:
            raise FormatError(f"{path}: edge {s} -> {d} names a spot that is not in <AllSpots>")
        a, b = by_id[s], by_id[d]
        lin.add_edge(*((a, b) if a[0] < b[0] else (b, a)))
    return lin
