"""Motion-compensated linear next-frame forecast: a method fitted on the movie's own past, not a network.

The error of *persistence* (``frame[t + 1] = frame[t]``) has three parts: the change of the scene,
the noise of the target frame (which nothing can predict) and the noise of frame ``t`` carried into
the forecast. Smoothed persistence removes the last part by blurring, at the cost of blurring
edges. This forecaster removes it by averaging frames *over time* after aligning them:

1. the last K frames are aligned onto frame ``t`` with TV-L1 optical flow (Zach, Pock & Bischof
   2007, *DAGM*; scikit-image's :func:`skimage.registration.optical_flow_tvl1`), ``v_j`` with
   ``frame[t − j](p + v_j) ≈ frame[t](p)``;
2. each aligned frame is smoothed by Gaussians of a few widths (``sigmas_px``), and the same
   maps are also moved one step further along the last motion (``map(p + v_1)``: the motion from
   ``t − 1`` to ``t`` continues, as in the ``flow`` baseline);
3. the forecast is a weighted sum of these maps plus a constant, with weights fitted by least
   squares (normal equations over every pixel) on windows of the same movie that end **before**
   the frames to forecast — a linear temporal-spatial Wiener filter per movie. The weights say how
   much to trust each past frame and each smoothing width, from the movie's own noise and motion.

Persistence, smoothed persistence (σ in ``sigmas_px``) and flow warping are special cases of the
weighted sum, so on the fitting windows the forecast is never worse than them; on later frames it
can be. Only the past is used: fitting reads frames up to the one before the first target.

No torch; NumPy, SciPy and scikit-image only. Used by name as ``"frames-mc-linear"``
(:data:`METHOD_NAME`) in ``dynacell forecast evaluate|predict --model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.forecast.frames import rollout, warp_by_flow

__all__ = ["METHOD_NAME", "MotionCompensatedForecaster", "align_window"]

#: Name of the method in ``dynacell forecast evaluate|predict --model``.
METHOD_NAME = "frames-mc-linear"


def align_window(window: np.ndarray, **tvl1_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Align every frame of a window onto its last frame with TV-L1 optical flow.

    Parameters
    ----------
    window : numpy.ndarray, float, shape (K, Y, X)
        Frames ``t − K + 1 .. t``, oldest first.
    **tvl1_kwargs
        Passed to :func:`skimage.registration.optical_flow_tvl1`.

    Returns
    -------
    aligned : numpy.ndarray, float32, shape (K, Y, X)
        ``aligned[j] = frame[t − j](p + v_j)``: index 0 is frame ``t`` itself, index j the frame j
        steps back moved onto frame ``t`` (newest first).
    flows : numpy.ndarray, float32, shape (K − 1, 2, Y, X)
        ``v_j`` (rows, columns; pixels) for j = 1 .. K − 1.

    Raises
    ------
    InvalidInputError
        If the window is not (K, Y, X) with K ≥ 2.
    """
    from skimage.registration import optical_flow_tvl1

    w = np.asarray(window, dtype=np.float32)
    if w.ndim != 3 or w.shape[0] < 2:
        raise InvalidInputError(f"a window to align is (K >= 2, Y, X), got {w.shape}")
    last = w[-1]
    aligned, flows = [last], []
    for j in range(1, w.shape[0]):
        v = optical_flow_tvl1(last, w[-1 - j], **tvl1_kwargs).astype(np.float32)
        flows.append(v)
        aligned.append(warp_by_flow(w[-1 - j], v))
    return np.stack(aligned), np.stack(flows)


@dataclass
class MotionCompensatedForecaster:
    """Next frame as a least-squares weighted sum of motion-aligned, smoothed past frames.

    Parameters
    ----------
    k : int
        Frames per window (K ≥ 2).
    sigmas_px : sequence of float
        Gaussian widths (pixels; 0 = unsmoothed) applied to every map.
    unaligned : bool
        Also use the past frames as they are (not aligned): a plain temporal average, which wins
        where the motion estimate is noisier than the motion.
    extrapolate : bool
        Also use every aligned map moved one step further along the last motion, ``map(p + v_1)``,
        and (K ≥ 3) along the mean motion of the last two steps, ``map(p + v_2 / 2)``.
    name : str
        Reported name.
    sum_to_one : bool
        Fit the weights of the feature maps under the constraint that they sum to 1, with no
        constant (equality-constrained least squares on the same normal matrix, same ridge): the
        forecast then keeps the mean brightness of the maps instead of shrinking toward a constant,
        which moves the intensity-weighted centre less. Off by default (see docs/forecasting.md).

    Attributes
    ----------
    weights : numpy.ndarray, float64, shape (F + 1,) or None
        Weights of the F feature maps and of the constant (last; 0 with ``sum_to_one``); None
        before fitting.
    fitted_on : dict
        What the weights were fitted on (windows per movie).

    Notes
    -----
    Feature maps of a window, in order, for each σ of ``sigmas_px``: the aligned frames
    j = 0 .. K − 1 (newest first; j = 0 is frame ``t``), then (``unaligned``) the raw frames
    j = 1 .. K − 1, then (``extrapolate``) the aligned frames moved by ``v_1``, then (K ≥ 3) by
    ``v_2 / 2``. The defaults are those chosen on the validation blocks of the benchmark movies
    (docs/forecasting.md, *motion-compensated linear forecast*).
    """

    k: int = 4
    sigmas_px: Sequence[float] = (0.0, 0.7, 1.5, 3.0)
    unaligned: bool = True
    extrapolate: bool = True
    name: str = METHOD_NAME
    sum_to_one: bool = False
    weights: np.ndarray | None = None
    fitted_on: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.k < 2:
            raise InvalidInputError(f"{self.name}: k must be >= 2, got {self.k}")
        self.sigmas_px = tuple(float(s) for s in self.sigmas_px)
        if not self.sigmas_px or min(self.sigmas_px) < 0:
            raise InvalidInputError(f"{self.name}: sigmas_px must be non-empty and >= 0, got {self.sigmas_px}")

    def __repr__(self) -> str:
        state = "fitted" if self.weights is not None else "not fitted"
        return f"MotionCompensatedForecaster({self.name!r}, k={self.k}, sigmas_px={self.sigmas_px}, {state})"

    @property
    def n_features(self) -> int:
        """Number of feature maps F (the constant not counted)."""
        per_sigma = self.k + (self.k - 1) * self.unaligned
        if self.extrapolate:
            per_sigma += self.k * (2 if self.k >= 3 else 1)
        return per_sigma * len(self.sigmas_px)

    def features(self, window: np.ndarray) -> np.ndarray:
        """Feature maps of one window (see Notes of the class).

        Parameters
        ----------
        window : numpy.ndarray, float, shape (K, Y, X)
            Normalised frames, oldest first.

        Returns
        -------
        numpy.ndarray, float32, shape (F, Y, X)

        Raises
        ------
        InvalidInputError
            If the window does not hold K frames.
        """
        from scipy.ndimage import gaussian_filter

        w = np.asarray(window, dtype=np.float32)
        if w.ndim != 3 or w.shape[0] != self.k:
            raise InvalidInputError(f"{self.name} needs a window (K={self.k}, Y, X), got {w.shape}")
        aligned, flows = align_window(w)
        shifts = [flows[0], 0.5 * flows[1]] if self.k >= 3 else [flows[0]]
        maps = []
        for s in self.sigmas_px:
            sm = [a if s == 0 else gaussian_filter(a, s) for a in aligned]
            maps += sm
            if self.unaligned:
                maps += [w[-1 - j] if s == 0 else gaussian_filter(w[-1 - j], s) for j in range(1, self.k)]
            if self.extrapolate:
                maps += [warp_by_flow(m, v) for v in shifts for m in sm]
        return np.stack(maps).astype(np.float32)

    def normal_matrix(self, frames: np.ndarray, targets: Sequence[int]) -> np.ndarray:
        """Sum over windows of ``A Aᵀ`` with ``A = [feature maps; 1; target frame]`` (pixels as columns).

        Parameters
        ----------
        frames : numpy.ndarray, float, shape (T, Y, X)
            Normalised movie.
        targets : sequence of int
            Frames to fit; those without K frames before them are skipped.

        Returns
        -------
        numpy.ndarray, float64, shape (F + 2, F + 2)
            Divided by the number of pixels of a frame (so movies of different sizes weigh by
            their number of windows).

        Raises
        ------
        InvalidInputError
            Without a usable target.
        """
        f = np.asarray(frames, dtype=np.float32)
        tt = [int(t) for t in targets if self.k <= int(t) < len(f)]
        if not tt:
            raise InvalidInputError(f"{self.name}: no target with {self.k} frames before it to fit on")
        gram = np.zeros((self.n_features + 2, self.n_features + 2))
        for t in tt:
            gram += self.window_normal_matrix(self.features(f[t - self.k:t]), f[t])
        return gram

    @staticmethod
    def window_normal_matrix(features: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``A Aᵀ / n_pixels`` of one window, ``A = [features (F, Y, X); 1; target (Y, X)]``, float64 (F + 2, F + 2)."""
        x = features.reshape(len(features), -1)
        a = np.concatenate([x, np.ones((1, x.shape[1]), np.float32), np.asarray(target, np.float32).reshape(1, -1)])
        a = a.astype(np.float64)
        return a @ a.T / x.shape[1]

    def fit_normal_matrix(self, gram: np.ndarray, *, ridge: float = 1e-6, fitted_on: dict | None = None
                          ) -> MotionCompensatedForecaster:
        """Set the weights from a normal matrix (:meth:`normal_matrix`, possibly summed over movies).

        Parameters
        ----------
        gram : numpy.ndarray, shape (F + 2, F + 2)
        ridge : float
            Tikhonov term relative to the mean diagonal (numerical safety only).
        fitted_on : dict, optional
            Recorded in :attr:`fitted_on`.

        Returns
        -------
        MotionCompensatedForecaster
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            For a matrix of the wrong size.
        """
        if gram.shape != (self.n_features + 2, self.n_features + 2):
            raise InvalidInputError(f"{self.name}: normal matrix {gram.shape}, expected {(self.n_features + 2,) * 2}")
        self.weights = _solve_sum_to_one(gram, ridge) if self.sum_to_one else _solve(gram, ridge)
        self.fitted_on = dict(fitted_on or {})
        return self

    def fit(self, frames: np.ndarray, targets: Sequence[int], *, ridge: float = 1e-6) -> MotionCompensatedForecaster:
        """Fit the weights by least squares on the windows that end before ``targets``.

        Parameters
        ----------
        frames : numpy.ndarray, float, shape (T, Y, X)
            Normalised movie.
        targets : sequence of int
            Frames to fit (each needs K frames before it): only frames before those to be
            forecast, e.g. the training block — the forecaster then uses the movie's past only.
        ridge : float

        Returns
        -------
        MotionCompensatedForecaster
            ``self``, fitted.

        Raises
        ------
        InvalidInputError
            Without a target that has K frames before it.
        """
        tt = [int(t) for t in targets if self.k <= int(t) < len(frames)]
        return self.fit_normal_matrix(self.normal_matrix(frames, tt), ridge=ridge,
                                      fitted_on={"n_windows": len(tt), "targets": [tt[0], tt[-1]] if tt else []})

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Forecast from the feature maps of one window (:meth:`features`), float32 (Y, X)."""
        if self.weights is None:
            raise InvalidInputError(f"{self.name} is not fitted: call fit(frames, targets) on the movie's past")
        return (np.tensordot(self.weights[:-1], features, axes=1) + self.weights[-1]).astype(np.float32)

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
            If the forecaster is not fitted or the windows do not hold K frames.
        """
        if self.weights is None:
            raise InvalidInputError(f"{self.name} is not fitted: call fit(frames, targets) on the movie's past")
        w = np.asarray(windows, dtype=np.float32)
        if w.ndim != 4 or w.shape[1] != self.k:
            raise InvalidInputError(f"{self.name} needs windows (N, {self.k}, Y, X), got {w.shape}")
        out = [self.predict_features(self.features(x)) for x in w]
        return np.asarray(out, dtype=np.float32).reshape((len(w),) + w.shape[2:])

    def rollout(self, frames: np.ndarray, steps: int) -> np.ndarray:
        """Predict ``steps`` frames ahead from the last K frames, feeding predictions back.

        Parameters
        ----------
        frames : numpy.ndarray, shape (≥ K, Y, X)
        steps : int

        Returns
        -------
        numpy.ndarray, float32, shape (steps, Y, X)

        Raises
        ------
        InvalidInputError
            With fewer than K frames, or when not fitted.
        """
        return rollout(self.predict, frames, self.k, steps)


def _solve(gram: np.ndarray, ridge: float) -> np.ndarray:
    """Least-squares weights from the Gram matrix of ``[features, 1, target]``."""
    a, b = gram[:-1, :-1], gram[:-1, -1]
    a = a + ridge * np.trace(a) / len(a) * np.eye(len(a))
    return np.linalg.solve(a, b)


def _solve_sum_to_one(gram: np.ndarray, ridge: float) -> np.ndarray:
    """Least-squares weights of the feature maps with ``sum(w) = 1`` and the constant fixed at 0.

    Solves the KKT system ``[[A + rI, 1], [1ᵀ, 0]] [w; λ] = [b; 1]`` with ``A`` the features' block of
    the Gram matrix of ``[features, 1, target]`` and ``r`` the same relative ridge as :func:`_solve`.

    Parameters
    ----------
    gram : numpy.ndarray, shape (F + 2, F + 2)
    ridge : float

    Returns
    -------
    numpy.ndarray, float64, shape (F + 1,)
        The F weights (summing to 1) and a zero constant.
    """
    n = len(gram) - 2
    a, b = gram[:n, :n], gram[:n, -1]
    a = a + ridge * np.trace(a) / n * np.eye(n)
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n], kkt[:n, n], kkt[n, :n] = a, 1.0, 1.0
    sol = np.linalg.solve(kkt, np.concatenate([b, [1.0]]))
    return np.concatenate([sol[:n], [0.0]])
