"""Inference plumbing: model folders, frames, movies, sanity checks, the ``dynacell segment`` command."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _helpers import small_embryo_3d
import tifffile

from dynacell.errors import FormatError, InvalidInputError
from dynacell.io.movie import Movie
from dynacell.segment.predict import (
    Segmenter,
    check_segmentation,
    looks_like_fluorescence,
    segment_frame,
    segment_movie,
)


def test_from_folder_checks_weights(tiny_model):
    seg = Segmenter.from_folder(tiny_model)
    assert seg.name == "tiny" and seg.card.task == "segmentation"
    (tiny_model / "weights.pt").write_bytes((tiny_model / "weights.pt").read_bytes() + b"x")
    with pytest.raises(FormatError, match="SHA-256"):
        Segmenter.from_folder(tiny_model)


def test_unknown_pretrained_name_lists_the_shipped():
    with pytest.raises(InvalidInputError, match="no shipped segmentation model 'nope'"):
        Segmenter.from_pretrained("nope")


def test_segment_frame_shapes_2d_and_3d(tiny_model, disc_image):
    seg = Segmenter.from_folder(tiny_model)
    img, _ = disc_image
    lab, maps, d = segment_frame(img, seg, return_maps=True)
    assert lab.shape == img.shape and lab.dtype == np.int32
    assert maps["foreground"].shape == img.shape and 10 < d < 40
    vol = np.stack([img] * 5)
    lab3 = segment_frame(vol, seg, nucleus_diameter_px=20, voxel_size_um=(2.0, 1.0, 1.0))
    assert lab3.shape == vol.shape
    with pytest.raises(InvalidInputError, match="does not match"):
        segment_frame(img, seg, voxel_size_um=(1.0, 1.0, 1.0))



def test_segment_frame_model_scale_watershed_resized_back(tiny_model, make_discs, monkeypatch):
    """Perfect maps at model scale (nuclei 48 px -> 24 px): labels come back at the frame's size, discs kept."""
    from scipy import ndimage as ndi

    from dynacell.metrics.segmentation import ctc_seg
    from dynacell.segment.learned import training_targets

    img, lab = make_discs(shape=(200, 200), centres=((60, 60), (60, 106), (140, 120)), radius=24)
    seg = Segmenter.from_folder(tiny_model)

    def perfect(x, **_):
        small = ndi.zoom(lab, np.asarray(x.shape) / np.asarray(lab.shape), order=0)
        fg, boundary, dist = training_targets(small)
        return {"foreground": fg, "boundary": boundary, "distance": dist}

    monkeypatch.setattr(seg, "predict_maps", perfect)
    out, maps, d = segment_frame(img, seg, nucleus_diameter_px=48.0, return_maps=True)
    assert out.shape == img.shape and maps["foreground"].shape == img.shape and d == 48.0
    score, n = ctc_seg(lab, out)
    assert out.max() == 3 and n == 3 and score > 0.9

def test_segment_movie_classical_and_store(tmp_path, disc_image):
    img, _ = disc_image
    movie = Movie(np.stack([img, img, img]), "TYX", voxel_size_um=(0.5, 0.5), frame_indices=(4, 5, 7))
    out = segment_movie(movie, "classical", store=tmp_path / "labels.zarr")
    assert out.frame_indices == (4, 5, 7) and out.metadata["segmenter"] == "classical"
    assert int(np.asarray(out.frame(7)).max()) >= 2
    assert out.metadata["warnings"] == []


def test_check_segmentation_flags_jumps_and_empty_frames():
    ok = [{"t": t, "n_objects": 20 + t, "foreground_fraction": 0.1} for t in range(4)]
    assert check_segmentation(ok) == []
    bad = ok + [{"t": 4, "n_objects": 400, "foreground_fraction": 0.1}, {"t": 5, "n_objects": 0,
                                                                         "foreground_fraction": 0.0}]
    msgs = check_segmentation(bad)
    assert any("object count jumps from 23 to 400" in m for m in msgs)
    assert any("no nucleus" in m for m in msgs)
    assert any("outside the training range" in m for m in check_segmentation(
        [{"t": 0, "n_objects": 3, "foreground_fraction": 0.9}]))


def test_fluorescence_check(disc_image):
    img, _ = disc_image
    assert looks_like_fluorescence(img)
    assert not looks_like_fluorescence(300.0 - img)  # dark objects on a bright background


def test_cli_segment_writes_masks_areas_record(tmp_path, disc_image, run_cli):
    img, _ = disc_image
    src = tmp_path / "movie"
    src.mkdir()
    for t in (3, 4):
        tifffile.imwrite(src / f"t{t:03d}.tif", img.astype(np.uint16))
    out = tmp_path / "out"
    code, _, err = run_cli("segment", src, "-o", out, "--model", "classical", "--voxel-size-um", "0.5", "0.5",
                                "--frame-interval-s", "300", "--no-progress")
    assert code == 0, err
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert masks == ["mask003.tif", "mask004.tif"]
    m = tifffile.imread(out / "masks" / "mask004.tif")
    assert m.dtype == np.uint16 and m.max() >= 2
    areas = pd.read_csv(out / "areas.csv")
    assert {"t", "time_s", "label", "area_um2", "equivalent_diameter_um", "mean_intensity",
            "total_intensity"} <= set(areas.columns)
    assert set(areas.t) == {3, 4} and set(areas.time_s) == {900, 1200}
    rec = json.loads((out / "segment.json").read_text())
    assert rec["model"] == "classical" and len(rec["frames"]) == 2
    assert (out / "areas.png").stat().st_size > 0
    # bad input: a diameter in µm without a pixel size -> one-line error, exit 2, nothing written
    code, _, err = run_cli("segment", src, "-o", tmp_path / "out2", "--nucleus-diameter-um", "10", "--no-progress")
    assert code == 2 and "--voxel-size-um" in err and not (tmp_path / "out2").exists()


def test_cli_segment_with_a_model_folder(tmp_path, disc_image, run_cli, tiny_model):
    img, _ = disc_image
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, np.stack([img, img]).astype(np.uint16))
    code, _, err = run_cli("segment", src, "-o", tmp_path / "o", "--model", tiny_model, "--no-progress")
    assert code == 0, err
    rec = json.loads((tmp_path / "o" / "segment.json").read_text())
    assert rec["model"] == "tiny" and rec["card"]["architecture"] == "instance-unet"
    assert "area_px" in pd.read_csv(tmp_path / "o" / "areas.csv").columns or rec["frames"][0]["n_objects"] == 0
    assert rec["nucleus_diameter_source"] == "estimated (LoG)" and rec["card"]["size_search"] == "blob"
    # a card that searches its size says so; a given size is recorded as given
    from dynacell.cards import read_yaml_mapping, write_card
    from dynacell.segment.predict import SegmentationCard

    card = SegmentationCard(**{**read_yaml_mapping(tiny_model / "model.yaml", "model card"), "size_search": "confidence"})
    write_card(card, tiny_model)
    code, _, err = run_cli("segment", src, "-o", tmp_path / "o2", "--model", tiny_model, "--no-progress")
    assert code == 0, err
    rec = json.loads((tmp_path / "o2" / "segment.json").read_text())
    assert rec["nucleus_diameter_source"].startswith("model-based size search")
    code, _, err = run_cli("segment", src, "-o", tmp_path / "o3", "--model", tiny_model, "--nucleus-diameter-px", "20",
                           "--no-progress")
    assert code == 0, err
    assert json.loads((tmp_path / "o3" / "segment.json").read_text())["nucleus_diameter_source"] == "given"


def test_searches_size_only_for_a_searching_card_on_2d_frames(tiny_model):
    from dynacell.segment.predict import searches_size

    seg = Segmenter.from_folder(tiny_model)
    assert not searches_size(seg, 2) and not searches_size("classical", 2)
    seg.card = seg.card.model_copy(update={"size_search": "confidence"})
    assert searches_size(seg, 2) and not searches_size(seg, 3)


def test_segment_for_run_learned_and_unknown(tmp_path, disc_image, tiny_model):
    from dynacell.segment.select import segment_for_run

    img, _ = disc_image
    movie = Movie(np.stack([img, img]), "TYX", source="discs")
    labels, name, notes = segment_for_run(movie, str(tiny_model), tmp_path)
    assert name == "tiny" and labels.shape == movie.shape and notes[0].startswith("Labels come from the learned")
    with pytest.raises(InvalidInputError, match="available: classical"):
        segment_for_run(movie, "no-such-model", tmp_path / "x")


@pytest.mark.parametrize("ndim", [2, 3])
def test_fuse_conv_bn_keeps_the_maps(ndim):
    import torch

    from dynacell.errors import InvalidInputError as Bad
    from dynacell.models.runtime import fuse_conv_bn
    from dynacell.models.unet import InstanceUNet

    torch.manual_seed(0)
    net = InstanceUNet(ndim=ndim, base_filters=4, depth=2)
    for m in net.modules():  # non-trivial running statistics and affine parameters
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    with pytest.raises(Bad, match="training mode"):
        fuse_conv_bn(net)
    net.eval()
    x = torch.randn(1, 1, *([16] * ndim))
    with torch.inference_mode():
        before = net(x)
    fuse_conv_bn(net)
    n_bn = sum(isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)) for m in net.modules())
    with torch.inference_mode():
        after = net(x)
    assert n_bn == 0 and torch.allclose(before, after, atol=1e-5)


def test_predict_maps_one_pass_up_to_tile_squared_pixels(tiny_model, monkeypatch):
    import monai.inferers

    seg = Segmenter.from_folder(tiny_model)
    calls = []
    real = monai.inferers.sliding_window_inference
    monkeypatch.setattr(monai.inferers, "sliding_window_inference", lambda *a, **k: calls.append(a[1]) or real(*a, **k))
    x = np.random.default_rng(0).random((48, 80), dtype=np.float32)
    assert seg.predict_maps(x, tile=64)["foreground"].shape == (48, 80) and calls == []  # 3,840 px <= 64²: one pass
    y = np.random.default_rng(0).random((80, 80), dtype=np.float32)
    assert seg.predict_maps(y, tile=64)["foreground"].shape == (80, 80) and calls == [(64, 64)]


def test_predict_maps_flip_averaging(tiny_model):
    """Flipped copies are flipped back before averaging (the tiny network is not flip-symmetric)."""
    seg = Segmenter.from_folder(tiny_model)
    x = np.random.default_rng(1).random((48, 64), dtype=np.float32)
    plain = seg.predict_maps(x)
    assert seg.card.test_time_flips == 1
    for k, v in seg.predict_maps(x, flips=1).items():
        assert np.array_equal(v, plain[k])
    rot = seg.predict_maps(np.ascontiguousarray(x[::-1, ::-1]), flips=1)
    two = seg.predict_maps(x, flips=2)
    for k in plain:
        assert not np.allclose(plain[k], rot[k][::-1, ::-1])
        assert np.allclose(two[k], (plain[k] + rot[k][::-1, ::-1]) / 2, atol=1e-6)
    four = seg.predict_maps(x, flips=4)
    lr = seg.predict_maps(np.ascontiguousarray(x[:, ::-1]), flips=1)
    ud = seg.predict_maps(np.ascontiguousarray(x[::-1]), flips=1)
    assert np.allclose(four["distance"], (plain["distance"] + rot["distance"][::-1, ::-1] + lr["distance"][:, ::-1]
                                          + ud["distance"][::-1]) / 4, atol=1e-6)
    with pytest.raises(InvalidInputError, match="flips"):
        seg.predict_maps(x, flips=3)


def test_test_time_flips_can_be_chosen_per_run(tmp_path, disc_image, tiny_model, monkeypatch):
    """``--test-time-flips`` reaches predict_maps through segment_for_run; the card keeps the value used."""
    from dynacell.segment.select import segment_for_run

    seg = Segmenter.from_folder(tiny_model)
    assert seg.with_test_time_flips(None) is seg and seg.with_test_time_flips(1) is seg  # the card's value
    four = seg.with_test_time_flips(4)
    assert four.card.test_time_flips == 4 and four.net is seg.net and seg.card.test_time_flips == 1
    with pytest.raises(InvalidInputError, match="flips"):
        seg.with_test_time_flips(3)
    used = []
    real = Segmenter.predict_maps
    monkeypatch.setattr(Segmenter, "predict_maps",
                        lambda self, x, **k: used.append(self.card.test_time_flips) or real(self, x, **k))
    img, _ = disc_image
    movie = Movie(np.stack([img, img]), "TYX", source="discs")
    _, _, notes = segment_for_run(movie, str(tiny_model), tmp_path / "a", test_time_flips=2)
    assert used == [2, 2] and "2 flipped copies" in notes[0]
    used.clear()
    _, _, notes = segment_for_run(movie, str(tiny_model), tmp_path / "b")
    assert used == [1, 1] and "1 flipped copy" in notes[0]


def test_resize_linear_shifted_matches_resize_at_offset_zero_and_shifts_the_grid():
    from dynacell.segment.predict import _resize_linear, _resize_linear_shifted

    a = np.random.default_rng(2).random((37, 53), dtype=np.float32)
    plain = _resize_linear(a, (100, 131))
    assert np.allclose(_resize_linear_shifted(a, (100, 131), (0.0, 0.0)), plain, atol=1e-5)
    one_row = _resize_linear_shifted(a, (100, 131), (1.0, 0.0))  # one output pixel down: the next row
    assert np.allclose(one_row[:-1], plain[1:], atol=1e-5) and np.allclose(one_row[-1], plain[-1], atol=1e-5)
    ramp = np.tile(np.arange(53, dtype=np.float32), (37, 1))  # x itself: the samples are their coordinates
    half = _resize_linear_shifted(ramp, (100, 131), (0.0, 0.5))
    assert np.allclose(half[:, :-1], (np.arange(130) + 0.5) * 52 / 130, atol=1e-4)


def test_shifted_foreground_maps_each_copy_back_to_the_frame(tiny_model, monkeypatch):
    """A 'network' that returns its input: every shifted copy, mapped back, is the frame again (a linear ramp)."""
    from dynacell.segment.predict import _resize_linear, _shifted_foreground

    seg = Segmenter.from_folder(tiny_model)
    seen = []
    monkeypatch.setattr(seg, "predict_maps", lambda x, **_: seen.append(x.shape) or {"foreground": x})
    yy, xx = np.mgrid[0:90, 0:120].astype(np.float32)
    ramp = 0.01 * yy + 0.02 * xx
    small = _resize_linear(ramp, (36, 48))
    out = _shifted_foreground(seg, ramp, small, 4)
    assert seen == [(36, 48)] * 3  # the first copy is given; three shifted ones
    inner = (slice(3, -3), slice(3, -3))  # a shifted grid clamps at the far edge
    assert np.allclose(out[inner], ramp[inner], atol=1e-4)
    # a copy mapped back with the wrong sign of its shift would be off by a whole model pixel
    assert np.abs(out[inner] - ramp[inner]).max() < 0.1 * 0.02 * (120 - 1) / (48 - 1)


def test_outline_shifts_run_only_on_frames_shrunk_enough(tiny_model, make_discs, monkeypatch):
    """``outline_shifts`` 2: a second network pass when the lateral zoom is <= 2**-0.5, never otherwise."""
    img, _ = make_discs(shape=(160, 160), centres=((50, 50), (50, 100), (110, 80)), radius=20)
    base = Segmenter.from_folder(tiny_model)
    two = Segmenter(base.net, base.card.model_copy(update={"outline_shifts": 2}), base.folder)
    calls = []
    real = Segmenter.predict_maps
    monkeypatch.setattr(Segmenter, "predict_maps", lambda self, x, **k: calls.append(x.shape) or real(self, x, **k))
    for model, diameter, n_calls in ((base, 48.0, 1), (two, 48.0, 2), (two, 30.0, 1), (two, 24.0, 1)):
        calls.clear()
        lab = segment_frame(img, model, nucleus_diameter_px=diameter)
        assert lab.shape == img.shape and len(calls) == n_calls, (diameter, calls)
    assert Segmenter.from_pretrained("nuclei-seg-2d").card.outline_shifts == 1  # older cards: off


def test_resize_linear_shifted_3d_matches_resize_at_offset_zero_and_shifts_the_grid():
    from dynacell.segment.predict import _resize_linear, _resize_linear_shifted

    a = np.random.default_rng(3).random((9, 17, 23), dtype=np.float32)
    plain = _resize_linear(a, (11, 40, 51))
    assert np.allclose(_resize_linear_shifted(a, (11, 40, 51), (0.0, 0.0, 0.0)), plain, atol=1e-5)
    one_plane = _resize_linear_shifted(a, (11, 40, 51), (1.0, 0.0, 0.0))  # one output plane down: the next plane
    assert np.allclose(one_plane[:-1], plain[1:], atol=1e-5)
    zz, yy, xx = np.meshgrid(np.arange(9), np.arange(17), np.arange(23), indexing="ij")
    ramp = (100.0 * zz + 10.0 * yy + xx).astype(np.float32)  # each axis readable from the samples
    half = _resize_linear_shifted(ramp, (11, 40, 51), (0.0, 0.5, 0.25))
    want = (100.0 * np.arange(11)[:, None, None] * 8 / 10 + 10.0 * (np.arange(40)[None, :, None] + 0.5) * 16 / 39
            + (np.arange(51)[None, None, :] + 0.25) * 22 / 50)
    assert np.allclose(half[:, :-1, :-1], want[:, :-1, :-1], atol=1e-3)


def test_shifted_foreground_3d_one_unflipped_pass_in_the_box_mapped_back(monkeypatch):
    """3D: the extra copy runs once, without flips, on the box of the first copy's nuclei only; mapped
    back with its shift, an identity 'network' returns the frame (a linear ramp) inside that box."""
    from dynacell.segment.predict import _OUTLINE_SHIFTS_3D, _resize_linear, _shifted_foreground

    seg = Segmenter.from_pretrained("nuclei-seg-3d")
    calls = []
    monkeypatch.setattr(seg, "predict_maps", lambda x, **k: calls.append((x.shape, k)) or {"foreground": x})
    zz, yy, xx = np.mgrid[0:30, 0:90, 0:120].astype(np.float32)
    ramp = 0.001 * zz + 0.001 * yy + 0.005 * xx  # above the 0.4 threshold only where x is large
    small = _resize_linear(ramp, (36, 45, 60))  # z upsampled, y/x halved (a light-sheet stack's zoom)
    out = _shifted_foreground(seg, ramp, small, 2)
    assert _OUTLINE_SHIFTS_3D[2] == ((0.0, 0.0, 0.0), (0.0, 0.5, 0.5))  # lateral only
    assert len(calls) == 1 and calls[0][1] == {"flips": 1}
    assert calls[0][0][0] == 36 and calls[0][0][2] < 60  # a box of the model grid, not the whole grid
    inner = (slice(None), slice(40, 84), slice(70, 114))  # inside the box, away from the clamped far edge
    assert np.allclose(out[inner], ramp[inner], atol=1e-4)
    # mapped back with the wrong sign, the copy would be off by a whole model pixel (2 frame pixels)
    assert np.abs(out[inner] - ramp[inner]).max() < 0.1 * 0.005 * 2


def test_outline_shifts_3d_run_only_on_volumes_shrunk_enough(monkeypatch):
    """A 3D model with ``outline_shifts`` 2: one more (unflipped) pass when the lateral zoom is <= 2**-0.5."""

    res = small_embryo_3d(5)
    img = np.asarray(res.images[0])
    base = Segmenter.from_pretrained("nuclei-seg-3d")
    base = Segmenter(base.net, base.card.model_copy(update={"outline_shifts": 1}), base.folder)
    two = Segmenter(base.net, base.card.model_copy(update={"outline_shifts": 2}), base.folder)
    calls = []
    real = Segmenter.predict_maps
    monkeypatch.setattr(Segmenter, "predict_maps", lambda self, x, **k: calls.append(k) or real(self, x, **k))
    for model, diameter, n_calls in ((base, 20.0, 1), (two, 20.0, 2), (two, 16.0, 1)):  # zoom 0.6 / 0.6 / 0.75
        calls.clear()
        lab = segment_frame(img, model, nucleus_diameter_px=diameter, voxel_size_um=(1.5, 0.5, 0.5))
        assert lab.shape == img.shape and lab.max() > 0 and len(calls) == n_calls, (diameter, calls)
        assert calls[1:] == [{"flips": 1}] * (n_calls - 1)


def test_polarity_normalised_inverts_phase_contrast_only():
    from dynacell.segment.predict import polarity_normalised

    x = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    assert np.array_equal(polarity_normalised(x, "fluorescence"), x)
    assert np.allclose(polarity_normalised(x, "phase-contrast"), 1.0 - x)
    with pytest.raises(InvalidInputError, match="unknown segmentation modality 'dic'"):
        polarity_normalised(x, "dic")


def test_size_estimate_reads_a_phase_contrast_frame_inverted(tiny_model, disc_image):
    """A phase-contrast model estimates the size on the inverted frame: dark discs on grey read as the bright ones."""
    from dynacell.segment.learned import estimate_nucleus_diameter_px
    from dynacell.segment.predict import size_estimate_px

    img, _ = disc_image
    dark = 300.0 - img  # dark discs on a bright background
    fluo, phc = Segmenter.from_folder(tiny_model), Segmenter.from_folder(tiny_model)
    phc.card = phc.card.model_copy(update={"modality": "phase-contrast"})
    assert size_estimate_px(img, fluo) == pytest.approx(estimate_nucleus_diameter_px(img))
    assert size_estimate_px(dark, phc) == pytest.approx(estimate_nucleus_diameter_px(img), rel=0.05)


def test_modality_warning_both_ways(tiny_model, disc_image):
    from dynacell.segment.predict import modality_warning

    img, _ = disc_image
    fluo, phc = Segmenter.from_folder(tiny_model), Segmenter.from_folder(tiny_model)
    phc.card = phc.card.model_copy(update={"modality": "phase-contrast"})
    assert modality_warning(img, fluo) is None and modality_warning(300.0 - img, phc) is None
    assert "does not look like fluorescence" in modality_warning(300.0 - img, fluo)
    assert "trained on phase contrast" in modality_warning(img, phc)
    assert modality_warning(300.0 - img, "classical") is None


def test_auto_segmenter_by_dimension_and_polarity(disc_image):
    from dynacell.models.runtime import shipped_models
    from dynacell.segment.predict import PRETRAINED_DIR
    from dynacell.segment.select import DEFAULT_2D, DEFAULT_2D_PHASE_CONTRAST, DEFAULT_3D, auto_segmenter

    img, _ = disc_image
    fluo = Movie(data=np.stack([img, img]), axes="TYX")
    assert auto_segmenter(fluo) == DEFAULT_2D
    assert auto_segmenter(Movie(data=np.zeros((1, 4, 8, 8), np.float32), axes="TZYX")) == DEFAULT_3D
    phc = Movie(data=np.stack([300.0 - img] * 2), axes="TYX")
    expected = DEFAULT_2D_PHASE_CONTRAST if DEFAULT_2D_PHASE_CONTRAST in shipped_models(PRETRAINED_DIR) else DEFAULT_2D
    assert auto_segmenter(phc) == expected


def test_phase_contrast_needs_a_grey_background_in_2d(disc_image):
    from dynacell.segment.predict import background_level, looks_like_phase_contrast

    img, _ = disc_image
    grey = 150.0 + 0.0 * img
    grey[img > img.mean()] = 40.0  # dark cells on a grey background
    grey[:, :3] = 255.0  # a bright halo
    assert background_level(img) < 0.2 and not looks_like_phase_contrast(img)
    assert background_level(grey) >= 0.2 and looks_like_phase_contrast(grey)
    assert not looks_like_phase_contrast(np.stack([grey, grey]))  # never in 3D


def test_training_fraction_from_the_card_else_the_default(tiny_model):
    from dynacell.segment.predict import TRAINING_FRACTION, training_fraction_for

    seg = Segmenter.from_folder(tiny_model)
    assert training_fraction_for(seg, 2) == TRAINING_FRACTION[2]
    assert training_fraction_for("classical", 3) == TRAINING_FRACTION[3]
    seg.card = seg.card.model_copy(update={"training_fraction": (0.001, 0.1)})
    assert training_fraction_for(seg, 2) == (0.001, 0.1)
    assert check_segmentation([{"t": 0, "n_objects": 3, "foreground_fraction": 0.3}], training_fraction=(0.001, 0.1))


def test_a_card_range_is_checked_to_an_order_of_magnitude(tiny_model):
    from dynacell.segment.predict import CARD_FRACTION_FACTOR, fraction_range_factor

    seg = Segmenter.from_folder(tiny_model)
    assert fraction_range_factor(seg) == 1.0 and fraction_range_factor("classical") == 1.0
    seg.card = seg.card.model_copy(update={"training_fraction": (0.002, 0.08)})
    rf = fraction_range_factor(seg)
    assert rf == CARD_FRACTION_FACTOR == 10.0
    later = [{"t": t, "n_objects": 300, "foreground_fraction": f} for t, f in ((41, 0.085), (52, 0.25))]
    assert check_segmentation(later, training_fraction=(0.002, 0.08), range_factor=rf) == []  # a growing colony
    assert check_segmentation(later, training_fraction=(0.002, 0.08))  # the strict check flags it
    msgs = check_segmentation([{"t": 0, "n_objects": 5, "foreground_fraction": 0.95}], training_fraction=(0.002, 0.08),
                              range_factor=rf)
    assert msgs and "by more than 10x" in msgs[0]
    assert check_segmentation([{"t": 0, "n_objects": 5, "foreground_fraction": 0.0001}],
                              training_fraction=(0.002, 0.08), range_factor=rf)


def test_size_warning_when_the_estimate_leaves_the_trained_range(tiny_model, disc_image):
    from dynacell.io import Movie
    from dynacell.segment.predict import size_warning

    seg = Segmenter.from_folder(tiny_model)
    assert size_warning(15.7, seg) is None  # no range on the card: no check
    seg.card = seg.card.model_copy(update={"training_size_estimate_px": (31.1, 31.1)})
    assert size_warning(31.1 * 1.3, seg) is None and size_warning(31.1 / 1.3, seg) is None
    note = size_warning(15.7, seg)
    assert note and "15.7 px" in note and "--nucleus-diameter-px" in note
    assert size_warning(None, seg) is None and size_warning(15.7, "classical") is None
    # segment_movie records it among its warnings, unless the size was given
    img, _ = disc_image
    movie = Movie(np.stack([img, img]), "TYX")
    seg.card = seg.card.model_copy(update={"training_size_estimate_px": (200.0, 200.0)})
    est = segment_movie(movie, seg)
    assert any("outside the range this model was trained at" in w for w in est.metadata["warnings"])
    given = segment_movie(movie, seg, nucleus_diameter_px=20.0)
    assert not any("outside the range" in w for w in given.metadata["warnings"])


def test_shipped_phase_contrast_card_records_its_training_size_estimate():
    seg = Segmenter.load("cells-seg-2d-phc")
    assert seg.card.training_size_estimate_px == (31.1, 31.1) and seg.card.modality == "phase-contrast"


def test_size_search_keeps_the_most_confident_size_times_the_calibration(tiny_model, disc_image):
    from dynacell.segment.predict import SIZE_SEARCH_STEPS, blob_size_px, confident_size_px, size_estimate_px

    seg = Segmenter.from_folder(tiny_model)
    img, _ = disc_image
    assert size_estimate_px(img, seg) == blob_size_px(img)  # the default card: the blob estimate alone
    d, table = confident_size_px(img, seg, 20.0)
    assert 3 <= len(table) <= 8
    tried = [r["diameter_px"] for r in table]
    assert all(any(np.isclose(t, 20.0 * 2 ** (k / 4)) for k in SIZE_SEARCH_STEPS) for t in tried)
    best = max(table, key=lambda r: r["confidence"])
    if best["confidence"] > 0:
        # the parabola's vertex lies within half a step of the most confident size
        assert 2 ** -0.125 - 1e-9 <= d / best["diameter_px"] <= 2 ** 0.125 + 1e-9
    seg.card = seg.card.model_copy(update={"size_search": "confidence", "size_search_calibration": 2.0})
    assert confident_size_px(img, seg, 20.0)[0] == pytest.approx(2 * d if best["confidence"] > 0 else 20.0)
    assert size_estimate_px(img, seg) == pytest.approx(confident_size_px(img, seg, blob_size_px(img))[0])
    with pytest.raises(InvalidInputError, match="2-D frame"):
        confident_size_px(np.stack([img, img]), seg, 20.0)
    with pytest.raises(InvalidInputError, match="positive number"):
        confident_size_px(img, seg, float("nan"))


def test_size_search_calibration_is_the_trained_size_over_the_raw_search(tiny_model, disc_image):
    from dynacell.segment.predict import blob_size_px, calibrate_size_search, confident_size_px

    seg = Segmenter.from_folder(tiny_model)
    img, _ = disc_image
    seg.card = seg.card.model_copy(update={"size_search": "confidence", "size_search_calibration": 3.0})
    cal, peaks = calibrate_size_search([img, img[::-1]], seg, 20.0)  # the card's 3.0 is ignored
    raw = Segmenter(seg.net, seg.card.model_copy(update={"size_search_calibration": 1.0}), seg.folder)
    expected = [confident_size_px(im, raw, blob_size_px(im))[0] for im in (img, img[::-1])]
    assert peaks == pytest.approx(expected) and cal == pytest.approx(float(np.median([20.0 / p for p in expected])))
    with pytest.raises(InvalidInputError, match="no training frame"):
        calibrate_size_search([], seg, 20.0)


def test_shipped_phase_contrast_card_searches_its_size_with_a_recorded_calibration():
    seg = Segmenter.load("cells-seg-2d-phc")
    assert seg.card.size_search == "confidence" and seg.card.size_search_calibration == pytest.approx(1.262)
    assert Segmenter.load("nuclei-seg-2d-fast").card.size_search == "blob"  # measured: no peak at the right size


@pytest.mark.data
@pytest.mark.slow
def test_size_search_finds_the_cells_on_a_crop_where_the_blob_estimate_fails(shared_data):
    """A 512 x 512 crop of bacteria-phc 01 frame 31 (validation, 33 cells): the blob estimate reads < 20 px for cells 34-37 px across."""
    from scipy import ndimage as ndi

    from dynacell.metrics.segmentation import ctc_seg
    from dynacell.segment.predict import blob_size_px, size_estimate_px
    from dynacell.train.segment import load_frames

    f = load_frames("bacteria", "val", shared_data)[0]
    cy, cx = (int(v) for v in ndi.center_of_mass(f.labels > 0))
    img, ref = f.image[cy - 256:cy + 256, cx - 256:cx + 256], f.labels[cy - 256:cy + 256, cx - 256:cx + 256]
    seg = Segmenter.from_pretrained("cells-seg-2d-phc")
    assert blob_size_px(img, "phase-contrast") < 20
    d = size_estimate_px(img, seg)
    assert 28 <= d <= 42
    s, n = ctc_seg(ref, segment_frame(img, seg))  # the size searched inside segment_frame too
    assert n > 20 and s >= 0.75


def test_predict_maps_tiles_a_3d_frame_beyond_the_voxel_budget(monkeypatch):
    """A 3D frame over the one-pass voxel budget runs in overlapping windows, one at a time, with the same maps."""
    import monai.inferers

    import dynacell.segment.predict as predict

    seg = Segmenter.load("nuclei-seg-3d")
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:40, :56, :72]
    x = np.zeros((40, 56, 72), np.float32)
    for c in rng.uniform((6, 6, 6), (34, 50, 66), (12, 3)):  # balls 12 voxels across, the model's nucleus size
        x[(zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= 36] = 0.8
    x += rng.normal(0, 0.05, x.shape).astype(np.float32)
    whole = seg.predict_maps(x, flips=1)["foreground"]
    calls = []
    real = monai.inferers.sliding_window_inference
    monkeypatch.setattr(monai.inferers, "sliding_window_inference",
                        lambda *a, **k: calls.append((a[1], a[2])) or real(*a, **k))
    monkeypatch.setattr(predict, "MAX_ONE_PASS_VOXELS_3D", 32 ** 3)
    monkeypatch.setattr(predict, "TILE_3D_VOXELS", 32)
    monkeypatch.setattr(predict, "WINDOW_OVERLAP_3D_VOXELS", 8)
    tiled = seg.predict_maps(x, flips=1)["foreground"]
    roi, _ = predict.window_plan(x.shape, 32 ** 3, 8)
    assert calls == [(roi, 1)] and np.prod(roi) <= 32 ** 3 and tiled.shape == x.shape
    fg_whole, fg_tiled = whole > 0.5, tiled > 0.5
    assert fg_whole.sum() > 0.5 * (x > 0.4).sum()  # the balls are found
    assert (fg_whole & fg_tiled).sum() / (fg_whole | fg_tiled).sum() > 0.95


@pytest.mark.parametrize("shape", [(351, 289, 518), (190, 322, 570), (40, 56, 72), (300, 300, 300), (17, 700, 33)])
def test_window_plan_covers_the_frame_with_fewer_voxels_than_cubic_windows(shape):
    """MONAI lays exactly the planned windows: each within the budget, overlapping by the margin, fewer voxels."""
    from monai.inferers.utils import _get_scan_interval

    from dynacell.segment.predict import window_plan

    budget, margin = 192 ** 3, 24
    roi, overlap = window_plan(shape, budget, margin)
    assert np.prod(roi) <= budget and all(r % 16 == 0 for r in roi)
    interval = _get_scan_interval(shape, roi, 3, overlap)
    starts = [sorted({min(i * step, max(s - r, 0)) for i in range(-(-max(s - r, 0) // step) + 1)})
              for s, r, step in zip(shape, roi, interval)]
    for s, r, st in zip(shape, roi, starts):
        covered = np.zeros(s, bool)
        for a in st:
            covered[a:a + r] = True
        assert covered.all()  # every voxel in a window
        assert all(b - a <= r - margin for a, b in zip(st, st[1:]))  # neighbours share at least the margin
    planned = np.prod(roi) * np.prod([len(st) for st in starts])
    cubic = np.prod([min(192, -(-s // 16) * 16) for s in shape]) * np.prod(
        [1 if s <= 192 else -(-(s - 192) // 144) + 1 for s in shape])
    assert planned <= cubic
    if np.prod(shape) > 256 ** 3:
        assert planned < 0.8 * cubic  # the large frames that made the plan worth it


def test_window_plan_rejects_a_budget_below_one_window():
    from dynacell.segment.predict import window_plan

    with pytest.raises(ValueError, match="no window"):
        window_plan((64, 64, 64), 15 ** 3, 8)
