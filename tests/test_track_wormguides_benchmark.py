"""benchmarks/track_wormguides.py: lineage links between kept frames, and nuclei drawn as balls."""

from __future__ import annotations

import numpy as np
from _helpers import load_benchmark

from dynacell.lineage.graph import Lineage


def _lineage() -> Lineage:
    """Cell 1 over frames 0-2 divides into 2 and 3 (frames 3-5); cell 4 over frames 0-5 far away."""
    lin = Lineage(n_frames=6, ndim=3)
    for t in range(6):
        lin.add_node((t, 4), (10.0, 40.0, 40.0 + t), diameter_px=6.0)
    for t in range(3):
        lin.add_node((t, 1), (10.0, 10.0, 10.0 + t), diameter_px=6.0)
    for t in range(3, 6):
        lin.add_node((t, 2), (10.0, 10.0, 14.0), diameter_px=4.0)
        lin.add_node((t, 3), (10.0, 18.0, 14.0), diameter_px=4.0)
    for t in range(5):
        lin.add_edge((t, 4), (t + 1, 4))
    lin.add_edge((0, 1), (1, 1))
    lin.add_edge((1, 1), (2, 1))
    lin.add_edge((2, 1), (3, 2))
    lin.add_edge((2, 1), (3, 3))
    for t in range(3, 5):
        lin.add_edge((t, 2), (t + 1, 2))
        lin.add_edge((t, 3), (t + 1, 3))
    return lin


def test_reference_links_follow_the_lineage_across_skipped_frames_and_divisions():
    mod = load_benchmark("track_wormguides")
    links = mod.reference_links(_lineage(), [0, 4])
    assert links == {((0, 4), (4, 4)), ((0, 1), (4, 2)), ((0, 1), (4, 3))}
    assert mod.reference_links(_lineage(), [4, 5]) == {((4, 4), (5, 4)), ((4, 2), (5, 2)), ((4, 3), (5, 3))}


def test_every_nucleus_is_drawn_as_a_ball_with_a_permuted_id():
    mod = load_benchmark("track_wormguides")
    volumes, ids = mod.draw_balls(_lineage(), [0, 4], bin_px=1, seed=0)
    assert volumes.ndim == 4 and volumes.shape[0] == 2 and volumes.dtype == np.int32
    assert sorted(n for (i, _), n in ids.items() if i == 1) == [(4, 2), (4, 3), (4, 4)]
    for (i, lab), node in ids.items():
        n_vox = int((volumes[i] == lab).sum())
        d = 6.0 if node[1] in (1, 4) else 4.0
        assert abs(n_vox - np.pi * d ** 3 / 6) < 0.5 * np.pi * d ** 3 / 6, (node, n_vox)
    again, _ = mod.draw_balls(_lineage(), [0, 4], bin_px=1, seed=0)
    assert np.array_equal(again, volumes)
