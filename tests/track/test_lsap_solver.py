"""The linker's assignment solver is SciPy's ``linear_sum_assignment``, loaded without ``scipy.optimize``
when it can (the fast path) and imported the ordinary way otherwise (the fallback): same assignments either way."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from dynacell.track import gate
from dynacell.track.gate import _answers_like_scipy, lsap_solver

#: Run in a fresh process: the solver, then scipy.optimize's own function on random problems.
_COMPARE = """
import json, sys
import numpy as np
from dynacell.track import gate
{setup}
fn = gate.lsap_solver()
loaded_without_optimize = 'scipy.optimize' not in sys.modules
from scipy.optimize import linear_sum_assignment as ref
rng = np.random.default_rng(0)
n_same = 0
for i in range(200):
    cost = rng.random((int(rng.integers(1, 25)), int(rng.integers(1, 25))))
    if i % 3 == 0:
        cost = np.round(cost, 1)  # ties
    if i % 7 == 0:
        cost[cost > 0.8] = np.inf  # forbidden pairs
    maximize = bool(i % 2) and not np.isinf(cost).any()
    try:
        got = fn(cost, maximize=maximize)
    except ValueError as exc:
        got = str(exc)
    try:
        want = ref(cost, maximize=maximize)
    except ValueError as exc:
        want = str(exc)
    same = (got == want) if isinstance(want, str) else all(np.array_equal(a, b) for a, b in zip(got, want))
    n_same += bool(same)
print(json.dumps({"without_optimize": loaded_without_optimize, "is_public": fn is ref, "n_same": n_same,
                  "module": getattr(fn, "__module__", None)}))
"""


def _compare(setup: str = "") -> dict:
    out = subprocess.run([sys.executable, "-c", _COMPARE.replace("{setup}", setup)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_fast_path_gives_scipy_assignments():
    res = _compare()
    assert res["without_optimize"] and res["module"] == "scipy.optimize._lsap"
    assert res["n_same"] == 200  # rectangular, ties, forbidden pairs, maximised; errors alike


def test_fallback_when_the_private_module_is_missing():
    res = _compare("gate.LSAP_MODULE = '_no_such_module'")
    assert not res["without_optimize"] and res["is_public"] and res["n_same"] == 200


def test_fallback_when_the_private_module_has_no_solver():
    res = _compare("gate.LSAP_MODULE = '_zeros'")  # a real compiled module of scipy.optimize, another content
    assert not res["without_optimize"] and res["is_public"] and res["n_same"] == 200


def test_fallback_when_scipy_optimize_is_already_imported(monkeypatch):
    from scipy.optimize import linear_sum_assignment

    monkeypatch.setattr(gate, "_LSAP", None)
    assert lsap_solver() is linear_sum_assignment


def test_a_solver_answering_otherwise_is_refused():
    from scipy.optimize import linear_sum_assignment

    assert _answers_like_scipy(linear_sum_assignment)
    assert not _answers_like_scipy(lambda c, maximize=False: (np.arange(len(c)), np.arange(len(c))))
    assert not _answers_like_scipy(lambda c: linear_sum_assignment(c))  # no ``maximize``: an exception
