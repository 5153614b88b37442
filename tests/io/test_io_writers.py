"""Writers of dynacell.io: round trips through the readers, atomic outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.io import (
    open_labels,
    open_movie,
    read_ctc_tracks,
    write_ctc_result,
    write_ome_zarr,
    write_tiff_series,
)
from dynacell.lineage import Lineage


@pytest.fixture
def rng():
    return np.random.default_rng(1)


@pytest.mark.parametrize("shape", [(3, 6, 7), (2, 4, 6, 7)])
def test_tiff_series_round_trip(tmp_path, rng, shape):
    frames = rng.integers(0, 60000, shape, dtype=np.uint16)
    vs = (0.3, 0.3) if len(shape) == 3 else (2.0, 0.3, 0.3)
    out = write_tiff_series(tmp_path / "series", frames, frame_indices=list(range(4, 4 + shape[0])),
                            voxel_size_um=vs, frame_interval_s=30.0)
    assert sorted(p.name for p in out.iterdir()) == [f"t{i:03d}.tif" for i in range(4, 4 + shape[0])]
    movie = open_movie(out)
    np.testing.assert_array_equal(movie.data.compute(), frames)
    assert movie.frame_indices == tuple(range(4, 4 + shape[0]))
    assert movie.voxel_size_um == pytest.approx(vs) and movie.frame_interval_s == 30.0


def test_tiff_series_from_movie_and_generator(tmp_path, rng):
    frames = rng.integers(0, 255, (3, 5, 5), dtype=np.uint8)
    src = write_tiff_series(tmp_path / "a", frames, voxel_size_um=(0.5, 0.5))
    copy = write_tiff_series(tmp_path / "b", open_movie(src), prefix="img")
    assert (copy / "img002.tif").is_file()
    movie = open_movie(copy, format="tiff-folder")
    assert movie.voxel_size_um == (0.5, 0.5)
    np.testing.assert_array_equal(movie.data.compute(), frames)
    gen = write_tiff_series(tmp_path / "c", (f for f in frames))
    np.testing.assert_array_equal(open_movie(gen).data.compute(), frames)


def test_outputs_are_atomic(tmp_path, rng):
    frames = rng.integers(0, 255, (2, 4, 4), dtype=np.uint8)
    out = write_tiff_series(tmp_path / "out", frames)
    with pytest.raises(OutputExistsError, match="overwrite"):
        write_tiff_series(out, frames[::-1])
    np.testing.assert_array_equal(open_movie(out).frame(0), frames[0])
    write_tiff_series(out, frames[::-1], overwrite=True)
    np.testing.assert_array_equal(open_movie(out).frame(0), frames[1])
    bad = [frames[0], np.zeros((5, 5), np.uint8)]
    with pytest.raises(InvalidInputError, match="frame 1 has shape"):
        write_tiff_series(tmp_path / "bad", bad)
    assert not (tmp_path / "bad").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary sibling left


@pytest.mark.parametrize(("axes", "shape"), [("TYX", (3, 6, 7)), ("TZYX", (2, 3, 6, 7))])
def test_ome_zarr_round_trip(tmp_path, rng, axes, shape):
    arr = rng.integers(0, 255, shape, dtype=np.uint8)
    vs = (0.2, 0.2) if axes == "TYX" else (1.0, 0.2, 0.2)
    path = write_ome_zarr(tmp_path / "m.zarr", arr, axes, vs, 570.0)
    movie = open_movie(path)
    assert movie.axes == axes and movie.data.chunksize == (1, *shape[1:])
    assert movie.voxel_size_um == pytest.approx(vs) and movie.frame_interval_s == pytest.approx(570.0)
    np.testing.assert_array_equal(movie.data.compute(), arr)
    again = write_ome_zarr(tmp_path / "n.zarr", movie)
    assert open_movie(again).voxel_size_um == pytest.approx(vs)
    unknown = write_ome_zarr(tmp_path / "u.zarr", arr, axes)
    assert open_movie(unknown).voxel_size_um is None and open_movie(unknown).frame_interval_s is None


def test_ome_zarr_bad_axes(tmp_path):
    with pytest.raises(InvalidInputError, match="do not fit"):
        write_ome_zarr(tmp_path / "x.zarr", np.zeros((2, 3, 4, 5)), "TYX")
    with pytest.raises(InvalidInputError, match="do not fit"):
        write_ome_zarr(tmp_path / "x.zarr", np.zeros((2, 3, 4)), "YTX")
    assert not (tmp_path / "x.zarr").exists()


def _two_cells():
    """Track 1 lives in frames 0-1 and divides into 2 and 3 (frames 2-3).

        1 ── 1 ─┬─ 2 ── 2
                └─ 3 ── 3
    """
    masks = np.zeros((4, 6, 6), np.uint16)
    masks[0:2, 1:3, 1:3] = 1
    masks[2:4, 0:2, 0:2] = 2
    masks[2:4, 4:6, 4:6] = 3
    tracks = pd.DataFrame({"label": [1, 2, 3], "begin": [0, 2, 2], "end": [1, 3, 3], "parent": [0, 1, 1]})
    return masks, tracks


def test_ctc_result_round_trip(tmp_path):
    masks, tracks = _two_cells()
    out = write_ctc_result(tmp_path / "01_RES", masks, tracks)
    assert (out / "res_track.txt").read_text() == "1 0 1 0\n2 2 3 1\n3 2 3 1\n"
    pd.testing.assert_frame_equal(read_ctc_tracks(out), tracks, check_dtype=False)
    labels = open_labels(out)
    assert labels.dtype == np.uint16 and labels.frame_indices == (0, 1, 2, 3)
    np.testing.assert_array_equal(labels.data.compute(), masks)


def test_ctc_result_label_not_in_tracks(tmp_path):
    masks, tracks = _two_cells()
    masks[3, 0, 5] = 1  # track 1 ended at frame 1
    with pytest.raises(InvalidInputError, match=r"label 1 in frame 3 is not a track active.*0\.\.1"):
        write_ctc_result(tmp_path / "res", masks, tracks)
    assert not (tmp_path / "res").exists()


def test_ctc_result_from_lineage_relabels(tmp_path):
    masks = np.zeros((3, 6, 6), np.uint16)
    masks[0, 1:3, 1:3] = 5
    masks[1, 1:3, 1:3] = 7
    masks[2, 0:2, 0:2] = 1
    masks[2, 4:6, 4:6] = 2
    lin = Lineage(n_frames=3)
    for node in [(0, 5), (1, 7), (2, 1), (2, 2)]:
        lin.add_node(node)
    lin.add_edge((0, 5), (1, 7))
    lin.add_edge((1, 7), (2, 1))
    lin.add_edge((1, 7), (2, 2))
    out = write_ctc_result(tmp_path / "res", masks, lin)
    tracks = read_ctc_tracks(out)
    assert tracks.to_numpy().tolist() == [[1, 0, 1, 0], [2, 2, 2, 1], [3, 2, 2, 1]]
    labels = open_labels(out)
    assert labels.frame(0)[1, 1] == labels.frame(1)[1, 1] == 1
    assert {int(labels.frame(2)[0, 0]), int(labels.frame(2)[5, 5])} == {2, 3}
    masks[1, 4, 4] = 9
    with pytest.raises(InvalidInputError, match="label 9 in frame 1 is not a node"):
        write_ctc_result(tmp_path / "res2", masks, lin)


@pytest.mark.parametrize("shape", [(37, 53), (4, 19, 23), (1, 8, 8)])
@pytest.mark.parametrize("zlibng", [True, False])
def test_write_zlib_tiff_decodes_to_the_array(tmp_path, monkeypatch, shape, zlibng) -> None:
    """The fast zlib TIFF (zlib-ng strips handed to tifffile) and its fallback decode to the array, with
    tifffile, libtiff and dynacell's frame reader; compression tag 8 (deflate) either way."""
    import imagecodecs
    import tifffile

    from dynacell.io._tiff import read_tiff_frame
    from dynacell.io.writers import write_zlib_tiff

    if not zlibng:
        monkeypatch.setattr(imagecodecs.ZLIBNG, "available", False, raising=False)
    rng = np.random.default_rng(len(shape))
    a = np.zeros(shape, np.uint16)
    a[..., 2:7, 3:9] = rng.integers(1, 65535, size=a[..., 2:7, 3:9].shape)
    f = tmp_path / "mask000.tif"
    write_zlib_tiff(f, a)
    with tifffile.TiffFile(f) as tif:
        assert all(p.compression == 8 for p in tif.pages)
        assert np.array_equal(tif.series[0].asarray().reshape(shape), a)
    assert np.array_equal(read_tiff_frame(str(f), shape, "<u2", 0), a)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        write_zlib_tiff(tmp_path / "x.tif", np.zeros(5, np.uint16))
