"""benchmarks/run.py's repeated-run summary and benchmarks/classify.py's eager-vs-graph table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_repeat_summary_counts_the_runs_that_met_the_targets() -> None:
    run = _load("run")
    rows = [{"run": "GOWT1 01 TRA", "wall_s": w, "nuclei": 2052, "classify_s": c, "ndim": 2}
            for w, c in ((8.0, 1.8), (10.0, 2.052), (11.5, 2.2))]
    rows.append({"run": "GOWT1 01 TRA", "error": "boom", "wall_s": 0.5})
    rows.append({"run": "mouse-8cell 3D", "wall_s": 9.0, "nuclei": 88, "classify_s": 0.4, "ndim": 3})
    lines = run.repeat_summary(rows)
    assert len(lines) == 2
    gowt1, mouse = lines
    assert "4 runs" in gowt1 and "<= 10 s in 2 of 4" in gowt1  # 10.0 s counts, the failed run is a miss
    assert ">= 1000 in 2 of 4" in gowt1  # 1,140 and exactly 1,000 nuclei/s; 933 is not
    assert "wall 8.00 / 10.00 / 11.50 s" in gowt1 and "1 failed" in gowt1
    assert ">= 200 in 1 of 1" in mouse  # 3D target: 220 nuclei/s


def test_graph_table_times_both_inference_copies_with_the_same_probabilities() -> None:
    classify = _load("classify")
    from dynacell.states import available_models

    if "nuclei-2d" not in available_models():
        pytest.skip("nuclei-2d is not shipped in this checkout")
    table = classify.graph_table(["nuclei-2d"], n=40, rounds=2)
    assert list(table["inference"]) == ["eager", "graph"]
    graph = table.iloc[1]
    assert graph["prep_cpu_s"] > 0 and graph["graph_lower_cpu"].endswith("of 2")
    assert 0 <= graph["max_dp"] < 1e-5
    assert (table["crops_per_cpu_s"] > 0).all()
