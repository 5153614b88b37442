"""Tests of dynacell.simulate.render_lineage on small hand-built lineages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from dynacell.errors import InvalidInputError
from dynacell.lineage import EventRules, Lineage
from dynacell.simulate import AppearanceParams, ImagingParams, render_lineage

VOXEL = (2.0, 0.5, 0.5)
T_DIV = 7  # last frame of the mother
T_DEATH = 8  # last frame of the dying nucleus
N_FRAMES = 14


def division_death_lineage() -> Lineage:
    """A 3D lineage (pixels of a (2.0, 0.5, 0.5) µm grid) with one division and one death.

    ASCII picture (time runs to the right, frames 0..13)::

        (0,1) ── ... ── (7,1) ─┬─ (8,2) ── ... ── (13,2)      division: mother 1 at t=7
                               └─ (8,3) ── ... ── (13,3)
        (0,4) ── ... ── (8,4)                               death: track 4 ends at t=8
        (0,5) ── ... ── (13,5)                              stable reference
    """
    lin = Lineage(n_frames=N_FRAMES, ndim=3, source="test")
    mother = np.array([8.0, 30.0, 30.0])
    for t in range(T_DIV + 1):
        lin.add_node((t, 1), mother)
        if t:
            lin.add_edge((t - 1, 1), (t, 1))
    for label, side in ((2, -1.0), (3, 1.0)):
        for t in range(T_DIV + 1, N_FRAMES):
            lin.add_node((t, label), mother + side * np.array([0.0, 0.0, 9.0 + (t - T_DIV)]))
            lin.add_edge((t - 1, label if t > T_DIV + 1 else 1), (t, label))
    for t in range(T_DEATH + 1):
        lin.add_node((t, 4), (8.0, 30.0, 90.0))
        if t:
            lin.add_edge((t - 1, 4), (t, 4))
    for t in range(N_FRAMES):
        lin.add_node((t, 5), (8.0, 80.0, 60.0))
        if t:
            lin.add_edge((t - 1, 5), (t, 5))
    return lin


@pytest.fixture(scope="module")
def rendered():
    lin = division_death_lineage()
    imaging = ImagingParams(voxel_size_um=VOXEL, photons=100.0, background_photons=5.0)
    return lin, render_lineage(lin, imaging=imaging, shape=(16, 110, 120), seed=3, progress=False)


def test_shapes_dtypes_params(rendered):
    lin, res = rendered
    assert res.images.shape == (N_FRAMES, 16, 110, 120)
    assert res.images.dtype == np.uint16
    assert res.labels.dtype == np.int32
    assert res.params["seed"] == 3
    assert res.params["imaging"]["voxel_size_um"] == VOXEL
    assert res.params["render_voxel_size_um"] == list(VOXEL)
    assert res.params["rules"]["class"] == "EventRules"


def test_labels_match_lineage_every_frame(rendered):
    lin, res = rendered
    assert len(res.lineage) == len(lin)
    for t in range(N_FRAMES):
        present = set(np.unique(res.labels[t]).tolist()) - {0}
        assert present == res.lineage.labels_at(t), f"frame {t}"
    # centroids of the output lineage sit inside their own label
    for (t, label), d in res.lineage.graph.nodes(data=True):
        if (label == 1 and t == T_DIV) or (label == 4 and t >= T_DEATH - 1):
            continue  # anaphase masses / apoptotic fragments leave the centre empty
        idx = tuple(int(round(d[k])) for k in ("z", "y", "x"))
        assert res.labels[t][idx] == label


def test_ground_truth_states(rendered):
    _, res = rendered
    states = {n: d["state"] for n, d in res.lineage.graph.nodes(data=True)}
    assert states[(T_DIV, 1)] == "mitotic"
    assert states[(T_DIV + 1, 2)] == states[(T_DIV + 1, 3)] == "new_daughter"
    assert states[(T_DEATH, 4)] == "death"
    assert set(res.lineage.children((T_DIV, 1))) == {(T_DIV + 1, 2), (T_DIV + 1, 3)}


def _mean_in(res, t, label):
    m = res.labels[t] == label
    return float(res.images[t][m].mean()), int(m.sum())


def test_division_appearance_timing(rendered):
    _, res = rendered
    mean_early, vol_early = _mean_in(res, T_DIV - 5, 1)
    mean_plate, vol_plate = _mean_in(res, T_DIV - 1, 1)
    # condensation: brighter and smaller in the frames before the division
    assert mean_plate > 1.3 * mean_early
    assert vol_plate < 0.6 * vol_early
    # anaphase: two separate masses in the mother's label at its last frame
    _, n_masses = ndimage.label(res.labels[T_DIV] == 1)
    assert n_masses == 2
    _, n_early = ndimage.label(res.labels[T_DIV - 5] == 1)
    assert n_early == 1
    # small bright daughters just after the split, relaxing later
    mean_d, vol_d = _mean_in(res, T_DIV + 1, 2)
    mean_late, vol_late = _mean_in(res, N_FRAMES - 1, 2)
    assert vol_d < vol_early and vol_d < vol_late
    assert mean_d > mean_late


@pytest.mark.parametrize("lead", [1, 2])
def test_mitosis_lead_frames_shift_the_last_mother_frame_to_an_earlier_phase(lead):
    """With a long frame interval the mother's last frame is a plate (lead 1) or condensed chromatin (2)."""
    lin = division_death_lineage()
    imaging = ImagingParams(voxel_size_um=VOXEL, photons=100.0, background_photons=5.0)
    res = render_lineage(lin, imaging=imaging, appearance=AppearanceParams(mitosis_lead_frames=lead),
                         shape=(16, 110, 120), seed=3, progress=False)
    _, n_masses = ndimage.label(res.labels[T_DIV] == 1)
    assert n_masses == 1                                     # no anaphase in the mother's label
    mean_last, vol_last = _mean_in(res, T_DIV, 1)
    mean_early, vol_early = _mean_in(res, T_DIV - 6, 1)
    assert mean_last > 1.15 * mean_early and vol_last < 0.9 * vol_early   # condensed / plate, not interphase


def test_death_appearance_timing(rendered):
    _, res = rendered
    mean_early, vol_early = _mean_in(res, T_DEATH - 5, 4)
    mean_last, vol_last = _mean_in(res, T_DEATH, 4)
    assert vol_last < 0.5 * vol_early  # shrinkage
    assert mean_last > mean_early  # brightening
    _, n_frag = ndimage.label(res.labels[T_DEATH] == 4)
    assert n_frag >= 3  # fragmentation into apoptotic bodies
    assert not (res.labels[T_DEATH + 1] == 4).any()  # then disappearance


def test_stable_nucleus_stays_similar(rendered):
    _, res = rendered
    vols = [_mean_in(res, t, 5)[1] for t in range(N_FRAMES)]
    assert max(vols) < 1.3 * min(vols)


def test_determinism_with_seed():
    lin = division_death_lineage()
    kw = dict(shape=(16, 110, 120), progress=False, frames=slice(5, 9))
    a = render_lineage(lin, seed=1, **kw)
    b = render_lineage(lin, seed=1, **kw)
    c = render_lineage(lin, seed=2, **kw)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)
    # a frame subset renders the same pixels as the full movie
    full = render_lineage(lin, seed=1, shape=(16, 110, 120), progress=False)
    np.testing.assert_array_equal(full.images[5:9], a.images)
    assert a.params["frame_indices"] == [5, 6, 7, 8]
    assert [d["source_t"] for _, d in sorted(a.lineage.graph.nodes(data=True))][0] == 5


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_physical_units_on_labels(scale):
    """A nucleus of 10 µm diameter spans 10 / voxel pixels along every axis."""
    lin = Lineage(n_frames=1, ndim=3)
    lin.add_node((0, 1), (10.0, 40.0, 40.0))
    ap = AppearanceParams(shape_jitter=0.0, birth_volume_fraction=1.0)
    imaging = ImagingParams(voxel_size_um=VOXEL)
    res = render_lineage(lin, imaging=imaging, appearance=ap, radius_um=5.0, scale=scale, progress=False)
    vs = np.asarray(VOXEL) / scale
    m = res.labels[0] == 1
    extent = [np.ptp(ix) + 1 for ix in np.nonzero(m)]
    np.testing.assert_allclose(extent, 10.0 / vs, atol=1.01)
    # the same from a measured diameter (``diameter_px`` in lineage pixels, no growth applied)
    lin2 = Lineage(n_frames=1, ndim=3)
    lin2.add_node((0, 1), (10.0, 40.0, 40.0), diameter_px=20.0)
    res2 = render_lineage(lin2, imaging=imaging, appearance=ap, scale=scale, progress=False)
    extent2 = [np.ptp(ix) + 1 for ix in np.nonzero(res2.labels[0] == 1)]
    np.testing.assert_allclose(extent2, 10.0 / vs, atol=1.01)
    assert res2.lineage.graph.nodes[(0, 1)]["diameter_px"] == pytest.approx(10.0 / vs[2])


def test_render_2d_drift_and_bleaching():
    lin = Lineage(n_frames=6, ndim=2)
    for t in range(6):
        lin.add_node((t, 1), (40.0, 40.0))
        if t:
            lin.add_edge((t - 1, 1), (t, 1))
    imaging = ImagingParams(voxel_size_um=(0.5, 0.5), bleach_rate_per_frame=0.2, drift_um_per_frame=(0.0, 2.0))
    res = render_lineage(lin, imaging=imaging, shape=(80, 100), progress=False, rules=EventRules.seed())
    assert res.images.shape == (6, 80, 100) and res.axes == "TYX"
    xs = [ndimage.center_of_mass(res.labels[t] == 1)[1] for t in range(6)]
    np.testing.assert_allclose(np.diff(xs), 2.0 / 0.5, atol=0.5)  # 2 µm/frame = 4 px/frame
    off = imaging.offset_adu + imaging.background_photons
    sig = [res.images[t][res.labels[t] == 1].mean() - off for t in range(6)]
    assert sig[-1] < 0.6 * sig[0]  # exp(-0.2 * 5) = 0.37
    nodes = sorted(res.lineage.graph.nodes(data=True))
    assert abs(nodes[-1][1]["x"] - nodes[0][1]["x"] - 5 * 4.0) < 1e-6


def test_crop_and_frame_subset_keep_lineage_consistent():
    lin = division_death_lineage()
    res = render_lineage(lin, crop=[(0, 16), (0, 60), (0, 70)], frames=range(6, 10), progress=False)
    assert res.images.shape[0] == 4
    assert res.images.shape[2:] == (60, 70)
    assert res.lineage.n_frames == 4
    for t in range(4):
        assert set(np.unique(res.labels[t]).tolist()) - {0} == res.lineage.labels_at(t)
    # nucleus 4 (x = 90 px) and 5 (y = 80 px) lie outside the crop
    assert 4 not in {n[1] for n in res.lineage} and 5 not in {n[1] for n in res.lineage}
    # the division survives the renumbering: mother at output frame 1 (source frame 7)
    assert res.lineage.divisions() == [(1, 1)]
    assert res.lineage.graph.nodes[(1, 1)]["state"] == "mitotic"


def test_invalid_inputs():
    lin = Lineage(n_frames=1, ndim=3)
    lin.add_node((0, 1))
    with pytest.raises(InvalidInputError, match="without a finite centroid"):
        render_lineage(lin, progress=False)
    with pytest.raises(InvalidInputError, match="no nodes"):
        render_lineage(Lineage(ndim=3), progress=False)
    good = division_death_lineage()
    with pytest.raises(InvalidInputError, match="unknown imaging parameter"):
        render_lineage(good, photonz=3, progress=False)
    with pytest.raises(InvalidInputError, match="scale"):
        render_lineage(good, scale=0.0, progress=False)
    with pytest.raises(InvalidInputError, match="shape"):
        render_lineage(good, shape=(10, 10), progress=False)
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        ImagingParams(voxel_size_um=(0.0, 1.0, 1.0))
    with pytest.raises(InvalidInputError, match="death_frames"):
        AppearanceParams(death_frames=-1)
    assert dataclasses.asdict(ImagingParams.mouse_lightsheet())["voxel_size_um"][0] > 0
    assert ImagingParams().with_overrides(background=3.0).background_photons == 3.0
    with pytest.raises(InvalidInputError, match="twice"):
        ImagingParams().with_overrides(background=3.0, background_photons=4.0)


@pytest.mark.parametrize("lam", [0.4, 5.0, 60.0])
def test_background_poisson_sampler_matches_poisson_law(lam):
    from scipy import stats

    from dynacell.simulate.render import _poisson_constant_rate

    x = _poisson_constant_rate(np.random.default_rng(0), lam, (200_000,))
    assert x.dtype == np.float32
    k = np.arange(int(lam + 6 * np.sqrt(lam)) + 3)
    observed = np.bincount(x.astype(int), minlength=k.size)[: k.size]
    expected = stats.poisson.pmf(k, lam) * x.size
    ok = expected > 5
    chi2 = ((observed[ok] - expected[ok]) ** 2 / expected[ok]).sum()
    assert stats.chi2.sf(chi2, ok.sum() - 1) > 1e-3
    assert abs(x.mean() - lam) < 5 * np.sqrt(lam / x.size)
