"""3D training plumbing: lateral nucleus size, voxel aspect, isotropic resampling, a 3D fit, the 3D splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynacell.segment.predict import tune_postprocess
from dynacell.train.engine import EngineConfig, fit_module
from dynacell.train.segment import (
    STARDIST3D_CUT_X,
    AnnotatedFrame,
    CropDataset,
    FrameDataset,
    SegmentationModule,
    MOUSE8_LABEL_Z_SHIFT,
    load_frames,
    prepare,
    reference_diameter_px,
    shift_labels_z,
    voxel_aspect,
)


def _ellipsoids(shape=(12, 48, 48), centres=((6, 14, 14), (6, 14, 32), (6, 34, 24)), radius_px=7.0,
                aspect=2.0, seed=0):
    """Image and labels of ellipsoids ``radius_px`` across laterally, ``radius_px / aspect`` in z."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    lab = np.zeros(shape, np.int32)
    for i, (cz, cy, cx) in enumerate(centres, start=1):
        inside = ((zz - cz) * aspect) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_px ** 2
        lab[inside & (lab == 0)] = i
    img = np.where(lab > 0, 200.0, 10.0) + rng.normal(0, 5, shape)
    return img.astype(np.float32), lab


def test_reference_diameter_3d_is_lateral():
    img, lab = _ellipsoids(radius_px=7.0, aspect=2.0)
    d = reference_diameter_px([AnnotatedFrame("toy", 0, img, lab)])
    assert 13.0 <= d <= 15.5  # the largest YX section, ~14 px, not the squashed 3D equivalent diameter


def test_voxel_aspect_from_voxel_size_or_reference():
    img, lab = _ellipsoids(aspect=2.0)
    assert voxel_aspect([AnnotatedFrame("toy", 0, img, lab, voxel_size_um=(1.5, 0.5, 0.5))]) == pytest.approx(3.0)
    assert voxel_aspect([AnnotatedFrame("toy", 0, img, lab)]) == pytest.approx(15 / 7, rel=0.1)
    assert voxel_aspect([AnnotatedFrame("toy", 0, img[0], lab[0])]) == 1.0


@pytest.mark.slow
def test_fit_3d_a_few_batches_and_tune_min_size():
    img, lab = _ellipsoids()
    frame = AnnotatedFrame("toy", 0, img, lab)
    item = prepare(frame, (2.0, 1.0, 1.0))  # z resampled to isotropic voxels
    assert item.image.shape == (1, 24, 48, 48) and item.targets.shape == (4, 24, 48, 48)
    ds = CropDataset([item], n_samples=2, crop=(16, 16, 16), seed=0)
    x, y, w = ds[0]
    assert x.shape == (1, 16, 16, 16) and y.shape == (4, 16, 16, 16)
    train = torch.utils.data.DataLoader(ds, batch_size=2)
    val = torch.utils.data.DataLoader(FrameDataset([item]), batch_size=1, collate_fn=FrameDataset.collate)
    module = SegmentationModule("instance-unet", {"ndim": 3, "base_filters": 2, "depth": 2}, lr=1e-3)
    res = fit_module(module, train, val, EngineConfig(max_epochs=1, monitor="val_seg", accelerator="cpu", devices=1),
                     progress=False)
    assert res.epochs_run == 1 and 0.0 <= res.best_score <= 1.0
    params, metrics = tune_postprocess(res.module, [item], min_size_px=100)
    assert params.min_size_px == 100 and "toy" in metrics["seg_model_scale"]


def test_epoch_dir_keeps_the_weights_of_every_epoch(tmp_path):
    """Every epoch's weights are saved (to choose an epoch afterwards on other validation sides)."""
    img, lab = _ellipsoids()
    item = prepare(AnnotatedFrame("toy", 0, img, lab), (2.0, 1.0, 1.0))
    train = torch.utils.data.DataLoader(CropDataset([item], n_samples=2, crop=(16, 16, 16), seed=0), batch_size=2)
    val = torch.utils.data.DataLoader(FrameDataset([item]), batch_size=1, collate_fn=FrameDataset.collate)
    module = SegmentationModule("instance-unet", {"ndim": 3, "base_filters": 2, "depth": 2}, lr=1e-2,
                                epoch_dir=tmp_path / "epochs")
    res = fit_module(module, train, val, EngineConfig(max_epochs=2, patience=5, monitor="val_seg", accelerator="cpu",
                                                     devices=1), progress=False)
    files = sorted(p.name for p in (tmp_path / "epochs").iterdir())
    assert res.epochs_run == 2 and files == ["epoch_001.pt", "epoch_002.pt"]
    first, second = (torch.load(tmp_path / "epochs" / f, weights_only=True) for f in files)
    assert set(first) == set(module.net.state_dict())
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the weights moved between epochs


@pytest.mark.slow
def test_sim3d_frames_are_3d_with_their_voxel_size():
    frames = load_frames("sim3d", "train")
    assert len(frames) == 16 and all(f.image.ndim == 3 and f.voxel_size_um is not None for f in frames)
    assert all(f.labels.max() >= 6 for f in frames)
    assert load_frames("sim3d", "test") == [] and load_frames("sim3d", "val") == []


@pytest.mark.slow
def test_sim3d_ls_frames_look_like_the_mouse_lightsheet():
    """The light-sheet renders: mouse voxel size, nuclei about the mouse's 20 px across, a dim low-SNR signal."""
    from dynacell.segment.learned import lateral_diameters_px
    from dynacell.train.segment import _sim3d_ls_frames

    frames = _sim3d_ls_frames(8)  # a validation seed (training uses 0-7)
    assert len(frames) == 2 and all(f.dataset == "sim3d-ls" and f.voxel_size_um == (2.0, 0.832, 0.832) for f in frames)
    f = frames[0]
    assert 6 <= f.labels.max() and len(np.unique(f.labels)) - 1 >= 6
    assert 14 < float(np.median(lateral_diameters_px(f.labels))) < 26
    inside, outside = f.image[f.labels > 0].astype(float), f.image[f.labels == 0].astype(float)
    contrast = (inside.mean() - outside.mean()) / outside.std()
    assert 1.0 < contrast < 6.0  # mouse frame 7: (125.0 - 117.9) / 3.4 = 2.1
    np.testing.assert_array_equal(_sim3d_ls_frames(8)[0].image, f.image)  # deterministic per seed
    other = _sim3d_ls_frames(9)[0].image
    assert other.shape != f.image.shape or not np.array_equal(other, f.image)  # seeds differ
    assert load_frames("sim3d-ls", "val") == [] and load_frames("sim3d-ls", "test") == []


def test_wormguides3d_time_blocks_are_disjoint():
    """The rendered C. elegans lineage is split by time block: no lineage frame serves two sides."""
    from dynacell.train.segment import SPLITS, WORMGUIDES_FRAMES

    split = SPLITS["wormguides3d"]
    sides = {side: {t for t in WORMGUIDES_FRAMES if split[side](t)} for side in ("train", "val", "test")}
    assert len(sides["train"]) == 8 and len(sides["val"]) == 4 and len(sides["test"]) == 4
    assert not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"])
    assert not (sides["val"] & sides["test"])
    assert max(sides["train"] & set(range(150))) < min(sides["val"]) and max(sides["val"]) < 200
    assert min(sides["test"]) > max(sides["train"])


@pytest.mark.data
def test_wormguides3d_frame_is_the_lineage_drawn_with_its_voxel_size(shared_data):
    """A rendered frame holds every nucleus of its lineage frame, small and dense, with the drawn voxel size."""
    from dynacell.lineage import read_lineage
    from dynacell.segment.learned import lateral_diameters_px
    from dynacell.train.segment import _wormguides_frame

    f = _wormguides_frame(shared_data, 150)
    assert f.dataset == "wormguides3d" and f.t == 150 and f.image.ndim == 3 and f.image.shape == f.labels.shape
    lineage = read_lineage(shared_data / "lineages" / "wormguides-celegans")
    n_lineage = sum(1 for node in lineage.graph if node[0] == 150)
    assert len(np.unique(f.labels)) - 1 == n_lineage  # 189 nuclei
    vz, vy, vx = f.voxel_size_um
    assert 0.6 <= vz <= 1.5 and 0.2 <= vy == vx <= 0.35
    assert 1.5 < float(np.median(lateral_diameters_px(f.labels))) * vy < 5.0  # nuclei of 2-5 um
    inside, outside = f.image[f.labels > 0].astype(float), f.image[f.labels == 0].astype(float)
    assert inside.mean() > outside.mean() + 2 * outside.std()
    np.testing.assert_array_equal(_wormguides_frame(shared_data, 150).image, f.image)  # deterministic per frame


@pytest.mark.data
def test_stardist3d_half_split_is_two_disjoint_halves(shared_data):
    full = load_frames("stardist3d", "test", shared_data)[0]
    (tr,) = load_frames("stardist3d-half", "train", shared_data)
    (te,) = load_frames("stardist3d-half", "test", shared_data)
    assert tr.image.shape[-1] == STARDIST3D_CUT_X and tr.image.shape[-1] + te.image.shape[-1] == full.image.shape[-1]
    np.testing.assert_array_equal(np.concatenate([tr.labels, te.labels], -1), full.labels)
    assert load_frames("stardist3d-half", "val", shared_data) == []


def test_shift_labels_z_moves_and_cuts():
    _, lab = _ellipsoids()
    down = shift_labels_z(lab, -2)
    np.testing.assert_array_equal(down[:-2], lab[2:])
    assert not down[-2:].any() and down.dtype == lab.dtype
    np.testing.assert_array_equal(shift_labels_z(lab, 3)[3:], lab[:-3])
    np.testing.assert_array_equal(shift_labels_z(lab, 0), lab)
    assert not shift_labels_z(lab, lab.shape[0]).any()


def _signal_minus_label_z(frame) -> float:
    """Mean z offset (planes) of the smoothed nuclear signal's centroid from each label's centroid."""
    from scipy import ndimage as ndi

    from dynacell.segment.learned import normalize_image

    x = normalize_image(frame.image)
    offs = []
    for r, sl in enumerate(ndi.find_objects(frame.labels), start=1):
        if sl is None:
            continue
        sl = tuple(slice(max(s.start - 6, 0), s.stop + 6) for s in sl)
        m = frame.labels[sl] == r
        xs = ndi.gaussian_filter(x[sl], (0.7, 1.5, 1.5))
        big = ndi.binary_dilation(m, iterations=4)
        w = np.clip(xs - np.median(xs[big & ~m]), 0, None) * big
        offs.append(ndi.center_of_mass(w)[0] - ndi.center_of_mass(m)[0])
    return float(np.mean(offs))


@pytest.mark.data
def test_mouse8_zreg_labels_lie_on_the_signal(shared_data):
    given = load_frames("mouse8", "val", shared_data)
    moved = load_frames("mouse8-zreg", "val", shared_data)
    assert [f.t for f in moved] == [f.t for f in given] == [7]
    for g, m in zip(given, moved):
        np.testing.assert_array_equal(m.labels, shift_labels_z(g.labels, MOUSE8_LABEL_Z_SHIFT))
        assert abs(_signal_minus_label_z(g)) > 0.7  # the labels as given sit about one plane off the signal
        assert abs(_signal_minus_label_z(m)) < 0.3


@pytest.mark.data
@pytest.mark.parametrize(("dataset", "n_frames", "max_objects"), [("epidermis", 6, 60), ("phc-mammal", 10, 20)])
def test_blind_movies_are_test_only(shared_data, dataset, n_frames, max_objects):
    frames = load_frames(dataset, "test", shared_data)
    assert len(frames) == n_frames and [f.t for f in frames] == list(range(n_frames))
    for f in frames:
        assert f.image.ndim == 2 and f.image.shape == f.labels.shape and f.labels.dtype == np.int32
        assert 0 < len(np.unique(f.labels)) - 1 <= max_objects
    assert load_frames(dataset, "train", shared_data) == [] and load_frames(dataset, "val", shared_data) == []
