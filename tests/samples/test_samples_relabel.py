"""Tests of :mod:`dynacell.samples.relabel` (full segments take the ids of tracking markers)."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.samples import relabel_by_markers, relabel_movie_by_markers


def _frame():
    seg = np.zeros((20, 40), np.uint16)
    mk = np.zeros((20, 40), np.uint16)
    seg[2:8, 2:8] = 1      # one marker (id 7) -> kept as 7
    mk[4:6, 4:6] = 7
    seg[2:8, 12:20] = 2    # two markers (ids 8, 9) -> merged nuclei, dropped
    mk[3:5, 13:15] = 8
    mk[5:7, 17:19] = 9
    seg[12:18, 2:8] = 3    # no marker -> dropped
    seg[12:18, 12:16] = 4  # marker 10 split over segments 4 (small part) and 5 (large part)
    seg[12:18, 16:22] = 5
    mk[14:16, 15:20] = 10
    mk[14:16, 30:32] = 11  # marker without a segment -> lost
    return seg, mk


def test_relabel_rules_and_counts():
    seg, mk = _frame()
    out, counts = relabel_by_markers(seg, mk, source="f")
    assert (out[seg == 1] == 7).all()
    assert (out[seg == 2] == 0).all() and (out[seg == 3] == 0).all()
    assert (out[seg == 5] == 10).all() and (out[seg == 4] == 0).all()
    assert counts == {"kept": 2, "no_marker": 1, "several_markers": 1, "split": 1, "lost_markers": 3}
    assert out.shape == seg.shape and np.issubdtype(out.dtype, np.integer)


def test_relabel_movie_keeps_common_frames():
    seg, mk = _frame()
    segs = Movie(np.stack([seg, seg, seg]), "TYX", source="seg")
    marks = Movie(np.stack([mk, mk]), "TYX", frame_indices=(0, 2), source="tra")
    movie, total = relabel_movie_by_markers(segs, marks)
    assert movie.frame_indices == (0, 2)
    assert total["kept"] == 4 and total["frames"] == [0, 2]
    assert set(np.unique(movie.frame(2)).tolist()) == {0, 7, 10}
    assert "relabelled" in movie.source


def test_relabel_bad_input():
    seg, mk = _frame()
    with pytest.raises(InvalidInputError, match="shape"):
        relabel_by_markers(seg, mk[:, :10], source="frame 3")
    with pytest.raises(InvalidInputError, match="integer"):
        relabel_by_markers(seg.astype(float), mk)
    segs = Movie(np.stack([seg]), "TYX", source="seg")
    marks = Movie(np.stack([mk]), "TYX", frame_indices=(5,), source="tra")
    with pytest.raises(InvalidInputError, match="share no frame"):
        relabel_movie_by_markers(segs, marks)


@pytest.mark.data
def test_relabel_hela_err_seg(ctc):
    from dynacell.io import open_labels

    segs = open_labels(ctc / "Fluo-N2DL-HeLa" / "02_ERR_SEG")
    marks = open_labels(ctc / "Fluo-N2DL-HeLa" / "02_GT" / "TRA")
    movie, total = relabel_movie_by_markers(segs, marks, frames=[1])
    ids = set(np.unique(movie.frame(1)).tolist()) - {0}
    assert ids <= set(np.unique(marks.frame(1)).tolist())
    assert total["kept"] >= 0.9 * len(np.unique(marks.frame(1))[1:])
    # full nuclei are much larger than the markers
    assert (movie.frame(1) > 0).sum() > 5 * (marks.frame(1) > 0).sum()
