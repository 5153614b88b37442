"""Tests of dynacell.track.link_labels and the CTC track ids: canonical tiny cases, bad input, GOWT1."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage import Lineage
from dynacell.track import (
    assign_ctc_tracks,
    lineage_to_ctc_tracks,
    link_labels,
    measure_nuclei,
)


def movie(frames: list[list[tuple[int, tuple[float, float]]]], shape=(64, 64), radius=4) -> Movie:
    """A label movie: per frame a list of (label, (y, x)) discs of the given radius."""
    data = np.zeros((len(frames), *shape), dtype=np.uint16)
    for t, nuclei in enumerate(frames):
        for label, centre in nuclei:
            rr, cc = disk(centre, radius, shape=shape)
            data[t, rr, cc] = label
    return Movie(data, "TYX")


def test_straight_track_with_changing_ids_is_one_track():
    """One nucleus drifting right; its id changes every frame::

        t:   0      1      2      3
           (0,1) ─ (1,7) ─ (2,2) ─ (3,5)
    """
    lab = movie([[(1, (30, 10))], [(7, (30, 14))], [(2, (30, 18))], [(5, (30, 22))]])
    lin, relabel = link_labels(lab, progress=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 7)), ((1, 7), (2, 2)), ((2, 2), (3, 5))]
    assert set(relabel.track_ids.values()) == {1}
    tracks = lineage_to_ctc_tracks(lin)
    assert tracks.to_numpy().tolist() == [[1, 0, 3, 0]]
    assert lin.centroid((2, 2))[1:] == pytest.approx([30, 18], abs=0.01)


def test_division_two_daughters():
    """A mother that splits at frame 2 into daughters above and below it::

        (0,1) ─ (1,1) ─┬─ (2,3)   daughter above
                       └─ (2,4)   daughter below
    """
    lab = movie([[(1, (30, 30))], [(1, (30, 31))], [(3, (25, 31)), (4, (36, 31))], [(1, (24, 31)), (2, (37, 31))]],
                radius=4)
    lin, relabel = link_labels(lab, progress=False)
    assert lin.divisions() == [(1, 1)]
    assert lin.children((1, 1)) == [(2, 3), (2, 4)]
    tracks = lineage_to_ctc_tracks(lin).set_index("label")
    mother = relabel.track_ids[(1, 1)]
    daughters = {relabel.track_ids[(2, 3)], relabel.track_ids[(2, 4)]}
    assert len(tracks) == 3 and mother not in daughters
    assert all(tracks.loc[d, "parent"] == mother for d in daughters)
    assert tracks.loc[mother, "end"] == 1


def test_no_division_when_disabled():
    lab = movie([[(1, (30, 30))], [(1, (30, 31))], [(3, (25, 31)), (4, (36, 31))]])
    lin, _ = link_labels(lab, division=False, progress=False)
    assert lin.divisions() == []


def test_gap_is_closed_and_splits_ctc_tracks():
    """Frame 2 misses the nucleus; gap closing joins frame 1 to frame 3::

        (0,1) ─ (1,1) ······ (3,1)      CTC: track 1 = frames 0-1, track 2 = frame 3, parent 1
    """
    lab = movie([[(1, (30, 10))], [(1, (30, 12))], [], [(1, (30, 16))]])
    with pytest.warns(UserWarning, match=r"frames \[2\]"):
        lin, relabel = link_labels(lab, gap_closing_frames=1, progress=False)
    assert lin.graph.has_edge((1, 1), (3, 1))
    assert lineage_to_ctc_tracks(lin).to_numpy().tolist() == [[1, 0, 1, 0], [2, 3, 3, 1]]
    with pytest.warns(UserWarning):
        lin0, _ = link_labels(lab, gap_closing_frames=0, progress=False)
    assert not lin0.graph.has_edge((1, 1), (3, 1))


def test_ctc_result_round_trip(tmp_path):
    """The lineage and its relabelled masks write a valid CTC result (dynacell.io) that reads back the same."""
    from dynacell.io import open_labels, read_ctc_tracks, write_ctc_result

    lab = movie([[(1, (30, 30))], [(2, (30, 31))], [(3, (25, 31)), (4, (36, 31))], [(9, (24, 31)), (8, (37, 31))]])
    lin, relabel = link_labels(lab, progress=False)
    table = lineage_to_ctc_tracks(lin)
    out = write_ctc_result(tmp_path / "RES", relabel.frames(lab, progress=False), table)
    assert read_ctc_tracks(out).to_numpy().tolist() == table.to_numpy().tolist()
    back = open_labels(out)
    assert back.frame(3)[24, 31] == relabel.track_ids[(3, 9)]
    via_lineage = write_ctc_result(tmp_path / "RES2", lab, lin)
    assert read_ctc_tracks(via_lineage).to_numpy().tolist() == table.to_numpy().tolist()


def test_appear_and_disappear_stay_separate():
    """Nucleus A lives throughout; B ends after frame 1; C appears far away at frame 2::

        A: (0,1) ─ (1,1) ─ (2,1) ─ (3,1)
        B: (0,2) ─ (1,2)
        C:                 (2,2) ─ (3,2)
    """
    lab = movie([[(1, (10, 10)), (2, (50, 50))], [(1, (10, 11)), (2, (50, 51))],
                 [(1, (10, 12)), (2, (10, 52))], [(1, (10, 13)), (2, (11, 52))]])
    lin, relabel = link_labels(lab, gap_closing_frames=0, max_distance_px=20.0, progress=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 1)), ((0, 2), (1, 2)), ((1, 1), (2, 1)), ((2, 1), (3, 1)),
                                       ((2, 2), (3, 2))]
    assert len(set(relabel.track_ids.values())) == 3


def test_ids_permuted_across_frames_follow_positions():
    """Two nuclei swap ids every frame; tracks follow positions, not ids."""
    lab = movie([[(1, (15, 15)), (2, (45, 45))], [(2, (16, 15)), (1, (46, 45))],
                 [(1, (17, 15)), (2, (47, 45))]])
    lin, relabel = link_labels(lab, progress=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 2)), ((0, 2), (1, 1)), ((1, 1), (2, 2)), ((1, 2), (2, 1))]
    assert relabel.track_ids[(0, 1)] == relabel.track_ids[(2, 1)]
    frames = list(relabel.frames(lab, progress=False))
    assert frames[0][15, 15] == frames[1][16, 15] == frames[2][17, 15] != frames[0][45, 45]
    assert frames[0].dtype == np.uint16


def test_distances_are_physical():
    """A 10-pixel step is 2 µm at 0.2 µm/px and 10 µm at 1 µm/px (without drift correction)."""
    lab = movie([[(1, (30, 10))], [(1, (30, 20))]], radius=3)
    kw = {"max_distance_um": 5.0, "drift_correction": False, "progress": False}
    linked, _ = link_labels(lab, voxel_size_um=(0.2, 0.2), **kw)
    apart, _ = link_labels(lab, voxel_size_um=(1.0, 1.0), **kw)
    assert linked.graph.number_of_edges() == 1 and apart.graph.number_of_edges() == 0
    assert linked.graph.graph["linking"]["distance_unit"] == "um"
    drifted, _ = link_labels(lab, voxel_size_um=(1.0, 1.0), max_distance_um=5.0, progress=False)
    assert drifted.graph.number_of_edges() == 1  # the global drift of the frame is compensated


def test_global_drift_is_compensated():
    """Three nuclei shift together by 12 px (stage drift) between frames 0 and 1; ids change::

        t=0: 1 (20,10)  2 (40,10)  3 (30,40)      t=1: the same + (0, 12), ids 3, 1, 2
    """
    lab = movie([[(1, (20, 10)), (2, (40, 10)), (3, (30, 40))],
                 [(3, (20, 22)), (1, (40, 22)), (2, (30, 52))]], radius=3)
    lin, _ = link_labels(lab, max_distance_px=4.0, progress=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 3)), ((0, 2), (1, 1)), ((0, 3), (1, 2))]


def test_3d_anisotropic_link():
    data = np.zeros((2, 8, 32, 32), dtype=np.uint16)
    data[0, 2:4, 10:14, 10:14] = 3
    data[1, 3:5, 11:15, 10:14] = 9
    lin, _ = link_labels(Movie(data, "TZYX", voxel_size_um=(2.0, 0.5, 0.5)), progress=False)
    assert sorted(lin.graph.edges) == [((0, 3), (1, 9))]
    assert lin.ndim == 3


def test_empty_frames_warn_and_give_no_nodes():
    lab = movie([[], [(1, (30, 30))], []])
    with pytest.warns(UserWarning, match=r"2 frame\(s\) hold no nucleus.*\[0, 2\]"):
        lin, relabel = link_labels(lab, progress=False)
    assert list(lin) == [(1, 1)]
    empty = Movie(np.zeros((3, 8, 8), np.uint8), "TYX")
    with pytest.warns(UserWarning, match="3 frame"):
        lin, relabel = link_labels(empty, progress=False)
    assert len(lin) == 0 and relabel.track_ids == {}


def test_non_integer_labels_raise():
    with pytest.raises(InvalidInputError, match="integer label image"):
        link_labels(Movie(np.zeros((2, 8, 8), np.float32), "TYX"), progress=False)
    with pytest.raises(InvalidInputError, match="Movie"):
        link_labels(np.zeros((2, 8, 8), np.uint16), progress=False)


def test_negative_labels_and_bad_parameters_raise():
    data = np.zeros((2, 8, 8), np.int16)
    data[1, 2, 2] = -3
    with pytest.raises(InvalidInputError, match="frame 1.*negative"):
        link_labels(Movie(data, "TYX"), progress=False)
    ok = movie([[(1, (30, 30))]])
    with pytest.raises(InvalidInputError, match="gap_closing_frames"):
        link_labels(ok, gap_closing_frames=-1, progress=False)
    with pytest.raises(InvalidInputError, match="max_distance_um"):
        link_labels(ok, max_distance_um=0.0, progress=False)
    with pytest.raises(InvalidInputError, match="needs a voxel size"):  # a µm gate on a movie measured in pixels
        link_labels(ok, max_distance_um=5.0, progress=False)
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        link_labels(ok, voxel_size_um=(1.0,), progress=False)


def test_default_distance_follows_motion_larger_than_nuclei():
    """Three small nuclei (diameter ~7 px) each jump 20 px per frame, in different directions::

        t=0:  1 (10,10)   2 (10,50)   3 (50,30)
               │ +20 y       │ -20 x       │ +20 x
        t=1:  5 (30,10)   6 (10,30)   4 (50,50)
               │ +20 x       │ +20 x       │ -20 y
        t=2:  2 (30,30)   3 (10,50)   1 (30,50)
    """
    from dynacell.track import default_max_distance

    frames = [[(1, (10, 10)), (2, (10, 50)), (3, (50, 30))],
              [(5, (30, 10)), (6, (10, 30)), (4, (50, 50))],
              [(2, (30, 30)), (3, (10, 50)), (1, (30, 50))]]
    lab = movie(frames, radius=3)
    nuclei = measure_nuclei(lab, progress=False)
    assert default_max_distance(nuclei, ndim=2) == pytest.approx(1.5 * 20, rel=0.3)
    lin, relabel = link_labels(lab, gap_closing_frames=0, drift_correction=False, progress=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 5)), ((0, 2), (1, 6)), ((0, 3), (1, 4)),
                                       ((1, 4), (2, 1)), ((1, 5), (2, 2)), ((1, 6), (2, 3))]


def test_measure_nuclei_table():
    lab = movie([[(4, (20, 20))], [(2, (30, 40))]], radius=5)
    tab = measure_nuclei(lab, progress=False)
    assert tab[["t", "label"]].to_numpy().tolist() == [[0, 4], [1, 2]]
    assert tab["diameter_px"].to_numpy() == pytest.approx(np.sqrt(4 * tab["size_px"].to_numpy() / np.pi))
    assert tab.loc[1, ["y", "x"]].to_numpy(dtype=float) == pytest.approx([30, 40])


def test_lineage_to_ctc_tracks_rejects_non_ctc_track_ids():
    """Track 1 jumps over frame 1, which CTC masks cannot express::

        (0,1) ······ (2,1)   both track_id 1
    """
    lin = Lineage()
    lin.add_node((0, 1), (1, 1), track_id=1)
    lin.add_node((2, 1), (1, 1), track_id=1)
    lin.add_edge((0, 1), (2, 1))
    with pytest.raises(InvalidInputError, match="assign_ctc_tracks"):
        lineage_to_ctc_tracks(lin)
    relabel = assign_ctc_tracks(lin)
    assert relabel.track_ids == {(0, 1): 1, (2, 1): 2}
    assert lineage_to_ctc_tracks(lin).to_numpy().tolist() == [[1, 0, 0, 0], [2, 2, 2, 1]]


@pytest.mark.slow
@pytest.mark.data
def test_gowt1_ground_truth_masks_relinked(ctc, tmp_path):
    """GOWT1 01 frames 0-39 with per-frame permuted ids: linking recovers the tracks (TRA floor 0.99).

    Measured on all 92 frames by benchmarks/track.py: TRA 0.9999.
    """
    import dask.array as da
    from skimage.util import map_array

    from dynacell.io import open_labels, write_ctc_result
    from dynacell.metrics.tracking import evaluate_tracks

    full = open_labels(ctc / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA")
    n = 40

    def permute(block, block_info=None):
        i = block_info[0]["chunk-location"][0]
        ids = np.unique(block[0])
        ids = ids[ids > 0]
        return map_array(block[0], ids, (np.random.default_rng([0, i]).permutation(len(ids)) + 1)
                         .astype(block.dtype))[None]

    data = da.asarray(full.data[:n]).map_blocks(permute, dtype=full.dtype)
    lab = Movie(data, full.axes, frame_indices=full.frame_indices[:n], source="gowt1 permuted")
    lin, relabel = link_labels(lab, progress=False)
    out = write_ctc_result(tmp_path / "RES", relabel.frames(lab, progress=False), lineage_to_ctc_tracks(lin),
                           frame_indices=lab.frame_indices)
    res = evaluate_tracks(out, ctc / "Fluo-N2DH-GOWT1" / "01_GT", progress=False)
    assert res["frames_evaluated"] == list(range(n))
    assert res["TRA"] >= 0.99
    assert res["fp_nodes"] == res["fn_nodes"] == 0


def test_motion_gate_needs_several_usable_frame_pairs():
    """One frame pair with the same nucleus count is not enough to widen the gate (a wrong pair would)."""
    import pandas as pd

    from dynacell.track.gate import motion_gate

    rows = [{"t": t, "z": 0.0, "y": 10.0 + 300.0 * t * (i == 0), "x": 20.0 * i, "size_px": 8.0}
            for t in range(2) for i in range(3)]  # one pair; the first nucleus jumps 300 px
    one = motion_gate(pd.DataFrame(rows), ndim=2)
    assert one["n_pairs"] == 1 and one["motion"] == 0.0 and one["max_distance"] == one["default"]
    many = pd.DataFrame([{**r, "t": r["t"] + k * 2} for k in range(3) for r in rows]
                        + [{"t": 6, "z": 0.0, "y": 10.0, "x": 20.0 * i, "size_px": 8.0} for i in range(3)])
    wide = motion_gate(many, ndim=2)
    assert wide["n_pairs"] >= 3 and wide["motion"] > one["default"] and wide["max_distance"] == max(wide["motion"], wide["default"])


def test_no_link_between_apart_nuclei_at_the_border():
    """A nucleus leaving the field and one entering it share no pixel: not one track (benchmarks/track_field.py).

    The same pair in the middle of the frame is linked, and a nucleus at the border that moves less than its size
    (its masks overlap) is linked too.
    """
    leave_enter = movie([[(1, (30, 3))], [(2, (30, 14))]])  # the disc at x 3 (radius 4) touches the left border
    lin, _ = link_labels(leave_enter, progress=False, drift_correction=False)
    assert lin.graph.number_of_edges() == 0
    middle = movie([[(1, (30, 33))], [(2, (30, 44))]])
    lin, _ = link_labels(middle, progress=False, drift_correction=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 2))]
    sliding = movie([[(1, (30, 3))], [(2, (30, 7))]])
    lin, _ = link_labels(sliding, progress=False, drift_correction=False)
    assert sorted(lin.graph.edges) == [((0, 1), (1, 2))]


def test_overlap_fraction_of_a_sliver_is_floored_by_the_larger_mask():
    from dynacell.track import linking

    size = {(0, 1): 4, (1, 2): 981, (0, 3): 900, (1, 4): 450}
    f = linking._overlap_fractions({(0, 1, 1, 2): 4, (0, 3, 1, 4): 450}, size)
    assert f[(0, 1, 1, 2)] == pytest.approx(4 / (linking._OVERLAP_MIN_SIZE_RATIO * 981))  # a sliver: no free link
    assert f[(0, 3, 1, 4)] == pytest.approx(1.0)  # a daughter half the mother's size inside her: fully covered


def test_entering_sliver_is_linked_to_its_next_mask_beside_it():
    """A cell entering the field: a sliver at the border, then its larger mask beside it, sharing no pixel.

    Closer than half a median nucleus diameter, the pair is not refused by the border rule.
    """
    data = np.zeros((2, 64, 64), np.uint16)
    for t in range(2):  # two still nuclei of 12 px diameter set the median size
        for label, centre in ((5, (15, 40)), (6, (48, 40))):
            rr, cc = disk(centre, 6, shape=(64, 64))
            data[t, rr, cc] = label
    data[0, 28:34, 0:2] = 1  # the sliver at the left border
    rr, cc = disk((31, 6), 4, shape=(64, 64))
    data[1, rr, cc] = 2  # x 2..10: no shared pixel, centroids 5.5 px apart (median diameter 11.8 px)
    lin, _ = link_labels(Movie(data, "TYX"), progress=False, drift_correction=False)
    assert ((0, 1), (1, 2)) in lin.graph.edges
    assert ((0, 5), (1, 5)) in lin.graph.edges and ((0, 6), (1, 6)) in lin.graph.edges
