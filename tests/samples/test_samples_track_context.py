"""Track context: the t±1 boxes of crop_windows follow the nucleus when given its offsets."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from dynacell.errors import InvalidInputError
from dynacell.samples.crops import crop_windows


def _frames(shift_px: int):
    """A bright disc at (20, 20) at t and at (20, 20 + shift) at t-1 and t+1."""
    frames = []
    for cx in (20 + shift_px, 20, 20 + shift_px):
        img = np.zeros((48, 64), np.float32)
        rr, cc = disk((20, cx), 5, shape=img.shape)
        img[rr, cc] = 100.0
        frames.append(img)
    lab = np.zeros((48, 64), np.uint16)
    rr, cc = disk((20, 20), 5, shape=lab.shape)
    lab[rr, cc] = 1
    return frames, lab


@pytest.mark.parametrize("target", [None, 0.5])
def test_offsets_recentre_the_neighbour_frames(target):
    frames, lab = _frames(shift_px=9)
    kw = {"voxel_size_um": (1.0, 1.0), "target_voxel_um": target} if target else {}
    fixed = crop_windows(frames, lab, [1], np.array([[20.0, 20.0]]), size=16, **kw)[0]
    off = np.array([[0.0, 0.0, 9.0]])
    moved = crop_windows(frames, lab, [1], np.array([[20.0, 20.0]]), size=16, neighbour_offsets_px=(off, off), **kw)[0]
    assert not np.allclose(fixed[0], fixed[1])  # the nucleus left the fixed box
    np.testing.assert_allclose(moved[0], moved[1], atol=1e-6)  # centred again in t-1 and t+1
    np.testing.assert_allclose(moved[2], moved[1], atol=1e-6)
    np.testing.assert_array_equal(moved[3], fixed[3])  # the mask channel stays at t


def test_nan_or_missing_offsets_keep_the_box_at_t():
    frames, lab = _frames(shift_px=9)
    cen = np.array([[20.0, 20.0]])
    fixed = crop_windows(frames, lab, [1], cen, size=16)
    nan = np.full((1, 3), np.nan)
    np.testing.assert_array_equal(crop_windows(frames, lab, [1], cen, size=16, neighbour_offsets_px=(nan, None)),
                                  fixed)
    with pytest.raises(InvalidInputError, match="neighbour_offsets_px"):
        crop_windows(frames, lab, [1], cen, size=16, neighbour_offsets_px=(nan,))
