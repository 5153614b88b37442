"""Trajectory estimators on image stacks share dynacell.motion's code and recover D at high SNR."""

import numpy as np

from dynacell.diffusion.baselines import TRAJECTORY_METHODS, trajectory_estimates
from dynacell.diffusion.localise import localise_stacks
from dynacell.motion.estimators import msd_slope_seed_many
from dynacell.simulate.particles import simulate_stacks


def test_trajectory_estimates_recover_D_and_reuse_motion_code():
    D = 0.5  # 0.5 um2/s, 5 ms, 100 nm: 0.25 px2 per frame, well above the localisation error
    sim = simulate_stacks(np.full(60, D), snr=40.0, seed=1)
    loc = localise_stacks(sim.stacks, psf_sigma_px=1.06)
    est = trajectory_estimates(sim.stacks, pixel_size_um=0.1, frame_interval_s=0.005, localisations=loc)
    assert list(est.columns[1:4]) == list(TRAJECTORY_METHODS.values())
    for col in (TRAJECTORY_METHODS["cve"], TRAJECTORY_METHODS["msd_optimal"]):
        assert abs(np.median(est[col]) / D - 1) < 0.25, col
    pos = loc[["y_px", "x_px"]].to_numpy().reshape(60, 16, 2)
    seed = msd_slope_seed_many(pos, 0.005, pixel_size_um=0.1).D_um2_per_s
    np.testing.assert_allclose(est[TRAJECTORY_METHODS["seed_msd"]], seed, rtol=1e-9)
