"""Folders of per-frame TIFFs are read file by file (no per-frame dask graph), with the lazy array's values."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from dynacell.io import open_labels, open_movie
from dynacell.io.movie import TIFF_FRAMES_KEY, Movie, load_in_memory


def _folder(tmp_path, name, frames, prefix):
    d = tmp_path / name
    d.mkdir()
    for t, f in enumerate(frames):
        tifffile.imwrite(d / f"{prefix}{t:03d}.tif", f, compression="zlib")
    return d


def test_frames_and_load_in_memory_equal_the_lazy_array(tmp_path) -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60000, size=(4, 9, 11)).astype(np.uint16)
    labs = rng.integers(0, 5, size=(4, 9, 11)).astype(np.uint16)
    movie = open_movie(_folder(tmp_path, "01", imgs, "t"))
    labels = open_labels(_folder(tmp_path, "01_SEG", labs, "mask"))
    for m, ref in ((movie, imgs), (labels, labs)):
        assert m._tiff_frames() is not None
        for i, t in enumerate(m.frame_indices):
            direct = m.frame(t)
            assert direct.dtype == ref.dtype and np.array_equal(direct, np.asarray(m.data[i]))
            assert np.array_equal(direct, ref[i])
        loaded = load_in_memory(m)
        assert isinstance(loaded.data, np.ndarray) and np.array_equal(loaded.data, ref)
        assert np.array_equal(load_in_memory(m, progress=True).data, ref)
        assert loaded._tiff_frames() is None  # in memory: frames come from the array


def test_a_changed_array_is_not_read_from_the_files(tmp_path) -> None:
    labs = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    with pytest.warns(UserWarning, match="cast to int32"):
        labels = open_labels(_folder(tmp_path, "float", labs, "mask"))  # float labels are cast by a dask step
    assert TIFF_FRAMES_KEY not in labels.metadata and labels.frame(1).dtype == np.int32
    movie = open_movie(_folder(tmp_path, "img", labs.astype(np.uint8), "t"))
    other = Movie(movie.data[::-1], movie.axes, metadata=movie.metadata)  # another array, same metadata
    assert other._tiff_frames() is None
    assert np.array_equal(other.frame(0), labs[1].astype(np.uint8))


@pytest.mark.parametrize("compression,predictor,dtype", [
    (None, None, np.uint8), ("zlib", None, np.uint16), ("lzw", True, np.uint16), ("zlib", True, np.int32),
    ("zlib", None, np.float32), ("packbits", None, np.uint8)])
def test_read_tiff_frame_equals_tifffile(tmp_path, compression, predictor, dtype) -> None:
    """The libtiff route of read_tiff_frame gives tifffile's pixels (compressions, predictors, dtypes)."""
    from dynacell.io._tiff import read_tiff_frame

    rng = np.random.default_rng(1)
    a = (rng.random((37, 53)) * 1000).astype(dtype)
    f = tmp_path / "t000.tif"
    tifffile.imwrite(f, a, compression=compression, predictor=predictor, rowsperstrip=7)
    got = read_tiff_frame(str(f), a.shape, np.dtype(dtype).str, 0)
    assert got.dtype == a.dtype and np.array_equal(got, a)
    for out_dtype in (dtype, np.float64):  # decoded into out; another dtype: decoded, then cast in
        out = np.full((2, *a.shape), 7, dtype=out_dtype)
        res = read_tiff_frame(str(f), a.shape, np.dtype(out_dtype).str, 0, out=out[1])
        assert np.shares_memory(res, out[1]) and res.shape == a.shape
        assert np.array_equal(out[1], a.astype(out_dtype)) and (out[0] == 7).all()
    with pytest.raises(ValueError, match="shape"):
        read_tiff_frame(str(f), a.shape, np.dtype(dtype).str, 0, out=np.empty((a.shape[0] + 1, a.shape[1]), dtype))
    stack = rng.integers(0, 200, size=(3, 8, 9)).astype(np.uint8)  # a 3-D frame: every page in one libtiff call
    tifffile.imwrite(tmp_path / "z.tif", stack, compression=compression)
    assert np.array_equal(read_tiff_frame(str(tmp_path / "z.tif"), stack.shape, "|u1", 0), stack)


@pytest.mark.parametrize("layout", ["plain", "imagej", "lzw-predictor", "tiled", "extra-page", "thumbnail",
                                    "single-plane"])
def test_3d_frame_read_in_one_call_equals_tifffile(tmp_path, layout) -> None:
    """A 3-D frame (one Z plane per page) decoded by libtiff's all-pages call gives tifffile's first series; files
    whose pages are not exactly that series fall back to tifffile."""
    from dynacell.io._tiff import _libtiff_frame, read_tiff_frame

    rng = np.random.default_rng(3)
    stack = rng.integers(0, 60000, size=(5, 12, 10)).astype(np.uint16)
    f = tmp_path / "t000.tif"
    kw = {"plain": {}, "imagej": {"imagej": True}, "lzw-predictor": {"compression": "lzw", "predictor": True},
          "tiled": {"tile": (16, 16), "compression": "zlib"}}.get(layout, {"compression": "zlib"})
    data = stack[:1] if layout == "single-plane" else stack
    tifffile.imwrite(f, data, **kw)
    if layout == "extra-page":  # a second series of one page of the same shape: libtiff would stack 6 pages
        tifffile.imwrite(f, stack[0] // 2, append=True)
    if layout == "thumbnail":  # a second series of another shape: libtiff skips it
        tifffile.imwrite(f, stack[0, :4, :4], append=True)
    ref = np.squeeze(tifffile.imread(f, series=0))
    shape = ref.shape if layout != "single-plane" else (1, 12, 10)
    got = read_tiff_frame(str(f), shape, "<u2", 0)
    assert got.dtype == np.uint16 and np.array_equal(got.reshape(ref.shape), ref)
    out = np.full(shape, 9, np.uint16)  # decoded into a preallocated frame (load_in_memory), same fallbacks
    assert read_tiff_frame(str(f), shape, "<u2", 0, out=out) is out and np.array_equal(out, got)
    assert np.array_equal(got.reshape(ref.shape), np.squeeze(data))
    fast = _libtiff_frame(str(f), shape)
    # the shape check sends these to tifffile: a 6th page of another series; one page where 3 axes were expected
    assert (fast is None) == (layout in ("extra-page", "single-plane"))


def test_read_tiff_frame_truncated_file_names_the_file(tmp_path) -> None:
    from dynacell.errors import FormatError
    from dynacell.io._tiff import read_tiff_frame

    f = tmp_path / "t000.tif"
    tifffile.imwrite(f, np.arange(4096, dtype=np.uint16).reshape(64, 64), compression="zlib")
    f.write_bytes(f.read_bytes()[:-300])
    with pytest.raises(FormatError, match="t000.tif"):
        read_tiff_frame(str(f), (64, 64), "<u2", 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.uint64, np.int64, np.bool_])
def test_present_ids_equal_unique(dtype) -> None:
    """write_ctc_result's id listing (a count per id when ids are small) equals numpy.unique without 0."""
    from dynacell.io.ctc import _present_ids

    rng = np.random.default_rng(2)
    mask = rng.integers(0, 2 if dtype == np.bool_ else 90, size=(17, 23)).astype(dtype)
    ref = np.unique(mask)
    ref = ref[ref != 0]
    got = _present_ids(mask)
    assert got.dtype == ref.dtype and np.array_equal(got, ref)
    if dtype in (np.uint64, np.int64):  # ids beyond the dense range: the sorted route
        big = mask.astype(dtype) * (2**40)
        ref = np.unique(big)
        assert np.array_equal(_present_ids(big), ref[ref != 0])
    if dtype == np.int32:
        neg = mask.copy()
        neg[0, 0] = -3
        assert _present_ids(neg).min() == -3
