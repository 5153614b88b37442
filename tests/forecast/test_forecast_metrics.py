"""Forecast metrics: frame errors, centre of mass, displacement errors, mask IoU."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.metrics.forecasting import (
    bootstrap_ci,
    center_of_mass,
    center_of_mass_error,
    displacement_errors,
    forecast_mask_iou,
    frame_errors,
    noise_variance,
)


def test_frame_errors_known_values():
    rng = np.random.default_rng(0)
    a = rng.random((3, 16, 16))
    same = frame_errors(a, a, data_range=1.0)
    assert same["mse"] == 0 and same["mae"] == 0 and same["ssim"] == pytest.approx(1.0)
    b = a + 0.1
    res = frame_errors(b, a, data_range=1.0)
    assert res["mse"] == pytest.approx(0.01) and res["mae"] == pytest.approx(0.1)
    assert res["ssim"] < 1.0
    with pytest.raises(InvalidInputError, match="shape"):
        frame_errors(a[:2], a)


def test_center_of_mass_of_single_pixel_and_error_in_um():
    f = np.zeros((2, 10, 12))
    f[0, 3, 5] = 1.0
    f[1, 6, 9] = 2.0
    np.testing.assert_allclose(center_of_mass(f), [[3, 5], [6, 9]])
    g = np.zeros_like(f)
    g[0, 3, 8] = 1.0  # 3 px off
    g[1, 6, 5] = 1.0  # 4 px off
    res = center_of_mass_error(g, f, pixel_size_um=0.5)
    assert res["com_error_px"] == pytest.approx(3.5)
    assert res["com_error_um"] == pytest.approx(1.75)
    lo, hi = res["com_error_px_ci"]
    assert 3.0 <= lo <= 3.5 <= hi <= 4.0


def test_bootstrap_ci_brackets_the_mean_and_rejects_empty():
    v = np.random.default_rng(1).normal(5, 1, 200)
    lo, hi = bootstrap_ci(v, seed=0)
    assert lo < v.mean() < hi and hi - lo < 0.5
    with pytest.raises(InvalidInputError):
        bootstrap_ci([])


def test_displacement_errors_per_horizon():
    true = np.zeros((2, 3, 2))
    pred = true.copy()
    pred[:, 1, 0] = 1.0
    pred[:, 2, 1] = 2.0
    res = displacement_errors(pred, true)
    assert res["per_horizon_um"] == [0.0, 1.0, 2.0]
    assert res["ade_um"] == pytest.approx(1.0) and res["fde_um"] == pytest.approx(2.0)


def test_forecast_mask_iou_shift():
    a = np.zeros((20, 20), bool)
    a[5:10, 5:10] = True
    b = np.roll(a, 3, axis=1)
    assert forecast_mask_iou(a, b, [0, 3]) == pytest.approx(1.0)
    assert forecast_mask_iou(a, b, [0, 0]) == pytest.approx(10 / 40)
    assert forecast_mask_iou(a, b, [0, 30]) == 0.0
    with pytest.raises(InvalidInputError):
        forecast_mask_iou(a, b, [1, 2, 3])


def test_noise_variance_ignores_smooth_structure_and_floors_a_static_scene():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:96, :96]
    scene = 0.3 + 1e-4 * (yy - 40.0) ** 2 + 2e-3 * xx
    frames = scene + rng.normal(0.0, 0.05, (4, 96, 96))
    var = noise_variance(frames)
    assert var.shape == (4,)
    np.testing.assert_allclose(var, 0.05 ** 2, rtol=0.1)
    # two noisy frames of a static scene differ by 2σ²; the best any forecaster can do is σ²
    assert np.mean((frames[1] - frames[0]) ** 2) == pytest.approx(2 * var.mean(), rel=0.1)
    assert noise_variance(scene).item() < 1e-12
    with pytest.raises(InvalidInputError):
        noise_variance(np.zeros((2, 2)))


def test_noise_floor_table_compares_the_floor_with_the_best_baseline():
    import pandas as pd

    from dynacell.forecast.benchmark import noise_floor_table

    rng = np.random.default_rng(1)
    frames = 0.5 + rng.normal(0.0, 0.1, (10, 32, 32))
    movie = {"name": "m", "frames": frames, "split": {"test": [8, 9]}}
    rows = [("persistence", 0.02), ("smoothed_persistence", 0.0125), ("linear", 0.05), ("flow", 0.03), ("net", 0.011)]
    table = pd.DataFrame([{"movie": "m", "forecaster": f, "block": "test block", "n": 2, "mse": v} for f, v in rows])
    row = noise_floor_table([movie], table).iloc[0]
    assert row["best_baseline"] == "smoothed_persistence" and row["best_model"] == "net"
    assert row["noise_var"] == pytest.approx(0.01, rel=0.1)
    floor = min(row["noise_var"], row["persistence_half"], row["second_difference_sixth"])
    assert row["floor_ratio"] == pytest.approx(floor / 0.0125)
    assert row["second_difference_sixth"] == pytest.approx(0.01, rel=0.15)  # static scene: 6σ² / 6
    assert row["floor_ratio_upper"] == pytest.approx(min(0.01, row["second_difference_sixth"]) / 0.0125)
    assert row["best_model_ratio"] == pytest.approx(0.88)
