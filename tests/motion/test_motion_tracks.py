"""Tracks readers and the bad-input rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError
from dynacell.motion.tracks import read_tracks, tracks_from_dataframe


def _df(**cols):
    base = {"t": [0, 1, 2, 0, 1, 2], "track_id": [1, 1, 1, 2, 2, 2], "y": [0., 1, 2, 5, 5, 5],
            "x": [0., 0, 0, 1, 2, 3]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize("rename", [{}, {"t": "frame", "track_id": "particle"},
                                    {"t": "frame", "track_id": "trajectory"}, {"track_id": "ID"}])
def test_layouts_read_the_same(rename):
    tr = tracks_from_dataframe(_df().rename(columns=rename), (0.5, 0.25), 2.0)
    assert tr.n_tracks == 2 and tr.ndim == 2
    assert tr.table["y_um"].tolist()[:3] == [0.0, 0.5, 1.0]
    assert tr.table["x_um"].tolist()[3:] == [0.25, 0.5, 0.75]


def test_missing_units_raise():
    with pytest.raises(InvalidInputError, match="pixel size"):
        tracks_from_dataframe(_df(), None, 1.0)
    with pytest.raises(InvalidInputError, match="frame interval"):
        tracks_from_dataframe(_df(), 1.0, None)


def test_duplicates_nan_fractional_frames_raise():
    with pytest.raises(InvalidInputError, match="share a"):
        tracks_from_dataframe(_df(t=[0, 1, 1, 0, 1, 2]), 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="NaN"):
        tracks_from_dataframe(_df(y=[0., np.nan, 2, 5, 5, 5]), 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="whole frame"):
        tracks_from_dataframe(_df(t=[0, 1.5, 2, 0, 1, 2]), 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="layout"):
        tracks_from_dataframe(_df().rename(columns={"track_id": "cell"}), 1.0, 1.0)


def test_nan_dropped_on_request_becomes_a_gap_and_segments_split():
    tr = tracks_from_dataframe(_df(y=[0., np.nan, 2, 5, 5, 5]), 1.0, 1.0, drop_nan=True)
    assert tr.n_dropped_nan == 1 and tr.n_gaps == 1
    segs = tr.segments(2)
    assert [s.shape[0] for s in segs] == [3]  # track 1 = frames 0 and 2: no 2-frame run


def test_single_frame_tracks_are_dropped_and_counted():
    df = pd.concat([_df(), pd.DataFrame({"t": [4], "track_id": [9], "y": [1.0], "x": [1.0]})])
    tr = tracks_from_dataframe(df, 1.0, 1.0)
    assert tr.n_dropped_single == 1 and tr.n_tracks == 2
    with pytest.raises(InvalidInputError, match="2 or more"):
        tracks_from_dataframe(df[df["track_id"] == 9], 1.0, 1.0)


def test_3d_needs_three_sizes_and_run_folder_units(tmp_path):
    df = _df(z=[0., 1, 2, 3, 3, 3])
    with pytest.raises(InvalidInputError, match="Z Y X"):
        tracks_from_dataframe(df, (0.5, 0.5), 1.0)
    tr = tracks_from_dataframe(df, (2.0, 0.5, 0.5), 1.0)
    assert tr.ndim == 3 and tr.table["z_um"].max() == 6.0
    run = tmp_path / "run"
    run.mkdir()
    df.to_csv(run / "states.csv", index=False)
    (run / "run.json").write_text('{"voxel_size_um": [2.0, 0.5, 0.5], "frame_interval_s": 60.0}')
    tr = read_tracks(run)
    assert tr.frame_interval_s == 60.0 and tr.ndim == 3


def test_saspt_errors_give_sigma(tmp_path):
    df = _df().rename(columns={"t": "frame", "track_id": "trajectory"}).assign(y_err=0.2, x_err=0.3)
    p = tmp_path / "trajs.csv"
    df.to_csv(p, index=False)
    tr = read_tracks(p, 0.16, 0.00748)
    assert tr.sigma_um == pytest.approx(0.25 * 0.16)


def test_lineage_with_a_division_via_geff(tmp_path):
    from dynacell.lineage import Lineage, write_geff

    lin = Lineage(n_frames=6, ndim=2)
    prev = None
    for t in range(3):  # mother: frames 0-2
        lin.add_node((t, 1), (10.0 + t, 10.0))
        if prev:
            lin.add_edge(prev, (t, 1))
        prev = (t, 1)
    for lab, dx in ((2, -1.0), (3, 1.0)):  # two daughters: frames 3-5
        p = (2, 1)
        for t in range(3, 6):
            lin.add_node((t, lab), (13.0, 10.0 + dx * (t - 2)))
            lin.add_edge(p, (t, lab))
            p = (t, lab)
    store = write_geff(lin, tmp_path / "lin.geff")
    tr = read_tracks(store, 0.5, 30.0)
    assert tr.n_tracks == 3  # a division ends the mother's track
    assert sorted(tr.table.groupby("track_id").size().tolist()) == [3, 3, 3]
    assert tr.table["x_um"].max() == pytest.approx(6.5)


@pytest.mark.parametrize("coords", [["y", "x"], ["position_y", "position_x"]])
def test_laptrack_output_reads_as_it_is_saved(tmp_path, coords):
    """laptrack's predict_dataframe (frame, track_id, tree_id and the coordinate columns), saved to CSV."""
    from laptrack import LapTrack

    rng = np.random.default_rng(0)
    rows = [(t, 10.0 * k + rng.normal(0, 0.3), 5.0 + 0.5 * t) for k in range(4) for t in range(8)]
    spots = pd.DataFrame(rows, columns=["frame", *coords])
    track_df, _, _ = LapTrack(cutoff=4.0, splitting_cutoff=False, merging_cutoff=False,
                              gap_closing_cutoff=False).predict_dataframe(spots, coords, only_coordinate_cols=False)
    track_df.to_csv(tmp_path / "laptrack.csv")
    tr = read_tracks(tmp_path / "laptrack.csv", 0.5, 2.0)
    assert tr.meta["layout"] == "laptrack" and tr.n_tracks == 4 and len(tr.table) == 32
    assert tr.table["x_um"].max() == pytest.approx((5.0 + 0.5 * 7) * 0.5)
