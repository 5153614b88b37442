"""benchmarks/track_missing.py: the reference links of a movie with frames removed bridge every hole."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.io.movie import Movie, select_frames
from dynacell.track import link_labels

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    sys.path.insert(0, str(BENCH))  # the script imports its sibling benchmarks/track.py
    try:
        spec = importlib.util.spec_from_file_location("_bench_track_missing", BENCH / "track_missing.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def test_reference_links_bridge_removed_frames_and_divisions():
    mod = _load()
    tracks = pd.DataFrame({"label": [1, 2, 3], "begin": [0, 3, 3], "end": [2, 5, 4], "parent": [0, 1, 1]})
    links = mod.reference_links(tracks, [0, 1, 3, 4, 5])  # frame 2 (the mother's last) removed
    assert links == {((0, 1), (1, 1)), ((1, 1), (3, 2)), ((1, 1), (3, 3)), ((3, 2), (4, 2)), ((4, 2), (5, 2)),
                     ((3, 3), (4, 3))}
    got = mod.score(links, {((0, 1), (1, 1)), ((1, 1), (3, 2)), ((3, 2), (4, 2))})
    assert got["consecutive"] == (4, 2, 0.5, 1.0) and got["across a hole"] == (2, 1, 0.5, 1.0)
    assert math.isnan(mod.score(set(), set())["consecutive"][2])


def test_a_slow_nucleus_is_linked_across_a_removed_frame():
    """The benchmark's setting end to end on a tiny movie: the linker bridges the hole select_frames leaves."""
    mod = _load()
    labels = np.zeros((5, 40, 40), np.uint16)
    for t in range(5):
        labels[t, 10 + t:18 + t, 10:18] = 4
        labels[t, 25:33, 25 + t:33 + t] = 9
    kept = [0, 1, 3, 4]
    lineage, _ = link_labels(select_frames(Movie(labels, "TYX"), kept), progress=False)
    tracks = pd.DataFrame({"label": [4, 9], "begin": [0, 0], "end": [4, 4], "parent": [0, 0]})
    got = mod.score(mod.reference_links(tracks, kept), set(lineage.graph.edges))
    assert got["across a hole"] == (2, 2, 1.0, 1.0) and got["consecutive"] == (4, 4, 1.0, 1.0)
