"""One measuring pass per label frame in ``dynacell run``: the scan's objects given to the linker, the crops and
the CTC writer give the same results as their own passes; a TIFF folder opens without importing dask."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from dynacell.io import open_labels, open_movie, write_ctc_result
from dynacell.io.movie import Movie, load_in_memory
from dynacell.io.scan import frame_objects, scan_labels
from dynacell.io import objects as centroids_module
from dynacell.samples.crops import iter_frame_crops
from dynacell.track import link_labels


def _random_movie(seed: int = 0, n_frames: int = 7, size: int = 72, n_nuclei: int = 9, first: int = 5):
    """Discs moving by a few pixels a frame, ids permuted every frame, frame numbers from ``first``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    pos = rng.uniform(8, size - 8, (n_nuclei, 2))
    radius = rng.uniform(2.5, 5.0, n_nuclei)
    labs = np.zeros((n_frames, size, size), np.uint16)
    imgs = rng.normal(10, 2, (n_frames, size, size)).astype(np.float32)
    for t in range(n_frames):
        ids = rng.permutation(np.arange(1, 40))[:n_nuclei]
        for k in range(n_nuclei):
            disc = (yy - pos[k, 0]) ** 2 + (xx - pos[k, 1]) ** 2 <= radius[k] ** 2
            labs[t][disc] = ids[k]
            imgs[t][disc] += 50
        pos = np.clip(pos + rng.normal(0, 1.5, pos.shape), 6, size - 6)
    frames = tuple(range(first, first + n_frames))
    return Movie(imgs, "TYX", frame_indices=frames), Movie(labs, "TYX", frame_indices=frames)


@pytest.fixture
def counted(monkeypatch):
    """Count the calls of the one centroid function."""
    calls = []
    real = centroids_module.nucleus_centroids

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(centroids_module, "nucleus_centroids", counting)
    return calls


@pytest.mark.parametrize("seed", [0, 1])
def test_linker_with_the_scans_objects_links_the_same(seed, counted) -> None:
    images, labels = _random_movie(seed)
    own, _ = link_labels(labels, progress=False)
    n_own = len(counted)
    objects: dict = {}
    scan_labels(images, labels, progress=False, objects=objects)
    assert sorted(objects) == list(labels.frame_indices)
    n_scan = len(counted) - n_own
    shared, _ = link_labels(labels, progress=False, objects=objects)
    assert len(counted) == n_own + n_scan  # the linker measured no frame again
    assert n_own == labels.n_frames and n_scan == labels.n_frames
    assert sorted(shared.graph.edges) == sorted(own.graph.edges)
    assert dict(shared.graph.nodes(data=True)) == dict(own.graph.nodes(data=True))


def test_crops_with_the_scans_objects_are_the_same(counted) -> None:
    images, labels = _random_movie(2)
    own = list(iter_frame_crops(images, labels, size=16, context=True))
    objects: dict = {}
    scan_labels(images, labels, progress=False, objects=objects)
    before = len(counted)
    shared = list(iter_frame_crops(images, labels, size=16, context=True, objects=objects))
    assert len(counted) == before
    for a, b in zip(own, shared, strict=True):
        assert a.t == b.t
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.label_ids, b.label_ids)
        np.testing.assert_array_equal(a.centroids, b.centroids)
        np.testing.assert_array_equal(a.edge_px, b.edge_px)


def test_frame_objects_is_nucleus_centroids_and_fills_the_cache() -> None:
    _, labels = _random_movie(3)
    t = labels.frame_indices[2]
    cache: dict = {}
    got = frame_objects(labels.frame(t), t, cache)
    ref = centroids_module.nucleus_centroids(labels.frame(t), return_sizes=True, return_boxes=True)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    assert list(cache) == [t] and frame_objects(np.zeros((3, 3), np.uint8), t, cache) is cache[t]


def test_ctc_writer_with_the_scans_ids_writes_the_same_bytes(tmp_path) -> None:
    images, labels = _random_movie(4)
    lin, _ = link_labels(labels, progress=False)
    ids = scan_labels(images, labels, progress=False)
    a = write_ctc_result(tmp_path / "own", labels, lin)
    b = write_ctc_result(tmp_path / "shared", labels, lin, frame_ids=ids)
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == labels.n_frames + 1
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def _tiff_folder(tmp_path, frames, prefix="t"):
    d = tmp_path / "01"
    d.mkdir()
    for t, f in enumerate(frames):
        tifffile.imwrite(d / f"{prefix}{t:03d}.tif", f, compression="zlib")
    return d


def test_tiff_folder_array_acts_as_the_dask_array(tmp_path) -> None:
    rng = np.random.default_rng(5)
    ref = rng.integers(0, 60000, size=(4, 9, 11)).astype(np.uint16)
    movie = open_movie(_tiff_folder(tmp_path, ref))
    data = movie.data
    assert data.shape == ref.shape and data.dtype == ref.dtype and data.ndim == 3 and len(data) == 4
    np.testing.assert_array_equal(np.asarray(data), ref)
    np.testing.assert_array_equal(np.asarray(data[1:3, 2]), ref[1:3, 2])  # indexing: the lazy dask array
    assert hasattr(data[0], "compute") and data.chunks == ((1, 1, 1, 1), (9,), (11,))
    np.testing.assert_array_equal(data.max(axis=0).compute(), ref.max(axis=0))
    back = pickle.loads(pickle.dumps(data))
    np.testing.assert_array_equal(np.asarray(back), ref)
    np.testing.assert_array_equal(load_in_memory(movie).data, ref)


def test_opening_and_reading_a_tiff_folder_imports_no_dask(tmp_path) -> None:
    rng = np.random.default_rng(6)
    labs = rng.integers(0, 4, size=(3, 8, 8)).astype(np.uint16)
    folder = _tiff_folder(tmp_path, labs, prefix="mask")
    code = ("import sys; from dynacell.io import open_labels; from dynacell.io.movie import load_in_memory;"
            f"m = open_labels({str(folder)!r}); f = m.frame(1); a = load_in_memory(m).data;"
            "print('dask' in sys.modules, int(f.sum()), int(a.sum()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", str(int(labs[1].sum())), str(int(labs.sum()))]
    assert np.array_equal(np.asarray(open_labels(folder).data), labs)


def test_scan_measure_table_equals_per_frame_dataframes() -> None:
    import pandas as pd

    from dynacell.io.objects import nucleus_centroids

    images, labels = _random_movie(7)
    measured: list = []
    scan_labels(images, labels, progress=False, measure=measured)
    parts = []
    for t in labels.frame_indices:
        u, cen, size = nucleus_centroids(labels.frame(t), return_sizes=True)
        parts.append(pd.DataFrame({"t": int(t), "label": u, "z": cen[:, 0], "y": cen[:, 1], "x": cen[:, 2],
                                   "size_px": size}))
    pd.testing.assert_frame_equal(measured[0], pd.concat(parts, ignore_index=True), check_exact=True)
