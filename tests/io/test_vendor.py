"""Vendor formats through bioio (a CZI file written by pylibCZIrw, an OME-TIFF written by tifffile) and
PNG / JPEG frame series, behind open_movie."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io import open_labels, open_movie
from dynacell.io.readers import detect_format
from dynacell.io.vendor import detect_vendor_format, read_vendor


def _write_czi(path, n_t=3, n_z=2, n_c=1):
    pyczi = pytest.importorskip("pylibCZIrw.czi")
    with pyczi.create_czi(str(path), exist_ok=True) as w:
        for t in range(n_t):
            for z in range(n_z):
                for c in range(n_c):
                    w.write(data=np.full((16, 20), 100 * c + 10 * t + z, np.uint16), plane={"T": t, "Z": z, "C": c})
        w.write_metadata(document_name="m", channel_names={c: f"ch{c}" for c in range(n_c)},
                         scale_x=0.5e-6, scale_y=0.5e-6, scale_z=2e-6)
    return path


@pytest.mark.slow
def test_czi_3d_with_pixel_size(tmp_path):
    pytest.importorskip("bioio_czi")
    p = _write_czi(tmp_path / "embryo.czi")
    assert detect_format(p) == "czi"
    m = open_movie(p)
    assert m.axes == "TZYX" and m.shape == (3, 2, 16, 20)
    assert m.voxel_size_um == pytest.approx((2.0, 0.5, 0.5))
    assert int(np.asarray(m.frame(2))[1].max()) == 21  # t=2, z=1
    assert open_movie(p, voxel_size_um=(1.0, 0.25, 0.25)).voxel_size_um == (1.0, 0.25, 0.25)


def test_czi_channels(tmp_path):
    pytest.importorskip("bioio_czi")
    p = _write_czi(tmp_path / "two.czi", n_t=2, n_z=1, n_c=2)
    data, axes, frames, vs, _, meta = read_vendor(p, channel=1)
    assert axes == "TYX" and frames == [0, 1] and vs == pytest.approx((0.5, 0.5))
    assert int(np.asarray(data[1]).max()) == 110 and meta["channel_names"] == ["ch0", "ch1"]
    with pytest.raises(InvalidInputError, match="channel 5 does not exist.*2 channel"):
        read_vendor(p, channel=5)


def test_ome_tiff_through_bioio(tmp_path):
    pytest.importorskip("bioio_ome_tiff")
    import tifffile

    p = tmp_path / "m.ome.tif"
    data = np.arange(4 * 8 * 10, dtype=np.uint16).reshape(4, 1, 1, 8, 10)
    tifffile.imwrite(p, data, ome=True, metadata={"axes": "TCZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3,
                                                  "TimeIncrement": 120.0, "TimeIncrementUnit": "s"})
    assert detect_vendor_format(p) == "ome-tiff"
    arr, axes, frames, vs, dt, _ = read_vendor(p)
    assert axes == "TYX" and arr.shape == (4, 8, 10) and vs == pytest.approx((0.3, 0.3))
    np.testing.assert_array_equal(np.asarray(arr[3]), data[3, 0, 0])


def test_png_series(tmp_path):
    import imageio.v3 as iio

    folder = tmp_path / "pngs"
    folder.mkdir()
    frames = [np.full((12, 15), 20 * t, np.uint8) for t in range(3)]
    for t, f in enumerate(frames):
        iio.imwrite(folder / f"frame_{t + 1:03d}.png", f)
    assert detect_format(folder) == "image-series"
    m = open_movie(folder, voxel_size_um=(0.65, 0.65), frame_interval_s=300)
    assert m.axes == "TYX" and m.shape == (3, 12, 15) and m.frame_indices == (1, 2, 3)
    assert int(np.asarray(m.frame(3)).max()) == 40 and m.frame_interval_s == 300


def test_colour_png_needs_a_channel(tmp_path):
    import imageio.v3 as iio

    folder = tmp_path / "rgb"
    folder.mkdir()
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 1] = 200
    iio.imwrite(folder / "t1.png", rgb)
    iio.imwrite(folder / "t2.jpg", rgb)
    with pytest.raises(InvalidInputError, match="colour image; choose the nuclear channel"):
        np.asarray(read_vendor(folder)[0])
    data = read_vendor(folder, channel=1)[0]
    assert int(np.asarray(data[0]).max()) == 200
    with pytest.raises(InvalidInputError, match="a colour label image.*export the labels as 16-bit grey"):
        open_labels(folder)
    mean = open_movie(folder, channel="mean")  # the brightness: what dynacell particles reads from colour videos
    assert mean.dtype == np.float32 and float(mean.frame(2).max()) == pytest.approx(200 / 3)
    with pytest.raises(InvalidInputError, match="'mean'.*applies to PNG/JPEG series only"):
        np.savez(tmp_path / "m.npz", images=np.zeros((3, 4, 4)))
        open_movie(tmp_path / "m.npz", channel="mean")


def test_bad_vendor_files(tmp_path):
    pytest.importorskip("bioio_nd2")
    bad = tmp_path / "broken.nd2"
    bad.write_bytes(b"not an nd2 file")
    assert detect_format(bad) == "nd2"
    with pytest.raises(FormatError, match="broken.nd2: cannot read it as a nd2 file"):
        open_movie(bad)
    with pytest.raises(InvalidInputError, match="no such file"):
        read_vendor(tmp_path / "missing.czi")
    other = tmp_path / "movie.avi"
    other.write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"\.nd2, \.czi, \.lif"):
        detect_format(other)
