"""Bad input to dynacell.io: every error names the file (and frame / line) and says what to do."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io import (
    check_same_grid,
    open_labels,
    open_movie,
    read_ctc_tracks,
    validate_tracks,
)


def _frames(folder, shapes, dtype=np.uint8, prefix="t"):
    folder.mkdir(parents=True, exist_ok=True)
    for t, shape in enumerate(shapes):
        tifffile.imwrite(folder / f"{prefix}{t:03d}.tif", np.ones(shape, dtype), compression="zlib")
    return folder


def test_truncated_tiff_header_names_file_and_frame(tmp_path):
    folder = _frames(tmp_path / "01", [(64, 64)] * 3)
    bad = folder / "t001.tif"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(FormatError, match=r"t001\.tif \(frame 1\): cannot open.*truncated"):
        open_movie(folder)


def test_truncated_tiff_pixels_fail_on_read(tmp_path):
    folder = tmp_path / "01"
    folder.mkdir()
    for t in range(3):
        tifffile.imwrite(folder / f"t{t:03d}.tif", np.ones((64, 64), np.uint8))
    bad = folder / "t001.tif"
    bad.write_bytes(bad.read_bytes()[:-1000])
    movie = open_movie(folder)  # the header is intact: opening stays lazy
    np.testing.assert_array_equal(movie.frame(0), 1)
    with pytest.raises(FormatError, match=r"t001\.tif \(frame 1\): cannot read the pixels.*truncated"):
        movie.frame(1)


def test_corrupt_compressed_pixels_fail_on_read(tmp_path):
    folder = _frames(tmp_path / "01", [(64, 64)] * 2)
    path = folder / "t001.tif"
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[0]
    data = bytearray(path.read_bytes())
    data[offset:offset + 8] = b"\xff" * 8  # corrupt the zlib stream, header intact
    path.write_bytes(bytes(data))
    movie = open_movie(folder)
    with pytest.raises(FormatError, match=r"t001\.tif \(frame 1\)"):
        movie.frame(1)


def test_non_tiff_named_tif(tmp_path):
    folder = _frames(tmp_path / "01", [(8, 8)] * 2)
    (folder / "t002.tif").write_text("this is not an image\n")
    with pytest.raises(FormatError, match=r"t002\.tif.*not a TIFF"):
        open_movie(folder)
    with pytest.raises(FormatError, match=r"t002\.tif"):
        open_movie(folder / "t002.tif")


def test_mismatched_frame_shapes_name_first_offender(tmp_path):
    folder = _frames(tmp_path / "01", [(8, 8), (8, 8), (8, 9), (7, 7)])
    with pytest.raises(InvalidInputError, match=r"t002\.tif \(frame 2\).*\(8, 9\).*\(8, 8\)"):
        open_movie(folder)


def test_wrong_axes(tmp_path):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 8, 9), np.uint8), metadata=None)
    with pytest.raises(InvalidInputError, match="does not fit"):
        open_movie(path, axes="TYX")
    with pytest.raises(InvalidInputError, match="one letter of"):
        open_movie(path, axes="TQYX")
    with pytest.raises(InvalidInputError, match=r"3 channels \(axes TCYX.*channel="):
        open_movie(path, axes="TCYX")
    with pytest.raises(InvalidInputError, match="channel 3 does not exist.*3 channel"):
        open_movie(path, axes="TCYX", channel=3)
    with pytest.raises(InvalidInputError, match="channel= applies to stacks"):
        open_movie(_frames(tmp_path / "02", [(4, 4)]), channel=0)
    with pytest.raises(InvalidInputError, match="axes= applies to stacks"):
        open_movie(_frames(tmp_path / "01", [(4, 4)]), axes="TYX")


def test_non_integer_labels(tmp_path):
    folder = _frames(tmp_path / "lab", [(4, 4)] * 2, dtype=np.float32)
    tifffile.imwrite(folder / "t001.tif", np.full((4, 4), 0.5, np.float32))
    with pytest.warns(UserWarning, match="cast to int32"):
        labels = open_labels(folder)
    with pytest.raises(InvalidInputError, match=r"t001\.tif \(frame 1\).*fractional"):
        labels.frame(1)
    tifffile.imwrite(folder / "t000.tif", np.full((4, 4), 0.25, np.float32))
    with pytest.raises(InvalidInputError, match=r"t000\.tif \(frame 0\).*fractional"):
        open_labels(folder)


def test_nan_in_float_labels(tmp_path):
    folder = _frames(tmp_path / "lab", [(4, 4)] * 2, dtype=np.float32)
    img = np.ones((4, 4), np.float32)
    img[1, 2] = np.nan
    tifffile.imwrite(folder / "t001.tif", img)
    with pytest.warns(UserWarning):
        labels = open_labels(folder)
    with pytest.raises(InvalidInputError, match=r"t001\.tif \(frame 1\).*1 NaN"):
        labels.data.compute()


def test_nan_in_float_images_named_on_read(tmp_path):
    """NaN pixels (e.g. registration padding) would give confident, wrong states: every frame read says where."""
    folder = _frames(tmp_path / "01", [(6, 5)] * 3, dtype=np.float32)
    img = np.ones((6, 5), np.float32)
    img[2, 3] = img[4, 1] = np.nan
    img[5, 0] = np.inf
    tifffile.imwrite(folder / "t002.tif", img)
    movie = open_movie(folder)
    assert movie.frame(1).shape == (6, 5)  # clean frames read as before
    with pytest.raises(InvalidInputError, match=r"t002\.tif \(frame 2\): 3 NaN or infinite.*\(y, x\) = \(2, 3\)"):
        movie.frame(2)
    stack = np.ones((2, 3, 4, 4), np.float64)
    stack[1, 2, 0, 1] = np.nan
    tifffile.imwrite(tmp_path / "s.tif", stack, metadata={"axes": "TZYX"}, imagej=False)
    m3 = open_movie(tmp_path / "s.tif")
    with pytest.raises(InvalidInputError, match=r"s\.tif frame 1: 1 NaN.*\(z, y, x\) = \(2, 0, 1\)"):
        m3.frame(1)
    assert np.isfinite(m3.frame(0)).all()


def test_complex_labels_rejected(tmp_path):
    path = tmp_path / "l.npz"
    np.savez(path, labels=np.zeros((2, 3, 3), np.complex64))
    with pytest.raises(InvalidInputError, match=r"l\.npz: labels must be integers"):
        open_labels(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 0 3 0\n2 4 x 1\n", r"line 2: '2 4 x 1' is not four integers"),
        ("1 0 3 0\n2 4 5\n", r"line 2: '2 4 5' is not four integers"),
        ("1 0 3 0\n2 5 4 0\n", r"line 2.*begins at frame 5 after it ends at 4"),
        ("1 0 3 0\n2 4 5 7\n", r"line 2.*parent 7, which is not listed"),
        ("1 0 3 0\n1 4 5 0\n", r"line 2.*listed twice"),
        ("0 0 3 0\n", r"line 1.*label must be > 0"),
        ("1 0 3 0\n2 3 5 1\n", r"line 2.*begins at frame 3 but its parent 1 ends at 3"),
    ],
)
def test_malformed_track_lines(tmp_path, text, match):
    path = tmp_path / "res_track.txt"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=match) as info:
        read_ctc_tracks(path)
    assert str(path) in str(info.value)


def test_track_file_missing_in_folder(tmp_path):
    with pytest.raises(InvalidInputError, match="no man_track.txt or res_track.txt"):
        read_ctc_tracks(tmp_path)


def test_validate_tracks_table():
    import pandas as pd

    with pytest.raises(InvalidInputError, match=r"lacks columns \['parent'\]"):
        validate_tracks(pd.DataFrame({"label": [1], "begin": [0], "end": [1]}))
    with pytest.raises(InvalidInputError, match="row 0: column 'end'"):
        validate_tracks(pd.DataFrame({"label": [1], "begin": [0], "end": [1.5], "parent": [0]}))


def test_empty_and_missing_paths(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="folder is empty"):
        open_movie(tmp_path / "empty")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="no TIFF frames"):
        open_movie(tmp_path / "notes")
    with pytest.raises(InvalidInputError, match="no such file"):
        open_movie(tmp_path / "absent")
    with pytest.raises(InvalidInputError, match="needs a folder"):
        open_movie(tmp_path / "notes" / "readme.txt", format="ctc")
    with pytest.raises(InvalidInputError, match="needs a file"):
        open_movie(tmp_path / "notes", format="npz")


def test_check_same_grid(tmp_path):
    images = open_movie(_frames(tmp_path / "01", [(8, 9)] * 2))
    labels = open_labels(_frames(tmp_path / "TRA", [(8, 8)] * 2, np.uint16, prefix="man_track"))
    with pytest.raises(InvalidInputError, match=r"\(8, 8\).*\(8, 9\)") as info:
        check_same_grid(images, labels)
    assert "TRA" in str(info.value) and "01" in str(info.value)
    check_same_grid(images, np.zeros((5, 8, 9), np.uint16))
    a = open_movie(_frames(tmp_path / "a", [(4, 4)]), voxel_size_um=(0.5, 0.5))
    b = open_labels(_frames(tmp_path / "b", [(4, 4)], np.uint16), voxel_size_um=(0.25, 0.25))
    with pytest.raises(InvalidInputError, match="voxel size"):
        check_same_grid(a, b)


def test_unreadable_npz_and_zarr(tmp_path):
    import zarr

    bad = tmp_path / "movie.npz"
    bad.write_text("not a zip archive")
    with pytest.raises(FormatError, match=r"movie\.npz: cannot read as \.npz"):
        open_movie(bad)
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 3, 3)), b=np.zeros((2, 3, 3)))
    with pytest.raises(InvalidInputError, match=r"two\.npz: arrays \['a', 'b'\]"):
        open_movie(tmp_path / "two.npz")
    store = tmp_path / "bad.zarr"
    root = zarr.open_group(str(store), mode="w")
    root.attrs["multiscales"] = [{"axes": ["t", "y", "x"], "datasets": [{"path": "missing"}]}]
    with pytest.raises(FormatError, match=r"bad\.zarr: malformed OME-NGFF"):
        open_movie(store)


def test_channel_is_read_from_stack_zarr_and_npz(tmp_path):
    import zarr

    arr = np.zeros((2, 3, 8, 9), np.uint16)
    for c in range(3):
        arr[:, c] = 10 * (c + 1)
    tif = tmp_path / "s.tif"
    tifffile.imwrite(tif, arr, metadata=None)
    mv = open_movie(tif, axes="TCYX", channel=2)
    assert mv.shape == (2, 8, 9) and int(np.asarray(mv.frame(1)).max()) == 30 and mv.metadata["channel"] == 2
    z = zarr.open(str(tmp_path / "s.zarr"), mode="w", shape=arr.shape, dtype=arr.dtype)
    z[:] = arr
    assert int(np.asarray(open_movie(tmp_path / "s.zarr", axes="TCYX", channel=1).frame(0)).max()) == 20
    np.savez(tmp_path / "s.npz", images=arr, axes="TCYX")
    assert int(np.asarray(open_movie(tmp_path / "s.npz", channel=0).frame(0)).max()) == 10
    with pytest.raises(InvalidInputError, match="3 channels"):
        open_movie(tmp_path / "s.npz")
    single = tmp_path / "one.tif"
    tifffile.imwrite(single, np.zeros((2, 8, 9), np.uint8), metadata=None)
    with pytest.raises(InvalidInputError, match="channel 1 does not exist.*1 channel"):
        open_movie(single, channel=1)


def test_hidden_files_of_macos_copies_are_ignored(tmp_path):
    """'._name.tif' AppleDouble companions (left by macOS on copied drives; not images) and .DS_Store are skipped."""
    import imageio.v3 as iio

    from dynacell.metrics.tracking import find_ctc_folder

    folder = _frames(tmp_path / "movie", [(8, 9)] * 3, prefix="img_")
    for junk in ("._img_000.tif", ".DS_Store"):
        (folder / junk).write_bytes(b"\x00\x05\x16\x07 not an image")
    assert open_movie(folder).frame_indices == (0, 1, 2)
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for t in range(2):
        iio.imwrite(pngs / f"f_{t}.png", np.full((5, 6), 9 * t, np.uint8))
    (pngs / "._f_0.png").write_bytes(b"junk")
    assert open_movie(pngs).frame_indices == (0, 1)
    hidden_only = tmp_path / "hidden"
    hidden_only.mkdir()
    (hidden_only / "._t000.tif").write_bytes(b"junk")
    with pytest.raises(InvalidInputError, match="the folder is empty"):
        open_movie(hidden_only)
    res = tmp_path / "res"
    res.mkdir()
    (res / "res_track.txt").write_text("1 0 1 0\n")
    (res / "._res_track.txt").write_bytes(b"junk")
    assert find_ctc_folder(res) == res
