"""Next-frame windows, splits and baselines."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.forecast.evaluate import evaluate_frames
from dynacell.forecast.frames import (
    BASELINES,
    baseline_forecast,
    linear_extrapolation,
    make_windows,
    normalize_movie,
    persistence,
    smoothed_persistence,
    time_block_split,
    warp_by_flow,
)


def test_windows_hold_the_k_previous_frames():
    frames = np.arange(6)[:, None, None] * np.ones((6, 2, 3), np.float32)
    x, y = make_windows(frames, 3, [3, 5])
    assert x.shape == (2, 3, 2, 3) and y.shape == (2, 2, 3)
    assert x[1, :, 0, 0].tolist() == [2, 3, 4] and y[1, 0, 0] == 5
    with pytest.raises(InvalidInputError, match="targets"):
        make_windows(frames, 3, [2])


def test_time_block_split_is_ordered_and_disjoint():
    parts = time_block_split(50, 4)
    assert parts["train"][0] == 4 and parts["train"][-1] < parts["val"][0] <= parts["val"][-1] < parts["test"][0]
    assert parts["test"][-1] == 49
    with pytest.raises(InvalidInputError):
        time_block_split(5, 4)


def test_normalize_maps_percentiles_of_fit_frames():
    f = np.stack([np.full((4, 4), v, np.float32) for v in (0, 10, 100)])
    f[0, 0, 0] = 10
    out, (lo, hi) = normalize_movie(f, fit_frames=[0, 1], low_pct=0, high_pct=100)
    assert (lo, hi) == (0, 10) and out[2].max() == pytest.approx(10.0)


def test_linear_extrapolation_is_exact_on_a_linear_ramp():
    t = np.arange(5, dtype=np.float32)[:, None, None]
    frames = 0.1 + 0.05 * t * np.ones((5, 8, 8), np.float32)
    x, y = make_windows(frames, 2, [4])
    np.testing.assert_allclose(linear_extrapolation(x), y, atol=1e-6)
    assert np.abs(persistence(x) - y).max() == pytest.approx(0.05)


@pytest.mark.slow
def test_flow_warp_follows_a_moving_spot(make_blob):
    movie = make_blob(n_frames=6, speed_px=1.5)
    x, y = make_windows(movie, 2, [4, 5])
    err = {b: float(np.mean((baseline_forecast(b, x) - y) ** 2)) for b in BASELINES}
    assert err["flow"] < 0.25 * err["persistence"]
    # smoothing does not move the spot: no better than persistence here
    assert err["smoothed_persistence"] > 0.5 * err["persistence"]
    with pytest.raises(InvalidInputError):
        baseline_forecast("median", x)


def test_warp_by_flow_equals_scikit_image_warp_and_moves_by_the_flow():
    from skimage.transform import warp

    rng = np.random.default_rng(0)
    image = rng.random((40, 33), dtype=np.float32)
    flow = (rng.standard_normal((2, 40, 33)) * 4).astype(np.float32)  # reaches beyond the borders
    rr, cc = np.meshgrid(np.arange(40), np.arange(33), indexing="ij")
    ref = warp(image, np.stack([rr + flow[0], cc + flow[1]]), mode="edge", order=1, preserve_range=True)
    out = warp_by_flow(image, flow)
    assert out.dtype == np.float32 and out.shape == image.shape
    np.testing.assert_allclose(out, ref, atol=1e-6)
    shift = np.zeros((2, 40, 33), np.float32)
    shift[1] = 2.0  # image(p + (0, 2)): content moves 2 columns left; the last columns repeat the edge
    np.testing.assert_allclose(warp_by_flow(image, shift)[:, :31], image[:, 2:], atol=1e-6)
    np.testing.assert_allclose(warp_by_flow(image, shift)[:, 31:], image[:, [32, 32]], atol=1e-6)


def test_smoothed_persistence_removes_noise(make_blob):
    rng = np.random.default_rng(0)
    clean = make_blob(n_frames=3, speed_px=0.0)
    noisy = clean + rng.normal(0, 0.1, clean.shape).astype(np.float32)
    x, _ = make_windows(noisy, 2, [2])
    assert np.mean((smoothed_persistence(x, 1.0) - clean[2]) ** 2) < 0.5 * np.mean((persistence(x) - clean[2]) ** 2)


@pytest.mark.slow
def test_evaluate_frames_reports_every_baseline(make_blob):
    movie = make_blob(n_frames=8)
    res = evaluate_frames(movie, [5, 6, 7], k=2, pixel_size_um=0.5)
    for b in BASELINES:
        assert f"mse_{b}" in res and res[b]["com_error_um"] == pytest.approx(res[b]["com_error_px"] * 0.5)
    assert res["best_baseline"] == "flow"
    assert res["persistence"]["com_error_px"] == pytest.approx(1.0, abs=0.05)  # the spot moves 1 px a frame
