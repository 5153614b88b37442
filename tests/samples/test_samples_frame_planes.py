"""3-D TIFF frames decoded only in the Z planes the crops read: the same crops as from whole frames."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import dynacell.samples.crops as crops_module
from dynacell.io import open_movie
from dynacell.io._tiff import _page_count, read_tiff_frame
from dynacell.io.scan import scan_labels
from dynacell.samples.crops import iter_frame_crops


def _write_movie(tmp_path, n_frames: int = 4, shape=(40, 32, 36), seed: int = 0):
    """Per-frame zlib TIFFs (a Z plane per page) of three drifting nuclei in planes ~14-26 of 40."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(shape)
    (tmp_path / "img").mkdir()
    (tmp_path / "lab").mkdir()
    starts = np.array([[15.3, 10.0, 9.0], [20.6, 22.0, 25.0], [24.2, 12.0, 27.0]])
    for t in range(n_frames):
        img = rng.integers(0, 80, shape, dtype=np.uint16)  # noise in every plane: a zero plane would show
        lab = np.zeros(shape, np.uint16)
        for k, c in enumerate(starts + t * np.array([0.8, 1.3, -0.9])):
            r2 = ((zz - c[0]) / 3.0) ** 2 + ((yy - c[1]) / 4.0) ** 2 + ((xx - c[2]) / 4.0) ** 2
            lab[r2 <= 1] = k + 1
            img += (800 * np.exp(-r2)).astype(np.uint16)
        tifffile.imwrite(tmp_path / "img" / f"t{t:03d}.tif", img, compression="zlib")
        tifffile.imwrite(tmp_path / "lab" / f"t{t:03d}.tif", lab, compression="zlib")
    return tmp_path / "img", tmp_path / "lab"


def _offsets(labels, objects) -> dict:
    """One-to-one offsets (same id = same track) from the scan's centroids."""
    cen = {t: dict(zip(objects[t][0].tolist(), objects[t][1])) for t in objects}
    last = max(cen)
    return {(t, i): (None if t == 0 else cen[t - 1][i] - c, None if t == last else cen[t + 1][i] - c)
            for t in cen for i, c in cen[t].items()}


@pytest.mark.parametrize("target, track", [(None, False), (None, True), (1.4, True), (0.7, False)])
def test_crops_from_part_decoded_frames_are_the_same(tmp_path, monkeypatch, target, track):
    img_dir, lab_dir = _write_movie(tmp_path)
    images, labels = open_movie(img_dir), open_movie(lab_dir)
    objects: dict = {}
    scan_labels(images, labels, progress=False, objects=objects)
    offsets = _offsets(labels, objects) if track else None
    kw = dict(size=10, voxel_size_um=(1.0, 1.0, 1.0) if target else None, target_voxel_um=target, context=True,
              neighbour_offsets_px=offsets, objects=objects)
    used: list = []
    real = crops_module._planes_needed
    monkeypatch.setattr(crops_module, "_planes_needed", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    part = [fc.x for fc in iter_frame_crops(images, labels, **kw)]
    (planes,) = used
    assert set(planes) == {0, 1, 2, 3}
    assert all(z0 > 0 and z1 < 40 for z0, z1 in planes.values())  # the frames really were decoded in part
    monkeypatch.setattr(crops_module, "_planes_needed", lambda *a, **k: {})
    whole = [fc.x for fc in iter_frame_crops(images, labels, **kw)]
    assert len(part) == len(whole) == 4
    for a, b in zip(part, whole):
        np.testing.assert_array_equal(a, b)


def test_no_planes_without_measured_nuclei_or_in_2d(tmp_path):
    img_dir, lab_dir = _write_movie(tmp_path, n_frames=2)
    images, labels = open_movie(img_dir), open_movie(lab_dir)
    assert crops_module._planes_needed(images, [0, 1], None, None, 10, None, None) == {}
    objects: dict = {}
    scan_labels(images, labels, progress=False, objects=objects)
    del objects[1]
    assert crops_module._planes_needed(images, [0, 1], objects, None, 10, None, None) == {}


def test_read_tiff_frame_planes(tmp_path):
    rng = np.random.default_rng(2)
    vol = rng.integers(1, 1000, (12, 20, 24), dtype=np.uint16)
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, vol, compression="zlib")
    with open(path, "rb") as fh:
        assert _page_count(fh.read()) == 12
    part = read_tiff_frame(str(path), (12, 20, 24), "uint16", 0, planes=(3, 8))
    np.testing.assert_array_equal(part[3:8], vol[3:8])
    assert not part[:3].any() and not part[8:].any()
    np.testing.assert_array_equal(read_tiff_frame(str(path), (12, 20, 24), "uint16", 0, planes=(0, 12)), vol)
    np.testing.assert_array_equal(read_tiff_frame(str(path), (12, 20, 24), "float32", 0, planes=(-5, 40)), vol)
    # one page holding the whole volume (not a plane per page): read whole
    big = tmp_path / "one_page.tif"
    tifffile.imwrite(big, vol[None], photometric="minisblack", planarconfig="separate")
    with open(big, "rb") as fh:
        assert _page_count(fh.read()) == 1
    np.testing.assert_array_equal(read_tiff_frame(str(big), (12, 20, 24), "uint16", 0, planes=(3, 8)), vol)
    bt = tmp_path / "big.tif"
    tifffile.imwrite(bt, vol, bigtiff=True)
    with open(bt, "rb") as fh:
        assert _page_count(fh.read()) == 12  # BigTIFF: a plane per page too
    part = read_tiff_frame(str(bt), (12, 20, 24), "uint16", 0, planes=(3, 8))
    np.testing.assert_array_equal(part[3:8], vol[3:8])
    assert _page_count(b"not a tiff") is None
