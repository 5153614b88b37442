"""Motion-compensated linear next-frame forecast: a method fitted on the movie's own past, not a network.

The error of *persistence* (``frame[t + 1] = frame[t]``) has three parts: the change of the scene,
the noise of the target frame (which nothing can predict) and the noise of frame ``t`` carried into
the forecast. Smoothed persistence removes the last part by blurring, at the cost of blurring
edges. This forecaster removes it by averaging frames *over time* after aligning them:

1. the last K frames are aligned onto frame ``t`` with TV-L1 optical flow (Zach, Pock & Bischof
   2007, *DAGM*; scikit-image's :func:`skimage.registration.optical_flow_tvl1`), ``v_j`` with
   ``frame[t − j](p + v_j) ≈ frame[t](p)``; by default each flow is estimated between consecutive
   frames at half resolution (TV-L1 of 2 warps × 5 iterations, :data:`TVL1_KWARGS`) and the flows
   are chained at that resolution, then upsampled (:func:`estimate_flow`, :func:`compose_flows`,
   :func:`upsample_flow`), so a movie costs one flow per new frame;
2. each aligned frame is smoothed by Gaussians of a few widths (``sigmas_px``), and the same
   maps are also moved one step further along the last motion (``map(p + v_1)``: the motion from
   ``t − 1`` to ``t`` continues, as in the ``flow`` baseline);
3. the forecast is a weighted sum of these maps (weights summing to 1, no constant, by default;
   optionally free weights plus a constant), with weights fitted by least
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

import contextlib
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.forecast.frames import rollout

__all__ = ["CROSS_MOVIE_FLOW", "FLOW_METHODS", "METHOD_NAME", "MODULATIONS", "TVL1_KWARGS", "MotionCompensatedForecaster", "align_window", "compose_flows",
           "estimate_flow", "gaussian_filter_f32", "upsample_flow", "warp_by_flow_f32"]

#: Name of the method in ``dynacell forecast evaluate|predict --model``.
METHOD_NAME = "frames-mc-linear"


FLOW_METHODS = ("tvl1", "ilk")

#: Statistics the weights may vary with (``MotionCompensatedForecaster(modulate=...)``).
MODULATIONS = ("brightness",)

#: Flow settings for weights fitted on *other* movies (:meth:`MotionCompensatedForecaster.fit_normal_matrix`
#: on summed normal matrices): chained TV-L1 flows at the resolution of the frames. Chosen on a
#: leave-one-movie-out validation (``benchmarks/forecast_mc_cross.py``: weights of three movies
#: forecasting the fourth's training and validation windows; mean MSE ratio to the best baseline
#: 1.047 against 1.085 with the half-resolution default, better on all four movies): weights pooled
#: over movies transfer worse when the coarse flow misses small objects' motion (docs/forecasting.md).
#: A movie's own past keeps the cheaper default (``flow_downsample=2``).
CROSS_MOVIE_FLOW = {"flow_method": "tvl1", "flow_downsample": 1, "flow_chain": True, "flow_kwargs": {}}

#: TV-L1 settings of the default (own-movie) forecaster: 2 warps × 5 iterations instead of
#: scikit-image's 5 × 10. Chosen on the validation blocks (``benchmarks/forecast_mc_flow.py``: mean MSE
#: ratio 0.836 against 0.837 at ½ resolution, chained), a cold 1024 × 1024 window on the ÷4 path in
#: about 0.19 instead of 0.6 CPU-s (docs/forecasting.md).
TVL1_KWARGS = {"num_warp": 2, "num_iter": 5}


def estimate_flow(reference: np.ndarray, moving: np.ndarray, *, method: str = "tvl1", downsample: int = 1,
                  **flow_kwargs) -> np.ndarray:
    """Optical flow ``v`` with ``moving(p + v(p)) ≈ reference(p)``, optionally estimated at reduced resolution.

    Parameters
    ----------
    reference, moving : numpy.ndarray, float, shape (Y, X)
    method : {"tvl1", "ilk"}
        scikit-image's TV-L1 (:func:`skimage.registration.optical_flow_tvl1`; Zach, Pock & Bischof
        2007) or iterative Lucas–Kanade (:func:`skimage.registration.optical_flow_ilk`).
    downsample : int
        Estimate the flow on both frames block-averaged by this factor (edges padded by repetition),
        then upsample it bilinearly (:func:`upsample_flow`: the values of
        :func:`skimage.transform.resize`, order 1) and multiply it by the factor; 1 = full
        resolution. Cell motion is smooth over several pixels, so a coarser flow loses little and
        costs about ``downsample²`` times less.
    **flow_kwargs
        Passed to the scikit-image function (e.g. ``num_warp``, ``num_iter`` of TV-L1).

    Returns
    -------
    numpy.ndarray, float32, shape (2, Y, X)
        Row and column displacement in pixels of the input frames.

    Raises
    ------
    InvalidInputError
        For an unknown method, a factor < 1, or frames of different shapes.
    """
    from skimage.registration import optical_flow_ilk, optical_flow_tvl1

    if method not in FLOW_METHODS:
        raise InvalidInputError(f"unknown flow method {method!r}; choose one of {list(FLOW_METHODS)}")
    if int(downsample) != downsample or downsample < 1:
        raise InvalidInputError(f"flow downsample must be an integer >= 1, got {downsample}")
    ref, mov = np.asarray(reference, np.float32), np.asarray(moving, np.float32)
    if ref.shape != mov.shape or ref.ndim != 2:
        raise InvalidInputError(f"flow needs two 2D frames of one shape, got {ref.shape} and {mov.shape}")
    fn = optical_flow_tvl1 if method == "tvl1" else optical_flow_ilk
    d = int(downsample)
    if d == 1:
        return fn(ref, mov, **flow_kwargs).astype(np.float32)
    v = fn(_block_mean(ref, d), _block_mean(mov, d), **flow_kwargs).astype(np.float32)
    return upsample_flow(v, d, ref.shape)


def upsample_flow(flow: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """A flow estimated on frames block-averaged by ``factor``, brought back to the frames' pixels.

    Parameters
    ----------
    flow : numpy.ndarray, float, shape (2, Y', X')
        Row and column displacement in pixels of the block-averaged frames (edges padded by
        repetition to a multiple of ``factor``, as :func:`estimate_flow` does).
    factor : int
        Block-averaging factor (≥ 1).
    shape : tuple of int
        (Y, X) of the full-resolution frames.

    Returns
    -------
    numpy.ndarray, float32, shape (2, Y, X)
        Bilinearly upsampled and multiplied by ``factor``: the values of
        :func:`skimage.transform.resize` (order 1, ``mode="edge"``, no anti-aliasing; pixel centres
        mapped as ``(o + 0.5) / factor − 0.5``) to float32 rounding.

    Notes
    -----
    Bilinear upsampling is separable: rows are interpolated by gathering the two neighbouring rows
    of the small flow, columns by a product with the (X', X) interpolation matrix (two non-zeros a
    column) when X' ≤ 256, else by gathering. For a 128² flow brought to 1024² this costs about
    0.006 instead of 0.07 CPU-s (issue 14, session 12; the resize was a fifth of a cold
    full-resolution ``frames-mc-linear`` window).
    """
    d = int(factor)
    v = np.asarray(flow, np.float32)
    if d == 1:
        return v
    r0, r1, wy = _linear_taps(v.shape[1], d, shape[0])
    rows = v[:, r0] * (1 - wy)[:, None] + v[:, r1] * wy[:, None]
    rows *= np.float32(d)
    c0, c1, wx = _linear_taps(v.shape[2], d, shape[1])
    if v.shape[2] <= 256:
        m = np.zeros((v.shape[2], shape[1]), np.float32)
        cols = np.arange(shape[1])
        np.add.at(m, (c0, cols), 1 - wx)
        np.add.at(m, (c1, cols), wx)
        return np.ascontiguousarray(np.matmul(rows, m), dtype=np.float32)
    return np.ascontiguousarray(rows[:, :, c0] * (1 - wx) + rows[:, :, c1] * wx, dtype=np.float32)


def _linear_taps(n_in: int, factor: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices (clamped to the edge) and weight of the second one, for linear upsampling by ``factor``."""
    c = (np.arange(n_out) + 0.5) / factor - 0.5
    i0 = np.floor(c).astype(np.intp)
    w = (c - i0).astype(np.float32)
    return np.clip(i0, 0, n_in - 1), np.clip(i0 + 1, 0, n_in - 1), w


def _block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor × factor`` blocks, the image padded by edge repetition to a multiple of ``factor``."""
    y, x = image.shape
    py, px = -y % factor, -x % factor
    im = np.pad(image, ((0, py), (0, px)), mode="edge") if py or px else image
    return im.reshape(im.shape[0] // factor, factor, im.shape[1] // factor, factor).mean(axis=(1, 3), dtype=np.float32)


def warp_by_flow_f32(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image(p + flow(p))``, bilinear, edge values beyond the border: the forecaster's float32 fast path.

    The same warp as :func:`dynacell.forecast.frames.warp_by_flow` (the ``flow`` baseline's and the
    reference, SciPy's ``map_coordinates``), computed in float32 for
    :class:`MotionCompensatedForecaster` only (its aligned frames, shifted maps and chained flows);
    the two are kept apart so that neither the baseline nor the forecaster changes its values, and
    ``tests/forecast/test_forecast_motion.py`` holds them equal to float32 rounding.

    Parameters
    ----------
    image : numpy.ndarray, float, shape (Y, X) or (C, Y, X)
        One map, or C maps moved by the same flow.
    flow : numpy.ndarray, float, shape (2, Y, X)
        Row and column displacement in pixels.

    Returns
    -------
    numpy.ndarray, float32, shape of ``image``

    Raises
    ------
    InvalidInputError
        If the flow has a non-finite value (SciPy's version returned an undefined value there).

    Notes
    -----
    The same values as :func:`dynacell.forecast.frames.warp_by_flow` (SciPy's ``map_coordinates``,
    order 1, mode ``"nearest"``, float64 coordinates) to float32 rounding: the interpolation weights
    are the fractional parts of the flow itself (not of ``p + flow``), so they keep float32's
    relative precision, and the four neighbours are gathered by flat index (:meth:`numpy.ndarray.take`).
    About half the CPU seconds of ``map_coordinates`` on a 1024 × 1024 map (issue 14, session 12);
    every step is a NumPy loop that releases the GIL.
    """
    im = np.asarray(image, np.float32)
    y, x = im.shape[-2:]
    if not np.isfinite(flow).all():
        raise InvalidInputError("warp_by_flow_f32: the flow has non-finite values (non-finite frames?)")
    iy, wy = _edge_taps(np.asarray(flow[0], np.float32), np.arange(y, dtype=np.float32)[:, None], y)
    ix, wx = _edge_taps(np.asarray(flow[1], np.float32), np.arange(x, dtype=np.float32)[None, :], x)
    if y * x <= 2 ** 24:  # flat indices exact in float32: one conversion
        iy *= x
        iy += ix
        idx = iy.astype(np.intp)
    else:
        idx = iy.astype(np.intp)
        idx *= x
        idx += ix.astype(np.intp)
    steps = (x if y > 1 else 0, 1 if x > 1 else 0)  # to the next row and column (none on a single one)
    out = [_gather_bilinear(c.ravel(), idx, wy, wx, steps) for c in im.reshape(-1, y, x)]
    return np.stack(out).reshape(im.shape) if im.ndim != 2 else out[0]


def _edge_taps(v: np.ndarray, grid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First of two neighbouring indices (float32, in [0, max(n − 2, 0)]) and the weight of the second, for ``grid + v``.

    Coordinates beyond the border take the edge value (index 0 with weight 0, or n − 2 with weight 1).
    """
    fl = np.floor(v)
    w = v - fl
    fl += grid
    if n == 1:
        return np.zeros_like(fl), np.zeros_like(w)
    np.copyto(w, 0, where=fl < 0)
    np.copyto(w, 1, where=fl > n - 2)
    np.clip(fl, 0, n - 2, out=fl)
    return fl, w


def _gather_bilinear(f: np.ndarray, idx: np.ndarray, wy: np.ndarray, wx: np.ndarray, steps: tuple[int, int]
                     ) -> np.ndarray:
    """Bilinear interpolation of the flat map ``f`` at ``idx`` (top-left neighbour) with weights ``wy``, ``wx``.

    ``steps``: flat offsets to the next row and to the next column.
    """
    dy, dx = steps
    # the neighbours are gathered from views that start dx, dy, dy + dx elements later: no index arrays
    # to add (idx + dx, ... stay inside the map: the taps keep idx at most (Y − 2) X + X − 2)
    a, b = f.take(idx), f[dx:].take(idx)
    b -= a
    b *= wx
    a += b
    c, d = f[dy:].take(idx), f[dy + dx:].take(idx)
    d -= c
    d *= wx
    c += d
    c -= a
    c *= wy
    a += c
    return a.reshape(idx.shape)


def compose_flows(near: np.ndarray, far: np.ndarray) -> np.ndarray:
    """Chain two flows: ``near`` from frame t to t − 1 and ``far`` from t − 1 to t − 1 − m give t → t − 1 − m.

    With ``f[t−1](p + near(p)) ≈ f[t](p)`` and ``f[t−1−m](q + far(q)) ≈ f[t−1](q)``, the chained flow
    is ``near(p) + far(p + near(p))`` (``far`` sampled bilinearly by :func:`warp_by_flow_f32`).

    Parameters
    ----------
    near, far : numpy.ndarray, float32, shape (2, Y, X)
        Row and column displacements in pixels.

    Returns
    -------
    numpy.ndarray, float32, shape (2, Y, X)
    """
    return (near + np.stack([warp_by_flow_f32(c, near) for c in far])).astype(np.float32)


def align_window(window: np.ndarray, *, flow_method: str = "tvl1", flow_downsample: int = 1, chain: bool = False,
                 flow_fn=None, executor: Executor | None = None, **flow_kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Align every frame of a window onto its last frame with optical flow.

    Parameters
    ----------
    window : numpy.ndarray, float, shape (K, Y, X)
        Frames ``t − K + 1 .. t``, oldest first.
    flow_method, flow_downsample, **flow_kwargs
        How each flow is estimated (:func:`estimate_flow`).
    chain : bool
        False: the flow from ``t`` to each ``t − j`` is estimated directly (K − 1 flows). True: only
        flows between consecutive frames are estimated and chained (:func:`compose_flows`), so that
        in a movie each new frame needs one new flow.
    flow_fn : callable, optional
        ``flow_fn(window, m, n)`` → flow from frame index m of the window to frame m − n (used by
        :class:`MotionCompensatedForecaster` to reuse flows between windows); overrides the other
        flow settings.
    executor : concurrent.futures.Executor, optional
        Warps the past frames side by side once every flow is known (same result).

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
    w = np.asarray(window, dtype=np.float32)
    if w.ndim != 3 or w.shape[0] < 2:
        raise InvalidInputError(f"a window to align is (K >= 2, Y, X), got {w.shape}")
    if flow_fn is None:
        memo: dict[tuple[int, int], np.ndarray] = {}

        def flow_fn(win: np.ndarray, m: int, n: int) -> np.ndarray:
            if (m, n) not in memo:
                if chain and n > 1:
                    memo[(m, n)] = compose_flows(flow_fn(win, m, 1), flow_fn(win, m - 1, n - 1))
                else:
                    memo[(m, n)] = estimate_flow(win[m], win[m - n], method=flow_method,
                                                 downsample=flow_downsample, **flow_kwargs)
            return memo[(m, n)]
    last = len(w) - 1
    flows = [flow_fn(w, last, j) for j in range(1, w.shape[0])]
    pairs = [(w[-1 - j], flows[j - 1]) for j in range(1, w.shape[0])]
    moved = executor.map(_warp_pair, pairs) if executor is not None else map(_warp_pair, pairs)
    return np.stack([w[-1], *moved]), np.stack(flows)


def _warp_pair(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``warp_by_flow_f32(*pair)`` (looked up at call time, so benchmarks can swap the warp)."""
    return warp_by_flow_f32(*pair)


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
        which moves the intensity-weighted centre less. On by default: chosen on the validation
        blocks (mean MSE ratio +0.0016, mean centre-of-mass error 0.80 → 0.47 px; docs/forecasting.md).
    flow_method : {"tvl1", "ilk"}
        Optical flow used to align the past frames (:func:`estimate_flow`). ``"ilk"`` (iterative
        Lucas–Kanade) at half resolution: validation mean MSE ratio 0.838 against 0.837 for TV-L1 of
        5 × 10 iterations, a cold 1024 × 1024 window on the ÷4 path in 0.34–0.40 CPU-s against
        0.24–0.26 for the TV-L1 default of 2 × 5 (docs/forecasting.md).
    flow_downsample : int
        Estimate the flows on frames block-averaged by this factor and upsample them (1 = at the
        resolution of the frames). Default 2, chosen on the validation blocks with ``flow_chain``
        (mean MSE ratio 0.837 against 0.832 for direct TV-L1 flows at full resolution, for 2–3 times
        less CPU; docs/forecasting.md). For frames 4 times larger than the benchmark's ÷4 movies,
        use 4 times the factor. For weights fitted on other movies use :data:`CROSS_MOVIE_FLOW`
        (flows at the frames' resolution: better on a leave-one-movie-out validation).
    flow_chain : bool
        Estimate only flows between consecutive frames and chain them (:func:`compose_flows`):
        along a movie or a roll-out each new frame then costs one new flow instead of K − 1.
        Default True.
    flow_compose_coarse : bool
        With ``flow_chain`` and ``flow_downsample`` > 1, chain the consecutive flows at the reduced
        resolution they are estimated at and upsample only the chained flows (K − 1 upsamplings,
        no full-resolution warp of a flow), instead of upsampling every consecutive flow and
        chaining at full resolution (2 (K − 2) full-resolution warps more). Default True: chosen on
        the validation blocks (mean MSE ratio 0.836 both ways, every movie within 0.001), a cold
        1024 × 1024 window at full resolution about a fifth cheaper (docs/forecasting.md).
    flow_kwargs : dict, optional
        Passed to the scikit-image flow function; ``{}`` for its defaults. Default None:
        :data:`TVL1_KWARGS` (2 warps × 5 iterations) for TV-L1, ``{}`` for Lucas–Kanade.
    threads : int
        Threads for the independent steps of one forecast (:meth:`predict`, :meth:`align`,
        :meth:`predict_aligned`): the frames' digests, the flows between consecutive frames (with
        ``flow_chain``), the warps of the past frames, the weighted sums and their Gaussian filters,
        and the two shift warps. SciPy's ``ndimage``, NumPy and ``hashlib`` release the GIL, so these
        run side by side; chaining and upsampling stay in the calling thread. The forecast is the
        same bit for bit (the same operations, summed in the same order). Default 1
        (docs/forecasting.md, *Speed*).
    modulate : {None, "brightness"}
        Let every map's weight vary linearly with the local brightness: the forecast is
        ``Σ_i (w_i + u_i z) m_i`` with ``z`` = frame t smoothed by a Gaussian of 2 px, minus its median
        over the fitting windows' pixels, divided by their interquartile range, clipped to ±3
        (:attr:`modulation`, set by :meth:`fit`); the ``w`` sum to 1 (with ``sum_to_one``), the ``u``
        are free. Twice the feature maps, twice the Gaussian filters and shift warps of a forecast.
        Chosen on the validation blocks (issue 14, session 12: mean MSE ratio 0.836 → 0.823, lower
        on all five movies; ``benchmarks/forecast_mc_local.py``); an option, not the default. Weights
        fitted on a movie's own past only (not for :meth:`fit_normal_matrix` on other movies).

    Attributes
    ----------
    weights : numpy.ndarray, float64, shape (F + 1,) or None
        Weights of the F feature maps and of the constant (last; 0 with ``sum_to_one``); None
        before fitting. With ``modulate`` the first F / 2 are the ``w``, the next F / 2 the ``u``.
    modulation : tuple of float or None
        With ``modulate``: the 25th, 50th and 75th percentiles of the smoothed brightness over the
        fitting windows (20,000 pixels drawn from each, seed 0); None before fitting.
    fitted_on : dict
        What the weights were fitted on (windows per movie).

    Raises
    ------
    InvalidInputError
        For k < 2, empty or negative ``sigmas_px``, an unknown flow method, a bad ``flow_downsample``
        ``threads`` < 1 or an unknown ``modulate``.

    Notes
    -----
    Feature maps of a window, in order, for each σ of ``sigmas_px``: the aligned frames
    j = 0 .. K − 1 (newest first; j = 0 is frame ``t``), then (``unaligned``) the raw frames
    j = 1 .. K − 1, then (``extrapolate``) the aligned frames moved by ``v_1``, then (K ≥ 3) by
    ``v_2 / 2``. The defaults are those chosen on the validation blocks of the benchmark movies
    (docs/forecasting.md, *motion-compensated linear forecast*).

    Flows are remembered between calls for identical frames (a small cache keyed by the frames'
    content), so consecutive windows of one movie, and the steps of :meth:`rollout`, reuse the
    flows they share. :meth:`predict` sums the maps in 3 Gaussian filters per width and 2 warps
    instead of forming all F maps (same forecast up to float32 rounding).
    """

    k: int = 4
    sigmas_px: Sequence[float] = (0.0, 0.7, 1.5, 3.0)
    unaligned: bool = True
    extrapolate: bool = True
    name: str = METHOD_NAME
    sum_to_one: bool = True
    flow_method: str = "tvl1"
    flow_downsample: int = 2
    flow_chain: bool = True
    flow_compose_coarse: bool = True
    flow_kwargs: dict | None = None
    weights: np.ndarray | None = None
    fitted_on: dict = field(default_factory=dict)
    threads: int = 1
    modulate: str | None = None
    modulation: tuple | None = None
    _flow_cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _digest_memo: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.k < 2:
            raise InvalidInputError(f"{self.name}: k must be >= 2, got {self.k}")
        self.sigmas_px = tuple(float(s) for s in self.sigmas_px)
        if not self.sigmas_px or min(self.sigmas_px) < 0:
            raise InvalidInputError(f"{self.name}: sigmas_px must be non-empty and >= 0, got {self.sigmas_px}")
        if self.flow_method not in FLOW_METHODS:
            raise InvalidInputError(f"{self.name}: flow_method must be one of {list(FLOW_METHODS)}, got "
                                    f"{self.flow_method!r}")
        if int(self.flow_downsample) != self.flow_downsample or self.flow_downsample < 1:
            raise InvalidInputError(f"{self.name}: flow_downsample must be an integer >= 1, got {self.flow_downsample}")
        if self.flow_kwargs is None:
            self.flow_kwargs = dict(TVL1_KWARGS) if self.flow_method == "tvl1" else {}
        if int(self.threads) != self.threads or self.threads < 1:
            raise InvalidInputError(f"{self.name}: threads must be an integer >= 1, got {self.threads}")
        if self.modulate is not None and self.modulate not in MODULATIONS:
            raise InvalidInputError(f"{self.name}: modulate must be None or one of {list(MODULATIONS)}, got "
                                    f"{self.modulate!r}")

    def __repr__(self) -> str:
        state = "fitted" if self.weights is not None else "not fitted"
        coarse = " (chained coarse)" if self.flow_compose_coarse and self.flow_chain and self.flow_downsample > 1 else ""
        flow = f"{self.flow_method}{' chained' if self.flow_chain else ''} at 1/{self.flow_downsample}{coarse}"
        return (f"MotionCompensatedForecaster({self.name!r}, k={self.k}, sigmas_px={self.sigmas_px}, flow {flow}, "
                f"{state})")

    @property
    def n_features(self) -> int:
        """Number of feature maps F (the constant not counted; with ``modulate`` twice the maps)."""
        return self._n_maps * (2 if self.modulate else 1)

    @property
    def _n_maps(self) -> int:
        """Number of maps of a window before modulation."""
        per_sigma = self.k + (self.k - 1) * self.unaligned
        if self.extrapolate:
            per_sigma += self.k * (2 if self.k >= 3 else 1)
        return per_sigma * len(self.sigmas_px)

    def fit_modulation(self, frames: np.ndarray, targets: Sequence[int]) -> MotionCompensatedForecaster:
        """Set :attr:`modulation` from the last frames of the windows that forecast ``targets``.

        Parameters
        ----------
        frames : numpy.ndarray, float, shape (T, Y, X)
        targets : sequence of int
            Frames to fit (each needs K frames before it).

        Returns
        -------
        MotionCompensatedForecaster
            ``self``.
        """
        f = np.asarray(frames, dtype=np.float32)
        tt = [int(t) for t in targets if self.k <= int(t) < len(f)]
        if not tt:
            raise InvalidInputError(f"{self.name}: no target with {self.k} frames before it to fit on")
        rng = np.random.default_rng(0)
        draws = [rng.choice(_brightness(f[t - 1]).ravel(), 20000) for t in tt]
        self.modulation = tuple(float(q) for q in np.quantile(np.concatenate(draws), [0.25, 0.5, 0.75]))
        return self

    def modulation_map(self, window: np.ndarray) -> np.ndarray:
        """``z`` of a window (see ``modulate``), float32 (Y, X)."""
        if self.modulation is None:
            raise InvalidInputError(f"{self.name}: modulation not fitted: call fit(frames, targets) first")
        q1, q2, q3 = self.modulation
        z = (_brightness(np.asarray(window[-1], np.float32)).ravel() - q2) / max(q3 - q1, 1e-12)
        return np.clip(z, -3, 3).astype(np.float32).reshape(np.shape(window)[1:])

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
        w = np.asarray(window, dtype=np.float32)
        if w.ndim != 3 or w.shape[0] != self.k:
            raise InvalidInputError(f"{self.name} needs a window (K={self.k}, Y, X), got {w.shape}")
        aligned, flows = self.align(w)
        return self.features_aligned(w, aligned, flows)

    def features_aligned(self, window: np.ndarray, aligned: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """Feature maps of one window whose frames are already aligned (:func:`align_window`).

        Parameters
        ----------
        window : numpy.ndarray, float32, shape (K, Y, X)
            Normalised frames, oldest first.
        aligned : numpy.ndarray, float32, shape (K, Y, X)
            The window aligned onto its last frame, newest first (:func:`align_window`).
        flows : numpy.ndarray, float32, shape (K − 1, 2, Y, X)
            The flows that aligned it (pixels).

        Returns
        -------
        numpy.ndarray, float32, shape (F, Y, X)
        """
        w = np.asarray(window, dtype=np.float32)
        shifts = self._shifts(flows)
        maps = []
        for s in self.sigmas_px:
            sm = [a if s == 0 else gaussian_filter_f32(a, s) for a in aligned]
            maps += sm
            if self.unaligned:
                maps += [w[-1 - j] if s == 0 else gaussian_filter_f32(w[-1 - j], s) for j in range(1, self.k)]
            if self.extrapolate:
                maps += [warp_by_flow_f32(m, v) for v in shifts for m in sm]
        maps = np.stack(maps).astype(np.float32)
        if self.modulate:
            maps = np.concatenate([maps, maps * self.modulation_map(w)])
        return maps

    def align(self, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window aligned onto its last frame with this forecaster's flows (:func:`align_window`).

        Flows are remembered between calls (see Notes of the class); each frame's content digest is
        computed once per call (a 1024 × 1024 frame costs about 0.01 CPU-s to digest).

        Parameters
        ----------
        window : numpy.ndarray, float32, shape (K, Y, X)
            Normalised frames, oldest first.

        Returns
        -------
        aligned : numpy.ndarray, float32, shape (K, Y, X)
            Newest first; index 0 is frame ``t``.
        flows : numpy.ndarray, float32, shape (K − 1, 2, Y, X)
        """
        w = np.asarray(window, dtype=np.float32)
        with self._pool() as ex:
            self._digest_memo = dict(enumerate(ex.map(_digest, w))) if ex is not None else {}
            try:
                if ex is not None:
                    self._estimate_consecutive_flows(w, ex)
                return align_window(w, flow_fn=self._cached_flow, executor=ex)
            finally:
                self._digest_memo = None

    def _pool(self) -> contextlib.AbstractContextManager:
        """A thread pool of :attr:`threads` workers, or None (as a context) for one thread."""
        return ThreadPoolExecutor(self.threads) if self.threads > 1 else contextlib.nullcontext(None)

    def _frame_digest(self, window: np.ndarray, i: int) -> bytes:
        """Digest of frame i of the window being aligned (memoised within one :meth:`align` call)."""
        if self._digest_memo is None:
            return _digest(window[i])
        if i not in self._digest_memo:
            self._digest_memo[i] = _digest(window[i])
        return self._digest_memo[i]

    def _shifts(self, flows: np.ndarray) -> list[np.ndarray]:
        """Extrapolation flows: ``v_1`` and (K ≥ 3) ``v_2 / 2``."""
        return [flows[0], 0.5 * flows[1]] if self.k >= 3 else [flows[0]]

    def _cached_flow(self, window: np.ndarray, m: int, n: int) -> np.ndarray:
        """Flow from frame m to frame m − n of a window, remembered for the next windows of the same movie.

        The key is a digest of the frames the flow depends on (two, or the n + 1 frames of a chain)
        and the flow settings, so a flow is reused only for identical frames: consecutive windows of
        a movie, or of a roll-out, share all but one consecutive flow. At most ``8 K`` flows are kept
        (full-resolution and, with ``flow_compose_coarse``, reduced-resolution ones).
        """
        return self._flow_at(window, m, n, coarse=False)

    def _flow_key(self, window: np.ndarray, m: int, n: int, *, coarse: bool) -> tuple:
        """Cache key of the flow from frame m to m − n: the flow settings and the digests of the frames it reads."""
        d = int(self.flow_downsample)
        low = self.flow_compose_coarse and self.flow_chain and d > 1
        settings = (self.flow_method, d, bool(self.flow_chain), low, coarse,
                    tuple(sorted(self.flow_kwargs.items())))
        frames = range(m - n, m + 1) if self.flow_chain and n > 1 else (m - n, m)
        return settings, tuple(self._frame_digest(window, i) for i in frames)

    def _estimated_flow(self, window: np.ndarray, m: int, n: int, *, coarse: bool) -> np.ndarray:
        """The flow from frame m to m − n estimated directly (no chaining, no cache; safe in a worker thread)."""
        if coarse:
            d = int(self.flow_downsample)
            return estimate_flow(_block_mean(np.asarray(window[m], np.float32), d),
                                 _block_mean(np.asarray(window[m - n], np.float32), d), method=self.flow_method,
                                 **self.flow_kwargs)
        return estimate_flow(window[m], window[m - n], method=self.flow_method, downsample=self.flow_downsample,
                             **self.flow_kwargs)

    def _remember(self, key: tuple, v: np.ndarray) -> np.ndarray:
        """Store a flow in the cache (at most ``8 K`` kept)."""
        self._flow_cache[key] = v
        while len(self._flow_cache) > 8 * self.k:
            self._flow_cache.popitem(last=False)
        return v

    def _estimate_consecutive_flows(self, window: np.ndarray, executor: Executor) -> None:
        """Estimate the missing flows between consecutive frames of a window side by side (chained flows only).

        Only the estimates run in the pool; the cache is read and written by the calling thread.
        """
        if not self.flow_chain:
            return
        d = int(self.flow_downsample)
        coarse = self.flow_compose_coarse and d > 1
        todo = {}
        for m in range(len(window) - 1, 0, -1):
            key = self._flow_key(window, m, 1, coarse=coarse)
            if key not in self._flow_cache and key not in todo:
                todo[key] = m
        flows = executor.map(lambda m: self._estimated_flow(window, m, 1, coarse=coarse), todo.values())
        for key, v in zip(todo, flows, strict=True):
            self._remember(key, v)

    def _flow_at(self, window: np.ndarray, m: int, n: int, *, coarse: bool) -> np.ndarray:
        """:meth:`_cached_flow` at full resolution, or (``coarse``) at the flow's reduced resolution."""
        d = int(self.flow_downsample)
        low = self.flow_compose_coarse and self.flow_chain and d > 1
        chained = self.flow_chain and n > 1
        key = self._flow_key(window, m, n, coarse=coarse)
        if key in self._flow_cache:
            self._flow_cache.move_to_end(key)
            return self._flow_cache[key]
        if low and not coarse:
            v = upsample_flow(self._flow_at(window, m, n, coarse=True), d, window.shape[1:])
        elif coarse:
            if chained:
                v = compose_flows(self._flow_at(window, m, 1, coarse=True), self._flow_at(window, m - 1, n - 1,
                                                                                         coarse=True))
            else:
                v = self._estimated_flow(window, m, n, coarse=True)
        elif chained:
            v = compose_flows(self._cached_flow(window, m, 1), self._cached_flow(window, m - 1, n - 1))
        else:
            v = self._estimated_flow(window, m, n, coarse=False)
        return self._remember(key, v)

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
        if self.modulate and self.modulation is None:
            self.fit_modulation(f, tt)
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
        n_free = self.n_features - self._n_maps if self.modulate else 0
        self.weights = _solve_sum_to_one(gram, ridge, n_free=n_free) if self.sum_to_one else _solve(gram, ridge)
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
        if self.modulate and tt:
            self.fit_modulation(frames, tt)
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
        out = [self._predict_window(x) for x in w]
        return np.asarray(out, dtype=np.float32).reshape((len(w),) + w.shape[2:])

    def _predict_window(self, w: np.ndarray) -> np.ndarray:
        """``predict_features(features(w))`` computed on the weighted sums instead of the F maps.

        Smoothing and warping are linear, so ``Σ_s Σ_j a_sj G_s(m_j) = Σ_s G_s(Σ_j a_sj m_j)`` and the
        shifted maps of all widths need one warp per shift: 3 Gaussian filters per group (not one per
        map) and 2 warps (not 2 K per width). Equal to the map-by-map sum up to float32 rounding.
        """
        aligned, flows = self.align(w)
        return self.predict_aligned(w, aligned, flows)

    def predict_aligned(self, window: np.ndarray, aligned: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """Forecast of one window whose frames are already aligned (:func:`align_window`).

        Parameters
        ----------
        window : numpy.ndarray, float32, shape (K, Y, X)
            Normalised frames, oldest first.
        aligned : numpy.ndarray, float32, shape (K, Y, X)
            The window aligned onto its last frame, newest first.
        flows : numpy.ndarray, float32, shape (K − 1, 2, Y, X)
            The flows that aligned it (pixels).

        Returns
        -------
        numpy.ndarray, float32, shape (Y, X)

        Raises
        ------
        InvalidInputError
            If the forecaster is not fitted.
        """
        if self.weights is None:
            raise InvalidInputError(f"{self.name} is not fitted: call fit(frames, targets) on the movie's past")
        w = np.asarray(window, dtype=np.float32)
        n = self._n_maps
        with self._pool() as ex:
            out = self._folded_sum(w, aligned, flows, self.weights[:n], self.weights[-1], ex)
            if self.modulate:
                out += self.modulation_map(w) * self._folded_sum(w, aligned, flows, self.weights[n:2 * n], 0.0, ex)
        return out

    def _folded_sum(self, w: np.ndarray, aligned: np.ndarray, flows: np.ndarray, wt: np.ndarray, const: float,
                    ex: Executor | None) -> np.ndarray:
        """``Σ_i wt_i m_i + const`` over the maps of one window, on weighted sums (see :meth:`_predict_window`)."""
        shifts = self._shifts(flows) if self.extrapolate else []
        k = self.k
        # per σ: the unshifted sum, then one sum per shift; each row: weights of the aligned frames
        # (newest first) and of the raw frames t − 1 .. t − K + 1 (unshifted sums only)
        wa, wr, sig = [], [], []
        i = 0
        for s in self.sigmas_px:
            wa.append(wt[i:i + k])
            i += k
            if self.unaligned:
                wr.append(wt[i:i + k - 1])
                i += k - 1
            sig.append(s)
            for _ in shifts:
                wa.append(wt[i:i + k])
                sig.append(s)
                i += k
        # all weighted sums in one pass over the frames (a matrix product), then one filter per sum
        sums = np.matmul(np.asarray(wa, np.float32), np.asarray(aligned, np.float32).reshape(k, -1))
        if self.unaligned:
            per = 1 + len(shifts)
            # raw frames oldest first (t − K + 1 .. t − 1), their weights reversed to match
            sums[::per] += np.matmul(np.asarray(wr, np.float32)[:, ::-1], w[:-1].reshape(k - 1, -1))
        jobs = [(a.reshape(w.shape[1:]), s) for a, s in zip(sums, sig, strict=True)]
        smoothed = list(ex.map(_smooth, jobs) if ex is not None else map(_smooth, jobs))
        out = np.full(w.shape[1:], const, np.float32)
        moved = [np.zeros(w.shape[1:], np.float32) for _ in shifts]
        per_sigma = 1 + len(shifts)
        for g in range(len(self.sigmas_px)):
            out += smoothed[g * per_sigma]
            for acc_v, m in zip(moved, smoothed[g * per_sigma + 1:(g + 1) * per_sigma], strict=True):
                acc_v += m
        pairs = list(zip(moved, shifts, strict=True))
        for m in (ex.map(_warp_pair, pairs) if ex is not None else map(_warp_pair, pairs)):
            out += m
        return out

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


def _brightness(frame: np.ndarray) -> np.ndarray:
    """Frame smoothed by a Gaussian of 2 px: the statistic of ``modulate="brightness"``."""
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(frame, 2.0)


def _smooth(job: tuple) -> np.ndarray:
    """``G_σ(sum)`` (no filter for σ = 0): one job of ``predict_aligned`` (the weighted sums are formed before)."""
    acc, s = job
    return acc if s == 0 else gaussian_filter_f32(acc, s)


#: Tile width of :func:`gaussian_filter_f32`'s banded matrix products.
_BAND_TILE = 64


def gaussian_filter_f32(image: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`scipy.ndimage.gaussian_filter` (mode ``"reflect"``, truncated at 4 σ) of a 2D map, as float32 matrix products.

    Parameters
    ----------
    image : numpy.ndarray, float, shape (Y, X)
    sigma : float
        Width in pixels (> 0).

    Returns
    -------
    numpy.ndarray, float32, shape (Y, X)

    Notes
    -----
    Each 1D pass multiplies tiles of 64 columns (then rows) of the map, padded by the kernel radius
    (``np.pad(mode="symmetric")``, SciPy's ``"reflect"``), by a banded (64 + 2r, 64) matrix holding
    SciPy's kernel: the same sums in float32 instead of SciPy's float64 line buffers, so the same
    values to float32 rounding (at most about 3·10⁻⁷ on maps of order 1). Two to three times
    cheaper than SciPy's ``correlate1d`` on a 1024 × 1024 float32 map with one BLAS thread (issue 14,
    session 12).
    """
    x = np.asarray(image, np.float32)
    r, band, band_t = _gaussian_band(float(sigma), _BAND_TILE)
    t = _BAND_TILE
    ny, nx = x.shape
    padded = np.pad(x, ((0, 0), (r, r + (-nx) % t)), mode="symmetric")
    cols = np.empty((ny, nx + (-nx) % t), np.float32)
    for j in range(0, nx, t):
        np.matmul(padded[:, j:j + t + 2 * r], band, out=cols[:, j:j + t])
    padded = np.pad(cols[:, :nx], ((r, r + (-ny) % t), (0, 0)), mode="symmetric")
    out = np.empty((ny + (-ny) % t, nx), np.float32)
    for j in range(0, ny, t):
        np.matmul(band_t, padded[j:j + t + 2 * r], out=out[j:j + t])
    return out[:ny] if out.shape[0] != ny else out


@functools.lru_cache(maxsize=32)
def _gaussian_band(sigma: float, tile: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Radius and the (tile + 2r, tile) banded matrix (and its transpose) of SciPy's truncated Gaussian kernel."""
    if not sigma > 0:
        raise InvalidInputError(f"a Gaussian width must be > 0, got {sigma}")
    r = int(4.0 * sigma + 0.5)
    k = np.exp(-0.5 / (sigma * sigma) * np.arange(-r, r + 1, dtype=np.float64) ** 2)
    k /= k.sum()
    band = np.zeros((tile + 2 * r, tile), np.float64)
    for j in range(tile):
        band[j:j + 2 * r + 1, j] = k
    band = band.astype(np.float32)
    band_t = np.ascontiguousarray(band.T)
    band.flags.writeable = band_t.flags.writeable = False
    return r, band, band_t


def _solve(gram: np.ndarray, ridge: float) -> np.ndarray:
    """Least-squares weights from the Gram matrix of ``[features, 1, target]``."""
    a, b = gram[:-1, :-1], gram[:-1, -1]
    a = a + ridge * np.trace(a) / len(a) * np.eye(len(a))
    return np.linalg.solve(a, b)


def _solve_sum_to_one(gram: np.ndarray, ridge: float, n_free: int = 0) -> np.ndarray:
    """Least-squares weights of the feature maps with ``sum(w) = 1`` and the constant fixed at 0.

    Solves the KKT system ``[[A + rI, c], [cᵀ, 0]] [w; λ] = [b; 1]`` with ``A`` the features' block of
    the Gram matrix of ``[features, 1, target]``, ``r`` the same relative ridge as :func:`_solve` and
    ``c`` = 1 on all but the last ``n_free`` features (those, the modulated maps, are not constrained).

    Parameters
    ----------
    gram : numpy.ndarray, shape (F + 2, F + 2)
    ridge : float
    n_free : int

    Returns
    -------
    numpy.ndarray, float64, shape (F + 1,)
        The F weights (summing to 1) and a zero constant.
    """
    n = len(gram) - 2
    a, b = gram[:n, :n], gram[:n, -1]
    a = a + ridge * np.trace(a) / n * np.eye(n)
    c = np.r_[np.ones(n - n_free), np.zeros(n_free)]
    kkt = np.zeros((n + 1, n + 1))
    kkt[:n, :n], kkt[:n, n], kkt[n, :n] = a, c, c
    sol = np.linalg.solve(kkt, np.concatenate([b, [1.0]]))
    return np.concatenate([sol[:n], [0.0]])


def _digest(frame: np.ndarray) -> bytes:
    """Content digest of a frame (shape, dtype and bytes; SHA-256 cut to 16 bytes).

    The bytes are hashed in place (no copy); SHA-256 took 3.3 against 7.6 ms for BLAKE2b on a
    1024 × 1024 float32 frame on the development machine (CPU SHA extensions; session 12).
    """
    a = np.ascontiguousarray(frame)
    h = hashlib.sha256(str((a.shape, a.dtype.str)).encode())
    h.update(a.data if a.size else b"")
    return h.digest()[:16]
