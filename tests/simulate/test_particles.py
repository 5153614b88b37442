"""Single-molecule simulator: physical units, seeds, motion statistics, photons, blur."""

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.simulate.imaging import (
    FWHM_PER_SIGMA,
    gaussian_pixel_fractions,
    psf_sigma_from_fwhm,
)
from dynacell.simulate.particles import (
    draw_conditions,
    photons_for_snr,
    simulate_stacks,
)


def test_psf_sigma_is_fwhm_over_2_3548_not_the_seed_bug():
    assert FWHM_PER_SIGMA == pytest.approx(2.3548, abs=1e-4)
    assert psf_sigma_from_fwhm(250.0) == pytest.approx(106.17, abs=0.01)


def test_pixel_fractions_integrate_the_gaussian_exactly():
    f = gaussian_pixel_fractions(np.array([10.3, 5.7]), np.array([0.8, 1.5]), 21)
    assert f.sum(axis=-1) == pytest.approx([1.0, 1.0], abs=1e-4)
    # mean of the discrete distribution of pixel centres is the sub-pixel position
    centres = np.arange(21) + 0.5
    assert (f * centres).sum(axis=-1) == pytest.approx([10.3, 5.7], abs=2e-3)


def test_shapes_units_and_seed():
    a = simulate_stacks([0.05, 2.0, 8.0], n_frames=5, shape_px=(24, 20), snr=10.0, seed=3)
    b = simulate_stacks([0.05, 2.0, 8.0], n_frames=5, shape_px=(24, 20), snr=10.0, seed=3)
    c = simulate_stacks([0.05, 2.0, 8.0], n_frames=5, shape_px=(24, 20), snr=10.0, seed=4)
    assert a.stacks.shape == (3, 5, 24, 20) and a.stacks.dtype == np.uint16
    assert a.paths_um.shape == (3, 1, 5, 16, 2) and a.positions_um.shape == (3, 1, 5, 2)
    np.testing.assert_array_equal(a.stacks, b.stacks)
    assert not np.array_equal(a.stacks, c.stacks)
    np.testing.assert_allclose(a.D_um2_per_s, [0.05, 2.0, 8.0])
    assert set(a.truth.columns) >= {"D_um2_per_s", "pixel_size_um", "frame_interval_s", "exposure_s",
                                    "photons", "background_photons", "snr", "seed"}
    # path_mean centring: the mean true position is the field's centre within half a pixel
    centre = np.array([24, 20]) * 0.1 / 2
    assert np.all(np.abs(a.positions_um[:, 0].mean(axis=1) - centre) <= 0.05 + 1e-9)


def test_brownian_msd_is_4Dt():
    D, dt = 0.5, 0.01
    sim = simulate_stacks(np.full(3000, D), n_frames=6, shape_px=(4, 4), frame_interval_s=dt, snr=5.0,
                          substeps=4, seed=1)
    p = sim.paths_um[:, 0, :, 0, :]  # the first sub-step of each frame: exact lag = k dt
    for lag in (1, 3, 5):
        msd = np.mean(np.sum((p[:, lag:] - p[:, :-lag]) ** 2, axis=-1))
        assert msd == pytest.approx(4 * D * lag * dt, rel=0.05)


def test_confined_fractional_two_state_statistics():
    conf = simulate_stacks(np.full(2000, 5.0), n_frames=16, shape_px=(4, 4), snr=5.0, substeps=2,
                           motion="confined", confinement_um=0.1, seed=2)
    p = conf.paths_um[:, 0, :, 0, :]
    far = np.mean(np.sum((p[:, 15] - p[:, 0]) ** 2, axis=-1))
    assert far == pytest.approx(4 * 0.1**2, rel=0.1)  # plateau 2 * 2 s^2 in 2D
    frac = simulate_stacks(np.full(3000, 1.0), n_frames=9, shape_px=(4, 4), snr=5.0, substeps=1,
                           motion="fractional", alpha=0.5, frame_interval_s=0.01, seed=3)
    p = frac.paths_um[:, 0, :, 0, :]
    m1 = np.mean(np.sum((p[:, 1] - p[:, 0]) ** 2, axis=-1))
    m8 = np.mean(np.sum((p[:, 8] - p[:, 0]) ** 2, axis=-1))
    assert np.log(m8 / m1) / np.log(8) == pytest.approx(0.5, abs=0.05)
    two = simulate_stacks(np.full(500, 1.0), snr=5.0, shape_px=(4, 4), motion="two_state", D2_ratio=0.0,
                          k_on_per_s=50.0, k_off_per_s=50.0, seed=4)
    assert np.all(two.D_um2_per_s <= 1.0 + 1e-12) and 0.3 < two.D_um2_per_s.mean() < 0.7


def test_photon_budget_and_snr():
    snr, bg = 20.0, 4.0
    sim = simulate_stacks(np.full(50, 1e-4), n_frames=4, shape_px=(32, 32), snr=snr, background_photons=bg,
                          read_noise_adu=0.0, gain_adu_per_e=2.0, offset_adu=100.0, seed=5)
    electrons = (sim.stacks.astype(float) - 100.0) / 2.0
    total = electrons.sum(axis=(2, 3)) - bg * 32 * 32
    assert total.mean() == pytest.approx(sim.truth["photons"].iloc[0], rel=0.03)
    sigma_px = psf_sigma_from_fwhm(250.0) / 100.0
    p = photons_for_snr(snr, bg, sigma_px)
    assert sim.truth["photons"].iloc[0] == pytest.approx(p)
    assert sim.truth["snr"].iloc[0] == pytest.approx(snr)


def test_fast_molecules_blur_the_spot():
    def spread(D):
        sim = simulate_stacks(np.full(40, D), n_frames=8, shape_px=(32, 32), photons=1e5, background_photons=0.0,
                              read_noise_adu=0.0, seed=6)
        img = sim.stacks.astype(float) - 100.0
        yy, xx = np.mgrid[:32, :32]
        w = img / img.sum(axis=(2, 3), keepdims=True)
        my, mx = (w * yy).sum(axis=(2, 3), keepdims=True), (w * xx).sum(axis=(2, 3), keepdims=True)
        return float(((w * ((yy - my) ** 2 + (xx - mx) ** 2)).sum(axis=(2, 3))).mean())
    still, fast = spread(1e-4), spread(5.0)
    assert still == pytest.approx(2 * (0.25 / 2.3548 / 0.1) ** 2 + 2 / 12, rel=0.1)
    assert fast > 1.5 * still


def test_draw_conditions_ranges():
    c = draw_conditions(1000, seed=0)
    assert c["D_um2_per_s"].between(0.01, 10).all() and c["snr"].between(2, 50).all()
    assert c["pixel_size_um"].between(0.1, 0.16).all()
    assert np.median(np.log10(c["D_um2_per_s"])) == pytest.approx(-0.5, abs=0.15)


@pytest.mark.parametrize("kwargs", [
    {"D_um2_per_s": [-1.0], "snr": 5.0},
    {"D_um2_per_s": [1.0], "snr": 5.0, "photons": 100.0},
    {"D_um2_per_s": [1.0]},
    {"D_um2_per_s": [1.0], "snr": 5.0, "exposure_s": 0.01, "frame_interval_s": 0.005},
    {"D_um2_per_s": [1.0], "snr": 5.0, "motion": "levy"},
    {"D_um2_per_s": [1.0, 2.0], "snr": [5.0, 6.0, 7.0]},
])
def test_bad_input_is_refused(kwargs):
    D = kwargs.pop("D_um2_per_s")
    with pytest.raises(InvalidInputError):
        simulate_stacks(D, **kwargs)
