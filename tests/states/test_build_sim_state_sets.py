"""Tests of the parameter draws of the rendered 2D colonies (benchmarks/build_sim_state_sets.py)."""

from __future__ import annotations

import numpy as np

from _helpers import load_benchmark


def _module():
    return load_benchmark("build_sim_state_sets")


def test_default_draw_keeps_the_order_of_the_earlier_sets() -> None:
    """The training draw takes its eight uniforms in the documented order (earlier sets reproduce)."""
    mod = _module()
    p = mod.draw(np.random.default_rng(3))
    u = np.random.default_rng(3).uniform(size=8)
    r = mod.TRAIN_RANGES
    assert np.isclose(p["radius_um"], r["radius_um"][0] + u[0] * np.ptp(r["radius_um"]))
    assert np.isclose(p["photons"], r["photons"][0] + u[3] * np.ptp(r["photons"]))
    assert np.isclose(p["psf_sigma_um"][1], r["psf_sigma_xy_um"][0] + u[5] * np.ptp(r["psf_sigma_xy_um"]))
    assert np.isclose(p["brightness_sd"], r["brightness_sd"][0] + u[7] * np.ptp(r["brightness_sd"]))
    assert "voxel_size_um" not in p and "min_cycle_frames" not in p  # simulator defaults: 0.5 µm, 6 frames


def test_ood_draw_lies_outside_the_training_ranges() -> None:
    mod = _module()
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = mod.draw(rng, mod.OOD_RANGES)
        assert p["radius_um"] > mod.TRAIN_RANGES["radius_um"][1]
        assert p["photons"] < mod.TRAIN_RANGES["photons"][0]
        assert p["psf_sigma_um"][1] >= mod.TRAIN_RANGES["psf_sigma_xy_um"][1]
        assert p["motility_um_per_frame"] >= mod.TRAIN_RANGES["motility_um_per_frame"][1]
        assert p["voxel_size_um"][1] == p["voxel_size_um"][2] and p["voxel_size_um"][1] < 0.5
        assert p["min_cycle_frames"] < 6
