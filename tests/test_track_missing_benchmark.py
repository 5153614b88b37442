"""benchmarks/track_missing.py: the reference links of a movie with frames removed bridge every hole."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from _helpers import load_benchmark

from dynacell.io.movie import Movie, select_frames
from dynacell.track import link_labels


def _load():
    return load_benchmark("track_missing")


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
