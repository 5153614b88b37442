"""Thumbnails of 2D frames wider than 640 px are drawn at 640 px (outlines, track ids and scale bar at that size);
narrower 2D frames and 3D frames keep the full-size drawing."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dynacell.io.movie import Movie
from dynacell.viz.overlay import STATE_COLORS, render_frame
from dynacell.viz.report import _THUMB_WIDTH, _at_thumbnail_size, _thumbnails


def _wide_movie(width: int = 1280, height: int = 960):
    """2 frames: a stable 200×300 px nucleus (label 5) and a mitotic 100×100 px one (label 9) on a dim background."""
    lab = np.zeros((2, height, width), np.uint16)
    lab[:, 100:300, 200:500] = 5
    lab[:, 600:700, 900:1000] = 9
    img = (lab > 0).astype(np.float32) * 3000 + 100 + np.random.default_rng(0).random(lab.shape, np.float32) * 50
    states = pd.DataFrame({"t": [0, 0, 1, 1], "label": [5, 9, 5, 9], "track_id": [1, 2, 1, 2],
                           "state": ["stable", "mitotic", "stable", "mitotic"]})
    return (Movie(img.astype(np.uint16), "TYX", voxel_size_um=(0.25, 0.25), source="m"),
            Movie(lab, "TYX", source="l"), states)


def _decode(thumb: dict) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(thumb["png"]))).convert("RGB"))


def test_at_thumbnail_size_resamples_the_image_and_picks_the_nearest_labels() -> None:
    images, labels, _ = _wide_movie()
    small, lab, vs = _at_thumbnail_size(images.frame(0), labels.frame(0), (0.25, 0.25))
    assert small.shape == lab.shape == (480, 640)
    assert lab.dtype == np.uint16 and set(np.unique(lab)) == {0, 5, 9}
    # the nucleus of 200 × 300 px at (100, 200) is 100 × 150 px at (50, 100): the labels at the pixel centres
    assert np.array_equal(np.argwhere(lab == 5).min(0), [50, 100]) and np.array_equal(np.argwhere(lab == 5).max(0), [149, 249])
    assert np.array_equal(np.argwhere(lab == 9).min(0), [300, 450]) and np.array_equal(np.argwhere(lab == 9).max(0), [349, 499])
    assert vs == (0.5, 0.5)
    inside, outside = small[lab == 5], small[lab == 0]
    assert inside.mean() > 3000 and outside.mean() < 200  # the intensities follow the labels
    assert _at_thumbnail_size(images.frame(0), labels.frame(0), None)[2] is None


def test_wide_2d_thumbnails_are_drawn_at_640_px_with_state_outlines() -> None:
    images, labels, states = _wide_movie()
    thumbs = _thumbnails(images, labels, states, None, (0.25, 0.25), 2)
    assert len(thumbs) == 2 and thumbs[0]["caption"].endswith("2 nuclei")
    rgb = _decode(thumbs[0])
    # the same drawing as render_frame on the frame taken to 640 px: outlines of 1 px at the thumbnail's size
    small, lab, vs = _at_thumbnail_size(images.frame(0), labels.frame(0), (0.25, 0.25))
    expected = render_frame(small, lab, states[states["t"] == 0], t=0, voxel_size_um=vs)
    assert rgb.shape == expected.shape and rgb.shape[1] == _THUMB_WIDTH
    assert np.array_equal(rgb, expected)
    band = rgb.shape[0] - 480
    body = rgb[band:]
    green, yellow = np.all(body == STATE_COLORS["stable"], -1), np.all(body == STATE_COLORS["mitotic"], -1)
    assert green[50, 100:250].all() and green[149, 100:250].all()  # top and bottom edges of nucleus 5, 1 px wide
    assert not green[51, 101:248].any()
    assert yellow[300, 450:500].all() and yellow[349, 450:500].all()


@pytest.mark.parametrize("width", [640, 320])
def test_narrow_2d_frames_are_drawn_as_before(width) -> None:
    images, labels, states = _wide_movie(width=width, height=240)
    thumbs = _thumbnails(images, labels, states, None, None, 1)
    scale = max(1, int(np.ceil(320 / width)))
    expected = render_frame(images.frame(0), labels.frame(0), states[states["t"] == 0], t=0, scale=scale)
    assert np.array_equal(_decode(thumbs[0]), expected)


def test_wide_3d_frames_are_drawn_at_full_size_then_resampled() -> None:
    lab = np.zeros((1, 3, 100, 1000), np.uint16)
    lab[0, 1, 20:60, 100:300] = 4
    img = (lab > 0).astype(np.uint16) * 500 + 10
    states = pd.DataFrame({"t": [0], "label": [4], "track_id": [1], "state": ["stable"]})
    thumbs = _thumbnails(Movie(img, "TZYX", source="m"), Movie(lab, "TZYX", source="l"), states, None, None, 1)
    full = Image.fromarray(render_frame(img[0], lab[0], states, t=0))
    expected = np.asarray(full.resize((640, int(round(full.height * 640 / full.width))), Image.Resampling.LANCZOS))
    assert np.array_equal(_decode(thumbs[0]), expected)
