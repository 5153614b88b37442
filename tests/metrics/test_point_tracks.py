"""Point tracks (TrackMate, GEFF of another tracker: positions, no masks) scored against CTC ground truth."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from _helpers import _ctc_folder

from dynacell.errors import InvalidInputError
from dynacell.lineage import read_lineage
from dynacell.lineage.formats.trackmate import write_trackmate
from dynacell.metrics.tracking import evaluate_point_tracks, evaluate_tracks, is_ctc_result


def _as_fiji(lin, path):
    """The lineage as a TrackMate file without dynacell's attributes (spots numbered per frame)."""
    write_trackmate(lin, path)
    tree = ET.parse(path)
    for spot in tree.getroot().iter("Spot"):
        del spot.attrib["DYNACELL_LABEL"], spot.attrib["DYNACELL_TRACK_ID"]
    tree.write(path, encoding="UTF-8", xml_declaration=True)
    return path


def test_the_reference_as_points_scores_like_the_reference_itself(tmp_path):
    _, tra = _ctc_folder(tmp_path)
    points = read_lineage(_as_fiji(read_lineage(tra, masks=True), tmp_path / "gt.xml"))
    res = evaluate_point_tracks(points, tra.parent, progress=False)
    ref = evaluate_tracks(tra.parent, tra.parent, progress=False)
    for k in ("TRA", "DET", "LNK", "division_f1"):
        assert res[k] == ref[k] == 1.0
    assert res["matching"].startswith("points")
    assert not is_ctc_result(tmp_path / "gt.xml") and is_ctc_result(tra.parent)


def test_point_errors_are_counted(tmp_path):
    _, tra = _ctc_folder(tmp_path)
    lin = read_lineage(tra, masks=True)
    lin.graph.remove_edge((5, 1), (6, 2))  # the division loses a daughter
    lin.add_node((3, 9), (45.0, 5.0))  # a point on background
    lin.add_node((4, 9), (13.0, 13.0))  # a second point in nucleus 1 at frame 4, off its centre
    res = evaluate_point_tracks(read_lineage(_as_fiji(lin, tmp_path / "err.xml")), tra.parent, progress=False)
    assert res["fp_nodes"] == 2 and res["fn_nodes"] == 0 and res["fn_edges"] == 1
    assert res["tp_divisions"] == 0 and res["fn_divisions"] == 1 and res["TRA"] < 1.0


def test_evaluate_tracks_command_takes_a_trackmate_file(tmp_path, run_cli):
    _, tra = _ctc_folder(tmp_path)
    p = _as_fiji(read_lineage(tra, masks=True), tmp_path / "gt.xml")
    code, out, err = run_cli("evaluate-tracks", str(p), "--gt", str(tra.parent))
    assert code == 0, err
    res = json.loads(out)
    assert res["TRA"] == 1.0 and res["division_f1"] == 1.0 and res["matching"].startswith("points")
    code, _, err = run_cli("evaluate-tracks", str(tmp_path / "nothing.xml"), "--gt", str(tra.parent))
    assert code == 2 and "does not exist" in err


def test_points_far_outside_the_reference_frames_are_refused(tmp_path):
    from dynacell.lineage.graph import Lineage

    _, tra = _ctc_folder(tmp_path)
    late = Lineage(n_frames=30)
    late.add_node((20, 1), (10.0, 10.0))
    with pytest.raises(InvalidInputError, match="no reference frame"):
        evaluate_point_tracks(late, tra.parent, progress=False)


@pytest.mark.data
def test_the_peer_result_as_points_scores_close_to_its_masks(ctc, tmp_path):
    """bacteria-phc 01_RES (the peer tracker's CTC result) saved as Fiji-style TrackMate points: the point matching
    loses only the few bent rods whose centre lies outside their reference mask."""
    d = ctc / "bacteria-phc"
    masks = evaluate_tracks(d / "01_RES", d / "01_GT", progress=False)
    points = evaluate_point_tracks(read_lineage(_as_fiji(read_lineage(d / "01_RES", masks=True), tmp_path / "p.xml")),
                                   d / "01_GT", progress=False)
    assert masks["TRA"] == pytest.approx(0.9977, abs=5e-4)
    assert abs(points["TRA"] - masks["TRA"]) < 0.002 and abs(points["division_f1"] - masks["division_f1"]) < 0.01
    assert points["fn_nodes"] <= 5
