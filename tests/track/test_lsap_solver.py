"""The linker's assignment solver is SciPy's ``linear_sum_assignment``, loaded without ``scipy.optimize``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dynacell.track.gate import lsap_solver


def test_same_assignments_as_scipy():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    fn = lsap_solver()
    for _ in range(100):
        cost = rng.random((int(rng.integers(1, 25)), int(rng.integers(1, 25))))
        if rng.random() < 0.4:
            cost = np.round(cost, 1)  # ties
        for got, ref in zip(fn(cost), linear_sum_assignment(cost), strict=True):
            np.testing.assert_array_equal(got, ref)


def test_loaded_without_scipy_optimize():
    code = ("import sys; from dynacell.track.gate import lsap_solver; f = lsap_solver(); "
            "r, c = f([[4.0, 1.0], [2.0, 8.0]]); "
            "print('scipy.optimize' in sys.modules, r.tolist(), c.tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False"
    assert out[1:] == ["[0,", "1]", "[1,", "0]"]
