"""The linker's first-pass motion from the masks (dynacell.track.maskflow): large motion between frames."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import ellipse

from dynacell.io.movie import Movie
from dynacell.track import link_labels
from dynacell.track.maskflow import ambiguous_share, mask_flow, ridge_image


def _colony(grow: float, seed: int, n_frames: int = 3, jitter: float = 1.0) -> tuple[np.ndarray, list[np.ndarray]]:
    """A 10 x 10 colony of rods (3 x 7 px half-axes, 16 px apart) expanding by ``grow`` a frame; ids permuted."""
    rng = np.random.default_rng(seed)
    cells = np.array([(40 + 16 * i + rng.normal(0, jitter), 40 + 16 * j + rng.normal(0, jitter), rng.uniform(0, np.pi))
                      for i in range(10) for j in range(10)])
    frames = np.zeros((n_frames, 320, 320), np.uint16)
    ids = []
    centre = np.array([112.0, 112.0])
    for t in range(n_frames):
        perm = rng.permutation(len(cells)) + 1
        ids.append(perm)
        for k, (y, x, angle) in enumerate(cells):
            p = centre + 48 + (np.array([y, x]) - centre) * grow ** t
            rr, cc = ellipse(p[0], p[1], 3, 7, shape=frames.shape[1:], rotation=angle)
            frames[t, rr, cc] = perm[k]
    return frames, ids


def test_ridge_image_rises_to_one_inside_each_nucleus_even_when_touching():
    frame = np.zeros((20, 30), np.uint16)
    frame[4:14, 3:13] = 1
    frame[4:14, 13:25] = 2  # touches nucleus 1
    r = ridge_image(frame)
    assert r.dtype == np.float32 and r.shape == frame.shape
    assert (r[frame == 0] == 0).all() and (r[frame > 0] > 0).all()
    for lab in (1, 2):
        assert r[frame == lab].max() == pytest.approx(1.0)
    # the contact column is an outline of both nuclei, not the middle of one merged blob
    assert r[8, 12] < 0.5 and r[8, 13] < 0.5
    assert not ridge_image(np.zeros((5, 5), np.uint8)).any()
    # any ids (a uint32 id in the billions, a frame without background) give the same ridges
    big = np.where(frame == 2, np.uint32(4_000_000_000), frame.astype(np.uint32))
    assert np.array_equal(ridge_image(big), r)
    full = ridge_image(np.where(frame > 0, frame, 3))
    assert full.min() > 0 and full[frame == 1].max() == pytest.approx(1.0)


def _shifted_colony() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A jittered rod colony (not a lattice, whose shifts alias), the same shifted by (6, -8) px — 10 px, over half
    the 16 px spacing —, the rods' centroids ``(100, 2)`` and the shift."""
    from dynacell.io.objects import nucleus_centroids

    frames, _ = _colony(1.0, seed=0, n_frames=1, jitter=2.5)
    prev = frames[0]
    moved = np.zeros_like(prev)
    moved[6:, :-8] = prev[:-6, 8:]
    return prev, moved, nucleus_centroids(prev)[1][:, 1:], np.array([6.0, -8.0])


def test_mask_flow_finds_a_shift_larger_than_the_spacing():
    prev, moved, points, shift = _shifted_colony()
    got = mask_flow(prev, moved, points, diameter_px=9.0)
    assert got.shape == (100, 2)
    err = np.linalg.norm(got - shift, axis=1)
    assert np.median(err) < 1.5, np.median(err)
    # ambiguous before the move is known, clear once it is
    before = ambiguous_share(points, points + shift, np.zeros(2))
    after = ambiguous_share(points, points + shift, shift)
    assert before > 0.5 and after == 0.0


def test_mask_flow_refuses_other_shapes_and_is_zero_on_empty_frames():
    with pytest.raises(ValueError, match="2D label frames"):
        mask_flow(np.zeros((4, 5)), np.zeros((4, 6)), np.zeros((1, 2)), diameter_px=3)
    with pytest.raises(ValueError, match="2D label frames"):
        mask_flow(np.zeros((2, 4, 5)), np.zeros((2, 4, 5)), np.zeros((1, 3)), diameter_px=3)
    frame = np.zeros((30, 30), np.uint16)
    frame[5:10, 5:10] = 1
    assert not mask_flow(frame, np.zeros_like(frame), np.array([[7.0, 7.0]]), diameter_px=5).any()


@pytest.mark.parametrize("seed", [0, 1])
def test_expanding_colony_links_right_only_with_the_mask_flow(seed):
    """Rods 16 px apart moving up to 0.9 spacing a frame, outward (no global drift): the neighbours' flow of the
    first pass's links settles on wrong links (a control, so the case is hard); the mask flow links every rod."""
    frames, ids = _colony(1.2, seed)
    truth = {((t, int(ids[t][k])), (t + 1, int(ids[t + 1][k]))) for t in range(2) for k in range(100)}
    found = {}
    for on in (False, True):
        lin, _ = link_labels(Movie(frames, "TYX"), progress=False, mask_flow=on)
        found[on] = len(truth & set(lin.graph.edges)) / len(truth)
        assert lin.graph.graph["linking"]["mask_flow"]["on"] is on
    assert found[False] < 0.6
    assert found[True] == 1.0


def test_small_motion_needs_no_mask_flow():
    """Nuclei that sit on their successor are not ambiguous: no flow is computed (the cost is only paid where
    needed) and the links are those of the drift alone."""
    frames, ids = _colony(1.01, seed=3)
    lin, _ = link_labels(Movie(frames, "TYX"), progress=False)
    assert lin.graph.graph["linking"]["mask_flow"] == {"on": True, "frame_pairs": 0}
    truth = {((t, int(ids[t][k])), (t + 1, int(ids[t + 1][k]))) for t in range(2) for k in range(100)}
    assert truth == set(lin.graph.edges)


def test_frames_whose_nuclei_jump_by_their_spacing_are_flagged_uncertain_and_noted():
    """A lattice whose nuclei each jump by half the spacing in a random direction (no common motion): no flow can
    tell which nucleus went where, so the pair is reported; the slow frames before are not."""
    from dynacell.track.select import linking_notes, uncertain_frame_captions

    rng = np.random.default_rng(0)
    frames = np.zeros((3, 200, 200), np.uint16)
    k = 0
    for i in range(9):
        for j in range(9):
            k += 1
            y, x = 20 + 20 * i, 20 + 20 * j
            angle = rng.uniform(0, 2 * np.pi)
            dy, dx = int(round(10 * np.sin(angle))), int(round(10 * np.cos(angle)))
            frames[0, y - 3:y + 3, x - 3:x + 3] = k
            frames[1, y - 3 + 1:y + 3 + 1, x - 3:x + 3] = k  # 1 px: certain
            frames[2, y - 3 + dy:y + 3 + dy, x - 3 + dx:x + 3 + dx] = k  # half the spacing, any direction
    lin, _ = link_labels(Movie(frames, "TYX"), progress=False)
    pairs = lin.graph.graph["linking"]["uncertain_frame_pairs"]
    assert [p[:2] for p in pairs] == [[1, 2]] and pairs[0][2] >= 0.5
    notes = linking_notes({"linker": lin.graph.graph["linking"]})
    assert len(notes) == 1 and "1→2" in notes[0] and "uncertain" in notes[0]
    assert linking_notes(None) == [] and linking_notes({"linker": {"uncertain_frame_pairs": []}}) == []
    assert uncertain_frame_captions({"linker": lin.graph.graph["linking"]}) == {2: "links from frame 1 uncertain"}
    assert uncertain_frame_captions(None) == {}


def test_a_large_frame_of_small_nuclei_is_sub_sampled_to_a_bounded_grid(monkeypatch):
    """The cost is bounded by MAX_FLOW_PX: with a tiny bound the same shift is still found, on a coarser grid."""
    import dynacell.track.maskflow as mf

    prev, moved, points, shift = _shifted_colony()
    seen = []
    real = mf.ridge_image
    monkeypatch.setattr(mf, "ridge_image", lambda f: seen.append(f.shape) or real(f))
    monkeypatch.setattr(mf, "MAX_FLOW_PX", 40 * 40)
    got = mf.mask_flow(prev, moved, points, diameter_px=9.0)
    assert max(seen[0]) <= 41 and np.prod(seen[0]) <= 40 * 40 * 1.1
    assert np.median(np.linalg.norm(got - shift, axis=1)) < 4.0
