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
