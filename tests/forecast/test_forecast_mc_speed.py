"""The two-core replay of ``benchmarks/forecast_mc_speed.py`` (``--schedule``)."""

from __future__ import annotations

import numpy as np
from _helpers import load_benchmark

from dynacell.forecast import MotionCompensatedForecaster, motion


def test_two_thread_schedule_times_every_pool_task_and_restores_the_module():
    bench = load_benchmark("forecast_mc_speed")
    rng = np.random.default_rng(0)
    window = rng.random((4, 48, 48), dtype=np.float32)
    mc = MotionCompensatedForecaster(threads=2)
    mc.weights = np.r_[np.full(mc.n_features, 1.0 / mc.n_features), 0.0]
    originals = (motion._digest, motion._warp_pair, motion._smooth, MotionCompensatedForecaster._estimated_flow)
    r = bench.two_thread_schedule(mc, window)
    # digests, consecutive flows, warps of the past frames, 12 weighted sums, 2 shift warps
    assert r["phases"] == [4, 3, 3, 12, 2]
    # two workers never take longer than one, nor less than half of the pool's seconds
    assert r["main_thread_cpu_s"] + r["pool_cpu_s"] / 2 - 1e-9 <= r["two_free_cores_wall_s_estimate"]
    assert r["two_free_cores_wall_s_estimate"] <= r["main_thread_cpu_s"] + r["pool_cpu_s"] + 1e-9
    assert (motion._digest, motion._warp_pair, motion._smooth,
            MotionCompensatedForecaster._estimated_flow) == originals


def test_position_speed_script_times_one_and_two_threads(tmp_path, monkeypatch):
    import json
    import sys

    import torch

    bench = load_benchmark("forecast_position_speed")
    before = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", ["x", "--repeats", "1", "--n-tracks", "2000", "--out", str(tmp_path)])
    try:
        bench.main()
    finally:
        torch.set_num_threads(before)
    res = json.loads((tmp_path / "position_speed.json").read_text())
    for threads in ("1 thread(s)", "2 thread(s)"):
        r = res[threads]
        assert 0 < r["wall_s_min"] <= r["wall_s_median"] and r["cpu_s_min"] > 0
        assert r["forecasts_per_wall_s_best"] == 2000 / r["wall_s_min"]
