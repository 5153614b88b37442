"""The overlays' inner outlines equal scikit-image's ``find_boundaries(mode="inner")`` (the code they replaced)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation import find_boundaries

from dynacell.viz.overlay import _find_inner, own_slice_outlines


@pytest.mark.parametrize("seed", range(8))
def test_same_pixels_as_skimage(seed):
    rng = np.random.default_rng(seed)
    shapes = [(1, 7), (5, 1), (2, 2), (31, 17), (4, 9, 11), (1, 6, 5), (13,)]
    for shape in shapes:
        for n_ids in (2, 5, 40):
            lab = rng.integers(0, n_ids, size=shape)
            if rng.random() < 0.5:  # blocky labels as well as noise
                lab = np.kron(lab, np.ones((3,) * len(shape), dtype=lab.dtype))
            lab = lab.astype([np.uint16, np.int32, np.uint8, np.int64][seed % 4])
            np.testing.assert_array_equal(_find_inner(lab), find_boundaries(lab, mode="inner"))
        b = rng.random(shape) < 0.5
        np.testing.assert_array_equal(_find_inner(b), find_boundaries(b, mode="inner"))


def test_own_slice_outlines_of_a_square():
    lab = np.zeros((8, 8), np.int32)
    lab[2:6, 2:6] = 3
    out = own_slice_outlines(lab)
    assert out[2, 2] == 3 and out[3, 3] == 0 and out[0, 0] == 0
    assert int((out == 3).sum()) == 12  # the 4 x 4 square's ring
