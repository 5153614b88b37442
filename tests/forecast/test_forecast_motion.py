"""The motion-compensated linear next-frame forecast (``frames-mc-linear``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from _helpers import run_main

from dynacell.errors import InvalidInputError
from dynacell.forecast import MotionCompensatedForecaster, resolve_model
from dynacell.forecast.frames import baseline_forecast, make_windows
from dynacell.forecast.motion import align_window


def _noisy_blob(make_blob, n_frames=11, noise=0.08, seed=0):
    clean = make_blob(n_frames=n_frames, size=32, speed_px=1.0, sigma=3.0)
    rng = np.random.default_rng(seed)
    return clean, (clean + rng.normal(0, noise, clean.shape)).astype(np.float32)


def test_beats_persistence_and_smoothing_on_a_noisy_moving_blob(make_blob):
    clean, movie = _noisy_blob(make_blob)
    mc = MotionCompensatedForecaster().fit(movie, range(4, 8))  # the past only
    targets = [8, 9, 10]
    x, y = make_windows(movie, mc.k, targets)
    err = {"mc": np.mean((mc.predict(x) - y) ** 2)}
    for b in ("persistence", "smoothed_persistence", "flow"):
        err[b] = np.mean((baseline_forecast(b, x) - y) ** 2)
    # the noise of the target (0.08² = 6.4e-3) is left; persistence adds the last frame's noise and the motion
    # (measured: 6.7e-3 against 1.41e-2 for persistence, 8.5e-3 smoothed persistence, 9.9e-3 flow)
    assert err["mc"] < 0.7 * err["persistence"]
    assert err["mc"] < min(err["smoothed_persistence"], err["flow"])
    # and against the noise-free next frame it is closer than the noise itself
    assert np.mean((mc.predict(x) - clean[targets]) ** 2) < 0.08**2


def test_align_window_moves_past_frames_onto_the_last(make_blob):
    movie = make_blob(n_frames=3, size=40, speed_px=1.5, sigma=3.0)
    aligned, flows = align_window(movie)
    assert aligned.shape == (3, 40, 40) and flows.shape == (2, 2, 40, 40)
    before = np.abs(movie[0] - movie[2]).mean()
    assert np.abs(aligned[2] - movie[2]).mean() < 0.3 * before  # two steps back, moved by ~3 px
    assert flows[0][1, 20, 20] == pytest.approx(-1.5, abs=0.3)  # frame t−1 sits 1.5 px to the left


def test_static_noise_free_movie_is_forecast_exactly():
    rng = np.random.default_rng(1)
    scene = rng.random((24, 24)).astype(np.float32)
    movie = np.stack([scene] * 8)
    mc = MotionCompensatedForecaster(k=2, sigmas_px=(0.0, 1.0), unaligned=False, extrapolate=False)
    assert mc.n_features == 4
    mc.fit(movie, range(2, 6))
    np.testing.assert_allclose(mc.predict(movie[None, 5:7])[0], scene, atol=1e-3)


def test_errors_and_resolution_by_name():
    mc = resolve_model("frames-mc-linear")
    assert isinstance(mc, MotionCompensatedForecaster) and mc.weights is None and mc.k == 4
    window = np.zeros((4, 16, 16), np.float32)
    assert mc.features(window).shape == (mc.n_features, 16, 16)
    with pytest.raises(InvalidInputError, match="not fitted"):
        mc.predict(window[None])
    with pytest.raises(InvalidInputError, match="K=4"):
        mc.features(window[:3])
    with pytest.raises(InvalidInputError, match="no target"):
        mc.fit(np.zeros((4, 8, 8), np.float32), [4])
    with pytest.raises(InvalidInputError):
        MotionCompensatedForecaster(k=1)
    mb = resolve_model("frames-mc-brightness")
    assert mb.modulate == "brightness" and mb.name == "frames-mc-brightness" and mc.modulate is None
    assert mb.n_features == 2 * mc.n_features


@pytest.mark.slow
def test_cli_evaluate_and_predict_with_the_method(tmp_path, monkeypatch, capsys, make_blob):
    _, movie = _noisy_blob(make_blob, n_frames=12)
    tifffile.imwrite(tmp_path / "m.tif", (np.clip(movie, 0, None) * 1000).astype(np.uint16))
    code, out, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "m.tif", "--axes", "TYX",
                              "--model", "frames-mc-linear", "--test-fraction", "0.25")
    assert code == 0, err
    res = json.loads(out)
    assert res["model"] == "frames-mc-linear" and res["fitted_on_targets"] == [4, 8]
    assert res["mse"] < res["mse_persistence"]
    code, out, err = run_main(monkeypatch, capsys, "forecast", "predict", tmp_path / "m.tif", "--axes", "TYX",
                              "-o", tmp_path / "pred", "--model", "frames-mc-linear", "--steps", "2")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "pred").iterdir()) == ["forecast.json", "pred012.tif", "pred013.tif"]


def test_sum_to_one_fit_keeps_the_centre_of_mass_on_a_noisy_moving_blob(make_blob):
    from dynacell.metrics.forecasting import center_of_mass_error

    _, movie = _noisy_blob(make_blob, noise=0.1, seed=1)
    movie = movie + np.float32(0.2)  # a bright background: on a zero one the target's centre is the noise's
    ms = MotionCompensatedForecaster().fit(movie, range(4, 8))  # the past only; sum_to_one is the default
    assert ms.weights[-1] == 0.0
    assert np.isclose(ms.weights[:-1].sum(), 1.0, atol=1e-9)
    x, y = make_windows(movie, ms.k, [8, 9, 10])
    com = center_of_mass_error(ms.predict(x), y)["com_error_px"]
    # measured: 0.19 px against 0.31 px for persistence
    assert com <= center_of_mass_error(baseline_forecast("persistence", x), y)["com_error_px"]
    # the unconstrained fit of the same normal matrix has weights that need not sum to 1
    mc = MotionCompensatedForecaster(sum_to_one=False).fit(movie, range(4, 8))
    assert not np.array_equal(mc.weights, ms.weights)


def test_predict_sums_the_maps_exactly_for_every_flow_setting(make_blob):
    _, movie = _noisy_blob(make_blob, n_frames=9)
    for kw in ({"flow_chain": False, "flow_downsample": 1}, {"flow_chain": True, "flow_downsample": 2},
               {"flow_method": "ilk", "flow_chain": True, "flow_downsample": 1, "unaligned": False}):
        mc = MotionCompensatedForecaster(**kw).fit(movie, range(4, 8))
        window = movie[4:8]
        fresh = MotionCompensatedForecaster(**kw)
        fresh.weights = mc.weights
        # the folded sum (3 filters per width, 2 warps), with and without cached flows, is the sum of the F maps
        expected = mc.predict_features(mc.features(window))
        np.testing.assert_allclose(mc.predict(window[None])[0], expected, atol=1e-5)
        np.testing.assert_allclose(fresh.predict(window[None])[0], expected, atol=1e-5)


def test_estimate_flow_at_reduced_resolution_recovers_a_shift():
    from scipy.ndimage import gaussian_filter, shift

    from dynacell.forecast.motion import estimate_flow

    rng = np.random.default_rng(2)
    ref = gaussian_filter(rng.random((45, 50)), 3).astype(np.float32)
    moving = shift(ref, (1.0, -2.0), mode="nearest").astype(np.float32)  # moving(p + (1, -2)) = ref(p)
    for d in (1, 2):
        v = estimate_flow(ref, moving, downsample=d)
        assert v.shape == (2, 45, 50) and v.dtype == np.float32
        inner = (slice(None), slice(10, -10), slice(10, -10))
        np.testing.assert_allclose(np.median(v[inner], axis=(1, 2)), [1.0, -2.0], atol=0.25)
    with pytest.raises(InvalidInputError, match="downsample"):
        estimate_flow(ref, moving, downsample=0)
    with pytest.raises(InvalidInputError, match="unknown flow method"):
        estimate_flow(ref, moving, method="farneback")


def test_compose_flows_adds_constant_motions_and_follows_the_near_one():
    from dynacell.forecast.motion import compose_flows

    near = np.stack([np.full((8, 9), 0.5), np.full((8, 9), 1.0)]).astype(np.float32)
    far = np.stack([np.full((8, 9), 1.0), np.full((8, 9), -0.5)]).astype(np.float32)
    np.testing.assert_allclose(compose_flows(near, far), near + far, atol=1e-6)
    ramp = np.stack([np.zeros((8, 9)), np.tile(np.arange(9.0), (8, 1))]).astype(np.float32)  # far = column index
    shift_one = np.stack([np.zeros((8, 9)), np.ones((8, 9))]).astype(np.float32)
    # far is read at p + near(p): one column to the right
    assert compose_flows(shift_one, ramp)[1, 4, 3] == pytest.approx(1.0 + 4.0)


def test_chained_flows_reuse_one_new_flow_per_frame_along_a_movie(make_blob, monkeypatch):
    from dynacell.forecast import motion

    movie = make_blob(n_frames=8, size=40, speed_px=1.0, sigma=3.0)
    calls = []
    real = motion.estimate_flow
    monkeypatch.setattr(motion, "estimate_flow", lambda *a, **k: calls.append(1) or real(*a, **k))
    mc = MotionCompensatedForecaster(flow_chain=True)
    _, flows = align_window(movie[:4], chain=True)
    assert flows[2][1, 20, 20] == pytest.approx(-3.0, abs=0.4)  # three steps of 1 px, chained
    calls.clear()
    for t in range(4, 8):
        mc.features(movie[t - 4:t])
    assert len(calls) == 3 + 3  # the first window's three consecutive flows, then one per new frame
    calls.clear()
    unchained = MotionCompensatedForecaster(flow_chain=False)
    for t in range(4, 6):
        unchained.features(movie[t - 4:t])
    assert len(calls) == 3 + 3  # direct flows all start at the window's new last frame: three new ones each
    calls.clear()
    unchained.features(movie[1:5])
    assert not calls  # the same window again: all three remembered
    with pytest.raises(InvalidInputError, match="flow_method"):
        MotionCompensatedForecaster(flow_method="farneback")


def test_weights_pooled_over_other_movies_forecast_a_new_one_with_the_cross_movie_flows(make_blob):
    from dynacell.forecast.motion import CROSS_MOVIE_FLOW

    mc = MotionCompensatedForecaster(**CROSS_MOVIE_FLOW)
    assert (mc.flow_method, mc.flow_downsample, mc.flow_chain) == ("tvl1", 1, True)
    # the normal matrices of two movies, summed: weights of other movies (benchmarks/forecast_mc.py)
    gram = sum(mc.normal_matrix(_noisy_blob(make_blob, seed=s)[1], range(4, 11)) for s in (0, 1))
    mc.fit_normal_matrix(gram, fitted_on={"movies": ["seed 0", "seed 1"]})
    assert mc.fitted_on == {"movies": ["seed 0", "seed 1"]}
    _, new = _noisy_blob(make_blob, seed=2)  # never fitted on
    x, y = make_windows(new, mc.k, range(4, 11))
    err = np.mean((mc.predict(x) - y) ** 2)
    for b in ("persistence", "smoothed_persistence"):
        assert err < np.mean((baseline_forecast(b, x) - y) ** 2)


def test_default_tvl1_settings_and_the_flow_cache_keys_them(make_blob, monkeypatch):
    from dynacell.forecast import motion
    from dynacell.forecast.motion import CROSS_MOVIE_FLOW, TVL1_KWARGS

    assert MotionCompensatedForecaster().flow_kwargs == TVL1_KWARGS == {"num_warp": 2, "num_iter": 5}
    assert MotionCompensatedForecaster(flow_method="ilk").flow_kwargs == {}  # ILK has no num_iter
    assert MotionCompensatedForecaster(**CROSS_MOVIE_FLOW).flow_kwargs == {}  # scikit-image's 5 × 10
    seen = []
    real = motion.estimate_flow
    monkeypatch.setattr(motion, "estimate_flow", lambda *a, **k: seen.append(k) or real(*a, **k))
    movie = make_blob(n_frames=5, size=32, speed_px=1.0, sigma=3.0)
    MotionCompensatedForecaster().features(movie[:4])
    assert seen and all(k["num_warp"] == 2 and k["num_iter"] == 5 for k in seen)


@pytest.mark.parametrize(("shape", "factor"), [((1024, 1024), 8), ((253, 327), 2), ((61, 47), 3), ((40, 600), 2)])
def test_upsample_flow_equals_skimage_bilinear_resize(shape, factor):
    from skimage.transform import resize

    from dynacell.forecast.motion import upsample_flow

    rng = np.random.default_rng(1)
    small = (-(-shape[0] // factor), -(-shape[1] // factor))
    flow = (3 * rng.standard_normal((2,) + small)).astype(np.float32)
    full = (small[0] * factor, small[1] * factor)
    ref = np.stack([resize(c, full, order=1, mode="edge", anti_aliasing=False) for c in flow])[:, :shape[0], :shape[1]]
    got = upsample_flow(flow, factor, shape)
    assert got.shape == (2,) + shape and got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, factor * ref, rtol=0, atol=2e-6 * factor * np.abs(flow).max())
    assert np.array_equal(upsample_flow(flow, 1, small), flow)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (37, 53), (256, 256)])
def test_motion_warp_equals_scipy_map_coordinates_warp_to_float32_rounding(shape):
    from dynacell.forecast import frames, motion

    rng = np.random.default_rng(2)
    image = rng.random(shape, dtype=np.float32)
    # sub-pixel, integer and far-out-of-the-frame displacements (edge values beyond the border)
    flow = np.stack([rng.normal(0, 0.3 * max(shape), shape), rng.normal(0, 0.3 * max(shape), shape)]).astype(np.float32)
    flow[:, ::3, ::2] = np.round(flow[:, ::3, ::2])
    flow[0, 0, 0], flow[1, -1, -1] = -5.0 * shape[0] - 3.5, 4.0 * shape[1] + 0.25
    ref = frames.warp_by_flow(image, flow)
    got = motion.warp_by_flow_f32(image, flow)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-7)
    # several maps moved by one flow
    two = motion.warp_by_flow_f32(np.stack([image, 2 * image]), flow)
    assert two.shape == (2,) + shape
    np.testing.assert_allclose(two[1], frames.warp_by_flow(2 * image, flow), rtol=0, atol=6e-7)
    # a whole-pixel shift moves the image exactly
    shift = np.zeros((2,) + shape, np.float32)
    shift[1] = 1.0
    moved = motion.warp_by_flow_f32(image, shift)
    assert np.array_equal(moved[:, :-1], image[:, 1:]) and np.array_equal(moved[:, -1], image[:, -1])
    flow[0, 0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        motion.warp_by_flow_f32(image, flow)


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (64, 64), (65, 130), (253, 327)])
@pytest.mark.parametrize("sigma", [0.7, 1.5, 3.0, 10.0])
def test_banded_gaussian_filter_equals_scipy_to_float32_rounding(shape, sigma):
    from scipy.ndimage import gaussian_filter

    from dynacell.forecast.motion import gaussian_filter_f32

    image = np.random.default_rng(3).random(shape, dtype=np.float32)
    got = gaussian_filter_f32(image, sigma)
    assert got.dtype == np.float32 and got.shape == shape
    np.testing.assert_allclose(got, gaussian_filter(image, sigma), rtol=0, atol=5e-7)
    with pytest.raises(InvalidInputError, match="Gaussian width"):
        gaussian_filter_f32(image, 0.0)


def test_threads_give_the_same_forecast_bit_for_bit_and_run_side_by_side(make_blob, monkeypatch):
    import threading

    from dynacell.forecast import motion

    _, movie = _noisy_blob(make_blob, n_frames=9)
    one = MotionCompensatedForecaster().fit(movie, range(4, 8))
    two = MotionCompensatedForecaster(threads=2)
    two.weights = one.weights
    seen, flows_in = set(), []
    warp, estimate = motion.warp_by_flow_f32, motion.estimate_flow

    def recording_warp(image, flow):
        seen.add(threading.get_ident())
        return warp(image, flow)

    def recording_estimate(*args, **kwargs):
        flows_in.append(threading.get_ident())
        return estimate(*args, **kwargs)

    windows = np.stack([movie[4:8], movie[5:9]])
    expected = one.predict(windows)
    monkeypatch.setattr(motion, "warp_by_flow_f32", recording_warp)
    monkeypatch.setattr(motion, "estimate_flow", recording_estimate)
    assert np.array_equal(two.predict(windows), expected)
    main = threading.get_ident()
    assert seen - {main}  # warps of frames and sums ran in the pool's threads
    # the 3 consecutive flows of the first window, then only the new one of the next, all in the pool
    assert len(flows_in) == 4 and main not in flows_in
    a1, f1 = one.align(movie[5:9])
    a2, f2 = two.align(movie[5:9])
    assert np.array_equal(a1, a2) and np.array_equal(f1, f2)
    with pytest.raises(InvalidInputError, match="threads"):
        MotionCompensatedForecaster(threads=0)


def test_weights_varying_with_brightness_fit_a_movie_whose_bright_and_dark_parts_behave_differently():
    # bright half alternates between two patterns (best forecast: frame t − 1), dark half is a static
    # scene with noise (best forecast: an average of past frames): one mix for both cannot be right
    rng = np.random.default_rng(0)
    pa, pb = rng.random((32, 32)), rng.random((32, 32))
    movie = np.empty((14, 32, 32), np.float32)
    for t in range(14):
        bright = 0.6 + 0.4 * (pa if t % 2 == 0 else pb)
        movie[t] = np.where(np.arange(32)[None, :] < 16, bright, 0.1 + rng.normal(0, 0.05, (32, 32)))
    x, y = make_windows(movie, 4, [10, 11, 12, 13])
    plain = MotionCompensatedForecaster().fit(movie, range(4, 10))
    mod = MotionCompensatedForecaster(modulate="brightness").fit(movie, range(4, 10))
    assert mod.n_features == 2 * plain.n_features and mod.modulation is not None
    n = plain.n_features
    assert mod.weights[:n].sum() == pytest.approx(1.0) and mod.weights[-1] == 0.0
    assert abs(mod.weights[n:2 * n]).max() > 1e-3  # the brightness terms are used
    pred = mod.predict(x)
    # measured: 1.44e-3 against 1.76e-3 without modulation
    assert np.mean((pred - y) ** 2) < 0.9 * np.mean((plain.predict(x) - y) ** 2)
    # the folded forecast is the weighted sum of all 120 maps; threads change nothing
    np.testing.assert_allclose(pred[0], mod.predict_features(mod.features(x[0])), atol=1e-5)
    two = MotionCompensatedForecaster(modulate="brightness", threads=2, weights=mod.weights, modulation=mod.modulation)
    assert np.array_equal(two.predict(x), pred)
    with pytest.raises(InvalidInputError, match="modulation not fitted"):
        MotionCompensatedForecaster(modulate="brightness", weights=mod.weights).predict(x)
    with pytest.raises(InvalidInputError, match="modulate"):
        MotionCompensatedForecaster(modulate="edges")
