"""BoxCache: the track-context crops of consecutive frames share resampled boxes, with the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

import dynacell.samples.crops as crops_module
from dynacell.io.movie import Movie
from dynacell.samples.crops import BoxCache, iter_frame_crops


def _moving_embryo(n_frames: int = 5, shape=(12, 40, 44), seed: int = 0):
    """Three ellipsoid nuclei drifting by a few pixels a frame (fractional centroids), noisy uint16 images."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    img = np.zeros((n_frames, *shape), np.uint16)
    lab = np.zeros((n_frames, *shape), np.uint16)
    starts = np.array([[5.0, 10.0, 9.0], [6.0, 27.0, 30.0], [4.0, 12.0, 34.0]])
    for t in range(n_frames):
        for k, c in enumerate(starts + t * np.array([0.3, 1.7, -1.2]) * (1 + 0.3 * np.arange(3))[:, None]):
            r2 = ((zz - c[0]) / 2.5) ** 2 + ((yy - c[1]) / 5.0) ** 2 + ((xx - c[2]) / 4.5) ** 2
            lab[t][r2 <= 1] = k + 1
            img[t] += (900 * np.exp(-r2)).astype(np.uint16)
        img[t] += rng.integers(0, 60, shape, dtype=np.uint16)
    return img, lab


def _offsets(lab: np.ndarray) -> dict:
    """One-to-one track offsets (same id = same track), a NaN-free drift for the middle nucleus at t=2."""
    from dynacell.io.objects import nucleus_centroids

    cen = {t: dict(zip(*nucleus_centroids(lab[t]))) for t in range(len(lab))}
    out = {}
    for t in range(len(lab)):
        for i, c in cen[t].items():
            prev = None if t == 0 else np.asarray(cen[t - 1][i]) - np.asarray(c)
            nxt = None if t == len(lab) - 1 else np.asarray(cen[t + 1][i]) - np.asarray(c)
            out[(t, int(i))] = (prev, nxt)
    out[(2, 2)] = (np.array([0.2, 1.0, -0.4]), out[(2, 2)][1])  # a drift estimate: its own box, not the parent's
    return out


def _crops(images, labels, offsets, *, cache: bool, monkeypatch, voxel, target, made=None):
    with monkeypatch.context() as m:
        if not cache:
            m.setattr(crops_module, "BoxCache", lambda: None)
        else:
            def make():
                box = BoxCache()
                if made is not None:
                    made.append(box)
                return box

            m.setattr(crops_module, "BoxCache", make)
        return [fc.x for fc in iter_frame_crops(images, labels, size=8, voxel_size_um=voxel, target_voxel_um=target,
                                                context=True, neighbour_offsets_px=offsets)]


@pytest.mark.parametrize("voxel, target", [
    ((1.0, 1.0, 1.0), 1.6),  # every axis a window around the centre
    ((3.0, 1.0, 1.0), 1.3),  # z read whole (12 planes against a window of more): per-box matrices
])
def test_box_cache_gives_the_same_crops(monkeypatch, voxel, target):
    img, lab = _moving_embryo()
    images, labels = Movie(img, "TZYX", source="img"), Movie(lab, "TZYX", source="lab")
    offsets = _offsets(lab)
    made: list = []
    plain = _crops(images, labels, offsets, cache=False, monkeypatch=monkeypatch, voxel=voxel, target=target)
    shared = _crops(images, labels, offsets, cache=True, monkeypatch=monkeypatch, voxel=voxel, target=target,
                    made=made)
    assert len(plain) == len(shared) == 5
    for a, b in zip(plain, shared):
        np.testing.assert_array_equal(a, b)  # bit for bit
    (box,) = made
    assert box.hits + box.misses == 5 * 3 * 3  # 3 nuclei, 3 image channels, 5 frames
    assert box.hits >= 20  # one-to-one links: the parent's / child's own box is reused
    assert box.misses >= 15


def test_box_cache_not_used_without_track_context(monkeypatch):
    img, lab = _moving_embryo(n_frames=3)
    images, labels = Movie(img, "TZYX", source="img"), Movie(lab, "TZYX", source="lab")
    made: list = []
    _crops(images, labels, None, cache=True, monkeypatch=monkeypatch, voxel=(1.0, 1.0, 1.0), target=1.6, made=made)
    assert made == []


def test_box_cache_keys_frames_centres_and_offsets():
    rng = np.random.default_rng(1)
    frame = rng.random((10, 30, 30)).astype(np.float32)
    offs = [np.linspace(-4, 4, 6)] * 3
    centres = np.array([[5, 15, 15], [5, 15, 12]], np.intp)  # differ in x only
    valid = np.ones((2, 6, 6, 6), bool)
    valid[1, 0] = False
    cache = BoxCache()
    first = cache.boxes(3, frame, centres, offs, valid)
    assert (cache.hits, cache.misses) == (0, 2)
    assert np.all(first[1, 0] == 0)  # invalid samples zeroed
    assert not np.array_equal(first[0, 1:], first[1, 1:])
    again = cache.boxes(3, frame, centres[::-1], offs, valid[::-1])
    np.testing.assert_array_equal(again, first[::-1])
    assert (cache.hits, cache.misses) == (2, 2)
    cache.boxes(4, frame * 2, centres[:1], offs, valid[:1])  # another frame number: made anew
    assert cache.misses == 3
    cache.keep({4})  # frame 3 forgotten
    cache.boxes(3, frame, centres[:1], offs, valid[:1])
    assert cache.misses == 4
    other = cache.boxes(4, frame * 2, centres[:1], [np.linspace(-3, 3, 6)] * 3, valid[:1])  # other offsets
    assert cache.misses == 5 and not np.array_equal(other[0], first[0] * 2)
