"""Training plumbing (a few batches through the one engine) and the real data splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.train.engine import EngineConfig, fit_module
from dynacell.train.segment import (
    RODS_FRAMES,
    SPLITS,
    AnnotatedFrame,
    CropDataset,
    FrameDataset,
    SegmentationModule,
    estimated_diameter_px,
    load_frames,
    marker_pseudo_labels,
    prepare,
    size_groups,
    train_segmenter,
)


@pytest.mark.parametrize("architecture,kwargs", [("instance-unet", {"base_filters": 4, "depth": 2}),
                                                 ("seed-attention-unet", {"base_filters": 4, "depth": 2})])
def test_fit_a_few_batches(make_discs, architecture, kwargs):
    img, lab = make_discs(shape=(64, 64), centres=((20, 20), (20, 37), (45, 45)), radius=8)
    known = np.ones(lab.shape, bool)
    known[:, :8] = False  # an unknown strip: weight 0 there
    frames = [AnnotatedFrame("toy", 0, img, lab, known=known, full=False, dead={3})]
    items = [prepare(f, 1.0) for f in frames]
    assert items[0].weight[0, :, :8].max() == 0 and items[0].targets[3].max() == 1
    ds = CropDataset(items, n_samples=4, crop=(32, 32), seed=0)
    x, y, w = ds[0]
    assert x.shape == (1, 32, 32) and y.shape == (4, 32, 32) and w.shape == (1, 32, 32)
    assert torch.equal(ds[1][0], ds[1][0])  # deterministic per (seed, epoch, index)
    train = torch.utils.data.DataLoader(ds, batch_size=2)
    val = torch.utils.data.DataLoader(FrameDataset(items), batch_size=1, collate_fn=FrameDataset.collate)
    module = SegmentationModule(architecture, kwargs, lr=1e-3)
    res = fit_module(module, train, val, EngineConfig(max_epochs=1, monitor="val_seg", accelerator="cpu", devices=1),
                     progress=False)
    assert res.epochs_run == 1 and 0.0 <= res.best_score <= 1.0
    assert "train_loss" in res.history and np.isfinite(res.history["train_loss"].iloc[0])


def test_splits_keep_test_frames_apart():
    for ds, sides in SPLITS.items():
        for t in range(100):
            assert sum(bool(sides[s](t)) for s in ("train", "val", "test")) <= 1, (ds, t)


@pytest.mark.data
@pytest.mark.slow
def test_sparse_gowt1_reference_leaves_unannotated_nuclei_unknown(shared_data):
    f = load_frames("gowt1", "train", shared_data)[0]
    assert not f.full and f.known is not None
    assert f.known[f.labels > 0].all()  # annotated nuclei are known
    assert 0.02 < 1 - f.known.mean() < 0.5  # some area around unannotated nuclei is unknown


def test_marker_pseudo_labels_split_a_merged_pair_and_leave_markerless_foreground_unknown(make_discs):
    from scipy import ndimage as ndi

    _, lab = make_discs(shape=(96, 96), centres=((30, 30), (30, 48), (70, 60)), radius=10)
    fg = lab > 0  # the first two discs touch: one foreground component
    assert ndi.label(fg[:50])[1] == 1
    markers = np.zeros_like(lab)
    markers[28:33, 26:31] = 7  # one marker in each touching disc, none in the third
    markers[28:33, 47:52] = 9
    elevation = -ndi.distance_transform_edt(lab > 0)  # per-object distance: a neck between the two
    out, known = marker_pseudo_labels(markers, fg, elevation)
    assert set(np.unique(out)) == {0, 7, 9}
    for ref, mk in ((1, 7), (2, 9)):  # each pseudo object is its disc
        inter = ((out == mk) & (lab == ref)).sum()
        assert inter / ((out == mk) | (lab == ref)).sum() > 0.9
    assert not known[lab == 3].any() and known[lab == 1].all() and known[0, 0]
    # a manual mask replaces the pseudo object of the marker it covers, and is known
    ann = np.zeros_like(lab)
    ann[lab == 2] = 1
    ann[lab == 3] = 2
    out2, known2 = marker_pseudo_labels(markers, fg, elevation, annotated=ann)
    assert not (out2 == 9).any() and len(np.unique(out2[lab == 2])) == 1 and known2[lab == 3].all()
    assert len(np.unique(out2)) == 4 and (out2 == 7).sum() == (out == 7).sum()
    with pytest.raises(Exception, match="shape"):
        marker_pseudo_labels(markers[:10], fg, elevation)


def test_dimming_scales_whole_objects_and_leaves_background(make_discs):
    from scipy import ndimage as ndi

    from dynacell.train.segment import _dim_objects

    img, lab = make_discs(shape=(64, 64), centres=((20, 20), (20, 37), (45, 45)), radius=8)
    x = prepare(AnnotatedFrame("toy", 0, img, lab), 1.0).image
    rng = np.random.default_rng(0)
    assert np.array_equal(_dim_objects(x, lab, 0.0, (0.2, 0.2), rng), x)  # p = 0: untouched
    out = _dim_objects(x, lab, 1.0, (0.2, 0.2), rng)
    core = ndi.binary_erosion(lab > 0, iterations=4)
    assert np.allclose(out[0][core], 0.2 * x[0][core], rtol=0.05, atol=1e-3)  # every object at 0.2
    far = ndi.distance_transform_edt(lab == 0) > 6
    assert np.allclose(out[0][far], x[0][far], rtol=1e-3, atol=1e-6)  # background away from objects unchanged
    half = _dim_objects(x, lab, 0.5, (0.2, 0.2), np.random.default_rng(3))
    dimmed = [np.allclose(half[0][core & (lab == i)], 0.2 * x[0][core & (lab == i)], rtol=0.05, atol=1e-3)
              for i in (1, 2, 3)]
    kept = [np.allclose(half[0][core & (lab == i)], x[0][core & (lab == i)]) for i in (1, 2, 3)]
    assert all(d != k for d, k in zip(dimmed, kept))  # each object dimmed whole or not at all
    dims = CropDataset([prepare(AnnotatedFrame("toy", 0, img, lab), 1.0)], 2, (32, 32), seed=0, dim_nuclei=0.5)
    assert dims[0][0].shape == (1, 32, 32)


def test_narrowed_state_dict_keeps_the_strongest_filters_through_the_skips():
    from dynacell.models.unet import InstanceUNet
    from dynacell.train.segment import narrowed_state_dict

    torch.manual_seed(0)
    wide = InstanceUNet(ndim=2, base_filters=8, depth=2).eval()
    # same width: every filter kept, so the same function (a wrong skip offset would change it)
    same = InstanceUNet(ndim=2, base_filters=8, depth=2).eval()
    same.load_state_dict(narrowed_state_dict(wide.state_dict(), same))
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(same(x), wide(x), atol=1e-6)
    # half width: the filter made strongest in the first convolution survives
    state = {k: v.clone() for k, v in wide.state_dict().items()}
    state["down.0.0.weight"][5] *= 100.0
    narrow = InstanceUNet(ndim=2, base_filters=4, depth=2).eval()
    cut = narrowed_state_dict(state, narrow)
    narrow.load_state_dict(cut)
    assert any(torch.equal(cut["down.0.0.weight"][i], state["down.0.0.weight"][5]) for i in range(4))
    assert narrow(x).shape == (1, 3, 32, 32)
    with pytest.raises(Exception):
        narrowed_state_dict(narrow.state_dict(), wide)  # cannot widen


def test_teacher_maps_become_targets_and_supervise_unknown_pixels(make_discs, tiny_model):
    from dynacell.train.segment import add_teacher_maps

    img, lab = make_discs(shape=(64, 64), centres=((20, 20), (45, 45)), radius=8)
    items = [prepare(AnnotatedFrame("toy", 0, img, lab), 1.0)]
    info = add_teacher_maps(items, tiny_model, flips=1)
    assert items[0].targets.shape == (7, 64, 64) and info["flips"] == 1
    assert 0.0 <= items[0].targets[4:].min() and items[0].targets[4:].max() <= 1.0
    x, y, w = CropDataset(items, n_samples=1, crop=(32, 32), seed=0)[0]
    assert y.shape == (7, 32, 32)
    out, w0 = torch.zeros(1, 3, 32, 32), torch.zeros_like(w)[None]  # every pixel unknown
    plain = SegmentationModule("instance-unet", {"base_filters": 4, "depth": 2})
    distil = SegmentationModule("instance-unet", {"base_filters": 4, "depth": 2}, distill_weight=1.0)
    assert float(plain.loss(out, y[None], w0)) == 0.0
    assert float(distil.loss(out, y[None], w0)) > 0.5  # BCE of logit 0 against any target >= log 2 · (mean weight)


def test_prepare_inverts_a_phase_contrast_frame_as_inference_does(make_discs):
    """Training of a phase-contrast model sees the normalised frame inverted, as ``segment_frame`` does."""
    from dynacell.segment.learned import normalize_image
    from dynacell.segment.predict import polarity_normalised

    img, lab = make_discs(shape=(48, 48), centres=((16, 16), (32, 32)), radius=6)
    dark = 300.0 - img
    fluo = prepare(AnnotatedFrame("toy", 0, dark, lab), 1.0).image[0]
    phc = prepare(AnnotatedFrame("toy", 0, dark, lab), 1.0, "phase-contrast").image[0]
    assert np.allclose(phc, 1.0 - fluo)
    assert np.allclose(phc, polarity_normalised(normalize_image(dark), "phase-contrast"))
    assert phc[lab > 0].mean() > phc[lab == 0].mean()  # the cells are the bright objects


def test_rods_renders_each_colony_its_own_size_group():
    frames = load_frames("rods", "val")  # seeds 12-13, rendered (no shared data needed)
    assert [f.t for f in frames] == [s * 100 + i for s in (12, 13) for i in RODS_FRAMES]
    groups = size_groups("rods", frames)
    assert [[f.t // 100 for f in g] for g in groups] == [[12] * 3, [13] * 3]
    for f in frames:
        assert f.image.dtype == np.uint16 and f.labels.shape == f.image.shape and f.full
        assert len(np.unique(f.labels)) > 20 and f.voxel_size_um[0] == f.voxel_size_um[1]
    again = load_frames("rods", "val")
    np.testing.assert_array_equal(frames[0].image, again[0].image)
    assert size_groups("gowt1", frames) == [frames] and size_groups("rods", []) == []


def test_estimated_diameter_reads_the_image_as_inference_does(make_discs):
    from dynacell.segment.predict import blob_size_px

    frames = [AnnotatedFrame("toy", t, *make_discs(shape=(128, 128), centres=((30, 30), (90, 90), (40, 95)),
                                                   radius=12, seed=t)) for t in range(3)]
    d = estimated_diameter_px(frames)
    assert d == pytest.approx(blob_size_px(frames[1].image)) or d == pytest.approx(blob_size_px(frames[0].image))
    assert 16 < d < 34  # discs 24 px across
    # a phase-contrast frame (dark cells on grey) is read on its inverted normalised image: same size
    dark = [AnnotatedFrame("toy", f.t, (250.0 - f.image).astype(np.float32), f.labels) for f in frames]
    assert estimated_diameter_px(dark, "phase-contrast") == pytest.approx(d, rel=0.2)
    with pytest.raises(InvalidInputError, match="size_from"):
        train_segmenter(architecture="instance-unet", name="x", out="/nonexistent", datasets=("rods",),
                        model_kwargs={}, minutes=1, size_from="labels")


def test_size_search_fields_calibrate_to_the_blob_estimate_of_the_training_frames(make_discs, tiny_model):
    from dynacell.segment.predict import Segmenter, blob_size_px, calibrate_size_search
    from dynacell.train.segment import size_search_fields

    frames = [AnnotatedFrame("toy", t, *make_discs(shape=(96, 96), seed=t)) for t in range(6)]
    seg = Segmenter.from_folder(tiny_model)
    fields = size_search_fields(seg, frames, every=2)
    rec = fields["record"]
    assert rec["frames"] == [0, 2, 4] and fields["size_search"] == "confidence"
    blobs = [blob_size_px(frames[t].image) for t in (0, 2, 4)]
    assert fields["training_size_estimate_px"] == (round(min(blobs), 1), round(max(blobs), 1))
    cal, _ = calibrate_size_search([frames[t].image for t in (0, 2, 4)], seg, float(np.median(blobs)))
    assert fields["size_search_calibration"] == pytest.approx(round(cal, 3))
    with pytest.raises(InvalidInputError, match="no training frame"):
        size_search_fields(seg, [])
    with pytest.raises(InvalidInputError, match="size_search"):
        train_segmenter(architecture="instance-unet", name="x", out="/nonexistent", datasets=("rods",),
                        model_kwargs={}, minutes=1, size_search="labels")
    with pytest.raises(InvalidInputError, match="2D models only"):
        train_segmenter(architecture="instance-unet", name="x", out="/nonexistent", datasets=("rods",),
                        model_kwargs={"ndim": 3}, minutes=1, size_search="confidence")
