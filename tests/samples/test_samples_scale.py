"""Tests of the nucleus-size rule (:mod:`dynacell.samples.scale`) in training and inference crops."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import FixedClassifier, state_card

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.samples import (
    build_sample_set,
    nucleus_diameter_px,
    scale_crop_kwargs,
    scale_normalization,
)
from dynacell.states.card import StateModelCard
from dynacell.states.classify import (
    classify_movie,
    crop_kwargs_for_movie,
    crop_parameters,
)


def _disc_movie(radius: float, T: int = 3, shape=(96, 96), centres=((30, 30), (60, 64))):
    """Images and labels of discs of ``radius`` px (image = smooth blob, labels = discs)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(0)
    imgs = np.zeros((T, *shape), np.float32)
    labs = np.zeros((T, *shape), np.uint16)
    for t in range(T):
        for i, (cy, cx) in enumerate(centres, start=1):
            r2 = (yy - cy) ** 2 + (xx - cx) ** 2
            labs[t][r2 <= radius**2] = i
            imgs[t] += np.exp(-r2 / (2 * (radius / 1.5) ** 2)).astype(np.float32) * (1 + 0.1 * t)
        imgs[t] += rng.normal(0, 0.01, shape).astype(np.float32)
    return Movie(imgs, "TYX", source="images"), Movie(labs, "TYX", source="labels")


def test_nucleus_diameter_matches_disc_area():
    _, labels = _disc_movie(radius=10)
    d, frames, n = nucleus_diameter_px(labels, n_frames=2)
    area = (labels.frame(0) == 1).sum()
    assert d == pytest.approx(2 * np.sqrt(area / np.pi))
    assert frames == [0, 1] and n == 4


def test_scale_factor_makes_sizes_equal():
    _, small = _disc_movie(radius=6)
    _, large = _disc_movie(radius=18)
    s_small = scale_normalization(small, 12.0)
    s_large = scale_normalization(large, 12.0)
    assert s_large["pixels_per_crop_px"] / s_small["pixels_per_crop_px"] == pytest.approx(3.0, rel=0.05)
    for s in (s_small, s_large):
        assert s["nucleus_diameter_px"] / s["pixels_per_crop_px"] == pytest.approx(12.0)
    kw = scale_crop_kwargs(s_large, 2)
    assert kw == {"voxel_size_um": (1.0, 1.0), "target_voxel_um": s_large["pixels_per_crop_px"]}


def test_scaled_crops_see_the_same_nucleus_size():
    """Two movies with 2x different nucleus sizes give nearly the same mask crops after scaling."""
    sets = []
    for radius, centres in ((8, ((30, 30),)), (16, ((45, 45),))):
        images, labels = _disc_movie(radius, shape=(96, 96), centres=centres)
        sets.append(build_sample_set(images, labels, None, size=24, target_diameter_px=10.0, assume_state="stable"))
    m0, m1 = sets[0].x[0, 3], sets[1].x[0, 3]
    assert abs(m0.sum() - m1.sum()) / m0.sum() < 0.1
    assert sets[0].attrs["scale_normalization"]["target_diameter_px"] == 10.0
    plain = build_sample_set(*_disc_movie(16, centres=((45, 45),)), None, size=24, assume_state="stable")
    assert plain.attrs["scale_normalization"] is None
    assert plain.x[0, 3].sum() > 1.5 * m1.sum()  # without the rule the big nucleus fills the box


def test_training_and_inference_apply_the_same_transform():
    images, labels = _disc_movie(radius=14)
    train = build_sample_set(images, labels, None, size=16, target_diameter_px=8.0, assume_state="stable")

    class Recorder(FixedClassifier):
        def __init__(self):
            super().__init__()
            self.card = StateModelCard.model_validate(state_card(
                name="rec", scale_normalization={"method": "nucleus-size", "target_diameter_px": 8.0, "n_frames": 3}))
            self.seen = []

        def predict_proba(self, x):
            self.seen.append(x.copy())
            return super().predict_proba(x)

    clf = Recorder()
    crop = crop_parameters(clf, 2)
    assert crop["target_diameter_px"] == 8.0
    kw = crop_kwargs_for_movie(crop, images, labels)
    assert kw["target_voxel_um"] == pytest.approx(train.attrs["scale_normalization"]["pixels_per_crop_px"])
    classify_movie(images, labels, clf, progress=False)
    seen = np.concatenate(clf.seen)
    assert seen.shape == train.x.shape
    np.testing.assert_array_equal(seen, train.x)


def test_bad_scale_input():
    images, labels = _disc_movie(radius=5)
    with pytest.raises(InvalidInputError, match="target_diameter_px"):
        scale_normalization(labels, 0.0)
    with pytest.raises(InvalidInputError, match="not both"):
        build_sample_set(images, labels, None, target_diameter_px=8.0, target_voxel_um=1.0)
    empty = Movie(np.zeros((2, 8, 8), np.uint16), "TYX", source="empty.tif")
    with pytest.raises(InvalidInputError, match="empty.tif"):
        nucleus_diameter_px(empty)


def _ball_movie(radius_um: float, voxel_um=(2.0, 0.5, 0.5), T: int = 3, shape_um=(40.0, 40.0, 40.0)):
    """3D movie of one ball of ``radius_um`` on an anisotropic grid (labels and a smooth image)."""
    shape = tuple(int(round(s / v)) for s, v in zip(shape_um, voxel_um))
    zz, yy, xx = np.meshgrid(*[(np.arange(n) - n / 2) * v for n, v in zip(shape, voxel_um)], indexing="ij")
    r2 = zz**2 + yy**2 + xx**2
    lab = np.repeat((r2 <= radius_um**2).astype(np.uint16)[None], T, axis=0)
    img = np.repeat(np.exp(-r2 / (2 * (radius_um / 1.5) ** 2)).astype(np.float32)[None], T, axis=0)
    return (Movie(img, "TZYX", voxel_size_um=voxel_um, source="ball"),
            Movie(lab, "TZYX", voxel_size_um=voxel_um, source="ball-labels"))


def test_physical_rule_in_3d_gives_the_same_crop_for_any_voxel_and_nucleus_size():
    """3D with a voxel size: the diameter is measured in µm and sets an isotropic crop voxel."""
    seen = []
    for radius_um, voxel in ((8.0, (2.0, 0.5, 0.5)), (1.2, (0.3, 0.1, 0.1))):
        images, labels = _ball_movie(radius_um, voxel, shape_um=(radius_um * 5,) * 3)
        sc = scale_normalization(labels, 10.0, voxel_size_um=voxel)
        assert sc["units"] == "um"
        assert sc["nucleus_diameter_um"] == pytest.approx(2 * radius_um, rel=0.05)
        assert sc["target_voxel_um"] == pytest.approx(sc["nucleus_diameter_um"] / 10.0)
        assert scale_crop_kwargs(sc, 3) == {"voxel_size_um": tuple(voxel), "target_voxel_um": sc["target_voxel_um"]}
        ss = build_sample_set(images, labels, None, size=16, target_diameter_px=10.0)
        assert ss.attrs["scale_normalization"]["units"] == "um"
        seen.append(ss.x[0, 3].sum())
    # the mask spans ~10 crop voxels across in both movies: volume ≈ π/6 · 10³ ≈ 524 voxels
    assert seen[0] == pytest.approx(seen[1], rel=0.1) and seen[0] == pytest.approx(np.pi / 6 * 1000, rel=0.15)
    # inference measures the movie the same way (crop_kwargs_for_movie with a µm card)
    images, labels = _ball_movie(3.0, (1.0, 0.25, 0.25), shape_um=(15.0,) * 3)
    crop = {"size": 16, "target_voxel_um": None, "target_diameter_px": 10.0, "scale_frames": 3, "scale_units": "um"}
    kw = crop_kwargs_for_movie(crop, images, labels)
    assert kw["target_voxel_um"] == pytest.approx(kw["scale_normalization"]["nucleus_diameter_um"] / 10.0)
    # 2D keeps the pixel rule (2D data often have no pixel size)
    _, lab2 = _disc_movie(radius=6)
    assert scale_normalization(lab2, 12.0)["units"] == "px"
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        scale_normalization(labels, 10.0, voxel_size_um=(1.0, -1.0, 1.0))
