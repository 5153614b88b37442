"""dynacell.io on the real data in ../shared/data (skipped when absent); facts from its README."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.io import (
    check_same_grid,
    open_labels,
    open_movie,
    read_ctc_tracks,
    write_ctc_result,
)

pytestmark = pytest.mark.data


def _divisions(tracks):
    """Parents with two or more children in a CTC table."""
    counts = tracks.loc[tracks["parent"] > 0, "parent"].value_counts()
    return int((counts >= 2).sum())


def test_gowt1_01(ctc):
    images = open_movie(ctc / "Fluo-N2DH-GOWT1" / "01")
    assert images.shape == (92, 1024, 1024) and images.dtype == np.uint8 and images.axes == "TYX"
    assert images.data.chunksize == (1, 1024, 1024)
    # pixel size from the TIFF resolution tags (CENTIMETER); README: 0.240 µm/px
    assert images.voxel_size_um == pytest.approx((0.240, 0.240), abs=1e-3)
    assert images.frame_interval_s is None
    labels = open_labels(ctc / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA")
    assert labels.frame_indices == tuple(range(92)) and labels.dtype == np.uint16
    check_same_grid(images, labels)
    tracks = read_ctc_tracks(ctc / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA")
    assert len(tracks) == 27 and _divisions(tracks) == 2
    present = set(np.unique(labels.frame(0)).tolist()) - {0}
    active = set(tracks.loc[(tracks.begin <= 0) & (tracks.end >= 0), "label"])
    assert present and present <= active


def test_hela_02_images_and_gappy_tra(ctc):
    root = ctc / "Fluo-N2DL-HeLa"
    images = open_movie(root / "02")
    assert images.shape == (20, 700, 1100) and images.dtype == np.uint16
    assert images.frame_indices == tuple(range(20)) and images.voxel_size_um is None
    tra = open_labels(root / "02_GT" / "TRA")
    assert tra.n_frames == 50
    assert [t for t in tra.frame_indices if t < 20] == [1, 2, 4, 6, 7, 9, 11, 13, 14, 16, 18]
    assert not tra.has_frame(3)
    check_same_grid(images, tra)
    assert tra.frame(18).max() > 0
    tracks = read_ctc_tracks(root / "02_GT" / "TRA" / "man_track.txt")
    assert len(tracks) == 674 and _divisions(tracks) == 209
    st = open_labels(root / "02_ST" / "SEG")
    assert st.n_frames == 54 and st.frame_shape == (700, 1100)


def test_cho_02_3d_voxel_size_only_when_given(ctc):
    images = open_movie(ctc / "Fluo-N3DH-CHO" / "02")
    assert images.axes == "TZYX" and images.shape == (20, 5, 443, 512) and images.dtype == np.uint8
    assert images.voxel_size_um is None  # the CTC TIFFs carry no physical size
    given = open_movie(ctc / "Fluo-N3DH-CHO" / "02", voxel_size_um=(1.0, 0.202, 0.202), frame_interval_s=570)
    assert given.voxel_size_um == (1.0, 0.202, 0.202) and given.frame_interval_s == 570
    seg = open_labels(ctc / "Fluo-N3DH-CHO" / "02_ERR_SEG")
    check_same_grid(images, seg)
    assert seg.n_frames == 20 and seg.frame(0).max() > 0


def test_mouse_8cell_3d(shared_data):
    root = shared_data / "embryo3d" / "mouse-8cell"
    images = open_movie(root / "images")
    labels = open_labels(root / "labels")
    assert images.shape == (11, 71, 180, 247) and images.dtype == np.uint16 and images.voxel_size_um is None
    check_same_grid(images, labels)
    ids = np.unique(labels.frame(5))
    assert len(ids[ids > 0]) == 8


def test_bacteria_phc(ctc, tmp_path):
    root = ctc / "bacteria-phc"
    images = open_movie(root / "01")
    assert images.shape == (53, 1305, 1009) and images.dtype == np.uint8
    gt = read_ctc_tracks(root / "01_GT" / "TRA")
    res = read_ctc_tracks(root / "01_RES")
    assert (len(gt), _divisions(gt)) == (714, 356)
    assert (len(res), _divisions(res)) == (723, 360)
    masks = open_labels(root / "01_RES")
    check_same_grid(images, masks)
    # round trip of the first 5 frames of the peer result through write_ctc_result
    first = masks.data[:5]
    sub = res[res.begin <= 4].copy()
    sub["end"] = sub["end"].clip(upper=4)
    out = write_ctc_result(tmp_path / "01_RES", first, sub)
    np.testing.assert_array_equal(open_labels(out).data.compute(), first.compute())
    assert len(read_ctc_tracks(out)) == len(sub)
