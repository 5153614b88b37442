"""CPU seconds of one ``frames-mc-linear`` forecast of a 1024 × 1024 frame, settings timed A/B (issue 14).

Run from the checkout (needs ../shared/data; about 1 CPU minute, 5 more with --with-previous; one thread
except the ``2 threads`` variant):

    python benchmarks/forecast_mc_speed.py [--repeats 2] [--with-previous] [--out DIR]

The frames are GOWT1 01 (1024 × 1024, normalised on frames 0–7). The forecaster's weights are set to
equal weights summing to 1 (the cost does not depend on their values). Timed with
:func:`time.process_time` (one thread), so other jobs on the machine do not inflate it. Variants:

* ``previous`` (only with ``--with-previous``): TV-L1 flows from frame t to t − 1, t − 2, t − 3 at
  the resolution of the frames, all 60 maps formed and summed (before issue 14's speed work);
* ``tvl1 1/2, skimage warp``: chained TV-L1 flows at ½ with scikit-image's settings (5 warps × 10
  iterations) and warps by :func:`skimage.transform.warp` (the default before issue 14's last changes:
  ``warp_by_flow`` now calls :func:`scipy.ndimage.map_coordinates` directly);
* ``tvl1 1/2``: the same with the current warps;
* ``current``: the current defaults (:class:`~dynacell.forecast.motion.MotionCompensatedForecaster`:
  TV-L1 of 2 warps × 5 iterations, chained at the flows' resolution), the weighted sum taken on 3
  Gaussian filters per width and 2 warps;
* ``ilk 1/2``: the current defaults with iterative Lucas–Kanade flows (``flow_method="ilk"``);
* ``fine chain``: the current defaults, but every consecutive flow upsampled and the flows chained
  at full resolution (``flow_compose_coarse=False``, the default until issue 14's last change; the
  default now chains them at the reduced resolution they are estimated at and upsamples only the
  chained flows).
* ``resize upsample``: the current defaults with the flows upsampled by :func:`skimage.transform.resize`
  (order 1), as before session 12 (``upsample_flow`` now interpolates rows by gathering and columns
  by a product with the interpolation matrix: the same values to float32 rounding).
* ``scipy warp and filter``: the current defaults with the warps by SciPy's ``map_coordinates``
  (:func:`dynacell.forecast.frames.warp_by_flow`) and the Gaussian filters by SciPy's
  ``gaussian_filter``, as before session 12's float32 warp and banded-matrix filter
  (:func:`dynacell.forecast.motion.warp_by_flow_f32`, :func:`~dynacell.forecast.motion.gaussian_filter_f32`:
  the same values to float32 rounding); the weighted sums stay one matrix product.
* ``2 threads``: the current defaults with ``threads=2`` (warps and Gaussian filters of one forecast
  side by side; the same forecast bit for bit). Its CPU seconds count both threads.
* ``brightness``: the current defaults with ``modulate="brightness"`` (weights varying with the
  smoothed brightness: twice the weighted sums, Gaussian filters and shift warps).

Each timing records CPU seconds (:func:`time.process_time`, all threads of the process), those of
the main thread (:func:`time.thread_time`; with ``2 threads`` the rest ran in the pool, side by side)
and wall seconds (:func:`time.perf_counter`); on a shared machine only the CPU seconds are
comparable between runs. The summary gives the minimum and median over the repeats. With
``--schedule N`` the pool's tasks of N cold full-resolution windows (``threads=2``) are timed one by
one and replayed on two idle workers (:func:`two_thread_schedule`): an estimate of the wall time on
two free cores, for machines where none is free.

At full resolution every flow is estimated at 1/4 of its flow resolution, so that it sees the same
physical scale as on the ÷4 frames the settings were chosen on. Each is timed on (a) one window with
nothing cached (three flows), the variants in turn, ``--repeats`` times, at full resolution and on
the ÷4 path (frames block-averaged by 4, forecast, upsampled back bilinearly, as
:func:`dynacell.forecast.benchmark.speed_table` times the networks); and (b) along the movie (frames
4–9 forecast in turn, the variants interleaved frame by frame; flows between frames already seen are
reused, so each new frame costs one new flow): mean per frame after the first.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


WALL: dict = {}


def _cpu(fn) -> float:
    """CPU seconds of ``fn()`` (all threads); its wall seconds go to ``WALL["last"]``, the main thread's CPU
    seconds to ``WALL["main"]`` (the rest of the CPU seconds ran in the forecaster's thread pool)."""
    c0, w0, m0 = time.process_time(), time.perf_counter(), time.thread_time()
    fn()
    WALL["last"], WALL["main"] = time.perf_counter() - w0, time.thread_time() - m0
    return time.process_time() - c0


def two_thread_schedule(mc, window: np.ndarray) -> dict:
    """Per-task CPU seconds of one forecast with ``threads`` > 1, and the wall time two free cores would need.

    Every task the forecaster hands to its pool (frame digests, consecutive flows, warps of the past
    frames, weighted sums with their Gaussian filters, shift warps) is timed by :func:`time.thread_time`
    in the thread that runs it; the main thread's CPU seconds are everything else. The estimate
    replays each pool phase on 2 workers that take the tasks in the order they were submitted (as
    :class:`concurrent.futures.ThreadPoolExecutor` does) and adds the main thread's seconds: what two
    otherwise idle cores would take if no task slowed the other down (memory bandwidth is shared, so
    a lower bound).
    """
    import threading

    from dynacell.forecast import motion

    log: list[tuple[str, float]] = []
    lock = threading.Lock()
    originals = {"_digest": motion._digest, "_warp_pair": motion._warp_pair, "_smooth": motion._smooth}
    est = motion.MotionCompensatedForecaster._estimated_flow

    def timed(name, fn):
        def run(*a, **k):
            c0 = time.thread_time()
            out = fn(*a, **k)
            with lock:
                log.append((name, time.thread_time() - c0))
            return out
        return run

    for name, fn in originals.items():
        setattr(motion, name, timed(name, fn))
    motion.MotionCompensatedForecaster._estimated_flow = timed("flow", est)
    try:
        m0 = time.thread_time()
        mc.predict(window[None])
        main_cpu = time.thread_time() - m0
    finally:
        for name, fn in originals.items():
            setattr(motion, name, fn)
        motion.MotionCompensatedForecaster._estimated_flow = est
    phases: list[list[float]] = []  # consecutive tasks of one kind form a phase (one executor.map)
    last = None
    for name, sec in log:
        if name != last:
            phases.append([])
            last = name
        phases[-1].append(sec)
    makespan = 0.0
    for tasks in phases:
        workers = [0.0, 0.0]
        for sec in tasks:
            i = int(np.argmin(workers))
            workers[i] += sec
        makespan += max(workers)
    pool_cpu = float(sum(sec for _, sec in log))
    return {"main_thread_cpu_s": main_cpu, "pool_cpu_s": pool_cpu, "phases": [len(p) for p in phases],
            "two_free_cores_wall_s_estimate": main_cpu + makespan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--with-previous", action="store_true", help="also time the pre-issue-14 settings (slow)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/forecast_mc_speed"))
    ap.add_argument("--variants", nargs="+", help="time only these variants (names as printed), in turn")
    ap.add_argument("--schedule", type=int, default=0, metavar="N",
                    help="also replay N cold full-resolution windows with threads=2 on two idle cores "
                         "(two_thread_schedule)")
    args = ap.parse_args()

    import torch
    from scipy.ndimage import zoom
    from skimage.transform import downscale_local_mean

    from dynacell.forecast.frames import load_frames, normalize_movie
    from dynacell.forecast.motion import MotionCompensatedForecaster

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    raw, _, _ = load_frames(DATA / "ctc" / "Fluo-N2DH-GOWT1" / "01", max_frames=10)
    frames, _ = normalize_movie(raw, fit_frames=range(8))
    assert frames.shape[1:] == (1024, 1024), frames.shape

    from scipy.ndimage import gaussian_filter

    from dynacell.forecast import motion
    from dynacell.forecast.frames import warp_by_flow as scipy_warp

    motion_warp, motion_filter = motion.warp_by_flow_f32, motion.gaussian_filter_f32

    def skimage_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        from skimage.transform import warp

        rr, cc = np.meshgrid(np.arange(image.shape[0]), np.arange(image.shape[1]), indexing="ij")
        return warp(image, np.stack([rr + flow[0], cc + flow[1]]), mode="edge", order=1,
                    preserve_range=True).astype(np.float32)

    def make(which: str, full_res: bool) -> MotionCompensatedForecaster:
        if which == "previous":
            mc = MotionCompensatedForecaster(flow_method="tvl1", flow_downsample=1, flow_chain=False, flow_kwargs={})
        else:
            kw = {"flow_kwargs": {}} if which.startswith("tvl1 1/2") else {}
            if which in ("fine chain", "tvl1 1/2, skimage warp", "tvl1 1/2"):
                kw["flow_compose_coarse"] = False
            if which == "2 threads":
                kw["threads"] = 2
            if which == "brightness":
                kw["modulate"] = "brightness"
            mc = MotionCompensatedForecaster(flow_method="ilk" if which == "ilk 1/2" else "tvl1", **kw)
            if full_res:
                mc.flow_downsample *= 4
        mc.weights = np.r_[np.full(mc.n_features, 1.0 / mc.n_features), 0.0]
        if mc.modulate:
            mc.modulation = (0.25, 0.5, 0.75)
        return mc

    upsample_flow = motion.upsample_flow

    def resize_upsample(flow: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
        from skimage.transform import resize

        v = np.asarray(flow, np.float32)
        full = (v.shape[1] * factor, v.shape[2] * factor)
        up = np.stack([resize(c, full, order=1, mode="edge", anti_aliasing=False) for c in v]) * np.float32(factor)
        return np.ascontiguousarray(up[:, :shape[0], :shape[1]], dtype=np.float32)

    def forecast(mc: MotionCompensatedForecaster, which: str, window: np.ndarray) -> np.ndarray:
        old = which in ("previous", "tvl1 1/2, skimage warp", "tvl1 1/2", "fine chain", "resize upsample",
                        "scipy warp and filter")
        motion.warp_by_flow_f32 = (skimage_warp if which in ("previous", "tvl1 1/2, skimage warp")
                               else scipy_warp if old else motion_warp)
        if old:
            motion.gaussian_filter_f32 = gaussian_filter
        if which in ("previous", "tvl1 1/2, skimage warp", "tvl1 1/2", "fine chain", "resize upsample"):
            motion.upsample_flow = resize_upsample
        try:
            if which == "previous":
                return mc.predict_features(mc.features(window))
            return mc.predict(window[None])[0]
        finally:
            motion.warp_by_flow_f32, motion.gaussian_filter_f32 = motion_warp, motion_filter
            motion.upsample_flow = upsample_flow

    def down4(window: np.ndarray) -> np.ndarray:
        return downscale_local_mean(window, (1, 4, 4)).astype(np.float32)

    variants = (["previous"] if args.with_previous else []) + ["tvl1 1/2, skimage warp", "tvl1 1/2", "current",
                                                                "ilk 1/2", "fine chain", "resize upsample",
                                                                "scipy warp and filter", "2 threads", "brightness"]
    if args.variants:
        variants = args.variants
    res: dict = {"cold_window": {}, "along_movie": {}}
    w = frames[:4]
    for rep in range(args.repeats):
        for which in variants:
            for path in ("full resolution", "/4 path"):
                mc = make(which, path == "full resolution")
                if path == "full resolution":
                    sec = _cpu(lambda mc=mc, which=which: forecast(mc, which, w))
                else:
                    sec = _cpu(lambda mc=mc, which=which: zoom(forecast(mc, which, down4(w)), 4, order=1))
                res["cold_window"].setdefault(f"{which}, {path}", []).append(sec)
                res.setdefault("cold_window_wall", {}).setdefault(f"{which}, {path}", []).append(WALL["last"])
                res.setdefault("cold_window_main_thread_cpu", {}).setdefault(f"{which}, {path}", []).append(WALL["main"])
                print(f"repeat {rep}: {which}, {path}: {sec:.3f} CPU-s ({WALL['main']:.3f} in the main thread), "
                      f"{WALL['last']:.3f} wall-s", flush=True)
    along = [v for v in ("current", "ilk 1/2", "fine chain", "resize upsample", "scipy warp and filter", "2 threads",
                         "brightness")
             if v in variants]
    for path in ("full resolution", "/4 path"):  # the variants interleaved frame by frame (A/B under the same load)
        mcs = {which: make(which, path == "full resolution") for which in along}
        secs, walls = {which: [] for which in along}, {which: [] for which in along}
        for t in range(4, 10):
            win = frames[t - 4:t] if path == "full resolution" else down4(frames[t - 4:t])
            for which, mc in mcs.items():
                secs[which].append(_cpu(lambda mc=mc, win=win, path=path, which=which: (
                    forecast(mc, which, win) if path == "full resolution"
                    else zoom(forecast(mc, which, win), 4, order=1))))
                walls[which].append(WALL["last"])
        for which in along:
            res["along_movie"][f"{which}, {path}"] = {"per_frame_cpu_s": secs[which],
                                                      "mean_after_first": float(np.mean(secs[which][1:])),
                                                      "per_frame_wall_s": walls[which]}
            print(f"along the movie, {which}, {path}: {np.round(secs[which], 3).tolist()} CPU-s, "
                  f"wall {np.round(walls[which], 3).tolist()}", flush=True)
    mc = MotionCompensatedForecaster()
    if args.schedule:
        rows = []
        for _ in range(args.schedule):
            for which in ("2 threads",) + (("brightness",) if "brightness" in variants else ()):
                mc2 = make(which, True)
                mc2.threads = 2
                rows.append({"variant": which, **two_thread_schedule(mc2, w)})
                print("schedule:", json.dumps(rows[-1]), flush=True)
        res["two_thread_schedule"] = rows
    res["current_settings"] = {"flow_method": mc.flow_method, "flow_downsample": mc.flow_downsample,
                               "flow_chain": mc.flow_chain, "flow_kwargs": mc.flow_kwargs}
    res["summary"] = {kind: {k: {"min": float(np.min(v)), "median": float(np.median(v))} for k, v in res[kind].items()}
                      for kind in ("cold_window", "cold_window_wall", "cold_window_main_thread_cpu")}
    res["load_average_at_end"] = list(os.getloadavg())
    (args.out / "speed.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
