"""Tests of dynacell.simulate.rods: rod colonies imaged by phase contrast."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from dynacell.errors import InvalidInputError
from dynacell.simulate import PhaseContrastParams, RodColonyParams, simulate_rod_colony
from dynacell.simulate.rods import (
    ROD_RANGES,
    _closest_points,
    _rasterise_rods,
    draw_rods,
    grow_rod_colony,
    render_phase_contrast,
)


@pytest.fixture(scope="module")
def colony():
    """A small colony: 4 cells, 14 frames, cycle 6 frames (about two rounds of division)."""
    return simulate_rod_colony(RodColonyParams(cycle_frames=6.0, pinch=0.6),
                               PhaseContrastParams(pixel_um=0.1, halo_strength=1.0),
                               n_start=4, n_frames=14, min_divisions=4, seed=0)


def test_cells_are_dark_on_a_brighter_background_with_a_halo(colony):
    for t in (0, 13):
        img = colony.images[t].astype(float) - colony.params["imaging"]["offset_adu"]  # photons
        cell = colony.labels[t] > 0
        w_px = 1.0 / 0.1
        ring = ndimage.binary_dilation(cell, iterations=int(0.3 * w_px)) & ~cell
        far = ~ndimage.binary_dilation(cell, iterations=int(4 * w_px))
        assert cell.any() and far.any()
        assert img[cell].mean() < 0.7 * img[far].mean(), f"frame {t}: cells not darker than the background"
        assert img[ring].mean() > 1.1 * img[far].mean(), f"frame {t}: no bright halo around the cells"


def test_divisions_give_two_labelled_daughters_longer_mothers(colony):
    lin = colony.lineage
    divisions = lin.divisions()
    assert len(divisions) >= 4 and colony.params["colony"]["n_divisions"] == len(divisions)
    for t in range(colony.labels.shape[0]):
        assert set(np.unique(colony.labels[t]).tolist()) - {0} == lin.labels_at(t), f"frame {t}"
    areas = []
    for mother in divisions:
        kids = lin.children(mother)
        assert len(kids) == 2
        for kid in kids:
            assert kid[0] == mother[0] + 1 and kid[1] != mother[1]  # a new label at the next frame (CTC)
            assert (colony.labels[kid[0]] == kid[1]).any()
            assert lin.graph.nodes[kid]["state"] == "new_daughter"
        assert lin.graph.nodes[mother]["state"] == "mitotic"
        m_area = int((colony.labels[mother[0]] == mother[1]).sum())
        k_area = [int((colony.labels[k[0]] == k[1]).sum()) for k in kids]
        areas.append((m_area, *k_area))
        # the two daughters cover the mother's footprint: each overlaps it
        for k in kids:
            overlap = (colony.labels[mother[0]] == mother[1]) & (colony.labels[k[0]] == k[1])
            assert overlap.sum() > 0.25 * k_area[kids.index(k)]
    a = np.array(areas, dtype=float)
    # a mother at its last frame is about twice as long as each daughter (the sum, minus the septum)
    assert np.median(a[:, 0] / a[:, 1:].max(axis=1)) > 1.4


def test_cells_elongate_over_the_cycle_and_pinch_before_dividing():
    cells, _ = grow_rod_colony(RodColonyParams(cycle_frames=8.0, cycle_cv=0.0, pinch=0.7), n_start=3,
                               n_frames=20, seed=1)
    divided = [c for c in cells if c["fate"] == "divides" and c["t0"] > 0]
    assert divided
    for c in divided:
        assert np.all(np.diff(c["length_um"]) > 0)
        assert c["pinch"][0] == 0.0 and c["pinch"][-1] == pytest.approx(0.7)


def test_pinched_capsule_is_narrow_at_the_septum():
    item = (1, np.array([40.0, 40.0]), 0.0, 4.0, 0.8, 1.0)  # axis along y, 4 µm long, 1 µm wide
    lab, _ = _rasterise_rods([item], (80, 80), 0.1, 1.0)
    plain, _ = _rasterise_rods([(1, *item[1:4], 0.0, 1.0)], (80, 80), 0.1, 1.0)
    width = (lab > 0).sum(axis=1)
    assert width[40] < 0.5 * width[30] and (plain > 0).sum(axis=1)[40] == width[30]
    assert (lab > 0)[:, 40].sum() > 35  # still one long cell along its axis


def test_closest_points_of_segments():
    a0, a1 = np.array([[0.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 2.0], [0.0, 2.0]])
    b0, b1 = np.array([[1.0, 1.0], [1.0, 3.0]]), np.array([[3.0, 1.0], [2.0, 4.0]])
    p, q = _closest_points(a0, a1, b0, b1)
    np.testing.assert_allclose(p, [[0.0, 1.0], [0.0, 2.0]], atol=1e-9)
    np.testing.assert_allclose(q, [[1.0, 1.0], [1.0, 3.0]], atol=1e-9)


def test_same_seed_same_movie_and_bad_parameters():
    kw = {"n_start": 2, "n_frames": 4, "seed": 3}
    a, b = simulate_rod_colony(**kw), simulate_rod_colony(**kw)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    with pytest.raises(InvalidInputError):
        RodColonyParams(birth_aspect=0.5)
    with pytest.raises(InvalidInputError):
        PhaseContrastParams(dark_contrast=1.2)


def test_walls_outline_touching_cells_and_zero_keeps_the_earlier_renders():
    # two capsules 16 px wide side by side, overlapping by a pixel along their length
    items = [(1, np.array([40.0, 30.0]), 0.0, 5.0, 0.0, 1.0), (2, np.array([40.0, 45.0]), 0.0, 5.0, 0.0, 1.0)]
    lab, dark = _rasterise_rods(items, (80, 80), 0.1, 1.6)
    assert {1, 2} <= set(np.unique(lab).tolist())
    contact = (lab == 1) & (ndimage.binary_dilation(lab == 2, iterations=2))
    centre1 = (lab == 1) & ~ndimage.binary_dilation(lab != 1, iterations=4)
    assert contact.any() and centre1.any()
    no_noise = {"background_photons": 5000.0, "read_noise_adu": 0.0, "shading": 0.0, "background_texture": 0.0,
                "psf_sigma_widths": 0.05}
    rng = np.random.default_rng(0)
    plain = render_phase_contrast(lab, dark, PhaseContrastParams(**no_noise), 1.6, rng).astype(float)
    walled = render_phase_contrast(lab, dark, PhaseContrastParams(**no_noise, wall_widths=0.15), 1.6, rng).astype(float)
    # without walls the contact line is as dark as the cells' middles; with walls it is brighter
    assert plain[contact].mean() < 1.1 * plain[centre1].mean()
    assert walled[contact].mean() > 1.3 * walled[centre1].mean()
    # a lone cell (no neighbour) has no wall: the same interior with and without
    lone = np.where(lab == 1, 1, 0).astype(np.int32)
    a = render_phase_contrast(lone, dark, PhaseContrastParams(**no_noise), 1.6, np.random.default_rng(1))
    b = render_phase_contrast(lone, dark, PhaseContrastParams(**no_noise, wall_widths=0.15), 1.6,
                              np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidInputError, match="wall_widths"):
        PhaseContrastParams(wall_widths=0.6)


def test_draw_rods_stays_in_its_ranges_and_is_seeded():
    a = draw_rods(np.random.default_rng(5), n_frames=24)
    b = draw_rods(np.random.default_rng(5), n_frames=24)
    assert a == b and 6 <= a["n_start"] <= 24
    for key, value in {**a["colony"], **a["imaging"]}.items():
        lo, hi = ROD_RANGES[key]
        assert lo <= value <= hi, key
    assert set(a["colony"]) | set(a["imaging"]) == set(ROD_RANGES)
