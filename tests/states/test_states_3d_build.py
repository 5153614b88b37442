"""Tests of the nuclei-3d training-set builder (benchmarks/build_state_sets_3d.py): domain randomisation,
sublineages, and the short-cycle event rule shared with the demo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "build_state_sets_3d.py"


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("build_state_sets_3d", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_random_imaging_spans_the_documented_ranges(build):
    from dynacell.simulate import ImagingParams

    draws = [build.random_imaging(np.random.default_rng(s)) for s in range(40)]
    assert all(isinstance(d, ImagingParams) for d in draws)
    photons = np.array([d.photons for d in draws])
    vz = np.array([d.voxel_size_um[0] for d in draws])
    vxy = np.array([d.voxel_size_um[1] for d in draws])
    assert photons.min() >= 5.0 and photons.max() <= 150.0 and photons.max() / photons.min() > 5
    # bleaching is drawn as a loss at the last frame (the renderer uses lineage frame numbers)
    late = [build.random_imaging(np.random.default_rng(s), last_frame=359) for s in range(20)]
    assert all(np.exp(-d.bleach_rate_per_frame * 359) >= 0.5 - 1e-9 for d in late)
    assert max(d.bleach_rate_per_frame for d in late) > 0
    assert np.all((vz >= 1.0) & (vz <= 2.5)) and np.all((vxy >= 0.35) & (vxy <= 0.9))
    assert np.all(np.array([d.voxel_size_um[1] == d.voxel_size_um[2] for d in draws]))
    # both bases are drawn: the mouse light-sheet preset keeps its camera frame interval
    intervals = {d.frame_interval_s for d in draws}
    assert intervals == {ImagingParams().frame_interval_s, ImagingParams.mouse_lightsheet().frame_interval_s}
    # the same generator state gives the same draw (reproducible sets)
    assert build.random_imaging(np.random.default_rng(3)) == draws[3]


def test_random_appearance_is_valid_and_varies(build):
    a = [build.random_appearance(np.random.default_rng(s)) for s in range(10)]
    tex = np.array([x.texture_amplitude for x in a])
    assert np.all((tex >= 0) & (tex <= 0.5)) and tex.std() > 0.05


@pytest.mark.parametrize(("name", "sub"), [("ABplpaa", "ABpl"), ("MSaap", "MS"), ("Z2", "P4"), ("EMS", "P0"),
                                           ("Caa", "C"), ("ABa", "AB")])
def test_sublineage(build, name, sub):
    assert build.sublineage(name) == sub


def test_embryo_rules_match_the_demo_and_score_most_simulated_nuclei(build):
    from dynacell.lineage import EventRules, label_events
    from dynacell.demo import DEMO_RULES
    from dynacell.simulate import simulate_embryo

    assert build.EMBRYO_RULES == DEMO_RULES
    sim = simulate_embryo(ndim=3, n_start=4, n_frames=16, min_divisions=2, seed=150, progress=False)
    seed_states = label_events(sim.lineage, EventRules.seed())
    short = label_events(sim.lineage, EventRules(**DEMO_RULES))
    unknown_seed = sum(v == "unknown" for v in seed_states.values())
    unknown_short = sum(v == "unknown" for v in short.values())
    assert unknown_short < unknown_seed
    assert sum(v == "stable" for v in short.values()) > sum(v == "stable" for v in seed_states.values())
    # the event nodes themselves do not depend on the stability window
    for ev in ("mitotic", "new_daughter", "death"):
        assert {n for n, v in short.items() if v == ev} == {n for n, v in seed_states.items() if v == ev}
