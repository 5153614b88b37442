"""TrackMate XML export: round trip, physical units, and an independent parser (geff's TrackMate converter)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from dynacell.errors import FormatError, InvalidInputError, OutputExistsError
from dynacell.lineage.formats.trackmate import read_trackmate, write_trackmate
from dynacell.lineage.graph import Lineage


def _division_lineage(ndim: int = 2) -> Lineage:
    lin = Lineage(n_frames=4, ndim=ndim)
    pos = {(0, 1): (2.0, 10.0, 20.0), (1, 1): (2.0, 11.0, 21.0), (2, 2): (3.0, 9.0, 25.0),
           (2, 5): (1.0, 14.0, 18.0), (3, 2): (3.0, 8.0, 26.0), (0, 7): (0.0, 40.0, 40.0)}
    for n, c in pos.items():
        lin.add_node(n, c if ndim == 3 else c[1:])
    for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 5)), ((2, 2), (3, 2))]:
        lin.add_edge(*e)
    return lin


def test_round_trip_2d_in_um(tmp_path):
    lin = _division_lineage()
    p = write_trackmate(lin, tmp_path / "tm.xml", voxel_size_um=(0.5, 0.25), frame_interval_s=600)
    back = read_trackmate(p)
    assert set(back.graph.nodes) == set(lin.graph.nodes)
    assert set(back.graph.edges) == set(lin.graph.edges)
    for n in lin.graph.nodes:
        np.testing.assert_allclose(back.centroid(n), lin.centroid(n))
    root = ET.parse(p).getroot()
    model = root.find("Model")
    assert model.get("spatialunits") == "micrometer" and model.get("timeunits") == "second"
    spot = root.find(".//Spot[@DYNACELL_LABEL='5']")
    assert float(spot.get("POSITION_X")) == pytest.approx(18.0 * 0.25)
    assert float(spot.get("POSITION_Y")) == pytest.approx(14.0 * 0.5)
    assert float(spot.get("POSITION_T")) == pytest.approx(1200.0)
    # one TrackMate track per tree with edges; the lone node (0, 7) is a spot but no track
    tracks = root.findall(".//AllTracks/Track")
    assert len(tracks) == 1 and tracks[0].get("NUMBER_SPLITS") == "1" and len(tracks[0].findall("Edge")) == 4
    assert len(root.findall(".//AllSpots//Spot")) == 6


def test_round_trip_3d_pixels(tmp_path):
    lin = _division_lineage(ndim=3)
    p = write_trackmate(lin, tmp_path / "tm.xml", image_shape=(4, 5, 64, 64))
    root = ET.parse(p).getroot()
    assert root.find("Model").get("spatialunits") == "pixel"
    assert root.find("Settings/ImageData").get("nslices") == "5"
    back = read_trackmate(p)
    assert back.ndim == 3
    np.testing.assert_allclose(back.centroid((2, 5)), [1.0, 14.0, 18.0])


def test_independent_parser_geff_converter(tmp_path):
    """geff's TrackMate-XML converter (written for files saved by Fiji) reads our file without a warning."""
    geff_convert = pytest.importorskip("geff.convert")
    import geff

    lin = _division_lineage()
    p = write_trackmate(lin, tmp_path / "tm.xml", voxel_size_um=(0.5, 0.5), frame_interval_s=60,
                        image_path=tmp_path / "movie.tif")
    geff_convert.from_trackmate_xml_to_geff(p, tmp_path / "tm.geff")
    g, _meta = geff.read(tmp_path / "tm.geff", backend="networkx")
    assert g.number_of_nodes() == 6 and g.number_of_edges() == 4
    frames = sorted(int(d["FRAME"]) for _, d in g.nodes(data=True))
    assert frames == sorted(n[0] for n in lin.graph.nodes)


def test_errors(tmp_path):
    lin = _division_lineage()
    p = write_trackmate(lin, tmp_path / "tm.xml")
    with pytest.raises(OutputExistsError):
        write_trackmate(lin, p)
    write_trackmate(lin, p, overwrite=True)
    with pytest.raises(InvalidInputError, match="voxel size"):
        write_trackmate(lin, tmp_path / "b.xml", voxel_size_um=(0.5,))
    no_centroid = Lineage(n_frames=1)
    no_centroid.add_node((0, 1))
    with pytest.raises(InvalidInputError, match="no centroid"):
        write_trackmate(no_centroid, tmp_path / "c.xml")
    assert not (tmp_path / "c.xml").exists() and not list(tmp_path.glob(".*tmp"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<Other/>")
    with pytest.raises(FormatError, match="not a TrackMate"):
        read_trackmate(bad)


def test_cli_lineage_trackmate(tmp_path):
    from typer.testing import CliRunner

    from dynacell.cli.main import app
    from dynacell.lineage.formats import write_geff

    lin = _division_lineage()
    write_geff(lin, tmp_path / "l.geff")
    out = tmp_path / "l.xml"
    res = CliRunner().invoke(app, ["lineage", str(tmp_path / "l.geff"), "--trackmate", str(out),
                                   "--voxel-size-um", "0.5,0.5", "--frame-interval-s", "60"])
    assert res.exit_code == 0, res.output
    back = read_trackmate(out)
    assert set(back.graph.edges) == set(lin.graph.edges)
    assert ET.parse(out).getroot().find("Model").get("timeunits") == "second"
    res = CliRunner().invoke(app, ["lineage", str(tmp_path / "l.geff"), "--trackmate", str(out)])
    assert res.exit_code != 0 and "--overwrite" in str(res.exception)
