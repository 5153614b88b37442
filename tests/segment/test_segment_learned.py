"""Networks, targets, instance extraction, size estimation and measurements."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.metrics.segmentation import ctc_seg
from dynacell.models.unet import (
    SeedUNet,
    SelfAttentionUNet,
    build_segmentation_model,
)
from dynacell.segment.learned import (
    PostprocessParams,
    estimate_nucleus_diameter_px,
    h_maxima_in_object,
    instances_from_maps,
    normalize_image,
    split_by_shape,
    training_targets,
)
from dynacell.segment.measure import measure_frame, measure_objects, relative_area_error


def test_seed_unet_is_the_seed_architecture():
    net = SeedUNet()
    # 4 blocks of 32..256 filters, a 512-filter middle, transposed convs, 1 sigmoid channel
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs[:8:2]] == [32, 64, 128, 256]
    assert net.middle[0].out_channels == 512
    drops = [m.p for m in net.drop_down]
    assert drops == [0.25, 0.5, 0.5, 0.5]
    assert sum(p.numel() for p in net.parameters()) == 8_629_921
    small = SeedUNet(base_filters=4)
    assert small(torch.zeros(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_attention_unet_three_classes_and_attention_in_every_block():
    net = SelfAttentionUNet(base_filters=8, depth=2)
    assert net(torch.zeros(2, 1, 36, 36)).shape == (2, 3, 36, 36)  # windows of 8 padded over 36 px
    n_blocks = len(net.down) + 1 + len(net.up_conv)
    n_attn = sum(isinstance(m, torch.nn.MultiheadAttention) for m in net.modules())
    assert n_attn == n_blocks
    assert all(m.num_heads == 4 for m in net.modules() if isinstance(m, torch.nn.MultiheadAttention))


@pytest.mark.parametrize("ndim,shape", [(2, (1, 1, 40, 24)), (3, (1, 1, 16, 24, 24))])
def test_instance_unet_shapes(ndim, shape):
    net = build_segmentation_model("instance-unet", ndim=ndim, base_filters=4, depth=2)
    assert net(torch.zeros(shape)).shape == (shape[0], 3, *shape[2:])
    with pytest.raises(InvalidInputError, match="unknown segmentation architecture"):
        build_segmentation_model("nope")


def test_targets_and_watershed_split_touching_discs(disc_image):
    _, lab = disc_image
    tg = training_targets(lab)
    assert tg.shape == (3, *lab.shape)
    assert np.array_equal(tg[0] > 0, lab > 0)
    assert tg[2].max() == pytest.approx(1.0) and tg[2][lab == 0].max() == 0
    assert tg[1][lab == 0].max() == 0 and tg[1].sum() > 0
    # perfect maps -> the two touching discs come out as two objects
    pred = instances_from_maps(tg[0], tg[2], tg[1], PostprocessParams(0.5, 0.5, 5))
    assert pred.max() == 3
    seg, n = ctc_seg(lab, pred)
    assert n == 3 and seg > 0.85
    # without seeds the same mask is one merged object: the seeds do the splitting
    merged = instances_from_maps(tg[0], np.zeros_like(tg[2]), None, PostprocessParams(0.5, 0.5, 5))
    assert merged.max() == 2


def test_weak_objects_dropped_by_mean_foreground():
    """Three discs (r 10) with confident cores; the first one's foreground is 0.6 everywhere."""
    yy, xx = np.mgrid[:60, :300]
    fg = np.zeros(yy.shape, np.float32)
    dist = np.zeros(yy.shape, np.float32)
    for cx in (50, 150, 250):
        r = np.hypot(yy - 30, xx - cx)
        fg = np.maximum(fg, (r <= 10).astype(np.float32))
        dist = np.maximum(dist, np.clip(0.9 * (1 - r / 10), 0, None))
    fg[:, :100] *= 0.6  # above the 0.5 threshold in every pixel, but a weak object on average
    assert instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.5, 5)).max() == 3
    kept = instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.5, 5, min_mean_foreground=0.7))
    assert kept.max() == 2 and kept[:, :100].max() == 0
    assert kept[:, 100:].max() == 2  # the confident ones stay


def test_seed_h_splits_touching_spheres_with_a_low_distance():
    """Two touching spheres whose predicted distance peaks at 0.3 (below seed_distance, cores joined)."""
    zz, yy, xx = np.mgrid[:16, :24, :40]
    fg = np.zeros(zz.shape, np.float32)
    dist = np.zeros(zz.shape, np.float32)
    for cx in (13, 26):
        r = np.sqrt((zz - 8) ** 2 + (yy - 12) ** 2 + (xx - cx) ** 2)
        fg = np.maximum(fg, (r <= 7).astype(np.float32))
        dist = np.maximum(dist, np.clip(0.3 * (1 - r / 7), 0, None))
    dist = np.where(fg > 0, np.maximum(dist, 0.2), 0).astype(np.float32)  # a plateau joins the cores at 0.2
    assert instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.4, 5)).max() == 1
    assert instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.15, 5)).max() == 1
    two = instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.4, 5, seed_h=0.05))
    assert two.max() == 2 and two[8, 12, 13] != two[8, 12, 26] and two[8, 12, 13] > 0
    # a bump less than seed_h above its saddle does not seed a nucleus of its own
    low = np.where(xx >= 20, np.minimum(dist, 0.22), dist).astype(np.float32)
    assert instances_from_maps(fg, low, None, PostprocessParams(0.5, 0.4, 5, seed_h=0.05)).max() == 1


def test_split_by_shape_cuts_a_dim_pair_without_seeds_and_leaves_convex_nuclei():
    """Two touching discs whose predicted distance never reaches seed_distance (a dim pair: one object)."""
    yy, xx = np.mgrid[:60, :100]
    pair = ((yy - 30) ** 2 + (xx - 25) ** 2 < 144) | ((yy - 30) ** 2 + (xx - 47) ** 2 < 144)
    ellipse = ((yy - 30) / 10.0) ** 2 + ((xx - 80) / 16.0) ** 2 < 1  # convex, long: one maximum
    fg = (pair | ellipse).astype(np.float32)
    dist = 0.3 * fg  # below seed_distance: no seed anywhere, each component is one object
    one = instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.45, 5))
    assert one.max() == 2 and one[30, 25] == one[30, 47]
    cut = instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.45, 5, split_h_px=3.0))
    assert cut.max() == 3 and cut[30, 25] != cut[30, 47] and cut[30, 25] > 0 and cut[30, 47] > 0
    assert len(np.unique(cut[ellipse])) == 1  # the ellipse stays whole
    assert ((cut > 0) == (one > 0)).all()  # a split moves no pixel in or out of the foreground
    # the neck (half-width 4.8 px, lobes of radius 12: dynamic 7.2 px) is kept whole by a larger h
    assert instances_from_maps(fg, dist, None, PostprocessParams(0.5, 0.45, 5, split_h_px=8.0)).max() == 2
    # objects below split_min_area_px are left whole; the input of split_by_shape is not modified
    lab = one.copy()
    assert split_by_shape(lab, 3.0, min_area_px=int(pair.sum()) + 1).max() == 2
    assert split_by_shape(lab, 3.0).max() == 3 and (lab == one).all()


def test_h_maxima_in_object_two_operators():
    """skimage's h_maxima keeps two equal peaks joined by a shallow saddle; the extended maxima merge them."""
    ridge = np.array([[0, 1, 2, 3, 5, 4.9, 5, 3, 2, 0]], float)
    inside = ridge > 0
    assert h_maxima_in_object(ridge, inside, 2.0).tolist() == [[0, 0, 0, 0, 1, 0, 1, 0, 0, 0]]
    # the extended maxima: one plateau, the pixels within h of the top
    assert h_maxima_in_object(ridge, inside, 2.0, extended=True).tolist() == [[0, 0, 0, 1, 1, 1, 1, 1, 0, 0]]
    # a deep saddle (dynamic 4 >= h) gives two maxima either way; values outside the object are ignored
    deep = np.array([[0, 1, 3, 5, 1, 5, 3, 9]], float)
    inside = np.array([[0, 1, 1, 1, 1, 1, 1, 0]], bool)
    for extended in (False, True):
        peaks = h_maxima_in_object(deep, inside, 2.0, extended=extended)
        assert peaks[0, 3] and peaks[0, 5] and not peaks[0, 4] and not peaks[0, 7]


def test_normalize_and_size_estimate(make_discs):
    img, _ = make_discs(shape=(200, 200), centres=[(40 + 60 * i, 40 + 60 * j) for i in range(3) for j in range(3)],
                          radius=12)
    x = normalize_image(img)
    assert x.dtype == np.float32 and np.percentile(x, 1) == pytest.approx(0, abs=1e-5)
    d = estimate_nucleus_diameter_px(img)
    assert 24 * 0.75 < d < 24 * 1.25
    with pytest.raises(InvalidInputError, match="no bright blob"):
        estimate_nucleus_diameter_px(np.zeros((50, 50)))



def test_size_estimate_3d_noisy_anisotropic():
    """Dim nuclei (contrast 2 noise SD) in a noisy stack with 2.4:1:1 voxels: lateral pixels, any z step."""
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:30, :90, :120]
    lab = np.zeros(zz.shape, np.int32)
    for i, (cz, cy, cx) in enumerate([(10, 30, 30), (12, 60, 80), (18, 30, 90), (20, 65, 35)], start=1):
        lab[((zz - cz) * 2.4) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= 10**2] = i  # 20 px across laterally
    img = 100 + 10 * (lab > 0) + rng.normal(0, 5, lab.shape)
    d = estimate_nucleus_diameter_px(img, voxel_size_um=(2.0, 0.208, 0.208))
    assert 20 * 0.7 < d < 20 * 1.4
    assert estimate_nucleus_diameter_px(img, voxel_size_um=(0.5, 0.208, 0.208)) == d
    with pytest.raises(InvalidInputError, match="does not match"):
        estimate_nucleus_diameter_px(img, voxel_size_um=(1.0, 1.0))

def test_measure_frame_units(disc_image):
    img, lab = disc_image
    df = measure_frame(img, lab, voxel_size_um=(0.5, 0.5))
    assert list(df.label) == [1, 2, 3]
    row = df.iloc[2]
    assert row.area_um2 == pytest.approx(row.area_px * 0.25)
    assert row.equivalent_diameter_px == pytest.approx(20, rel=0.05)
    assert row.total_intensity == pytest.approx(img[lab == 3].sum(), rel=1e-6)
    assert "volume_um3" not in df
    with pytest.raises(InvalidInputError, match="does not match"):
        measure_frame(img, lab, voxel_size_um=(1, 1, 1))


def test_measure_objects_over_time_and_area_error(disc_image):
    img, lab = disc_image
    movie = Movie(np.stack([img, img]), "TYX", voxel_size_um=(0.5, 0.5), frame_interval_s=60, frame_indices=(3, 4))
    labels = Movie(np.stack([lab, lab]), "TYX", frame_indices=(3, 4))
    df = measure_objects(movie, labels)
    assert list(df.t.unique()) == [3, 4] and list(df.time_s.unique()) == [180, 240]
    grown = lab.copy()
    grown[(grown == 0) & (np.roll(lab, 1, axis=0) == 3)] = 3
    err = relative_area_error(lab, grown)
    assert len(err) == 3 and err.max() > 0 and np.sort(err)[0] == 0


def test_volume_in_3d():
    lab = np.zeros((4, 6, 6), np.int32)
    lab[1:3, 1:4, 1:4] = 1
    df = measure_frame(np.ones(lab.shape), lab, voxel_size_um=(2.0, 0.5, 0.5))
    assert df.volume_vox.iloc[0] == 18 and df.volume_um3.iloc[0] == pytest.approx(18 * 0.5)


def _spheres(radius_px: float, aspect: float = 2.4, shape=(30, 90, 120)):
    """Spheres of lateral diameter ``2·radius_px`` in a stack of z/x voxel aspect ``aspect``."""
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    lab = np.zeros(shape, np.int32)
    for i, (cz, cy, cx) in enumerate([(10, 30, 30), (12, 60, 80), (18, 30, 90), (20, 65, 35)], start=1):
        lab[((zz - cz) * aspect) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius_px**2] = i
    return lab


@pytest.mark.parametrize("radius", [6.0, 10.0, 13.0])
def test_lateral_diameters_of_spheres_of_known_diameter(radius):
    """Largest YX section of anisotropic spheres: 2·radius lateral pixels, whatever the z step."""
    from dynacell.segment.learned import lateral_diameters_px

    for aspect in (1.0, 2.4):
        d = lateral_diameters_px(_spheres(radius, aspect))
        assert len(d) == 4
        np.testing.assert_allclose(d, 2 * radius, rtol=0.04)
    d2 = lateral_diameters_px((_spheres(radius)[12] == 2).astype(np.int32))  # 2D: the plane through sphere 2's centre
    np.testing.assert_allclose(d2, 2 * radius, rtol=0.04)
    assert len(lateral_diameters_px(np.zeros((5, 5), np.int32))) == 0
    with pytest.raises(InvalidInputError, match="2-D or 3-D"):
        lateral_diameters_px(np.zeros(5, np.int32))


def test_model_refined_size_estimate(monkeypatch):
    """A 3D model's first-pass objects set the size (volume-weighted: fragments do not drag it down)."""
    from types import SimpleNamespace

    from dynacell.segment import predict

    lab = _spheres(10.0)  # 20 px across laterally
    frag = lab.copy()
    for k in range(12):  # 12 small fragments (3×3×3 voxels) beside 4 nuclei: more fragments than nuclei
        z, x = 2 + 8 * (k % 3), 5 + 10 * (k // 3)
        frag[z: z + 3, 82:85, x: x + 3] = 5 + k
    img = 100 + 10.0 * (lab > 0) + np.random.default_rng(0).normal(0, 2, lab.shape)
    first_pass = {"labels": frag}
    calls = []

    def fake_segment_frame(image, model, *, nucleus_diameter_px=None, voxel_size_um=None):
        calls.append((nucleus_diameter_px, model.card.test_time_flips))
        return first_pass["labels"]

    monkeypatch.setattr(predict, "segment_frame", fake_segment_frame)
    card = SimpleNamespace(ndim=3, test_time_flips=1)
    model = SimpleNamespace(card=card, with_test_time_flips=lambda n: SimpleNamespace(card=SimpleNamespace(ndim=3, test_time_flips=n)))
    vs = (2.0, 0.832, 0.832)
    blob = estimate_nucleus_diameter_px(img, voxel_size_um=vs)
    d = predict.estimate_nucleus_diameter_for_model(img, model, voxel_size_um=vs)
    assert d == pytest.approx(20.0, rel=0.04)
    assert calls == [(blob, 1)]  # one single-copy first pass at the blob estimate
    assert np.median(predict.lateral_diameters_px(frag)) < 10  # the plain median would read a fragment
    assert predict.estimate_nucleus_diameter_for_model(img, model, voxel_size_um=vs, refine=False) == blob
    first_pass["labels"] = np.zeros_like(lab)  # nothing found: the blob estimate
    assert predict.estimate_nucleus_diameter_for_model(img, model, voxel_size_um=vs) == blob
    model2d = SimpleNamespace(card=SimpleNamespace(ndim=2, test_time_flips=1))
    assert predict.estimate_nucleus_diameter_for_model(img, model2d, voxel_size_um=vs) == blob
    assert len(calls) == 2


def test_volume_weighted_median():
    from dynacell.segment.predict import volume_weighted_median

    assert volume_weighted_median(np.array([4.0, 4.0, 4.0, 20.0]), np.array([1, 1, 1, 100])) == 20.0
    assert volume_weighted_median(np.array([3.0, 1.0, 2.0]), np.array([1, 1, 1])) == 2.0
    with pytest.raises(InvalidInputError, match="volume-weighted"):
        volume_weighted_median(np.zeros(0), np.zeros(0))
