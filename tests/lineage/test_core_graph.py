"""Tests of the core Lineage type and Movie type (dynacell.lineage.graph, dynacell.io.movie)."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage


def _division() -> Lineage:
    """A division at frame 1, then one daughter ends at frame 2::

        (0,1) ── (1,1) ─┬─ (2,2) ── (3,2)
                        └─ (2,3)
    """
    lin = Lineage(n_frames=4)
    for i, n in enumerate([(0, 1), (1, 1), (2, 2), (3, 2), (2, 3)]):
        lin.add_node(n, centroid=(i, i + 1.0))
    lin.add_edge((0, 1), (1, 1))
    lin.add_edge((1, 1), (2, 2))
    lin.add_edge((2, 2), (3, 2))
    lin.add_edge((1, 1), (2, 3))
    return lin


def test_divisions_tracks_and_trees():
    lin = _division()
    assert lin.divisions() == [(1, 1)]
    tracks = lin.tracks()
    assert len(tracks) == 3
    mother = lin.graph.nodes[(0, 1)]["track_id"]
    assert lin.graph.nodes[(1, 1)]["track_id"] == mother
    d1, d2 = lin.graph.nodes[(2, 2)]["track_id"], lin.graph.nodes[(2, 3)]["track_id"]
    assert len({mother, d1, d2}) == 3
    assert lin.graph.nodes[(3, 2)]["track_id"] == d1
    row = tracks.set_index("track_id").loc[d1]
    assert (row.start, row.end, row.parent_track_id) == (2, 3, mother)
    assert set(lin.tree_ids().values()) == {1}


def test_to_dataframe_columns_and_centroid():
    lin = _division()
    df = lin.to_dataframe()
    assert list(df.columns[:7]) == ["t", "label", "track_id", "parent_track_id", "z", "y", "x"]
    assert len(df) == 5
    np.testing.assert_allclose(lin.centroid((1, 1)), [0.0, 1.0, 2.0])


def test_bad_nodes_and_edges():
    lin = Lineage()
    with pytest.raises(InvalidInputError, match="label >= 1"):
        lin.add_node((0, 0))
    lin.add_node((1, 5))
    lin.add_node((1, 6))
    with pytest.raises(InvalidInputError, match="forward"):
        lin.add_edge((1, 5), (1, 6))
    with pytest.raises(InvalidInputError, match="not in the lineage"):
        lin.add_edge((1, 5), (2, 9))


def test_movie_validation():
    m = Movie(np.zeros((3, 4, 5), np.uint8), "TYX", voxel_size_um=(0.5, 0.5), frame_indices=(2, 3, 5))
    assert m.index_of(5) == 2
    assert m.frame(3).shape == (4, 5)
    with pytest.raises(InvalidInputError, match="frame 4 is not present"):
        m.frame(4)
    with pytest.raises(InvalidInputError, match="axes"):
        Movie(np.zeros((3, 4, 5)), "TZYX")
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        Movie(np.zeros((3, 4, 5)), "TYX", voxel_size_um=(0.5,))
