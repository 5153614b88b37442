"""``frames-mc-residual``: a small network's correction added to the motion-compensated linear forecast.

:class:`McResidualForecaster` forecasts a window in two steps: ``frames-mc-linear``
(:class:`dynacell.forecast.motion.MotionCompensatedForecaster`, fitted by least squares on the
movie's own past) gives a forecast and the past frames aligned onto the last one; a
:class:`dynacell.models.forecast_residual.McResidualUNet` trained on several movies reads them and
adds a correction (issue 14, step 3). Training: :func:`dynacell.train.forecast.train_mc_residual`;
measured in ``benchmarks/forecast_mc_residual.py`` (docs/forecasting.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.forecast.frames import rollout
from dynacell.forecast.motion import MotionCompensatedForecaster

__all__ = ["McResidualForecaster", "mc_residual_inputs"]


def mc_residual_inputs(mc: MotionCompensatedForecaster, window: np.ndarray) -> np.ndarray:
    """Input of the residual network for one window: the ``frames-mc-linear`` forecast and the aligned frames.

    Parameters
    ----------
    mc : MotionCompensatedForecaster
        Fitted on the movie's past.
    window : numpy.ndarray, float, shape (K, Y, X)
        Normalised frames, oldest first.

    Returns
    -------
    numpy.ndarray, float32, shape (K + 1, Y, X)
        Channel 0 the forecast, channels 1 .. K the frames aligned onto frame ``t`` (newest first,
        :meth:`dynacell.forecast.motion.MotionCompensatedForecaster.align`).

    Raises
    ------
    InvalidInputError
        If ``mc`` is not fitted or the window does not hold K frames.
    """
    w = np.asarray(window, dtype=np.float32)
    if w.ndim != 3 or w.shape[0] != mc.k:
        raise InvalidInputError(f"{mc.name} needs a window (K={mc.k}, Y, X), got {w.shape}")
    aligned, flows = mc.align(w)
    return np.concatenate([mc.predict_aligned(w, aligned, flows)[None], aligned]).astype(np.float32)


class McResidualForecaster:
    """``frames-mc-linear`` plus a learned correction.

    Parameters
    ----------
    net : torch.nn.Module
        :class:`dynacell.models.forecast_residual.McResidualUNet` (input (B, K + 1, Y, X)).
    mc : MotionCompensatedForecaster, optional
        Default: a new one with the default settings; fit it on the movie's past
        (:meth:`fit`) before predicting.
    name : str

    Attributes
    ----------
    k : int
        Frames per window (that of ``mc``).
    """

    def __init__(self, net, mc: MotionCompensatedForecaster | None = None, name: str = "frames-mc-residual") -> None:
        self.net, self.mc, self.name = net, mc or MotionCompensatedForecaster(), name
        if getattr(net, "k", self.mc.k) != self.mc.k:
            raise InvalidInputError(f"{name}: network k={net.k} but frames-mc-linear k={self.mc.k}")
        self.k = self.mc.k

    def fit(self, frames: np.ndarray, targets: Sequence[int]) -> McResidualForecaster:
        """Fit the ``frames-mc-linear`` weights on the movie's past (:meth:`MotionCompensatedForecaster.fit`); ``self``."""
        self.mc.fit(frames, targets)
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Next frame of each window.

        Parameters
        ----------
        windows : numpy.ndarray, float, shape (N, K, Y, X)

        Returns
        -------
        numpy.ndarray, float32, shape (N, Y, X)

        Raises
        ------
        InvalidInputError
            If ``mc`` is not fitted or the windows do not hold K frames.
        """
        import torch

        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 4 or w.shape[1] != self.k:
            raise InvalidInputError(f"{self.name} needs windows (N, {self.k}, Y, X), got {w.shape}")
        self.net.eval()
        out = []
        with torch.no_grad():
            for x in w:
                inp = torch.from_numpy(mc_residual_inputs(self.mc, x)[None])
                out.append(self.net(inp)[0, 0].numpy())
        return np.asarray(out, dtype=np.float32).reshape((len(w),) + w.shape[2:])

    def rollout(self, frames: np.ndarray, steps: int) -> np.ndarray:
        """Predict ``steps`` frames ahead from the last K frames, feeding predictions back; (steps, Y, X)."""
        return rollout(self.predict, frames, self.k, steps)
