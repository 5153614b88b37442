"""Tests of the per-object outline cut (:func:`dynacell.segment.learned.cut_outlines_by_object`)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from dynacell.segment.learned import PostprocessParams, cut_outlines_by_object


def _two_discs(dim: float = 0.2):
    """A bright and a dim disc of radius 10 (blurred), labels and a foreground drawn 2 px too wide."""
    yy, xx = np.mgrid[:64, :112]
    r1 = np.hypot(yy - 32, xx - 30)
    r2 = np.hypot(yy - 32, xx - 80)
    img = ndi.gaussian_filter(np.where(r1 <= 10, 1.0, 0.0) + np.where(r2 <= 10, dim, 0.0), 1.0).astype(np.float32)
    labels = np.zeros(img.shape, np.int32)
    labels[r1 <= 14] = 1
    labels[r2 <= 14] = 2
    fg = np.where((r1 <= 12) | (r2 <= 12), 0.9, 0.1).astype(np.float32)
    return img, labels, fg


def test_weight_zero_is_the_plain_cut() -> None:
    img, labels, fg = _two_discs()
    out = cut_outlines_by_object(labels, fg, img, threshold=0.5, weight=0.0)
    assert np.array_equal(out, np.where(fg > 0.5, labels, 0))
    assert PostprocessParams().outline_intensity_weight == 0.0  # off unless a card turns it on


def test_each_disc_is_cut_at_its_own_half_contrast_dim_or_bright() -> None:
    img, labels, fg = _two_discs(dim=0.2)
    out = cut_outlines_by_object(labels, fg, img, threshold=0.5, weight=1.0, fraction=0.5, sigma_px=0.0)
    true_area = (np.hypot(*np.mgrid[-20:21, -20:21]) <= 10).sum()  # 317 px
    plain = (fg[:, :56] > 0.5).sum()
    a1, a2 = (out == 1).sum(), (out == 2).sum()
    assert plain > 1.35 * true_area  # the foreground alone draws them too wide
    assert abs(a1 - true_area) < 0.08 * true_area and abs(a2 - true_area) < 0.08 * true_area
    assert abs(a1 - a2) <= 4  # the dim disc is outlined at its own level, like the bright one
    # a plain intensity threshold at the bright disc's half level would lose the dim disc entirely
    assert ((img > 0.5) & (labels == 2)).sum() == 0


def test_blend_moves_the_outline_part_way_and_labels_never_grow() -> None:
    img, labels, fg = _two_discs()
    plain = cut_outlines_by_object(labels, fg, img, weight=0.0)
    half = cut_outlines_by_object(labels, fg, img, weight=0.5, fraction=0.5, sigma_px=0.0)
    full = cut_outlines_by_object(labels, fg, img, weight=1.0, fraction=0.5, sigma_px=0.0)
    for k in (1, 2):
        assert (full == k).sum() <= (half == k).sum() <= (plain == k).sum()
    assert set(np.unique(half)) == {0, 1, 2}
    assert not ((half > 0) & (half != labels)).any()  # a pixel keeps its object or becomes background


def test_a_hole_inside_one_object_is_filled_and_a_flat_object_keeps_the_plain_cut() -> None:
    img, labels, fg = _two_discs()
    img = img.copy()
    img[30:34, 28:32] = 0.0  # a dark spot inside the bright disc: below its level, but enclosed by it
    out = cut_outlines_by_object(labels, fg, img, weight=1.0, fraction=0.5, sigma_px=0.0)
    assert (out[30:34, 28:32] == 1).all()
    flat = np.zeros_like(img)  # no contrast anywhere: every object keeps foreground > threshold
    out = cut_outlines_by_object(labels, fg, flat, weight=1.0, fraction=0.5)
    assert np.array_equal(out, np.where(fg > 0.5, labels, 0))


@pytest.mark.parametrize("n_labels", [0, 1])
def test_empty_or_single_object_frames(n_labels: int) -> None:
    img, labels, fg = _two_discs()
    if n_labels == 0:
        labels = np.zeros_like(labels)
    else:
        labels = np.where(labels == 2, 0, labels)
    out = cut_outlines_by_object(labels, fg, img, weight=0.25)
    assert out.shape == labels.shape and set(np.unique(out)) <= {0, 1}


def test_ring_in_boxes_around_each_object_equals_the_whole_frame_expansion() -> None:
    """The per-object boxes of the background ring give the labels of expand_labels on the whole frame."""
    from skimage.segmentation import expand_labels

    from dynacell.segment.learned import _nearest_ring

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:160, :400]
    core = np.zeros(yy.shape, np.int32)
    for k in range(1, 16):  # discs of radius 5-12, many close or touching
        cy, cx, r = rng.integers(10, 150), rng.integers(10, 390), rng.integers(5, 13)
        core[(np.hypot(yy - cy, xx - cx) <= r) & (core == 0)] = k
    whole = expand_labels(core, 4.0)
    whole[core > 0] = 0
    boxed = _nearest_ring(core, 4.0)  # boxes smaller in all than the frame: the per-object path
    assert np.array_equal(boxed, whole) and boxed.any()
    dense = np.kron(np.arange(1, 65, dtype=np.int32).reshape(8, 8), np.ones((6, 6), np.int32))  # boxes cover more
    dense[::6, :] = 0
    ring = _nearest_ring(dense, 4.0)
    ref = expand_labels(dense, 4.0)
    ref[dense > 0] = 0
    assert np.array_equal(ring, ref)
