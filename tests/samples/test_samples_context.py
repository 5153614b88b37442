"""Tests of the segmentation-context channels (dynacell.samples.crops.context_mask, context=True)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from _helpers import state_card

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.samples import build_sample_set, crop_windows, iter_frame_crops
from dynacell.samples.crops import CONTEXT_CHANNELS, context_mask
from dynacell.states.card import StateModelCard


def _division_movie():
    """3 frames, 40×40: one nucleus (id 1) at t = 0; it divides into ids 2 and 3 at t = 1 (kept at t = 2).

    A second nucleus (id 9) far away is stable throughout.
    """
    lab = np.zeros((3, 40, 40), np.uint16)
    lab[0, 10:20, 8:28] = 1                      # mother, 10 × 20 px
    lab[1:, 10:20, 8:17] = 2                     # daughter A
    lab[1:, 10:20, 19:28] = 3                    # daughter B
    lab[:, 30:36, 30:36] = 9                     # stable neighbour
    img = (lab > 0).astype(np.uint16) * 500 + 20
    return Movie(img, "TYX"), Movie(lab, "TYX")


def test_context_mask_keeps_only_overlapping_objects_with_primary_first():
    ctx = np.array([[0, 3, 3, 4, 7]])
    own = np.array([[False, True, True, True, False]])
    out = context_mask(ctx, own)
    assert out.dtype == np.float32
    assert out.tolist() == [[0.0, 1.0, 1.0, 0.5, 0.0]]  # 7 does not overlap the nucleus: dropped
    # an object covering < 10 % of the mask is ignored; nothing overlapping gives all zeros
    own2 = np.ones((1, 20), bool)
    ctx2 = np.full((1, 20), 5)
    ctx2[0, 0] = 6
    assert set(np.unique(context_mask(ctx2, own2)).tolist()) == {0.0, 1.0}
    assert not context_mask(np.zeros((1, 20), int), own2).any()


def test_context_channels_show_the_mother_and_the_daughters():
    images, labels = _division_movie()
    frames = [images.frame(t) for t in range(3)]
    lab = [labels.frame(t) for t in range(3)]
    # daughter A at t = 1: its mother at t = 0 extends over the sister (twice its area)
    x = crop_windows(frames, lab[1], [2], np.array([[14.5, 12.0]]), size=32, context_labels=(lab[0], lab[2]))
    assert x.shape == (1, 6, 32, 32)
    own, prev, nxt = x[0, 3], x[0, 4], x[0, 5]
    assert prev.sum() == (lab[0] == 1).sum() > 2 * own.sum() and set(np.unique(prev)) == {0.0, 1.0}
    assert np.array_equal(nxt, own)              # itself at t + 1, neighbours excluded
    # the mother at t = 0, seen from t = 1: two daughters overlap it (1.0 and 0.5)
    x0 = crop_windows(frames, lab[0], [1], np.array([[14.5, 17.5]]), size=32, context_labels=(None, lab[1]))
    assert set(np.unique(x0[0, 5])) == {0.0, 0.5, 1.0}
    assert np.array_equal(x0[0, 4], x0[0, 3])   # no t − 1: the mask at t stands in (first-frame rule)
    # a nucleus absent at t + 1 (death or loss) has an empty context channel
    gone = lab[2].copy()
    gone[gone == 9] = 0
    x9 = crop_windows(frames, lab[1], [9], np.array([[32.5, 32.5]]), size=16, context_labels=(lab[0], gone))
    assert x9[0, 4].sum() == x9[0, 3].sum() and x9[0, 5].sum() == 0


def test_context_with_resampling_matches_pixel_crop_at_unit_scale():
    images, labels = _division_movie()
    frames = [images.frame(t) for t in range(3)]
    lab = [labels.frame(t) for t in range(3)]
    kw = dict(size=16, context_labels=(lab[0], lab[2]))
    a = crop_windows(frames, lab[1], [2], np.array([[14.5, 12.0]]), **kw)
    b = crop_windows(frames, lab[1], [2], np.array([[14.5, 12.0]]), voxel_size_um=(1.0, 1.0),
                     target_voxel_um=1.0, **kw)
    assert np.array_equal(a[:, 3:], b[:, 3:])


def test_streamed_context_crops_equal_direct_crops_and_other_segmentation():
    images, labels = _division_movie()
    out = {fc.t: fc for fc in iter_frame_crops(images, labels, size=16, context=True)}
    assert all(fc.x.shape[1] == 6 for fc in out.values())
    lab = [labels.frame(t) for t in range(3)]
    fc = out[1]
    direct = crop_windows([images.frame(t) for t in range(3)], lab[1], fc.label_ids, fc.centroids,
                          size=16, context_labels=(lab[0], lab[2]))
    assert np.array_equal(fc.x, direct)
    # the context may come from another segmentation than the labels (e.g. a full automatic one)
    empty = Movie(np.zeros_like(labels.data), "TYX")
    fc2 = {f.t: f for f in iter_frame_crops(images, labels, size=16, context=True, context_labels=empty)}[1]
    assert not fc2.x[:, 4:].any() and np.array_equal(fc2.x[:, :4], fc.x[:, :4])
    # default stays 4 channels
    assert next(iter(iter_frame_crops(images, labels, size=16))).x.shape[1] == 4


def test_context_rejects_mismatched_segmentation():
    images, labels = _division_movie()
    frames = [images.frame(t) for t in range(3)]
    with pytest.raises(InvalidInputError, match="context"):
        crop_windows(frames, labels.frame(1), [2], np.array([[14.5, 12.0]]), size=8,
                     context_labels=(np.zeros((5, 5), np.int32), None))
    with pytest.raises(InvalidInputError, match="t-1 and t\\+1"):
        crop_windows(frames, labels.frame(1), [2], np.array([[14.5, 12.0]]), size=8, context_labels=(None,))
    with pytest.raises(InvalidInputError, match="shape"):
        next(iter_frame_crops(images, labels, size=8, context=True,
                              context_labels=Movie(np.zeros((3, 10, 10), np.uint16), "TYX")))


def test_sample_set_with_context_records_channels_and_trains(tmp_path):
    from dynacell.lineage import Lineage
    from dynacell.states import load_model
    from dynacell.train import SplitConfig, TrainConfig, fit

    images, labels = _division_movie()
    lin = Lineage(n_frames=3)
    for t, lb in [(0, 1), (1, 2), (1, 3), (2, 2), (2, 3), (0, 9), (1, 9), (2, 9)]:
        lin.add_node((t, lb))
    for a, b in [((0, 1), (1, 2)), ((0, 1), (1, 3)), ((1, 2), (2, 2)), ((1, 3), (2, 3)),
                 ((0, 9), (1, 9)), ((1, 9), (2, 9))]:
        lin.add_edge(a, b)
    ss = build_sample_set(images, labels, lin, "seed", size=16, context=True,
                          states=("mitotic", "new_daughter", "stable", "unknown"))
    assert ss.x.shape[1] == 6 and ss.attrs["channels"] == list(CONTEXT_CHANNELS)
    path = ss.save(tmp_path / "ctx.npz")
    assert build_sample_set(images, labels, lin, "seed", size=16).x.shape[1] == 4
    # a context model refuses 4-channel sets, and a 6-channel model folder crops with context
    from _helpers import synthetic_set

    synth = synthetic_set()
    x6 = np.concatenate([synth.x, synth.x[:, 3:4], synth.x[:, 3:4]], axis=1)
    synth6 = type(synth)(x6, synth.meta, synth.attrs)
    p6 = synth6.save(tmp_path / "synth6.npz")
    p4 = synth.save(tmp_path / "synth4.npz")
    base = dict(name="ctx", out=str(tmp_path / "m"), model="4ncnn", context=True, epochs=1,
                samples_per_epoch=64, batch_size=16, num_threads=1,
                split=SplitConfig(by="tree", fractions=(0.6, 0.2, 0.2), seed=1))
    with pytest.raises(InvalidInputError, match="context"):
        fit(TrainConfig(data=[str(p4)], **base), progress=False)
    folder = fit(TrainConfig(data=[str(p6)], **base), progress=False)
    card = yaml.safe_load((folder / "model.yaml").read_text())
    assert card["channels"] == list(CONTEXT_CHANNELS) and card["model_channels"] == [0, 1, 2, 3, 4, 5]
    assert card["task"] == "states"
    clf = load_model(folder)
    assert clf.context and clf.n_input_channels == 6
    with pytest.raises(InvalidInputError, match="6"):
        clf.predict_proba(np.zeros((2, 4, 16, 16), np.float32))
    assert path.is_file()


def test_degrade_context_simulates_one_segmentation_error_per_hit_sample():
    import torch

    from dynacell.train import AugmentConfig, augment_batch, degrade_context
    from dynacell.train.augment import CONTEXT_ERRORS

    x = torch.zeros((200, 6, 16, 16))
    x[:, 3, 4:12, 4:12] = 1.0                      # mask at t
    x[:, 4, 3:13, 3:13] = 1.0                      # mother at t-1 (larger)
    x[:, 5, 4:12, 4:8] = 1.0                       # two daughters at t+1
    x[:, 5, 4:12, 8:12] = 0.5
    out = degrade_context(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :4], x[:, :4])       # images and mask untouched
    changed = (out[:, 4:] != x[:, 4:]).flatten(2).any(-1)   # (N, 2): which context channel changed
    assert changed.sum(1).max() <= 1               # at most one channel per sample
    assert changed.any(1).float().mean() > 0.6     # most errors change something (static on t+1 may not)
    # the kinds seen: a miss (zeroed), a merge (no 0.5 left) and a static copy of the mask
    flat4 = out[:, 4].flatten(1)
    assert (flat4.sum(1) == 0).any() and (out[:, 5] == 0.5).flatten(1).any(1).float().mean() < 1
    assert any(torch.equal(out[i, 4], x[i, 3]) for i in range(len(x)))
    assert len(CONTEXT_ERRORS) == 5
    assert torch.equal(degrade_context(x, 0.0, torch.Generator().manual_seed(0)), x)
    with pytest.raises(ValueError, match="6-channel"):
        degrade_context(x[:, :4], 0.5, torch.Generator())
    # through the training augmentation, only with context_noise > 0
    cfg = AugmentConfig(flip=False, rot90=False, contrast=(1.0, 1.0), brightness=0.0, noise_std=0.0)
    assert torch.equal(augment_batch(x, cfg, torch.Generator().manual_seed(1))[:, 4:], x[:, 4:])
    noisy = augment_batch(x, cfg.model_copy(update={"context_noise": 1.0}), torch.Generator().manual_seed(1))
    assert not torch.equal(noisy[:, 4:], x[:, 4:])


def test_shift_neighbours_moves_only_the_neighbour_frames():
    import torch

    from dynacell.train.augment import shift_neighbours

    x = torch.zeros((40, 6, 12, 12))
    x[:, :, 5:7, 5:7] = 1.0
    out = shift_neighbours(x, 3, torch.Generator().manual_seed(0))
    for c in (1, 3):                                   # frame t and its mask never move
        assert torch.equal(out[:, c], x[:, c])
    assert torch.equal(out[:, 0] > 0, out[:, 4] > 0)   # t-1 image and seg t-1 move together
    assert torch.equal(out[:, 2] > 0, out[:, 5] > 0)
    assert not torch.equal(out[:, 0], x[:, 0])
    assert float(out[:, 0].sum()) == float(x[:, 0].sum())   # 2 px blobs stay inside at shifts ≤ 3
    assert torch.equal(shift_neighbours(x, 0, torch.Generator()), x)


def test_benchmark_keeps_the_seed_models_on_the_seed_input(tmp_path):
    from dynacell.train import TrainConfig
    from dynacell.train.benchmark import BASELINES, CONTEXT_RUNS, run_config

    cfg = TrainConfig(name="x", data=["a.npz"], out=str(tmp_path), model="dcnet", context=True)
    for seed_model in ("cnn-only", "3ncnn", "4ncnn", "convlstm"):
        assert run_config(cfg, seed_model, BASELINES[seed_model], tmp_path).context is False
    assert run_config(cfg, "dcnet", BASELINES["dcnet"], tmp_path).context is True
    assert run_config(cfg, "4ncnn+context", CONTEXT_RUNS["4ncnn+context"], tmp_path).context is True
    assert run_config(cfg, "dcnet-no-context", CONTEXT_RUNS["dcnet-no-context"], tmp_path).context is False


def test_training_and_inference_crop_the_same_context():
    """classify_movie feeds a context model exactly the crops build_sample_set made for training."""
    from dynacell.states.classify import classify_movie

    images, labels = _division_movie()
    train = build_sample_set(images, labels, None, size=16, target_diameter_px=8.0, assume_state="stable",
                             context=True)

    class Recorder:
        classes = ("stable", "mitotic", "new_daughter", "death")
        crop_size = (16, 16)
        ndim = 2
        name = "rec"
        context = True
        def __init__(self):
            self.card = StateModelCard.model_validate(state_card(
                name="rec", crop_size_px=[16, 16], channels=["t-1", "t", "t+1", "mask", "seg t-1", "seg t+1"],
                model_channels=[0, 1, 2, 3, 4, 5],
                scale_normalization={"method": "nucleus-size", "target_diameter_px": 8.0, "n_frames": 3}))
            self.seen = []

        def predict_proba(self, x):
            self.seen.append(x.copy())
            return np.tile([0.7, 0.1, 0.1, 0.1], (len(x), 1))

    clf = Recorder()
    classify_movie(images, labels, clf, progress=False)
    seen = np.concatenate(clf.seen)
    assert seen.shape == train.x.shape and seen.shape[1] == 6
    np.testing.assert_array_equal(seen, train.x)
    # the new daughters' context at t-1 shows their mother (more pixels than their own mask)
    daughters = (train.meta["t"] == 1).to_numpy() & train.meta["label"].isin([2, 3]).to_numpy()
    assert all((train.x[i, 4] > 0).sum() > train.x[i, 3].sum() for i in np.flatnonzero(daughters))


def test_cli_extract_with_context(tmp_path):
    import tifffile
    from typer.testing import CliRunner

    from dynacell.cli.main import app
    from dynacell.samples import SampleSet

    images, labels = _division_movie()
    for name, mv in (("img", images), ("lab", labels)):
        (tmp_path / name).mkdir()
        for t in range(3):
            tifffile.imwrite(tmp_path / name / f"t{t:03d}.tif", np.asarray(mv.frame(t)))
    out = tmp_path / "set.npz"
    res = CliRunner().invoke(app, ["extract", str(tmp_path / "img"), "--labels", str(tmp_path / "lab"),
                                   "--lineage", "none", "-o", str(out), "--size", "16", "--context", "--no-progress"])
    assert res.exit_code == 0, res.output
    ss = SampleSet.load(out)
    assert ss.x.shape[1] == 6 and ss.attrs["channels"] == list(CONTEXT_CHANNELS)
