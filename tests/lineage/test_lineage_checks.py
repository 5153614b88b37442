"""check_against_labels: lineage nodes vs label ids, frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage import Lineage, check_against_labels


def small_case():
    """Lineage (0,1) ─ (1,1); (0,2) ╳; labels: frame 0 holds ids 1, 2; frame 1 holds ids 1, 5.

    Frame 2 of the lineage, node (2,1), has no label image.
    """
    lin = Lineage(n_frames=3, source="tiny-lineage")
    for n in [(0, 1), (0, 2), (1, 1), (2, 1)]:
        lin.add_node(n)
    lin.add_edge((0, 1), (1, 1)); lin.add_edge((1, 1), (2, 1))
    labels = np.zeros((2, 8, 8), np.uint16)
    labels[0, :2, :2] = 1
    labels[0, 5:, 5:] = 2
    labels[1, :2, :2] = 1
    labels[1, 4:6, 0:2] = 5
    return lin, Movie(labels, "TYX", source="tiny-labels")


def test_matching_labels_are_ok():
    lin, movie = small_case()
    lin.graph.add_node((1, 5))
    report = check_against_labels(lin, movie)
    assert report.ok
    assert report.frames_checked == 2
    assert report.frames_without_labels == [2]


def test_ids_missing_on_either_side_are_reported_per_frame():
    lin, movie = small_case()
    lin.graph.add_node((1, 3))  # node absent from frame 1's labels
    report = check_against_labels(lin, movie)
    assert not report.ok
    assert report.nodes_missing_from_labels == {1: [3]}
    assert report.labels_missing_from_lineage == {1: [5]}
    msg = report.message()
    assert "tiny-lineage vs tiny-labels" in msg
    assert "frame 1: ids [3]" in msg and "frame 1: ids [5]" in msg
    with pytest.raises(InvalidInputError, match="label ids absent from the lineage"):
        check_against_labels(lin, movie, strict=True)


def test_non_integer_or_negative_labels_rejected():
    lin, movie = small_case()
    with pytest.raises(InvalidInputError, match="integer label movie"):
        check_against_labels(lin, Movie(movie.data.astype(np.float32), "TYX", source="floats"))
    neg = movie.data.astype(np.int32)
    neg[1, 0, 7] = -3
    with pytest.raises(InvalidInputError, match="frame 1: negative label id -3"):
        check_against_labels(lin, Movie(neg, "TYX", source="neg"))
