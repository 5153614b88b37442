"""Tests of the one crop function (dynacell.samples.crops)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from skimage.measure import regionprops

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.samples import (
    crop_window,
    crop_windows,
    crops_for_frame,
    iter_frame_crops,
    normalize_crops,
    nucleus_centroids,
)


def _disk_movie(T=4, shape=(60, 70), seed=0):
    """Noise movie with two square nuclei (ids 3 and 9) and brighter nuclei."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 200, (T, *shape)).astype(np.uint16)
    lab = np.zeros((T, *shape), np.uint16)
    lab[:, 2:9, 1:8] = 3          # touches the top-left border
    lab[:, 30:40, 30:44] = 9      # well inside
    img[lab > 0] += 500
    return Movie(img, "TYX"), Movie(lab, "TYX")


def test_crop_is_zero_padded_not_shifted_at_border():
    img = (np.arange(40 * 50).reshape(40, 50) % 97 + 1).astype(np.uint16)
    lab = np.zeros((40, 50), np.int32)
    lab[0:3, 0:3] = 4
    x = crop_window((img, img, img), lab, 4, (1.0, 1.0), size=16)
    assert x.shape == (4, 16, 16) and x.dtype == np.float32
    # centroid pixel (1, 1) sits at crop index (8, 8); so image pixel (0, 0) is at (7, 7)
    assert x[3, 7:10, 7:10].sum() == 9 and x[3].sum() == 9
    # everything before row/col 7 is outside the frame: zero in every channel
    assert np.all(x[:, :7, :] == 0) and np.all(x[:, :, :7] == 0)
    # inside, the raw values keep their order (a shifted window would move the mask off centre)
    assert np.any(x[1, 7:, 7:] > 0)


def test_crop_size_parity_and_rounding():
    img = np.random.default_rng(1).random((30, 30)).astype(np.float32)
    lab = np.zeros((30, 30), np.uint8)
    lab[10, 20] = 1
    for size in (7, 8):
        x = crop_window((None, img, None), lab, 1, (10.4, 19.6), size=size)
        yy, xx = np.nonzero(x[3])
        assert (yy[0], xx[0]) == (size // 2, size // 2)


def test_normalisation_range_and_affine_invariance():
    rng = np.random.default_rng(2)
    img = rng.normal(100, 20, (3, 40, 40)).astype(np.float32)
    lab = np.zeros((40, 40), np.int32)
    lab[15:25, 15:25] = 1
    x = crop_window(tuple(img), lab, 1, (20, 20), size=24)
    assert x[:3].min() == 0.0 and x[:3].max() == 1.0
    # percentiles (1, 99.8) of the three raw channels jointly -> [0, 1]
    lo, hi = np.percentile(img[:, 8:32, 8:32], (1, 99.8))
    expected = np.clip((img[1, 8:32, 8:32] - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(x[1], expected, atol=1e-5)
    x2 = crop_window(tuple(img * 3.0 + 1000), lab, 1, (20, 20), size=24)
    np.testing.assert_allclose(x, x2, atol=1e-4)


def test_normalisation_excludes_padding_and_flat_crops_are_zero():
    raw = np.full((2, 3, 4, 4), 50.0, np.float32)
    raw[1] = np.arange(48, dtype=np.float32).reshape(3, 4, 4)
    valid = np.ones((2, 4, 4), bool)
    valid[1, :, :2] = False
    out = normalize_crops(raw, valid)
    assert np.all(out[0] == 0)
    assert np.all(out[1][:, :, :2] == 0)
    inside = raw[1][:, :, 2:]
    lo, hi = np.percentile(inside, (1, 99.8))
    np.testing.assert_allclose(out[1][:, :, 2:], np.clip((inside - lo) / (hi - lo), 0, 1), atol=1e-5)


def test_first_and_last_frame_use_frame_t():
    images, labels = _disk_movie(T=3)
    x0, _, _ = crops_for_frame(images, labels, 0, size=16)
    x2, _, _ = crops_for_frame(images, labels, 2, size=16)
    np.testing.assert_array_equal(x0[:, 0], x0[:, 1])
    np.testing.assert_array_equal(x2[:, 2], x2[:, 1])
    x1, _, _ = crops_for_frame(images, labels, 1, size=16)
    assert not np.array_equal(x1[:, 0], x1[:, 1])


def test_crops_for_frame_matches_crop_window_and_filters_background():
    images, labels = _disk_movie()
    x, ids, cen = crops_for_frame(images, labels, 1, size=20)
    assert ids.tolist() == [3, 9] and x.shape == (2, 4, 20, 20) and cen.shape == (2, 3)
    assert 0 not in ids
    frames = (images.frame(0), images.frame(1), images.frame(2))
    for i, lab in enumerate(ids):
        np.testing.assert_array_equal(x[i], crop_window(frames, labels.frame(1), lab, cen[i], size=20))
    assert np.all(x[:, 3].sum(axis=(1, 2)) > 0)


def test_centroids_match_regionprops():
    _, labels = _disk_movie()
    ids, cen = nucleus_centroids(labels.frame(0))
    props = {p.label: p.centroid for p in regionprops(labels.frame(0))}
    assert set(ids.tolist()) == set(props)
    for i, lab in enumerate(ids):
        np.testing.assert_allclose(cen[i, 1:], props[lab])
        assert cen[i, 0] == 0.0


def test_empty_label_frame_gives_no_crop_and_warns(caplog):
    images, labels = _disk_movie()
    lab = np.asarray(labels.data).copy()
    lab[2] = 0
    labels = Movie(lab, "TYX", source="fake-labels")
    with caplog.at_level(logging.WARNING, logger="dynacell.samples.crops"):
        x, ids, cen = crops_for_frame(images, labels, 2, size=16)
    assert x.shape == (0, 4, 16, 16) and ids.size == 0 and cen.shape == (0, 3)
    assert "frame 2" in caplog.text and "fake-labels" in caplog.text


def test_bad_input_raises_clear_errors():
    img = np.zeros((10, 10), np.uint16)
    with pytest.raises(InvalidInputError, match="shape"):
        crop_window((img, img, img), np.zeros((10, 11), np.int32), 1, (5, 5))
    with pytest.raises(InvalidInputError, match="integer"):
        crop_window((img, img, img), np.zeros((10, 10), np.float32), 1, (5, 5))
    with pytest.raises(InvalidInputError, match="positive integer"):
        crop_window((img, img, img), np.zeros((10, 10), np.int32), 1, (5, 5), size=0)
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        crop_window((img, img, img), np.zeros((10, 10), np.int32), 1, (5, 5), target_voxel_um=1.0)
    images, labels = _disk_movie()
    with pytest.raises(InvalidInputError, match="frame 7"):
        crops_for_frame(images, labels, 7)
    other = Movie(np.zeros((4, 10, 10), np.uint16), "TYX")
    with pytest.raises(InvalidInputError, match="shape"):
        crops_for_frame(images, other, 0)


def test_3d_crop_per_axis_size_and_physical_resampling():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 1000, (12, 40, 40)).astype(np.uint16)
    lab = np.zeros(img.shape, np.int32)
    lab[4:8, 10:30, 10:30] = 2
    cen = (6.0, 20.0, 20.0)
    x = crop_window((img, img, img), lab, 2, cen, size=(8, 16, 16))
    assert x.shape == (4, 8, 16, 16)
    # scale 2 on every axis: samples every second voxel around the rounded centroid
    xr = crop_window((img, img, img), lab, 2, cen, size=8, voxel_size_um=(1.0, 0.5, 0.5), target_voxel_um=(2.0, 1.0, 1.0))
    sub = img[0:12:2, 12:28:2, 12:28:2].astype(np.float32)  # z 6 + 2*(k-4) -> -2..12, keep 0..10
    lo, hi = np.percentile(np.stack([sub] * 3), (1, 99.8))  # three channels jointly
    np.testing.assert_allclose(xr[1, 1:7], np.clip((sub - lo) / (hi - lo), 0, 1), atol=1e-5)
    assert np.all(xr[:, 0] == 0) and np.all(xr[:, 7] == 0)  # z = -2 and z = 12 lie outside the volume
    # the physical box: mask spans 4 voxels (z 4..7 at 1 µm) -> 2 output slices at 2 µm
    assert np.count_nonzero(xr[3].any(axis=(1, 2))) == 2


def test_iter_frame_crops_streams_and_skips_frames_without_labels(caplog):
    images, labels = _disk_movie(T=6)
    reads = []

    class CountingMovie(Movie):
        def frame(self, t):
            reads.append(t)
            return super().frame(t)

    counted = CountingMovie(images.data, "TYX", source="img")
    sparse = Movie(np.asarray(labels.data)[[0, 2, 3, 5]], "TYX", frame_indices=(0, 2, 3, 5), source="tra")
    with caplog.at_level(logging.WARNING, logger="dynacell.samples.crops"):
        out = list(iter_frame_crops(counted, sparse, size=12))
    assert [fc.t for fc in out] == [0, 2, 3, 5]
    assert "1, 4" in caplog.text
    # each image frame read at most once although windows overlap: memory holds 3 frames
    assert len(reads) == len(set(reads))
    ref, _, _ = crops_for_frame(images, sparse, 3, size=12)
    np.testing.assert_array_equal(out[2].x, ref)


def test_crop_windows_batch_equals_single_crops():
    images, labels = _disk_movie()
    frames = (images.frame(1), images.frame(2), images.frame(3))
    ids, cen = nucleus_centroids(labels.frame(2))
    batch = crop_windows(frames, labels.frame(2), ids, cen, size=(10, 14))
    assert batch.shape == (2, 4, 10, 14)
    for i in range(2):
        np.testing.assert_array_equal(batch[i], crop_window(frames, labels.frame(2), ids[i], cen[i], size=(10, 14)))


@pytest.mark.data
def test_real_bacteria_frame_crops(ctc):
    from dynacell.io import open_labels, open_movie

    images = open_movie(ctc / "bacteria-phc" / "01")
    labels = open_labels(ctc / "bacteria-phc" / "01_GT" / "TRA")
    x, ids, cen = crops_for_frame(images, labels, 10, size=32)
    assert x.shape[0] == ids.size > 0 and x.shape[1:] == (4, 32, 32)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert np.all(x[:, 3, 16, 16] + x[:, 3].reshape(len(x), -1).max(axis=1) > 0)
    assert np.unique(labels.frame(10)).size - 1 == ids.size
