"""Trajectory estimators of D on image stacks: localise every frame, then estimate from the track.

The estimators themselves are :mod:`dynacell.motion.estimators` (one home): the single-molecule
seed project's MSD of Gaussian-fit centroids (``D = slope / 4`` over every lag,
:func:`~dynacell.motion.estimators.msd_slope_seed_many`), the covariance-based estimator with
motion blur (:func:`~dynacell.motion.estimators.cve_many`) and the MSD fit with the optimal
number of lags (:func:`~dynacell.motion.estimators.msd_fit_optimal_many`); the positions come
from :func:`dynacell.diffusion.localise.localise_stacks`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dynacell.diffusion.localise import localise_stacks
from dynacell.errors import InvalidInputError

__all__ = ["TRAJECTORY_METHODS", "trajectory_estimates"]

#: Column of each trajectory estimator in :func:`trajectory_estimates`' output.
TRAJECTORY_METHODS = {"seed_msd": "D_seed_msd_um2_per_s", "cve": "D_cve_um2_per_s",
                      "msd_optimal": "D_msd_optimal_um2_per_s"}


def trajectory_estimates(stacks: np.ndarray, *, pixel_size_um, frame_interval_s: float,
                         exposure_s: float | None = None, psf_sigma_px=1.0,
                         localisations: pd.DataFrame | None = None) -> pd.DataFrame:
    """D of every stack from the track of its per-frame Gaussian-fit positions.

    Parameters
    ----------
    stacks : ndarray, shape (N, T, Y, X)
        Image stacks (one molecule each), T >= 3.
    pixel_size_um : float or ndarray (N,)
        Pixel size per stack, µm.
    frame_interval_s : float
        Time between frames, s.
    exposure_s : float, optional
        Exposure per frame, s (the blur correction of the CVE and the optimal MSD fit);
        default: the frame interval.
    psf_sigma_px : float or ndarray (N,)
        Initial spot sigma for the fits.
    localisations : pandas.DataFrame, optional
        Reuse the output of :func:`localise_stacks` instead of fitting again.

    Returns
    -------
    pandas.DataFrame
        One row per stack: ``stack`` and one column of D (µm²/s) per entry of
        :data:`TRAJECTORY_METHODS`, plus ``fit_ok_fraction`` (frames whose Gaussian fit
        converged). The seed estimator may be biased upward by localisation error and the CVE
        may be negative at low D (both are reported as computed).

    Raises
    ------
    InvalidInputError
        If ``stacks`` is not 4D or has fewer than 3 frames.
    """
    from dynacell.motion.estimators import (
        cve_many,
        msd_fit_optimal_many,
        msd_slope_seed_many,
    )

    a = np.asarray(stacks)
    if a.ndim != 4 or a.shape[1] < 3:
        raise InvalidInputError(f"trajectory_estimates: expected stacks (N, T >= 3, Y, X), got shape {a.shape}")
    N, T = a.shape[:2]
    px = np.broadcast_to(np.asarray(pixel_size_um, dtype=float), (N,))
    exposure_s = frame_interval_s if exposure_s is None else exposure_s
    loc = localisations if localisations is not None else localise_stacks(a, psf_sigma_px=psf_sigma_px)
    loc = loc.sort_values(["stack", "frame"])
    pos_um = loc[["y_px", "x_px"]].to_numpy().reshape(N, T, 2) * px[:, None, None]
    # positions are already in µm, so the seed estimator's pixel size is 1
    seed = msd_slope_seed_many(pos_um, frame_interval_s, pixel_size_um=1.0)
    cv = cve_many(pos_um, frame_interval_s, exposure_s=exposure_s)
    opt = msd_fit_optimal_many(pos_um, frame_interval_s, exposure_s=exposure_s)
    ok = loc["fit_ok"].to_numpy().reshape(N, T).mean(axis=1)
    return pd.DataFrame({"stack": np.arange(N), TRAJECTORY_METHODS["seed_msd"]: seed.D_um2_per_s,
                         TRAJECTORY_METHODS["cve"]: cv.D_um2_per_s,
                         TRAJECTORY_METHODS["msd_optimal"]: opt.D_um2_per_s, "fit_ok_fraction": ok})
