"""The box-by-box paths of ``dynacell run`` (session 12, tenth pass): the same results as the whole-frame code."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.io.objects import boxes_cover_little, nucleus_centroids
from dynacell.track import linking


def _sparse_movie(seed: int, ndim: int, n_frames: int = 5) -> np.ndarray:
    """Overlapping random blobs (later ones paint over earlier ones: non-convex nuclei, overlapping boxes) in
    frames large enough for :func:`boxes_cover_little`."""
    rng = np.random.default_rng(seed)
    shape = (12, 90, 100) if ndim == 3 else (180, 210)
    data = np.zeros((n_frames, *shape), np.uint16)
    centre = [rng.uniform(s / 4, 3 * s / 4) for s in shape]
    labs = rng.choice(np.arange(1, 300), size=8, replace=False)  # sparse ids
    starts = [[ci + rng.normal(0, 6) for ci in centre] if lab % 2 else [rng.uniform(0, s) for s in shape]
              for lab in labs]
    radii = rng.uniform(2, 6, size=len(labs))
    for t in range(n_frames):
        for lab, c0, r in zip(labs, starts, radii, strict=True):
            c = [ci + t * 0.8 + rng.normal(0, 0.7) for ci in c0]  # drift and jitter: overlaps between frames
            sl = tuple(slice(max(0, int(ci - r) - 1), max(0, min(s, int(ci + r) + 2))) for ci, s in zip(c, shape))
            grid = np.ogrid[sl]
            data[t][sl][sum((g - ci) ** 2 for g, ci in zip(grid, c)) <= r * r] = lab + 7 * (t % 2)
    return data


def _objects(data):
    return {t: nucleus_centroids(frame, return_sizes=True, return_boxes=True) for t, frame in enumerate(data)}


def test_boxes_cover_little_rule() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 20, 30]])
    assert boxes_cover_little((1024, 1024), boxes, 2)
    assert not boxes_cover_little((1024, 1024), boxes, 3)  # one row per id
    assert not boxes_cover_little((1024, 1024), None, 2)
    assert not boxes_cover_little((40, 40), boxes, 2)  # more than one id per 4,096 pixels
    big = np.array([[0, 0, 600, 600]])
    assert not boxes_cover_little((1024, 1024), big, 1)  # a third of the frame: read it whole


@pytest.mark.parametrize("ndim,seed", [(2, 0), (2, 1), (3, 2)])
def test_foreground_in_boxes_same_pixels_as_foreground(ndim, seed) -> None:
    for frame in _sparse_movie(seed, ndim):
        ids, _, _, boxes = nucleus_centroids(frame, return_sizes=True, return_boxes=True)
        assert boxes_cover_little(frame.shape, boxes, ids.size)
        a = linking._foreground(frame, ids)
        b = linking._foreground_in_boxes(frame, ids, boxes)
        assert np.array_equal(a[2], b[2]) and a[2].dtype == b[2].dtype
        order_a, order_b = np.lexsort(a[0][::-1]), np.lexsort(b[0][::-1])
        for x, y in zip(a[0], b[0], strict=True):
            assert x.dtype == y.dtype and np.array_equal(x[order_a], y[order_b])
        for x, y in zip(a[1:], b[1:]):
            assert x.dtype == y.dtype
        assert np.array_equal(a[1][order_a], b[1][order_b]) and np.array_equal(a[3][order_a], b[3][order_b])
        assert np.array_equal(b[2][b[3]], b[1])  # each pixel's id index points at its id


@pytest.mark.parametrize("ndim,seed", [(2, 3), (2, 4), (3, 5)])
def test_flow_overlaps_with_boxes_equal_whole_frames(ndim, seed, monkeypatch) -> None:
    from dynacell.io.movie import Movie

    data = _sparse_movie(seed, ndim)
    movie = Movie(data, "TYX" if ndim == 2 else "TZYX")
    rng = np.random.default_rng(seed)
    flow = {(i, int(x)): rng.normal(0, 2, 3) for i in range(len(data)) for x in np.unique(data[i])[1:]}
    whole = linking._flow_overlaps(movie, flow, 2, False)
    calls = []
    original = linking._foreground_in_boxes
    monkeypatch.setattr(linking, "_foreground_in_boxes", lambda *a: calls.append(1) or original(*a))
    boxed = linking._flow_overlaps(movie, flow, 2, False, _objects(data))
    assert len(calls) == len(data)  # every frame went box by box
    assert len(whole) > 3
    assert list(boxed.items()) == list(whole.items())  # same pairs, counts and order


def test_relabel_in_boxes_equals_the_lookup() -> None:
    from dynacell.io.ctc import _relabel_in_boxes

    for ndim, seed in ((2, 6), (3, 7)):
        for frame in _sparse_movie(seed, ndim):
            ids, _, _, boxes = nucleus_centroids(frame, return_sizes=True, return_boxes=True)
            new = np.random.default_rng(seed).permutation(np.arange(1, ids.size + 1)) + 40
            lut = np.zeros(int(ids[-1]) + 1, np.uint16)
            lut[ids] = new
            got = _relabel_in_boxes(frame, ids, new, boxes, np.uint16)
            assert got.dtype == np.uint16 and np.array_equal(got, lut[frame])
            wrong = boxes.copy()
            wrong[0, ndim:] -= 1  # a box one pixel short misses pixels: the test can fail
            assert not np.array_equal(_relabel_in_boxes(frame, ids, new, wrong, np.uint16), lut[frame])


def test_write_ctc_result_with_boxes_writes_the_same_files(tmp_path, monkeypatch) -> None:
    from dynacell.io import ctc
    from dynacell.io.movie import Movie
    from dynacell.track import link_labels

    data = _sparse_movie(8, 2)
    movie = Movie(data, "TYX")
    lin, _ = link_labels(movie, progress=False)
    objects = _objects(data)
    plain = ctc.write_ctc_result(tmp_path / "plain", movie, lin)
    calls = []
    original = ctc._relabel_in_boxes
    monkeypatch.setattr(ctc, "_relabel_in_boxes", lambda *a: calls.append(1) or original(*a))
    boxed = ctc.write_ctc_result(tmp_path / "boxed", movie, lin, frame_ids={t: o[0] for t, o in objects.items()},
                                 frame_boxes={t: o[3] for t, o in objects.items()})
    assert len(calls) == len(data)
    names = sorted(p.name for p in plain.iterdir())
    assert names == sorted(p.name for p in boxed.iterdir()) and len(names) == len(data) + 1
    for name in names:
        assert (plain / name).read_bytes() == (boxed / name).read_bytes()


@pytest.mark.parametrize("ndim,seed", [(2, 9), (3, 10)])
def test_overlaps_in_boxes_equal_overlaps(ndim, seed) -> None:
    data = _sparse_movie(seed, ndim)
    rng = np.random.default_rng(seed)
    shape = np.array(data.shape[1:])
    shifts = [np.zeros(ndim), rng.normal(0, 2, ndim), np.full(ndim, 0.5), -shape + 3, shape * 2, rng.normal(0, 40, ndim)]
    n_pairs = 0
    for t in range(len(data) - 1):
        a, b = data[t], data[t + 1]
        ids, _, _, boxes = nucleus_centroids(a, return_sizes=True, return_boxes=True)
        for d in shifts:
            want = linking._overlaps(a, b, d)
            got = linking._overlaps_in_boxes(a, ids, boxes, b, d)
            for x, y in zip(want, got, strict=True):
                assert x.dtype == y.dtype and np.array_equal(x, y)
            n_pairs += len(want[0])
            if len(want[0]):
                short = boxes.copy()
                short[:, ndim:] -= 1  # boxes one pixel short lose pixels: the test can fail
                lost = linking._overlaps_in_boxes(a, ids, short, b, d)
                assert not (np.array_equal(lost[0], want[0]) and np.array_equal(lost[2], want[2]))
    assert n_pairs > 10


@pytest.mark.parametrize("ndim,seed", [(2, 11), (3, 12)])
def test_scan_with_boxes_equals_whole_frames(ndim, seed, monkeypatch) -> None:
    from dynacell.io.movie import Movie

    data = _sparse_movie(seed, ndim, n_frames=6)
    movie = Movie(data, "TYX" if ndim == 2 else "TZYX")
    objects = _objects(data)
    calls = []
    original = linking._overlaps_in_boxes
    monkeypatch.setattr(linking, "_overlaps_in_boxes", lambda *a: calls.append(1) or original(*a))
    boxed = linking._scan(movie, overlap_frames=2, drift=True, progress=False, objects=objects)
    assert len(calls) == 2 * len(data) - 3  # every pair of frames went box by box
    monkeypatch.setattr(linking, "boxes_cover_little", lambda *a: False)
    whole = linking._scan(movie, overlap_frames=2, drift=True, progress=False, objects=objects)
    assert len(calls) == 2 * len(data) - 3
    assert len(whole[1]) > 5 and list(boxed[1].items()) == list(whole[1].items())
    assert np.array_equal(boxed[2], whole[2]) and boxed[0].equals(whole[0])
