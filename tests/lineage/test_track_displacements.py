"""Where a nucleus's track is at t±1 (the state classifier's track context): links, divisions, drift."""

from __future__ import annotations

import numpy as np

from dynacell.lineage import Lineage
from dynacell.lineage.centroids import track_displacements


def _lineage() -> Lineage:
    """Frame 0: A (10, 10) and B (30, 10); frame 1: A moved +5 in x, B divided into (27, 16) and (35, 16);
    C appears at (50, 50) in frame 1 with no parent."""
    lin = Lineage(n_frames=2, ndim=2)
    lin.add_node((0, 1), (10.0, 10.0))
    lin.add_node((0, 2), (30.0, 10.0))
    lin.add_node((1, 1), (10.0, 15.0))
    lin.add_node((1, 3), (27.0, 16.0))
    lin.add_node((1, 4), (35.0, 16.0))
    lin.add_node((1, 9), (50.0, 50.0))
    lin.add_edge((0, 1), (1, 1))
    lin.add_edge((0, 2), (1, 3))
    lin.add_edge((0, 2), (1, 4))
    return lin


def test_one_to_one_link_gives_the_linked_position():
    off = track_displacements(_lineage())
    np.testing.assert_allclose(off[(0, 1)][1], [0, 0, 5])
    np.testing.assert_allclose(off[(1, 1)][0], [0, 0, -5])
    assert off[(0, 1)][0] is None  # frame 0 has no earlier frame: no link, no drift


def test_division_moves_the_context_by_the_family_motion_not_onto_a_daughter():
    off = track_displacements(_lineage())
    np.testing.assert_allclose(off[(0, 2)][1], [0, 1, 6])  # daughters' midpoint (31, 16) - mother (30, 10)
    np.testing.assert_allclose(off[(1, 3)][0], [0, -1, -6])  # the same motion backwards for both daughters
    np.testing.assert_allclose(off[(1, 4)][0], [0, -1, -6])


def test_unlinked_nucleus_follows_the_local_drift():
    off = track_displacements(_lineage(), k_neighbours=1)
    np.testing.assert_allclose(off[(1, 9)][0], [0, -1, -6])  # nearest neighbour with an estimate: daughter (35, 16)
    assert off[(1, 9)][1] is None  # no later frame
