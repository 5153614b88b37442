"""Readers of dynacell.io on tiny synthetic files of every format."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile
import zarr

from dynacell.errors import InvalidInputError
from dynacell.io import Movie, detect_format, open_labels, open_movie


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _ctc_folder(folder, frames, numbers, prefix="t"):
    folder.mkdir(parents=True, exist_ok=True)
    for n, f in zip(numbers, frames):
        tifffile.imwrite(folder / f"{prefix}{n:03d}.tif", f)
    return folder


def test_ctc_2d_lazy_and_frame_numbers(tmp_path, rng):
    frames = rng.integers(0, 255, (4, 6, 7), dtype=np.uint8)
    folder = _ctc_folder(tmp_path / "01", frames, range(4))
    movie = open_movie(folder)
    assert isinstance(movie, Movie)
    assert movie.axes == "TYX" and movie.shape == (4, 6, 7) and movie.dtype == np.uint8
    assert movie.data.chunksize == (1, 6, 7)
    assert movie.frame_indices == (0, 1, 2, 3)
    assert movie.metadata["format"] == "ctc"
    np.testing.assert_array_equal(movie.frame(2), frames[2])
    # lazy: pixels are read on compute, so a file changed after opening is seen then
    tifffile.imwrite(folder / "t003.tif", np.zeros((6, 7), np.uint8))
    assert movie.frame(3).max() == 0


def test_ctc_3d(tmp_path, rng):
    frames = rng.integers(0, 1000, (3, 5, 6, 7), dtype=np.uint16)
    movie = open_movie(_ctc_folder(tmp_path / "02", frames, range(3)))
    assert movie.axes == "TZYX" and movie.frame_shape == (5, 6, 7)
    np.testing.assert_array_equal(movie.data.compute(), frames)
    assert movie.voxel_size_um is None and movie.frame_interval_s is None


def test_missing_image_frame_is_a_gap_with_warning(tmp_path, rng, caplog):
    frames = rng.integers(0, 255, (3, 4, 4), dtype=np.uint8)
    folder = _ctc_folder(tmp_path / "01", frames, [0, 1, 3])
    with caplog.at_level(logging.WARNING, logger="dynacell.io.readers"):
        movie = open_movie(folder)
    assert movie.frame_indices == (0, 1, 3)
    assert not movie.has_frame(2)
    np.testing.assert_array_equal(movie.frame(3), frames[2])
    assert any("missing" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    with pytest.raises(InvalidInputError, match="frame 2 is not present"):
        movie.frame(2)


def test_labels_prefer_tra_masks_and_accept_track_file(tmp_path, rng):
    folder = tmp_path / "01_GT" / "TRA"
    masks = rng.integers(0, 5, (2, 4, 4), dtype=np.uint16)
    _ctc_folder(folder, masks, [2, 5], prefix="man_track")
    (folder / "man_track.txt").write_text("1 2 5 0\n")
    for path in (folder, folder / "man_track.txt"):
        labels = open_labels(path)
        assert labels.frame_indices == (2, 5)
        np.testing.assert_array_equal(labels.frame(5), masks[1])


def test_tiff_folder_sorted_by_number(tmp_path, rng):
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = rng.integers(0, 255, (3, 4, 5), dtype=np.uint8)
    for n, f in zip([9, 10, 100], frames):
        tifffile.imwrite(folder / f"img_{n}.tiff", f)
    assert detect_format(folder) == "tiff-folder"
    movie = open_movie(folder)
    assert movie.frame_indices == (9, 10, 100)
    np.testing.assert_array_equal(movie.frame(10), frames[1])


def test_tiff_folder_two_series_is_an_error(tmp_path, rng):
    folder = tmp_path / "frames"
    folder.mkdir()
    for name in ("a_1.tif", "b_1.tif"):
        tifffile.imwrite(folder / name, np.zeros((3, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="name patterns"):
        open_movie(folder)


def test_plain_3d_stack_is_tyx(tmp_path, rng):
    stack = rng.integers(0, 255, (5, 6, 7), dtype=np.uint8)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack)
    movie = open_movie(path)
    assert movie.axes == "TYX" and movie.shape == (5, 6, 7)
    assert movie.data.chunksize == (1, 6, 7)
    np.testing.assert_array_equal(movie.data.compute(), stack)


def test_imagej_hyperstack_axes_and_sizes(tmp_path, rng):
    stack = rng.integers(0, 255, (3, 4, 6, 7), dtype=np.uint8)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"axes": "TZYX", "spacing": 2.0, "unit": "um", "finterval": 1.5, "tunit": "min"})
    movie = open_movie(path)
    assert movie.axes == "TZYX" and movie.shape == (3, 4, 6, 7)
    assert movie.voxel_size_um == pytest.approx((2.0, 0.25, 0.25))
    assert movie.frame_interval_s == pytest.approx(90.0)
    np.testing.assert_array_equal(movie.frame(2), stack[2])


def test_imagej_z_only_stack_is_one_3d_frame(tmp_path, rng):
    stack = rng.integers(0, 255, (4, 6, 7), dtype=np.uint8)
    path = tmp_path / "zstack.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"})
    movie = open_movie(path)
    assert movie.axes == "TZYX" and movie.shape == (1, 4, 6, 7)


def test_ome_tiff_sizes_and_explicit_override(tmp_path, rng, caplog):
    stack = rng.integers(0, 255, (3, 2, 6, 7), dtype=np.uint16)
    path = tmp_path / "movie.ome.tif"
    tifffile.imwrite(path, stack, ome=True, metadata={
        "axes": "TZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 1500.0,
        "PhysicalSizeZUnit": "nm", "TimeIncrement": 2.0, "TimeIncrementUnit": "min"})
    movie = open_movie(path)
    assert movie.voxel_size_um == pytest.approx((1.5, 0.5, 0.5))
    assert movie.frame_interval_s == pytest.approx(120.0)
    with caplog.at_level(logging.INFO, logger="dynacell.io._meta"):
        over = open_movie(path, voxel_size_um=(1.0, 0.5, 0.5), frame_interval_s=60)
    assert over.voxel_size_um == (1.0, 0.5, 0.5) and over.frame_interval_s == 60
    assert sum("overrides" in r.getMessage() for r in caplog.records) == 2


def test_ambiguous_4d_stack_needs_axes(tmp_path, rng):
    stack = rng.integers(0, 255, (3, 4, 6, 7), dtype=np.uint8)
    path = tmp_path / "plain4d.tif"
    tifffile.imwrite(path, stack, metadata=None)
    with pytest.raises(InvalidInputError, match="give --axes"):
        open_movie(path)
    movie = open_movie(path, axes="ZTYX")
    assert movie.axes == "TZYX" and movie.shape == (4, 3, 6, 7)
    np.testing.assert_array_equal(movie.frame(1), stack[:, 1])


def test_plain_zarr_array(tmp_path, rng):
    arr = rng.integers(0, 255, (4, 5, 6), dtype=np.uint8)
    path = tmp_path / "plain.zarr"
    z = zarr.create_array(str(path), shape=arr.shape, dtype=arr.dtype, chunks=(2, 5, 6))
    z[:] = arr
    movie = open_movie(path)
    assert movie.axes == "TYX" and movie.data.chunksize == (1, 5, 6)
    np.testing.assert_array_equal(movie.data.compute(), arr)


def test_ome_zarr_v04_metadata(tmp_path, rng):
    arr = rng.integers(0, 255, (2, 1, 3, 5, 6), dtype=np.uint8)
    path = tmp_path / "img.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.create_array("0", shape=arr.shape, dtype=arr.dtype)[:] = arr
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "axes": [{"name": "t", "type": "time", "unit": "minute"}, {"name": "c", "type": "channel"},
                 {"name": "z", "type": "space", "unit": "micrometer"},
                 {"name": "y", "type": "space", "unit": "nanometer"},
                 {"name": "x", "type": "space", "unit": "nanometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [5, 1, 2, 200, 200]}]}],
    }]
    movie = open_movie(path)
    assert movie.axes == "TZYX" and movie.shape == (2, 3, 5, 6)
    assert movie.voxel_size_um == pytest.approx((2.0, 0.2, 0.2))
    assert movie.frame_interval_s == pytest.approx(300.0)
    np.testing.assert_array_equal(movie.frame(1), arr[1, 0])


def test_npz_keys_and_sizes(tmp_path, rng):
    images = rng.random((3, 5, 6)).astype(np.float32)
    labels = rng.integers(0, 4, (3, 5, 6)).astype(np.uint16)
    path = tmp_path / "seq.npz"
    np.savez(path, images=images, labels=labels, voxel_size_um=np.array([0.3, 0.3]), frame_interval_s=10.0)
    movie = open_movie(path)
    lab = open_labels(path)
    np.testing.assert_array_equal(movie.data.compute(), images)
    np.testing.assert_array_equal(lab.data.compute(), labels)
    assert movie.voxel_size_um == (0.3, 0.3) and movie.frame_interval_s == 10.0
    assert lab.dtype == np.uint16


def test_format_forced_and_unknown(tmp_path, rng):
    path = tmp_path / "stack.data"
    tifffile.imwrite(path, rng.integers(0, 255, (2, 4, 5), dtype=np.uint8), metadata=None)
    with pytest.raises(InvalidInputError, match="unknown movie format"):
        open_movie(path)
    assert open_movie(path, format="tiff-stack").shape == (2, 4, 5)
    with pytest.raises(InvalidInputError, match="unknown format="):
        open_movie(path, format="klb")


def test_tiff_cm_resolution_gives_pixel_size(tmp_path, rng):
    folder = tmp_path / "01"
    folder.mkdir()
    for t in range(2):
        tifffile.imwrite(folder / f"t{t:03d}.tif", np.zeros((4, 4), np.uint8), resolution=(1e4 / 0.24, 1e4 / 0.24),
                         resolutionunit="CENTIMETER")
    assert open_movie(folder).voxel_size_um == pytest.approx((0.24, 0.24))
    assert open_movie(folder, voxel_size_um=0.5).voxel_size_um == (0.5, 0.5)


def test_float_labels_whole_numbers_cast_with_warning(tmp_path):
    path = tmp_path / "labels.npz"
    np.savez(path, labels=np.array([[[0, 1], [2, 2]], [[0, 3], [3, 0]]], dtype=np.float32))
    with pytest.warns(UserWarning, match="cast to int32"):
        labels = open_labels(path)
    assert labels.dtype == np.int32
    assert labels.frame(1).tolist() == [[0, 3], [3, 0]]


def test_load_in_memory_reads_every_frame_once_within_the_budget(tmp_path):
    import tifffile

    from dynacell.io import open_labels
    from dynacell.io.movie import load_in_memory

    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    for t, f in enumerate(frames):
        tifffile.imwrite(tmp_path / f"mask{t:03d}.tif", f)
    lazy = open_labels(tmp_path)
    loaded = load_in_memory(lazy)
    assert isinstance(loaded.data, np.ndarray)
    np.testing.assert_array_equal(loaded.data, frames)
    assert (loaded.axes, loaded.frame_indices, loaded.source) == (lazy.axes, lazy.frame_indices, lazy.source)
    assert load_in_memory(lazy, max_bytes=frames.nbytes - 1) is lazy  # over the budget: stays lazy


def test_short_stack_read_as_colour_planes_says_which_axes_to_give(tmp_path, rng):
    """tifffile stores a plain (3 or 4, Y, X) stack as colour planes (S): the error names the --axes that fix it."""
    stack = rng.integers(0, 1000, (4, 30, 31), dtype=np.uint16)
    path = tmp_path / "four.tif"
    tifffile.imwrite(path, stack)
    with pytest.raises(InvalidInputError, match=r"axis 'S' \(colour samples\) has size 4.*--axes TYX"):
        open_movie(path)
    movie = open_movie(path, axes="TYX")
    assert movie.shape == (4, 30, 31)
    np.testing.assert_array_equal(movie.frame(3), stack[3])


def test_multi_position_ome_tiff_scene(tmp_path, monkeypatch, capsys):
    """A multi-position OME-TIFF: the first position by default, said in the run's notes; --scene picks another."""
    from _helpers import run_main, synthetic_movie

    from dynacell.io.checks import movie_notes

    a, _ = synthetic_movie(T=3, size=32)
    b, lab_b = synthetic_movie(T=3, size=32, seed=1)
    path = tmp_path / "plate.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        for m in (a, b):
            w.write(np.asarray(m.data)[:, None, None].astype(np.float32),
                    metadata={"axes": "TCZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    first = open_movie(path)
    np.testing.assert_array_equal(first.frame(1), np.asarray(a.data[1]))
    note = [n for n in movie_notes(first) if "scenes" in n]
    assert len(note) == 1 and "holds 2 scenes" in note[0] and "--scene 1 for the other" in note[0]
    second = open_movie(path, scene=1)
    np.testing.assert_array_equal(second.frame(2), np.asarray(b.data[2]))
    assert second.voxel_size_um == (0.5, 0.5) and not [n for n in movie_notes(second) if "scenes" in n]
    with pytest.raises(InvalidInputError, match="scene 2 does not exist; the file has 2"):
        open_movie(path, scene=2)
    np.savez(tmp_path / "m.npz", images=np.asarray(a.data))
    with pytest.raises(InvalidInputError, match=r"scene= \(--scene\) applies to multi-position"):
        open_movie(tmp_path / "m.npz", scene=0)
    np.savez(tmp_path / "lab.npz", labels=np.asarray(lab_b.data))
    code, _, err = run_main(monkeypatch, capsys, "run", str(path), "--scene", "1", "--labels", str(tmp_path / "lab.npz"),
                            "-o", str(tmp_path / "out"), "--no-video")
    assert code == 0, err
    import json

    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["parameters"]["scene"] == 1 and not any("scenes" in n for n in info["notes"])


def test_bioformats2raw_zarr_series_and_single_z_plane(tmp_path, rng):
    """OME-Zarr converted by bioformats2raw: numbered series under the root, 5-D TCZYX images with one z-plane."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    from dynacell.io.checks import movie_notes

    movies = [rng.integers(0, 1000, (3, 1, 1, 24, 20), dtype=np.uint16) for _ in range(2)]
    root = zarr.group(store=parse_url(tmp_path / "plate.zarr", mode="w").store)
    root.attrs["bioformats2raw.layout"] = 3
    for k, m in enumerate(movies):
        write_image(m, root.create_group(str(k)), axes="tczyx")
    first = open_movie(tmp_path / "plate.zarr")
    assert first.axes == "TYX" and first.shape == (3, 24, 20)  # Z = 1: a 2D movie, as TIFF and bioio read it
    np.testing.assert_array_equal(first.frame(2), movies[0][2, 0, 0])
    assert any("holds 2 scenes" in n for n in movie_notes(first))
    second = open_movie(tmp_path / "plate.zarr", scene=1)
    np.testing.assert_array_equal(second.frame(1), movies[1][1, 0, 0])
    assert not any("scenes" in n for n in movie_notes(second))
    with pytest.raises(InvalidInputError, match="scene 2 does not exist; the store has 2 series"):
        open_movie(tmp_path / "plate.zarr", scene=2)
    with pytest.raises(InvalidInputError, match="needs a store of several series"):
        open_movie(tmp_path / "plate.zarr" / "0", scene=0)
    with pytest.raises(InvalidInputError, match="several series.*give the labels of the one you run"):
        open_labels(tmp_path / "plate.zarr")  # never the first position's labels for another position, silently


def test_ome_zarr_image_given_as_labels_reads_its_label_image(tmp_path, rng):
    """`dynacell run image.zarr --labels image.zarr`: the image's own segmentation (labels/<name>) is read."""
    import zarr
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image, write_labels

    img = rng.integers(0, 1000, (3, 20, 24), dtype=np.uint16)
    lab = np.zeros((3, 20, 24), np.uint16)
    lab[:, 4:9, 5:11] = 7
    root = zarr.group(store=parse_url(tmp_path / "im.zarr", mode="w").store)
    write_image(img, root, axes="tyx")
    write_labels(lab, root, name="nuclei", axes="tyx")
    labels = open_labels(tmp_path / "im.zarr")
    np.testing.assert_array_equal(labels.frame(2), lab[2])
    np.testing.assert_array_equal(open_movie(tmp_path / "im.zarr").frame(2), img[2])  # the movie is the image
