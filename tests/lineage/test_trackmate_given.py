"""A TrackMate file saved by Fiji given to ``dynacell run --lineage``: each spot matched to the mask under it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from _helpers import FixedClassifier, synthetic_movie

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io.scan import scan_labels
from dynacell.lineage.checks import check_lineage, match_spots_to_masks
from dynacell.lineage.formats import read_lineage
from dynacell.lineage.formats.trackmate import write_trackmate
from dynacell.lineage.graph import Lineage
from dynacell.pipeline import run

# synthetic_movie: nucleus A at (20, 20); B at (44, 44) in frames 0-2, then daughters at (44, 34) and (44, 54)
_CELLS = {0: [(20, 20), (44, 44)], 1: [(20, 20), (44, 44)], 2: [(20, 20), (44, 44)],
          3: [(20, 20), (44, 34), (44, 54)], 4: [(20, 20), (44, 34), (44, 54)]}


def _fiji_file(path, shift=(0.0, 0.0)):
    """The true lineage as TrackMate spots numbered per frame (B before A), written as Fiji would save it."""
    lin = Lineage(n_frames=5)
    for t, cells in _CELLS.items():
        for k, (y, x) in enumerate(reversed(cells), start=1):
            lin.add_node((t, k), (y + shift[0], x + shift[1]))
    n = {t: {c: (t, k) for k, c in enumerate(reversed(cells), start=1)} for t, cells in _CELLS.items()}
    for t in range(4):
        lin.add_edge(n[t][(20, 20)], n[t + 1][(20, 20)])
    lin.add_edge(n[0][(44, 44)], n[1][(44, 44)])
    lin.add_edge(n[1][(44, 44)], n[2][(44, 44)])
    lin.add_edge(n[2][(44, 44)], n[3][(44, 34)])
    lin.add_edge(n[2][(44, 44)], n[3][(44, 54)])
    lin.add_edge(n[3][(44, 34)], n[4][(44, 34)])
    lin.add_edge(n[3][(44, 54)], n[4][(44, 54)])
    write_trackmate(lin, path, voxel_size_um=(0.5, 0.5), frame_interval_s=60.0)
    tree = ET.parse(path)
    for spot in tree.getroot().iter("Spot"):  # Fiji's files carry no dynacell attributes
        del spot.attrib["DYNACELL_LABEL"], spot.attrib["DYNACELL_TRACK_ID"]
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def test_spots_become_the_mask_ids_under_them(tmp_path):
    images, labels = synthetic_movie(T=5)
    lin = read_lineage(_fiji_file(tmp_path / "tm.xml"))
    assert lin.graph.graph["node_labels"] == "spot order"
    ids = scan_labels(images, labels, progress=False)
    checked = check_lineage(lin, ids, "tm.xml", labels)
    frames = np.asarray(labels.data)
    want = {(t, int(frames[t][y, x])) for t, cells in _CELLS.items() for y, x in cells}
    assert set(checked.graph.nodes) == want
    assert checked.graph.graph["check"]["spots_matched_to_mask_ids"] == len(want)
    (mother,) = checked.divisions()
    assert mother == (2, int(frames[2][44, 44]))
    assert {c for c in checked.graph.successors(mother)} == {(3, int(frames[3][44, 34])), (3, int(frames[3][44, 54]))}


def test_run_with_a_fiji_trackmate_lineage(tmp_path):
    images, labels = synthetic_movie(T=5)
    res = run(images, labels=labels, lineage=_fiji_file(tmp_path / "tm.xml"), model=FixedClassifier(),
              out=tmp_path / "o", progress=False, video=False)
    assert len(res.lineage.divisions()) == 1
    assert "12 TrackMate spot(s) matched to the mask label under them" in res.info["inputs"]["lineage"]


def test_spots_near_a_nucleus_take_it_and_far_ones_are_named(tmp_path):
    images, labels = synthetic_movie(T=5)
    ids = scan_labels(images, labels, progress=False)
    frames = np.asarray(labels.data)
    want = {(t, int(frames[t][y, x])) for t, cells in _CELLS.items() for y, x in cells}
    near = read_lineage(_fiji_file(tmp_path / "near.xml", shift=(0.0, 7.0)))  # 2 px outside each nucleus (r = 5)
    matched = match_spots_to_masks(near, labels, "near.xml")
    assert set(matched.graph.nodes) == want and matched.graph.graph["spots_matched_to_nearest_nucleus"] == 12
    off = read_lineage(_fiji_file(tmp_path / "off.xml", shift=(0.0, -14.0)))  # 9 px outside: farther than r
    with pytest.raises(InvalidInputError, match=r"10 spot\(s\) fall on background of the masks, far from any "
                                                r"nucleus, first frame 0 at y=44.0, x=30.0 px"):
        check_lineage(off, ids, "off.xml", labels)
    far = read_lineage(_fiji_file(tmp_path / "far.xml", shift=(0.0, 30.0)))
    with pytest.raises(InvalidInputError, match="outside the label images"):
        match_spots_to_masks(far, labels, "far.xml")
    with pytest.raises(InvalidInputError, match="label images are needed"):
        check_lineage(off, ids, "off.xml", None)


def test_extract_and_evaluate_match_spots_too(tmp_path, run_cli):
    """``dynacell extract --lineage`` pairs the spots with the masks as ``run`` does (states from the division)."""
    import tifffile

    images, labels = synthetic_movie(T=5)
    tifffile.imwrite(tmp_path / "img.tif", np.asarray(images.data), metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "lab.tif", np.asarray(labels.data), metadata={"axes": "TYX"})
    fiji = _fiji_file(tmp_path / "tm.xml")
    matched = match_spots_to_masks(read_lineage(fiji), labels, "tm.xml")
    ours = write_trackmate(matched, tmp_path / "ours.xml")  # node names = mask ids (DYNACELL_LABEL)
    states = {}
    for name, lin in (("fiji", fiji), ("ours", ours)):
        code, _, err = run_cli("extract", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "lab.tif"),
                               "--lineage", str(lin), "-o", str(tmp_path / f"{name}.npz"), "--size", "16")
        assert code == 0, err
        with np.load(tmp_path / f"{name}.npz", allow_pickle=False) as z:
            states[name] = sorted(zip(z["meta/t"].tolist(), z["meta/label"].tolist(), z["meta/state"].tolist()))
    assert states["fiji"] == states["ours"]
    assert sum(s == "mitotic" for _, _, s in states["fiji"]) == 1  # the mother's last frame


def test_a_geff_in_micrometres_is_matched_with_the_voxel_size(tmp_path):
    geff_convert = pytest.importorskip("geff.convert")
    import warnings

    from dynacell.io.movie import Movie

    images, labels = synthetic_movie(T=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # geff's notes on TrackMate's unit names
        geff_convert.from_trackmate_xml_to_geff(_fiji_file(tmp_path / "tm.xml"), tmp_path / "tm.geff")
        lin = read_lineage(tmp_path / "tm.geff")
    ids = scan_labels(images, labels, progress=False)
    with pytest.raises(InvalidInputError, match="positions are in µm but the voxel size of the masks is unknown"):
        check_lineage(lin, ids, "tm.geff", labels)
    calibrated = Movie(np.asarray(labels.data), "TYX", voxel_size_um=(0.5, 0.5), source="masks")
    checked = check_lineage(lin, ids, "tm.geff", calibrated)
    frames = np.asarray(labels.data)
    assert set(checked.graph.nodes) == {(t, int(frames[t][y, x])) for t, cells in _CELLS.items() for y, x in cells}
    assert len(checked.divisions()) == 1


def test_a_geff_with_times_in_seconds_and_no_frames_is_refused(tmp_path):
    import geff
    import networkx as nx

    g = nx.DiGraph()
    for i, t in enumerate((0.0, 60.0, 120.0)):
        g.add_node(i, t=t, y=10.0, x=10.0 + i)
    g.add_edges_from([(0, 1), (1, 2)])
    geff.write(g, str(tmp_path / "s.geff"), axis_names=["t", "y", "x"], axis_types=["time", "space", "space"],
               axis_units=["second", "pixel", "pixel"])
    with pytest.raises(FormatError, match="is in second, not in frames"):
        read_lineage(tmp_path / "s.geff")


def test_a_spot_without_position_is_named(tmp_path):
    images, labels = synthetic_movie(T=2)
    lin = Lineage(n_frames=2)
    lin.add_node((0, 1), (20.0, 20.0))
    lin.add_node((1, 1))  # no centroid
    lin.graph.graph["node_labels"] = "spot order"
    with pytest.raises(InvalidInputError, match=r"node \(1, 1\) has no position"):
        match_spots_to_masks(lin, labels, "pts")


def test_a_geff_whose_time_axis_steps_by_one_is_read_as_frames(tmp_path):
    """Some tools label frame numbers 'second': a time axis stepping 0, 1, 2 is frames, as before."""
    import geff
    import networkx as nx

    g = nx.DiGraph()
    for i in range(3):
        g.add_node(i, t=float(i), y=10.0, x=10.0 + i, seg_id=1)
    g.add_edges_from([(0, 1), (1, 2)])
    geff.write(g, str(tmp_path / "f.geff"), axis_names=["t", "y", "x"], axis_types=["time", "space", "space"],
               axis_units=["second", "pixel", "pixel"])
    lin = read_lineage(tmp_path / "f.geff")
    assert sorted(lin.graph.nodes) == [(0, 1), (1, 1), (2, 1)] and "node_labels" not in lin.graph.graph
