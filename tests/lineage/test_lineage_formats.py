"""Lineage builders on tiny files written to tmp_path: CTC, BlastoSPIM JSON, AceTree, GEFF; and bad input."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import tifffile

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError
from dynacell.lineage import (
    Lineage,
    detect_format,
    read_geff,
    read_lineage,
    to_networkx,
    write_geff,
)


# ----------------------------------------------------------------------------- CTC
def write_ctc(folder: Path, lines: list[str], masks: dict[int, np.ndarray], name: str = "man_track") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    prefix = "man_track" if name == "man_track" else "mask"
    for t, m in masks.items():
        tifffile.imwrite(folder / f"{prefix}{t:03d}.tif", m)
    return folder


def disk_frame(shape, centres: dict[int, tuple[int, int]]) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.uint16)
    for label, (y, x) in centres.items():
        out[(yy - y) ** 2 + (xx - x) ** 2 <= 4] = label
    return out


@pytest.fixture
def tiny_ctc(tmp_path):
    """Track 1 frames 0-1 divides into 2 and 3 (frames 2-3); track 4 frames 0-3; masks for frames 0, 1, 3.

        (0,1) ─ (1,1) ─┬─ (2,2) ─ (3,2)
                       └─ (2,3) ─ (3,3)
        (0,4) ─ (1,4) ─ (2,4) ─ (3,4)
    """
    lines = ["1 0 1 0", "2 2 3 1", "3 2 3 1", "4 0 3 0"]
    masks = {
        0: disk_frame((40, 50), {1: (10, 10), 4: (30, 40)}),
        1: disk_frame((40, 50), {1: (11, 12), 4: (30, 41)}),
        3: disk_frame((40, 50), {2: (5, 5), 3: (20, 20), 4: (31, 42)}),
    }
    return write_ctc(tmp_path / "01_GT" / "TRA", lines, masks)


def test_ctc_nodes_edges_centroids(tiny_ctc):
    lin = read_lineage(tiny_ctc)
    assert detect_format(tiny_ctc) == "ctc"
    assert detect_format(tiny_ctc / "man_track.txt") == "ctc"
    assert len(lin) == 2 + 2 + 2 + 4
    assert lin.divisions() == [(1, 1)]
    assert lin.children((1, 1)) == [(2, 2), (2, 3)]
    assert lin.children((0, 4)) == [(1, 4)]
    assert lin.n_frames == 4 and lin.ndim == 2
    assert lin.graph.nodes[(2, 3)]["track_id"] == 3
    np.testing.assert_allclose(lin.centroid((1, 1)), [0.0, 11.0, 12.0])
    np.testing.assert_allclose(lin.centroid((3, 4)), [0.0, 31.0, 42.0])
    # frame 2 has no mask file: centroids stay NaN
    assert math.isnan(lin.graph.nodes[(2, 2)]["y"])
    fast = read_lineage(tiny_ctc, masks=False)
    assert math.isnan(fast.graph.nodes[(1, 1)]["y"])
    assert fast.divisions() == lin.divisions()


def test_ctc_masks_disagreeing_with_track_file_are_reported(tmp_path, caplog):
    """Mask of frame 0 holds id 9 (no such track) and lacks track 2's nucleus::

        track file: (0,1)  (0,2)        mask 0: ids 1, 9
    """
    folder = write_ctc(tmp_path / "TRA", ["1 0 0 0", "2 0 0 0"], {0: disk_frame((20, 20), {1: (5, 5), 9: (14, 14)})})
    with caplog.at_level(logging.WARNING, logger="dynacell.lineage"):
        lin = read_lineage(folder)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "have no track in the track file (first: frame 0, ids [9])" in text
    assert "absent from their frame's mask (first: frame 0, ids [2])" in text
    assert math.isnan(lin.graph.nodes[(0, 2)]["y"])


def test_ctc_3d_masks_give_ndim_3(tmp_path):
    vol = np.zeros((4, 10, 10), np.uint16)
    vol[1:3, 2:4, 5:7] = 7
    folder = write_ctc(tmp_path / "RES", ["7 0 0 0"], {0: vol}, name="res_track")
    lin = read_lineage(folder / "res_track.txt")
    assert lin.ndim == 3
    np.testing.assert_allclose(lin.centroid((0, 7)), [1.5, 2.5, 5.5])


@pytest.mark.parametrize(
    "lines, error, match",
    [
        (["1 0 3"], FormatError, "line 1"),
        (["1 0 x 0"], FormatError, "four integers"),
        (["1 0 3 0", "2 3 5 1"], InvalidInputError, "line 2.*must begin after its parent ends"),  # backward edge
        (["1 0 3 0", "2 4 5 9"], InvalidInputError, "parent 9"),
        (["1 0 3 0", "1 4 5 0"], InvalidInputError, "listed twice"),
        (["1 5 3 0"], InvalidInputError, "after it ends"),
        (["0 0 3 0"], InvalidInputError, "label must be > 0"),
    ],
)
def test_ctc_bad_track_files(tmp_path, lines, error, match):
    folder = write_ctc(tmp_path / "TRA", lines, {})
    with pytest.raises(error, match=match) as info:
        read_lineage(folder)
    assert "man_track.txt" in str(info.value)


def test_ctc_mask_not_integer(tmp_path):
    folder = write_ctc(tmp_path / "TRA", ["1 0 0 0"], {0: np.ones((5, 5), np.float32)})
    with pytest.raises(InvalidInputError, match="frame 0"):
        read_lineage(folder)


def test_ctc_truncated_mask(tmp_path):
    folder = write_ctc(tmp_path / "TRA", ["1 0 0 0"], {})
    (folder / "man_track000.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(FormatError, match="man_track000.tif"):
        read_lineage(folder)


# ----------------------------------------------------------------------------- BlastoSPIM
def blasto_doc(wrap: bool = True) -> dict:
    """Two nuclei over frames 6-8; nucleus 1 of frame 7 divides into 1 and 3::

        006_001 ─ 007_001 ─┬─ 008_001
                           └─ 008_003
        006_002 ─ 007_002 ─ 008_002
    """
    nodes = [{"Name": n, "Centroid": [10.0, 20.0, 3.0]} for n in
             ["006_001", "006_002", "007_001", "007_002", "008_001", "008_002", "008_003"]]
    edges = [{"EndNodes": e} for e in [["006_001", "007_001"], ["006_002", "007_002"], ["007_001", "008_001"],
                                       ["007_001", "008_003"], ["007_002", "008_002"]]]
    g = {"Nodes": nodes, "Edges": edges}
    return {"G_based": g} if wrap else g


@pytest.mark.parametrize("wrap", [True, False])
def test_blastospim_graph(tmp_path, wrap):
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps(blasto_doc(wrap)))
    assert detect_format(tmp_path) == "blastospim"
    lin = read_lineage(tmp_path)
    assert lin.ndim == 3 and lin.first_frame == 6 and lin.n_frames == 9
    assert lin.divisions() == [(7, 1)]
    assert len(lin.nodes_at(8)) == 3
    # MATLAB regionprops Centroid is [x, y, z]
    np.testing.assert_allclose(lin.centroid((6, 1)), [3.0, 20.0, 10.0])
    assert lin.graph.nodes[(8, 3)]["name"] == "008_003"


def test_blastospim_columnar_tables(tmp_path):
    doc = blasto_doc(wrap=False)
    doc["Nodes"] = {"Name": [n["Name"] for n in doc["Nodes"]]}
    doc["Edges"] = {"EndNodes": [e["EndNodes"] for e in doc["Edges"]]}
    f = tmp_path / "CombinedGraph_6_8_graph.json"
    f.write_text(json.dumps(doc))
    lin = read_lineage(f)
    assert len(lin) == 7 and lin.divisions() == [(7, 1)]
    assert math.isnan(lin.graph.nodes[(6, 1)]["y"])


def test_blastospim_truncated_json(tmp_path):
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps(blasto_doc())[:150])
    with pytest.raises(FormatError, match=r"LineageGraph.json: malformed or truncated JSON at line 1"):
        read_lineage(f)


def test_blastospim_unknown_node_name(tmp_path):
    doc = blasto_doc(wrap=False)
    doc["Nodes"][3]["Name"] = "nucleus-7"
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"node 3 has name 'nucleus-7'; expected 'TTT_LLL'"):
        read_lineage(f)


def test_blastospim_backward_edge(tmp_path):
    doc = blasto_doc(wrap=False)
    doc["Edges"][2]["EndNodes"] = ["008_001", "007_001"]
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"edge 2 goes backward in time: 008_001 \(frame 8\) -> 007_001"):
        read_lineage(f)


def test_blastospim_edge_to_missing_node(tmp_path):
    doc = blasto_doc(wrap=False)
    doc["Edges"][0]["EndNodes"] = ["006_001", "007_009"]
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError, match="'007_009', which is not in 'Nodes'"):
        read_lineage(f)


def test_blastospim_not_a_graph(tmp_path):
    f = tmp_path / "LineageGraph.json"
    f.write_text(json.dumps({"A": 1, "B": 2}))
    with pytest.raises(FormatError, match="'Nodes' and 'Edges'"):
        read_lineage(f)


# ----------------------------------------------------------------------------- AceTree
def acetree_line(i, valid, pred, s1, s2, x, y, z, d, name):
    return f"{i}, {valid}, {pred}, {s1}, {s2}, {x}, {y}, {z}, {d}, {name}, 0, 0, 0, 0, , 0, 0, 0, 0, 0, "


@pytest.fixture
def tiny_acetree(tmp_path):
    """Three time points; AB divides into ABa and ABp at t002 → t003; P1 dies at t002 (CellDeaths.csv).

        t001: AB(1) ─ t002: AB(2) ─┬─ t003: ABa(1)
                                   └─ t003: ABp(3)
        t001: P1(2) ─ t002: P1(1)†
        row 2 of t003 is invalid (valid = 0) and is skipped
    """
    root = tmp_path / "worm"
    nf = root / "nuclei_files"
    nf.mkdir(parents=True)
    (nf / "t001-nuclei").write_text("\n".join([
        acetree_line(1, 1, -1, 2, -1, 10, 20, 5.0, 8, "AB"),
        acetree_line(2, 1, -1, 1, -1, 30, 40, 6.0, 8, "P1"),
    ]) + "\n")
    (nf / "t002-nuclei").write_text("\n".join([
        acetree_line(1, 1, 2, -1, -1, 31, 41, 6.0, 8, "P1"),
        acetree_line(2, 1, 1, 1, 3, 11, 21, 5.0, 9, "AB"),
    ]) + "\n")
    (nf / "t003-nuclei").write_text("\n".join([
        acetree_line(1, 1, 2, 5, -1, 12, 22, 5.5, 7, "ABa"),
        acetree_line(2, 0, -1, -1, -1, 0, 0, 0.0, 0, ""),
        acetree_line(3, 1, 2, 7, 8, 14, 24, 4.5, 7, "ABp"),
    ]) + "\n")
    (root / "CellDeaths.csv").write_text("P1\n")
    return root


def test_acetree_lineage(tiny_acetree):
    assert detect_format(tiny_acetree) == "acetree"
    lin = read_lineage(tiny_acetree)
    assert lin.ndim == 3 and lin.n_frames == 3
    assert len(lin) == 6  # the invalid row is not a node
    assert lin.divisions() == [(1, 2)]
    assert lin.children((1, 2)) == [(2, 1), (2, 3)]
    assert lin.explicit_deaths() == [(1, 1)]
    assert lin.graph.nodes[(2, 3)]["name"] == "ABp"
    np.testing.assert_allclose(lin.centroid((0, 1)), [5.0, 20.0, 10.0])
    assert lin.graph.nodes[(0, 1)]["diameter_px"] == 8
    # successors of the last time point point beyond the movie: dropped, not an error
    assert lin.children((2, 3)) == []
    assert lin.graph.graph["scale_zyx"] == (1.0, 1.0, 1.0)
    no_deaths = read_lineage(tiny_acetree / "nuclei_files", deaths=False)
    assert no_deaths.explicit_deaths() == []


def test_acetree_successor_to_invalid_row(tiny_acetree):
    f = tiny_acetree / "nuclei_files" / "t002-nuclei"
    f.write_text(f.read_text().replace("2, 1, 1, 1, 3,", "2, 1, 1, 2, 3,"))
    with pytest.raises(InvalidInputError, match=r"t002-nuclei, nucleus 2 \(AB\): successor 2"):
        read_lineage(tiny_acetree)


def test_acetree_unknown_dying_cell(tiny_acetree):
    (tiny_acetree / "CellDeaths.csv").write_text("P1\nMSxyz\n")
    with pytest.raises(InvalidInputError, match="MSxyz"):
        read_lineage(tiny_acetree)


def test_acetree_malformed_file(tiny_acetree):
    (tiny_acetree / "nuclei_files" / "t002-nuclei").write_text("1, 1, two, -1, -1, 3, 4, 5, 6, X\n")
    with pytest.raises(FormatError, match="t002-nuclei"):
        read_lineage(tiny_acetree)


# ----------------------------------------------------------------------------- GEFF, networkx, detection
def test_geff_round_trip(tiny_acetree, tmp_path):
    lin = read_lineage(tiny_acetree)
    out = write_geff(lin, tmp_path / "worm.geff")
    assert detect_format(out) == "geff"
    back = read_geff(out)
    assert set(back.graph.nodes) == set(lin.graph.nodes)
    assert set(back.graph.edges) == set(lin.graph.edges)
    assert back.n_frames == lin.n_frames and back.ndim == 3
    for n, d in lin.graph.nodes(data=True):
        b = back.graph.nodes[n]
        assert b["track_id"] == d["track_id"]
        assert b["death"] == d["death"]
        assert b["name"] == d["name"]
        np.testing.assert_allclose([b["z"], b["y"], b["x"]], [d["z"], d["y"], d["x"]])
    assert back.explicit_deaths() == [(1, 1)]
    assert back.graph.graph["death_annotations"]
    with pytest.raises(OutputExistsError):
        write_geff(lin, out)
    write_geff(lin, out, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".worm.geff")]  # no temporary left


def test_geff_2d_with_nan_centroids(tiny_ctc, tmp_path):
    lin = read_lineage(tiny_ctc)
    back = read_geff(write_geff(lin, tmp_path / "ctc.geff"))
    assert back.ndim == 2 and back.divisions() == [(1, 1)]
    assert math.isnan(back.graph.nodes[(2, 2)]["y"])
    assert back.graph.nodes[(1, 1)]["y"] == pytest.approx(11.0)


def test_read_geff_rejects_other_stores(tmp_path):
    import zarr

    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(FormatError, match="not a GEFF store"):
        read_geff(tmp_path / "plain.zarr")


def test_read_geff_backward_edge_names_the_store(tmp_path):
    """A GEFF written by another tool with an edge back in time: the error names the store and nodes."""
    import geff
    import networkx as nx

    g = nx.DiGraph()
    g.add_node(0, t=3, label=1, y=1.0, x=1.0)
    g.add_node(1, t=2, label=1, y=1.0, x=1.0)
    g.add_edge(0, 1)
    geff.write(g, str(tmp_path / "back.geff"), axis_names=["t", "y", "x"], axis_types=["time", "space", "space"])
    with pytest.raises(InvalidInputError, match=r"back\.geff: edge \(3, 1\) -> \(2, 1\) goes backward"):
        read_geff(tmp_path / "back.geff")


def test_to_networkx_is_a_copy(tiny_ctc):
    lin = read_lineage(tiny_ctc, masks=False)
    g = to_networkx(lin)
    assert set(g.edges) == set(lin.graph.edges)
    g.remove_node((0, 1))
    assert (0, 1) in lin


def test_detection_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        read_lineage(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="cannot tell the lineage format"):
        read_lineage(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="unknown lineage format"):
        read_lineage(tmp_path / "empty", format="mamut")


def test_lineage_type_is_the_shared_one(tiny_ctc):
    assert isinstance(read_lineage(tiny_ctc, masks=False), Lineage)
