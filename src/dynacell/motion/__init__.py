"""Motion statistics of tracks: MSD, diffusion estimators, velocity correlations, displacement moments.

numpy / scipy / pandas only (never torch). Positions in µm, times in s, D in µm²/s.
"""

from dynacell.motion.estimators import (
    ESTIMATORS,
    DiffusionEstimate,
    DiffusionEstimates,
    blur_coefficient,
    cramer_rao_relative_sd,
    cve,
    cve_many,
    mle,
    mle_many,
    msd_fit_optimal,
    msd_fit_optimal_many,
    msd_slope_seed,
    msd_slope_seed_many,
    optimal_n_lags,
)

__all__ = [
    "ESTIMATORS", "DiffusionEstimate", "DiffusionEstimates", "blur_coefficient", "cramer_rao_relative_sd", "cve",
    "cve_many", "mle", "mle_many", "msd_fit_optimal", "msd_fit_optimal_many", "msd_slope_seed",
    "msd_slope_seed_many", "optimal_n_lags",
]
