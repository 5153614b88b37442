"""Tests of the motion prior of dynacell.track.link_labels (predictive linking)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.track import link_labels


def crossing_pairs(n_frames: int = 9, speed_px: float = 14.0, radius: int = 4, seed: int = 0
                   ) -> tuple[Movie, dict[tuple[int, int], int]]:
    """Three fast nuclei, each passing close by a still one, ids permuted every frame.

    A fast nucleus moves ``speed_px`` per frame along x; its still neighbour sits 5 px off its
    line, between its positions at frames 4 and 5, so that the nearest-neighbour assignment
    swaps them there (squared distances 50 + 106 < 196 + 0) and the neighbours' flow (the
    still nuclei) does not tell where the fast one goes::

        t=4   A→  B          t=5    B    A→        (B still; A jumps 14 px past it)

    Returns the label movie and the true identity ``{(t, label): nucleus}``.
    """
    rng = np.random.default_rng(seed)
    shape = (100, int(speed_px * n_frames) + 30)
    data = np.zeros((n_frames, *shape), dtype=np.uint16)
    truth = {}
    for t in range(n_frames):
        ids = rng.permutation(6) + 1
        for k in range(6):
            pair, still = divmod(k, 2)
            y0 = 15 + 32 * pair
            x_fast = 10 + speed_px * t
            centre = (y0 + 5, 10 + speed_px * 4 + 5) if still else (y0, x_fast)
            rr, cc = disk(centre, radius, shape=shape)
            data[t, rr, cc] = ids[k]
            truth[(t, int(ids[k]))] = k
    return Movie(data, "TYX"), truth


def wrong_links(lineage, truth) -> int:
    return sum(truth[a] != truth[b] for a, b in lineage.graph.edges)


@pytest.mark.parametrize("prior", ["velocity", "kalman"])
def test_track_prior_keeps_fast_crossing_nuclei_apart(prior):
    lab, truth = crossing_pairs()
    flow, _ = link_labels(lab, max_distance_px=20.0, progress=False)
    assert wrong_links(flow, truth) > 0  # the neighbours' flow cannot tell the two apart: they swap
    lin, _ = link_labels(lab, max_distance_px=20.0, motion_prior=prior, progress=False)
    assert wrong_links(lin, truth) == 0
    assert lin.graph.number_of_edges() == 6 * (lab.n_frames - 1)
    assert not lin.divisions()
    assert lin.graph.graph["linking"]["motion_prior"] == prior


@pytest.mark.slow
def test_position_model_prior_is_loaded_and_applied():
    lab, truth = crossing_pairs()
    lin, _ = link_labels(lab, max_distance_px=20.0, motion_prior="positions-2d", progress=False)
    assert lin.graph.graph["linking"]["motion_prior"] == "positions-2d"
    assert wrong_links(lin, truth) == 0


def test_unknown_or_mismatched_prior_raises():
    lab, _ = crossing_pairs(n_frames=3)
    with pytest.raises(InvalidInputError, match="unknown motion prior"):
        link_labels(lab, motion_prior="teleport", progress=False)
    with pytest.raises(InvalidInputError, match="3D positions"):
        link_labels(lab, motion_prior="positions-3d", progress=False)


def rod_division(n_frames: int = 12) -> Movie:
    """A rod ``M`` that divides at the last frame beside a neighbour ``N`` that goes on unchanged.

    ``M`` (40 × 10 px, label 1) divides into ``D1`` (label 3, under the left half of ``M``) and
    ``D2`` (label 4), which slid out past ``M``'s right end; ``N`` (20 × 10 px, label 2, then 5)
    lies just below ``D2``, whose centroid is nearer to ``N`` (13.6 px) than to ``M`` (30 px),
    and no mask overlaps ``D2`` at the previous frame::

        t < T-1:  MMMMMMMM                 t = T-1:  DDDD      DDDD(D2)
                            NNNN                                 NNNN
    """
    data = np.zeros((n_frames, 64, 112), dtype=np.uint16)
    for t in range(n_frames - 1):
        data[t, 15:25, 20:60] = 1
        data[t, 28:38, 64:84] = 2
    data[-1, 15:25, 20:40] = 3
    data[-1, 15:25, 60:80] = 4
    data[-1, 28:38, 64:84] = 5
    return Movie(data, "TYX")


def test_division_size_penalty_gives_the_daughter_to_its_mother():
    lab = rod_division()
    last = lab.n_frames - 1
    plain, _ = link_labels(lab, max_distance_px=40.0, division_sizes=False, progress=False)
    assert sorted(plain.graph.successors((last - 1, 2))) == [(last, 4), (last, 5)]  # the neighbour "divides"
    lin, _ = link_labels(lab, max_distance_px=40.0, progress=False)
    assert sorted(lin.graph.successors((last - 1, 1))) == [(last, 3), (last, 4)]
    assert sorted(lin.graph.successors((last - 1, 2))) == [(last, 5)]
    assert lin.graph.graph["linking"]["division_sizes"] is True


def test_a_condensed_mitotic_mother_keeps_her_daughters():
    """Mitotic chromatin condenses: the mother's last mask is far smaller than her daughters together.

    The size penalty compares the daughters with the largest mask of the mother's last frames, so the
    division is linked (with the mother's last mask as reference it was refused: the rendered embryo of
    ``dynacell demo`` lost 30 of 40 divisions).
    """
    n = 10
    yy, xx = np.mgrid[:96, :96]
    data = np.zeros((n, 96, 96), dtype=np.uint16)
    for t in range(n):
        for lab, (cy, cx) in enumerate([(15, 15), (15, 80), (80, 15), (80, 80)], start=2):
            data[t][(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = lab  # still neighbours: growth ~1 per frame
        if t < n - 2:
            data[t][(yy - 48) ** 2 + (xx - 48) ** 2 <= 64] = 1  # interphase mother
        elif t == n - 2:
            data[t][(yy - 48) ** 2 + (xx - 48) ** 2 <= 16] = 1  # condensed
        else:
            data[t][(yy - 48) ** 2 + (xx - 40) ** 2 <= 49] = 6
            data[t][(yy - 48) ** 2 + (xx - 56) ** 2 <= 49] = 7
    lin, _ = link_labels(Movie(data, "TYX"), max_distance_px=20.0, progress=False)
    assert sorted(lin.graph.successors((n - 2, 1))) == [(n - 1, 6), (n - 1, 7)]
