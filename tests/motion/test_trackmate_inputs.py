"""Tracks from Fiji's TrackMate: its XML file and its exported spot table, with their calibration.

The fixtures below are written in TrackMate's own layouts (TrackMate 7: ``<Model spatialunits
timeunits>``, ``<AllSpots>``/``<SpotsInFrame>``/``<Spot>``, ``<AllTracks>``/``<Track>``/``<Edge>``,
``<FilteredTracks>``, ``<Settings><ImageData>``; the CSV with its three rows of names and units
under the header), with what real TrackMate sessions hold and dynacell's own export never writes:
spot ids out of order, a spot removed by a spot filter, a track hidden by a track filter, a spot
in no track and a gap-closing link.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import FormatError, InvalidInputError
from dynacell.lineage import detect_format, read_lineage
from dynacell.motion.tracks import read_tracks, tracks_from_dataframe

PX_UM, DT_S = 0.5, 30.0  # the fixtures' calibration: 0.5 µm pixels, one frame every 0.5 min


_FEATURES = {
    "SpotFeatures": [("QUALITY", "QUALITY", False), ("POSITION_X", "POSITION", False),
                     ("POSITION_Y", "POSITION", False), ("POSITION_Z", "POSITION", False),
                     ("POSITION_T", "TIME", False), ("FRAME", "NONE", True), ("RADIUS", "LENGTH", False),
                     ("VISIBILITY", "NONE", True)],
    "EdgeFeatures": [("SPOT_SOURCE_ID", "NONE", True), ("SPOT_TARGET_ID", "NONE", True), ("LINK_COST", "COST", False)],
    "TrackFeatures": [("TRACK_ID", "NONE", True), ("TRACK_INDEX", "NONE", True)],
}


def _xml(path, spots, edges_by_track, *, shown=None, units=("micron", "min"), cal=(PX_UM, DT_S / 60.0),
         nslices=1, n_frames=10):
    """Write a TrackMate XML file. ``spots``: rows ``(id, frame, y_px, x_px[, z_px][, visible])``."""
    root = ET.Element("TrackMate", version="7.11.1")
    model = ET.SubElement(root, "Model", spatialunits=units[0], timeunits=units[1])
    feats = ET.SubElement(model, "FeatureDeclarations")
    for kind, names in _FEATURES.items():
        el = ET.SubElement(feats, kind)
        for f, dim, isint in names:
            ET.SubElement(el, "Feature", feature=f, name=f.title(), shortname=f[:6], dimension=dim,
                          isint="true" if isint else "false")
    all_spots = ET.SubElement(model, "AllSpots", nspots=str(len(spots)))
    scale = cal[0] if units[0] not in ("pixel", "pixels") else 1.0
    for t in sorted({s[1] for s in spots}):
        fr = ET.SubElement(all_spots, "SpotsInFrame", frame=str(t))
        for s in [s for s in spots if s[1] == t]:
            sid, _, y, x = s[:4]
            z = s[4] if len(s) > 4 and not isinstance(s[4], bool) else 0.0
            vis = s[-1] if isinstance(s[-1], bool) else True
            ET.SubElement(fr, "Spot", ID=str(sid), name=f"ID{sid}", QUALITY="10.0", POSITION_X=repr(x * scale),
                          POSITION_Y=repr(y * scale), POSITION_Z=repr(z * scale), POSITION_T=repr(t * cal[1]),
                          FRAME=str(t), RADIUS="2.5", VISIBILITY="1" if vis else "0")
    tracks = ET.SubElement(model, "AllTracks")
    for k, edges in edges_by_track.items():
        tr = ET.SubElement(tracks, "Track", name=f"Track_{k}", TRACK_ID=str(k), TRACK_INDEX=str(k))
        for a, b in edges:
            ET.SubElement(tr, "Edge", SPOT_SOURCE_ID=str(a), SPOT_TARGET_ID=str(b), LINK_COST="1.0")
    filt = ET.SubElement(model, "FilteredTracks")
    for k in (edges_by_track if shown is None else shown):
        ET.SubElement(filt, "TrackID", TRACK_ID=str(k))
    settings = ET.SubElement(root, "Settings")
    ET.SubElement(settings, "ImageData", filename="movie.tif", folder="", width="64", height="64",
                  nslices=str(nslices), nframes=str(n_frames), pixelwidth=repr(cal[0]), pixelheight=repr(cal[0]),
                  voxeldepth=repr(2 * cal[0] if nslices > 1 else 1.0), timeinterval=repr(cal[1]))
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path


def _session(tmp_path, **kw):
    """Two moving cells (track 0 with a gap-closing link over frame 3), one hidden track, two odd spots."""
    spots = [(40 + t, t, 10.0 + t, 20.0) for t in range(6) if t != 3]           # track 0, ids 40..45
    spots += [(7 - t, t, 30.0, 5.0 + 2 * t) for t in range(6)]                    # track 1, ids 7..2 (descending)
    spots += [(90 + t, t, 50.0, 50.0 - t) for t in range(3)]                      # track 2: hidden by a filter
    spots += [(99, 4, 60.0, 60.0), (98, 2, 1.0, 1.0, False)]                      # a lone spot; a filtered-out spot
    edges = {0: [(40, 41), (41, 42), (42, 44), (44, 45)],
             1: [(7 - t, 6 - t) for t in range(5)],
             2: [(90, 91), (91, 92)]}
    return _xml(tmp_path / "session.xml", spots, edges, shown=[0, 1], **kw)


def _pixel_table():
    """The two shown tracks of :func:`_session` in pixels, dynacell's layout."""
    rows = [(t, 1, 10.0 + t, 20.0) for t in range(6) if t != 3] + [(t, 2, 30.0, 5.0 + 2 * t) for t in range(6)]
    return pd.DataFrame(rows, columns=["t", "track_id", "y", "x"])


def test_trackmate_xml_is_read_as_trackmate_shows_it(tmp_path):
    p = _session(tmp_path)
    assert detect_format(p) == "trackmate"
    lin = read_lineage(p)
    g = lin.graph
    assert g.graph["voxel_size_um"] == (PX_UM, PX_UM) and g.graph["frame_interval_s"] == pytest.approx(DT_S)
    assert len(lin) == 5 + 6 + 1  # the hidden track's spots and the filtered-out spot are gone
    assert g.number_of_edges() == 4 + 5
    gap = [(a, b) for a, b in g.edges if b[0] - a[0] == 2]
    assert len(gap) == 1 and gap[0][0][0] == 2  # the gap-closing link 2 -> 4 kept as one edge
    assert not lin.divisions()
    ys = sorted(d["y"] for _, d in g.nodes(data=True))
    assert ys[0] == pytest.approx(10.0)  # back in pixels
    assert lin.ndim == 2


def test_motion_reads_a_calibrated_trackmate_file_without_units(tmp_path):
    tr = read_tracks(_session(tmp_path))
    ref = tracks_from_dataframe(_pixel_table(), PX_UM, DT_S)
    assert tr.frame_interval_s == pytest.approx(DT_S) and tr.meta["voxel_size_um"] == [PX_UM, PX_UM]
    assert tr.n_tracks == 2 and tr.n_gaps == 1 and tr.n_dropped_single == 1
    mine = tr.table.sort_values(["t", "y_um"]).reset_index(drop=True)
    theirs = ref.table.sort_values(["t", "y_um"]).reset_index(drop=True)
    np.testing.assert_allclose(mine[["t", "y_um", "x_um"]].to_numpy(), theirs[["t", "y_um", "x_um"]].to_numpy())


def test_a_trackmate_file_in_pixels_and_frames_needs_the_units(tmp_path):
    p = _session(tmp_path, units=("pixel", "frame"), cal=(1.0, 1.0))
    lin = read_lineage(p)
    assert "voxel_size_um" not in lin.graph.graph and "frame_interval_s" not in lin.graph.graph
    with pytest.raises(InvalidInputError, match="pixel size is unknown"):
        read_tracks(p, None, DT_S)
    with pytest.raises(InvalidInputError, match="frame interval is unknown"):
        read_tracks(p, PX_UM, None)
    tr = read_tracks(p, PX_UM, DT_S)
    assert tr.n_tracks == 2 and tr.table["y_um"].min() == pytest.approx(10.0 * PX_UM)


def test_a_division_reads_and_a_merge_is_refused_by_name(tmp_path):
    spots = [(1, 0, 10.0, 10.0), (2, 1, 10.0, 10.0), (3, 2, 8.0, 10.0), (4, 2, 12.0, 10.0)]
    lin = read_lineage(_xml(tmp_path / "div.xml", spots, {0: [(1, 2), (2, 3), (2, 4)]}))
    assert len(lin.divisions()) == 1
    spots = [(1, 0, 8.0, 10.0), (2, 0, 12.0, 10.0), (3, 1, 10.0, 10.0)]
    with pytest.raises(FormatError, match=r"merges two tracks: spot ID=3 \(frame 1\)"):
        read_lineage(_xml(tmp_path / "merge.xml", spots, {5: [(1, 3), (2, 3)]}))


def test_broken_trackmate_files_say_what_is_wrong(tmp_path):
    spots = [(1, 0, 10.0, 10.0), (2, 0, 11.0, 10.0)]
    with pytest.raises(FormatError, match="both in frame 0"):
        read_lineage(_xml(tmp_path / "same.xml", spots, {0: [(1, 2)]}))
    with pytest.raises(FormatError, match="spot ID=9 is not in <AllSpots>"):
        read_lineage(_xml(tmp_path / "missing.xml", spots, {0: [(1, 9)]}))
    p = tmp_path / "other.xml"
    p.write_text("<?xml version='1.0'?><Other/>")
    with pytest.raises(InvalidInputError, match="cannot tell the lineage format"):
        read_lineage(p)


def test_a_3d_trackmate_file_keeps_its_z_calibration(tmp_path):
    spots = [(t, t, 10.0, 10.0 + t, 3.0 + 0.5 * t) for t in range(4)]
    p = _xml(tmp_path / "z.xml", spots, {0: [(t, t + 1) for t in range(3)]}, nslices=12)
    lin = read_lineage(p)
    assert lin.ndim == 3 and lin.graph.graph["voxel_size_um"] == (2 * PX_UM, PX_UM, PX_UM)
    tr = read_tracks(p)
    assert tr.ndim == 3
    # z was written in µm as z_px × voxeldepth; read back in µm it is the same
    np.testing.assert_allclose(tr.table["z_um"].to_numpy(), [(3.0 + 0.5 * t) * PX_UM for t in range(4)])


def _spot_table(path, rows, *, space="micron", time="sec", units_row=True):
    """TrackMate 7's exported spot table: header, names, short names, units, then one row a spot."""
    cols = ["LABEL", "ID", "TRACK_ID", "QUALITY", "POSITION_X", "POSITION_Y", "POSITION_Z", "POSITION_T", "FRAME",
            "RADIUS", "VISIBILITY"]
    head = [cols,
            ["Label", "Spot ID", "Track ID", "Quality", "X", "Y", "Z", "T", "Frame", "Radius", "Visibility"],
            ["Label", "Spot ID", "Track ID", "Quality", "X", "Y", "Z", "T", "Frame", "R", "Visibility"],
            ["", "", "", "(quality)", f"({space})", f"({space})", f"({space})", f"({time})", "", f"({space})", ""]]
    lines = [",".join(r) for r in (head if units_row else head[:1])]
    for i, (t, track, y, x, tt) in enumerate(rows):
        lines.append(",".join(["ID%d" % i, str(i), "" if track is None else str(track), "10.0", repr(x), repr(y),
                               "0.0", repr(tt), str(t), "2.5", "1"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _um_rows(table, dt_unit=DT_S):
    return [(int(r.t), int(r.track_id) - 1, r.y * PX_UM, r.x * PX_UM, r.t * dt_unit) for r in table.itertuples()]


def test_trackmate_spot_table_reads_in_its_own_units(tmp_path):
    rows = _um_rows(_pixel_table()) + [(4, None, 30.0, 30.0, 4 * DT_S)]  # a spot in no track
    tr = read_tracks(_spot_table(tmp_path / "spots.csv", rows))
    ref = tracks_from_dataframe(_pixel_table(), PX_UM, DT_S)
    assert tr.meta["layout"] == "trackmate" and tr.meta["position_unit"] == "micron"
    assert tr.frame_interval_s == pytest.approx(DT_S) and tr.n_dropped_single == 1
    np.testing.assert_allclose(tr.table[["t", "y_um", "x_um"]].to_numpy(), ref.table[["t", "y_um", "x_um"]].to_numpy())
    # minutes in the units row: the same frame interval in seconds
    rows_min = _um_rows(_pixel_table(), DT_S / 60.0)
    assert read_tracks(_spot_table(tmp_path / "min.csv", rows_min, time="min")).frame_interval_s == pytest.approx(DT_S)


def test_trackmate_spot_table_rules(tmp_path):
    rows = _um_rows(_pixel_table())
    p = _spot_table(tmp_path / "spots.csv", rows)
    with pytest.raises(InvalidInputError, match="already in micron"):
        read_tracks(p, PX_UM, None)
    with pytest.raises(InvalidInputError, match="differs from the table's 30 s"):
        read_tracks(p, None, 10.0)
    assert read_tracks(p, None, DT_S).n_tracks == 2  # the same interval given again is fine
    with pytest.raises(InvalidInputError, match="without its units row"):
        read_tracks(_spot_table(tmp_path / "old.csv", rows, units_row=False))
    px_rows = [(t, k, y / PX_UM, x / PX_UM, float(t)) for t, k, y, x, _ in rows]
    px = _spot_table(tmp_path / "px.csv", px_rows, space="pixel", time="frame")
    with pytest.raises(InvalidInputError, match="frame interval is unknown"):
        read_tracks(px, PX_UM, None)
    assert read_tracks(px, PX_UM, DT_S).table["y_um"].min() == pytest.approx(10.0 * PX_UM)


def test_motion_command_on_a_trackmate_file(tmp_path, run_cli):
    code, out, err = run_cli("motion", str(_session(tmp_path)), "-o", str(tmp_path / "m"))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_tracks"] == 2
    params = json.loads((tmp_path / "m" / "diffusion.json").read_text())["parameters"]
    assert params["frame_interval_s"] == pytest.approx(DT_S) and params["voxel_size_um"] == [PX_UM, PX_UM]
    code, out, err = run_cli("lineage", str(_session(tmp_path)))
    assert code == 0, err
    assert json.loads(out)["format"] == "trackmate"


@pytest.mark.data
def test_real_single_molecule_tracks_through_trackmate_layouts(shared_data, tmp_path):
    """saspt U2OS trajectories (0.16 µm/px, 7.48 ms) saved in TrackMate's two layouts read back identically."""
    src = shared_data / "particles" / "saspt-u2os" / "region_0_7ms_trajs.csv"
    df = pd.read_csv(src, usecols=["frame", "trajectory", "y", "x"])
    df = df[df.groupby("trajectory")["frame"].transform("size") >= 2].head(3000)
    ref = read_tracks(src, 0.16, 0.00748).table
    ref = ref[ref["track_id"].isin(df["trajectory"].unique())].reset_index(drop=True)
    rows = [(int(r.frame), int(r.trajectory), r.y * 0.16, r.x * 0.16, r.frame * 0.00748) for r in df.itertuples()]
    from_csv = read_tracks(_spot_table(tmp_path / "spots.csv", rows)).table
    spots = [(i, int(r.frame), r.y, r.x) for i, r in enumerate(df.itertuples())]
    ids = df.reset_index(drop=True).groupby("trajectory").indices
    edges = {k: [(int(a), int(b)) for a, b in zip(v[:-1], v[1:])] for k, v in ids.items()}
    xml = _xml(tmp_path / "s.xml", spots, edges, units=("micron", "sec"), cal=(0.16, 0.00748),
               n_frames=int(df["frame"].max()) + 1)
    from_xml = read_tracks(xml)
    assert from_xml.frame_interval_s == pytest.approx(0.00748)
    for got in (from_csv, from_xml.table):
        got = got.sort_values(["t", "y_um", "x_um"]).reset_index(drop=True)
        want = ref.sort_values(["t", "y_um", "x_um"]).reset_index(drop=True)
        np.testing.assert_allclose(got[["t", "y_um", "x_um"]].to_numpy(), want[["t", "y_um", "x_um"]].to_numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_same_links_as_geffs_independent_trackmate_converter(tmp_path):
    """geff's TrackMate converter (written for files saved by Fiji), told to drop what TrackMate's filters hid,
    finds the same links; it also drops the spot in no track, which dynacell keeps as a one-frame nucleus."""
    geff_convert = pytest.importorskip("geff.convert")
    import warnings

    import geff

    p = _session(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # geff's notes on units it does not list ("micron") and absent tags
        geff_convert.from_trackmate_xml_to_geff(p, tmp_path / "tm.geff", discard_filtered_spots=True,
                                                discard_filtered_tracks=True)
        g, _meta = geff.read(tmp_path / "tm.geff", backend="networkx")

    def key(d):  # (frame, y µm, x µm)
        return int(d["FRAME"]), round(float(d["POSITION_Y"]), 6), round(float(d["POSITION_X"]), 6)

    theirs = {(key(g.nodes[a]), key(g.nodes[b])) for a, b in g.edges}
    lin = read_lineage(p)
    mine = {tuple((n[0], round(lin.graph.nodes[n]["y"] * PX_UM, 6), round(lin.graph.nodes[n]["x"] * PX_UM, 6))
                  for n in e) for e in lin.graph.edges}
    assert mine == theirs and len(mine) == 9
    assert len(lin) == g.number_of_nodes() + 1


def test_a_geff_converted_from_trackmate_reads_like_the_xml(tmp_path):
    """geff's converter keeps TrackMate's axes (POSITION_X, _Y, _Z in micron, POSITION_T in min) and FRAME: frame
    numbers come from FRAME, axes by their letter, positions in µm, and nodes numbered per frame are marked."""
    geff_convert = pytest.importorskip("geff.convert")
    import warnings

    p = _session(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        geff_convert.from_trackmate_xml_to_geff(p, tmp_path / "tm.geff", discard_filtered_spots=True,
                                                discard_filtered_tracks=True)
        lin = read_lineage(tmp_path / "tm.geff")
        tr = read_tracks(tmp_path / "tm.geff", None, DT_S)
    assert lin.ndim == 2 and lin.graph.graph["node_labels"] == "spot order"
    assert lin.graph.graph["position_um_per_unit"] == 1.0
    xml = read_tracks(p)
    mine = tr.table.sort_values(["t", "y_um"]).reset_index(drop=True)
    theirs = xml.table.sort_values(["t", "y_um"]).reset_index(drop=True)
    np.testing.assert_allclose(mine[["t", "y_um", "x_um"]].to_numpy(), theirs[["t", "y_um", "x_um"]].to_numpy())


def test_a_hidden_spot_that_a_shown_track_links_is_kept(tmp_path):
    """A spot filter changed after tracking leaves VISIBILITY 0 on spots of shown tracks: the track stays whole."""
    spots = [(1, 0, 10.0, 10.0), (2, 1, 11.0, 10.0, False), (3, 2, 12.0, 10.0), (4, 3, 30.0, 30.0, False)]
    lin = read_lineage(_xml(tmp_path / "vis.xml", spots, {0: [(1, 2), (2, 3)]}))
    assert len(lin) == 3 and lin.graph.number_of_edges() == 2  # spot 4 (hidden, in no track) is left out
