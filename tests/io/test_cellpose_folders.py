"""Folders as segmentation tools leave them: images and masks side by side, intensities given as labels.

Cellpose saves ``NAME_cp_masks.png`` (``--save_png``) or ``NAME_cp_masks.tif`` (``--save_tif``) beside each
``NAME.tif``, and its GUI saves ``NAME_seg.npy`` (pickled objects).
"""

from __future__ import annotations

import glob
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from _helpers import FixedClassifier, synthetic_movie

from dynacell.errors import InvalidInputError
from dynacell.io import open_labels, open_movie
from dynacell.io.checks import movie_notes, reading_notes
from dynacell.io.movie import Movie
from dynacell.io.scan import LABEL_EDGE_SHARE_MAX, scan_labels
from dynacell.pipeline import run


def _cellpose_folder(folder, masks_as="png", seg_npy=False):
    images, labels = synthetic_movie(T=4)
    img, lab = np.asarray(images.data), np.asarray(labels.data)
    folder.mkdir()
    for t in range(4):
        tifffile.imwrite(folder / f"well_B2_t{t:03d}.tif", np.clip(img[t] * 100, 0, 65535).astype(np.uint16))
        if masks_as == "png":
            iio.imwrite(folder / f"well_B2_t{t:03d}_cp_masks.png", lab[t].astype(np.uint16))
        else:
            tifffile.imwrite(folder / f"well_B2_t{t:03d}_cp_masks.tif", lab[t].astype(np.uint16))
        if seg_npy:
            (folder / f"well_B2_t{t:03d}_seg.npy").write_bytes(b"not read")
    return img, lab


@pytest.mark.parametrize("masks_as", ["png", "tif"])
def test_images_and_masks_side_by_side_are_told_apart(tmp_path, masks_as):
    img, lab = _cellpose_folder(tmp_path / "cp", masks_as, seg_npy=True)
    movie, labels = open_movie(tmp_path / "cp"), open_labels(tmp_path / "cp")
    np.testing.assert_array_equal(np.asarray(labels.data), lab)
    np.testing.assert_array_equal(np.asarray(movie.data), np.clip(img * 100, 0, 65535).astype(np.uint16))
    assert labels.metadata["series"] == {"read": f"well_B2_t#_cp_masks.{masks_as}",
                                         "also_in_folder": ["well_B2_t#.tif"], "kind": "labels"}
    (note,) = [n for n in movie_notes(movie) if "two series" in n]
    assert "the images were read from well_B2_tTTT.tif" in note


def test_a_run_on_one_cellpose_folder_matches_two_folders(tmp_path):
    _cellpose_folder(tmp_path / "cp")
    (tmp_path / "img").mkdir(), (tmp_path / "masks").mkdir()
    for f in glob.glob(str(tmp_path / "cp" / "*")):
        dest = tmp_path / ("masks" if "_cp_masks" in f else "img")
        (dest / f.rsplit("/", 1)[1]).write_bytes(Path(f).read_bytes())
    one = run(tmp_path / "cp", labels=tmp_path / "cp", model=FixedClassifier(), out=tmp_path / "o1", progress=False,
              video=False)
    two = run(tmp_path / "img", labels=tmp_path / "masks", model=FixedClassifier(), out=tmp_path / "o2",
              progress=False, video=False)
    assert (tmp_path / "o1" / "states.csv").read_bytes() == (tmp_path / "o2" / "states.csv").read_bytes()
    assert len(one.lineage.divisions()) == len(two.lineage.divisions()) == 1
    notes = [n for n in one.info["notes"] if "two series" in n]
    assert len(notes) == 2 and "the labels were read from well_B2_tTTT_cp_masks.png" in notes[1]


def test_two_image_series_still_need_their_own_folders(tmp_path):
    _cellpose_folder(tmp_path / "cp", "tif")
    for f in glob.glob(str(tmp_path / "cp" / "*_cp_masks.tif")):
        (tmp_path / "cp" / f.rsplit("/", 1)[1].replace("_cp_masks", "_dapi")).write_bytes(Path(f).read_bytes())
    with pytest.raises(InvalidInputError, match="3 name patterns"):
        open_movie(tmp_path / "cp")


def test_intensities_given_as_labels_are_refused_fast(tmp_path):
    images, labels = synthetic_movie(T=3)
    frames = np.clip(np.asarray(images.data) * 100, 0, 65535).astype(np.uint16)
    as_labels = Movie(frames, "TYX", source="the movie itself")
    with pytest.raises(InvalidInputError, match=r"the movie itself: frame 0: \d+% of neighbouring pixels differ, "
                                                r"as in an intensity image"):
        scan_labels(images, as_labels, progress=False)
    assert scan_labels(images, labels, progress=False)  # the real masks pass


def test_cellpose_seg_npy_gets_a_hint(tmp_path):
    (tmp_path / "seg").mkdir()
    (tmp_path / "seg" / "a_t000_seg.npy").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"Cellpose's \*_seg.npy files hold pickled Python objects"):
        open_labels(tmp_path / "seg")
    with pytest.raises(InvalidInputError, match="save Cellpose's masks as PNG or TIFF"):
        open_labels(tmp_path / "seg" / "a_t000_seg.npy")


@pytest.mark.data
def test_every_real_mask_is_flat_and_every_real_image_is_not(shared_data):
    """The threshold sits between all real label sets (≤ 0.06 along X) and all real movies (≥ 0.5)."""
    from dynacell.io.scan import _check_flat

    ctc = shared_data / "ctc"
    masks = ["Fluo-N2DH-GOWT1/01_GT/TRA", "Fluo-N2DH-GOWT1/01_GT/SEG", "Fluo-N2DL-HeLa/02_ERR_SEG",
             "Fluo-N2DL-HeLa/02_ST/SEG", "bacteria-phc/01_GT/TRA", "bacteria-phc/01_RES", "Fluo-N3DH-CHO/02_ERR_SEG"]
    movies = ["Fluo-N2DH-GOWT1/01", "Fluo-N2DL-HeLa/02", "bacteria-phc/01", "Fluo-N3DH-CHO/02"]
    for m in masks:
        for f in sorted(glob.glob(str(ctc / m / "*.tif")))[::7]:
            _check_flat(tifffile.imread(f), f)
    for m in movies:
        f = sorted(glob.glob(str(ctc / m / "t*.tif")))[0]
        with pytest.raises(InvalidInputError, match="as in an intensity image"):
            _check_flat(tifffile.imread(f), f)
    assert LABEL_EDGE_SHARE_MAX == 0.25


def test_extract_refuses_intensities_as_labels_too(tmp_path, run_cli):
    images, _ = synthetic_movie(T=3)
    tifffile.imwrite(tmp_path / "img.tif", np.clip(np.asarray(images.data) * 100, 0, 65535).astype(np.uint16),
                     metadata={"axes": "TYX"})
    code, _, err = run_cli("extract", str(tmp_path / "img.tif"), "--labels", str(tmp_path / "img.tif"),
                           "-o", str(tmp_path / "s.npz"), "--size", "16")
    assert code == 2 and "as in an intensity image" in err
    assert not (tmp_path / "s.npz").exists()


def _binary_folder(folder, frames):
    folder.mkdir()
    for t, f in enumerate(frames):
        tifffile.imwrite(folder / f"bin_{t:03d}.tif", f)
    return folder


def test_a_binary_mask_is_labelled_by_connected_objects(tmp_path):
    _, labels = synthetic_movie(T=5)
    lab = np.asarray(labels.data)
    binary = ((lab > 0) * 255).astype(np.uint8)
    binary[4] = lab[4]  # a frame that already holds instance ids is kept as it is
    opened = open_labels(_binary_folder(tmp_path / "bin", binary))
    assert opened.metadata["binary_mask"] == {"value": 255, "objects_first_frame": 2}
    got = np.asarray(opened.data)
    for t in range(5):  # the same objects as the instance labels, numbered 1..n
        assert len(np.unique(got[t])) == len(np.unique(lab[t]))
        for v in np.unique(lab[t])[1:]:
            assert len(np.unique(got[t][lab[t] == v])) == 1
    np.testing.assert_array_equal(got[4], lab[4])
    (note,) = [n for n in reading_notes(opened) if "binary mask" in n]
    assert "one value, 255, for all 2 objects" in note


def test_binary_masks_run_like_instance_labels_and_say_so(tmp_path):
    images, labels = synthetic_movie(T=5)
    lab = np.asarray(labels.data)
    masks = _binary_folder(tmp_path / "bin", (lab > 0).astype(bool))  # a boolean mask, as numpy saves it
    res = run(images, labels=masks, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False)
    ref = run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "r", progress=False, video=False)
    assert len(res.lineage) == len(ref.lineage) == 12 and len(res.lineage.divisions()) == 1
    assert any("binary mask" in n for n in res.info["notes"])
    assert not any("binary mask" in n for n in ref.info["notes"])


def test_one_object_or_instance_ids_are_not_relabelled(tmp_path):
    one = np.zeros((3, 32, 32), np.uint8)
    one[:, 5:12, 5:12] = 255  # one nucleus per frame: nothing says it is a binary mask
    assert "binary_mask" not in open_labels(_binary_folder(tmp_path / "one", one)).metadata
    _, labels = synthetic_movie(T=3)
    assert "binary_mask" not in open_labels(_binary_folder(tmp_path / "ids", np.asarray(labels.data))).metadata


def test_one_nucleus_with_stray_pixels_or_an_odd_id_is_not_a_binary_mask(tmp_path):
    one = np.zeros((3, 32, 32), np.uint16)
    one[:, 5:12, 5:12] = 1
    one[:, 30, 30] = 1  # a stray pixel
    assert "binary_mask" not in open_labels(_binary_folder(tmp_path / "stray", one)).metadata
    two = np.zeros((3, 32, 32), np.uint16)
    two[:, 5:12, 5:12] = 7
    two[:, 20:27, 20:27] = 7  # id 7 in two pieces: instance labels with a shared id, named by the scan, not renamed
    assert "binary_mask" not in open_labels(_binary_folder(tmp_path / "seven", two)).metadata


def test_masks_numbered_from_1_for_a_movie_numbered_from_0_are_named(tmp_path):
    images, labels = synthetic_movie(T=4)
    shifted = Movie(np.asarray(labels.data), "TYX", frame_indices=(1, 2, 3, 4), source="masks")
    with pytest.raises(InvalidInputError, match=r"numbered \+1 from the movie's \(labels 1..4, movie 0..3"):
        scan_labels(images, shifted, progress=False)
    gappy = Movie(np.asarray(labels.data), "TYX", frame_indices=(0, 1, 2, 5), source="masks")
    with pytest.raises(InvalidInputError, match=r"no label image for frame\(s\) \[3\]") as err:
        scan_labels(images, gappy, progress=False)
    assert "numbered" not in str(err.value)


def test_the_frame_number_is_the_number_that_changes(tmp_path):
    """Microscope exports put a channel, position or z number after the time: exp_t003_ch00.tif is frame 3."""
    images, _ = synthetic_movie(T=4)
    img = np.asarray(images.data).astype(np.float32)
    (tmp_path / "one").mkdir()
    for t in range(4):
        tifffile.imwrite(tmp_path / "one" / f"exp_t{t + 5:03d}_ch00.tif", img[t])
    movie = open_movie(tmp_path / "one")
    assert movie.frame_indices == (5, 6, 7, 8)
    np.testing.assert_array_equal(np.asarray(movie.data), img)
    for t in range(4):  # a second channel in the same folder: two series, named as such
        tifffile.imwrite(tmp_path / "one" / f"exp_t{t + 5:03d}_ch01.tif", img[t])
    with pytest.raises(InvalidInputError, match=r"2 name patterns \['exp_t#_ch00', 'exp_t#_ch01'\]"):
        open_movie(tmp_path / "one")
    (tmp_path / "png").mkdir()
    for t in range(3):
        iio.imwrite(tmp_path / "png" / f"pos2_t{t:02d}_z0.png", (img[t] > 50).astype(np.uint8) * 200)
    assert open_movie(tmp_path / "png").frame_indices == (0, 1, 2)


def test_names_that_differ_in_two_unmarked_numbers_are_explained(tmp_path):
    (tmp_path / "two").mkdir()
    for t in range(2):
        for c in range(2):
            tifffile.imwrite(tmp_path / "two" / f"img_{t:03d}_{c:02d}.tif", np.zeros((8, 8), np.uint16))
    with pytest.raises(InvalidInputError, match=r"differ in 2 numbers \(e.g. img_000_00.tif, img_000_01.tif\)"):
        open_movie(tmp_path / "two")


def test_other_makers_files_get_the_fiji_route(tmp_path):
    (tmp_path / "cells.oir").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match=r"\.oir \(Olympus\) files are not read directly: open them in Fiji"):
        open_movie(tmp_path / "cells.oir")


def test_ctc_named_images_with_cellpose_masks_beside_them(tmp_path):
    """t000.tif looks like a CTC folder; its Cellpose masks t000_cp_masks.png are still the labels."""
    img, lab = _cellpose_folder(tmp_path / "cp")
    for f in (tmp_path / "cp").iterdir():
        f.rename(f.with_name(f.name.replace("well_B2_", "")))
    labels = open_labels(tmp_path / "cp")
    np.testing.assert_array_equal(np.asarray(labels.data), lab)
    assert open_movie(tmp_path / "cp").frame_indices == (0, 1, 2, 3)
