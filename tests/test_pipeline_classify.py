"""Tests of :func:`dynacell.states.classify.classify_movie` (serial, Dask) and the classical segmenter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import FixedClassifier, synthetic_movie

from dynacell import STATES
from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.segment.classical import ClassicalParams, segment_frame, segment_movie
from dynacell.states.classify import STATE_COLUMNS, classify_movie, crop_parameters


class AreaClassifier(FixedClassifier):
    """Stand-in classifier whose output depends on the crop: p_mitotic = mean of the t channel."""

    def predict_proba(self, x):
        p = np.zeros((len(x), 4))
        p[:, 1] = np.clip(x[:, 1].reshape(len(x), -1).mean(axis=1), 0, 1)
        p[:, 0] = 1.0 - p[:, 1]
        return p


def test_classify_movie_table_and_batches():
    images, labels = synthetic_movie(T=4)
    clf = FixedClassifier()
    df = classify_movie(images, labels, clf, batch_size=1, progress=False)
    assert list(df.columns) == list(STATE_COLUMNS)
    assert len(df) == 2 * 3 + 3  # frames 0-2: 2 nuclei; frame 3: 3
    assert clf.n_calls == len(df)  # batch_size=1: one forward pass per nucleus
    assert np.allclose(df[[f"p_{s}" for s in STATES]].sum(axis=1), 1.0)
    assert (df["track_id"] == 0).all()  # no lineage given
    # centroid of nucleus A (static at y=20, x=20)
    a = df[(df.y.round() == 20) & (df.x.round() == 20)]
    assert len(a) == 4


def test_classify_movie_frames_subset_and_ndim_check():
    images, labels = synthetic_movie(T=4)
    df = classify_movie(images, labels, FixedClassifier(), frames=[1, 3], progress=False)
    assert sorted(df["t"].unique()) == [1, 3]
    with pytest.raises(InvalidInputError, match="3D model"):
        classify_movie(images, labels, FixedClassifier(ndim=3), progress=False)
    with pytest.raises(InvalidInputError, match="batch_size"):
        classify_movie(images, labels, FixedClassifier(), batch_size=0)


def test_crop_parameters_from_card():
    clf = FixedClassifier()
    assert crop_parameters(clf, 2)["size"] == (16, 16)

    class CardOnly:  # a dict card is no longer read by guessing keys: the crop size must be stated
        card = {"crop_size_px": [8, 12, 12], "target_voxel_um": 1.0}

    with pytest.raises(InvalidInputError, match="crop size"):
        crop_parameters(CardOnly(), 3)
    from dynacell.states import load_model

    got = crop_parameters(load_model("nuclei-3d"), 3)
    assert got == {"size": (16, 16, 16), "target_voxel_um": None, "target_diameter_px": 6.0, "scale_frames": 3,
                   "scale_units": "um"}


def test_classify_movie_on_dask_cluster_matches_serial():
    distributed = pytest.importorskip("distributed")
    images, labels = synthetic_movie(T=4)
    clf = AreaClassifier()
    serial = classify_movie(images, labels, clf, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        parallel = classify_movie(images, labels, clf, progress=False, scheduler=client)
        by_address = classify_movie(images, labels, clf, progress=False, scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(serial, parallel)
    pd.testing.assert_frame_equal(serial, by_address)
    assert serial["p_mitotic"].nunique() > 1  # the stand-in's output really depends on the crops


def test_segment_frame_splits_touching_nuclei():
    yy, xx = np.mgrid[:60, :80]
    img = np.zeros((60, 80), np.float32)
    for cx in (28, 44):  # two discs of radius 9 touching at x=36
        img[(yy - 30) ** 2 + (xx - cx) ** 2 <= 81] = 100
    img += np.random.default_rng(0).normal(0, 1, img.shape).astype(np.float32)
    lab = segment_frame(img, params=ClassicalParams(smoothing_sigma_um=1.0, min_distance_um=5))
    assert lab.dtype == np.int32 and lab.max() == 2
    assert lab[30, 24] != lab[30, 48] and lab[30, 24] > 0 and lab[30, 48] > 0
    assert segment_frame(np.zeros((10, 10))).max() == 0
    with pytest.raises(InvalidInputError):
        segment_frame(img, voxel_size_um=(1.0, 1.0, 1.0))


def test_segment_movie_is_lazy_store(tmp_path):
    images, labels = synthetic_movie(T=3)
    seg = segment_movie(images, tmp_path / "labels.zarr", progress=False)
    assert seg.shape == images.shape and seg.metadata["segmenter"] == "classical"
    for t in range(3):
        assert seg.frame(t).max() == len(np.unique(labels.frame(t))) - 1


def test_physical_crop_model_without_voxel_size_is_flagged(tmp_path):
    from dynacell.pipeline import run
    from dynacell.states.classify import check_model_for_movie

    images, labels = synthetic_movie(T=3)
    clf = FixedClassifier()
    clf.target_voxel_um = 1.0
    notes = check_model_for_movie(images, clf)
    assert len(notes) == 1 and "--voxel-size-um" in notes[0]
    res = run(images, labels=labels, model=clf, out=tmp_path / "o", progress=False, video=False)
    assert res.info["notes"][: len(notes)] == notes  # then the unknown voxel size / frame interval notes
    assert any("voxel size" in n and "unknown" in n for n in res.info["notes"][len(notes):])
    assert "voxel size" in (tmp_path / "o" / "report.html").read_text()
    assert check_model_for_movie(Movie(images.data, "TYX", voxel_size_um=(0.5, 0.5)), clf) == []


def test_run_with_dask_scheduler_matches_serial(tmp_path):
    distributed = pytest.importorskip("distributed")
    from dynacell.pipeline import run

    images, labels = synthetic_movie(T=4)
    serial = run(images, labels=labels, model=AreaClassifier(), out=tmp_path / "a", progress=False, video=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        par = run(images, labels=labels, model=AreaClassifier(), out=tmp_path / "b", progress=False, video=False,
                  scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(serial.states, par.states)
    assert par.info["parameters"]["scheduler"] == cluster.scheduler_address
