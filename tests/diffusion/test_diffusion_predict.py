"""DiffusionPredictor: loading, training-range checks, test-time averaging, output columns."""

import shutil

import numpy as np
import pytest

from dynacell.cards import load_card
from dynacell.diffusion import DiffusionCard, DiffusionPredictor
from dynacell.diffusion.predict import crop_around_molecule, dihedral_transforms
from dynacell.errors import FormatError, InvalidInputError
from dynacell.simulate.particles import simulate_stacks


@pytest.fixture(scope="module")
def sim():
    return simulate_stacks([0.05, 0.5, 5.0], snr=20.0, pixel_size_um=0.12, seed=0)


def test_card_records_ranges_and_seed(tiny_model):
    card = load_card(tiny_model, DiffusionCard)
    assert card.task == "diffusion" and card.seed == 0 and card.n_frames == 16 and card.shape_px == [32, 32]
    for key in ("D_um2_per_s", "pixel_size_um", "frame_interval_s", "exposure_s", "snr", "background_photons",
                "psf_fwhm_nm", "psf_sigma_px", "log_dn"):
        lo, hi = card.training_ranges[key]
        assert lo <= hi
    assert "val_nll" in card.metrics["val"]


def test_predict_columns_and_interval(tiny_model, sim):
    pred = DiffusionPredictor.from_folder(tiny_model)
    df = pred.predict(sim.stacks, pixel_size_um=0.12, frame_interval_s=0.005, read_noise_adu=1.5)
    assert list(df.columns) == ["stack", "D_um2_per_s", "D_lo68_um2_per_s", "D_hi68_um2_per_s", "log_D_sd",
                                "D_min_rel_mse_um2_per_s", "in_training_range"]
    assert len(df) == 3 and (df["D_um2_per_s"] > 0).all()
    np.testing.assert_allclose(df["D_min_rel_mse_um2_per_s"], df["D_um2_per_s"] * np.exp(-1.5 * df["log_D_sd"] ** 2),
                               rtol=1e-6)
    assert (df["D_lo68_um2_per_s"] < df["D_um2_per_s"]).all() and (df["D_um2_per_s"] < df["D_hi68_um2_per_s"]).all()
    # one stack (T, Y, X) works too, and a larger field is cropped around the molecule
    one = pred.predict(sim.stacks[1], pixel_size_um=0.12, frame_interval_s=0.005, tta=False)
    big = np.full((1, 16, 48, 48), 100, np.uint16)
    big[0, :, 10:42, 5:37] = sim.stacks[1]
    cropped = crop_around_molecule(big, (32, 32))
    assert cropped.shape == (1, 16, 32, 32)
    same = pred.predict(big, pixel_size_um=0.12, frame_interval_s=0.005, tta=False)
    assert same["D_um2_per_s"].iloc[0] == pytest.approx(one["D_um2_per_s"].iloc[0], rel=0.5)


def test_tta_is_the_dihedral_group():
    x = np.arange(2 * 3 * 4 * 4, dtype=float).reshape(2, 3, 4, 4)
    views = dihedral_transforms(x)
    assert len(views) == 8 and len({v.tobytes() for v in views}) == 8
    assert all(v.shape == x.shape for v in views)


@pytest.mark.parametrize("kwargs,match", [
    ({"pixel_size_um": 0.3, "frame_interval_s": 0.005}, "PSF sigma"),
    ({"pixel_size_um": 0.12, "frame_interval_s": 0.005, "exposure_s": 0.002}, "exposure"),
    ({"pixel_size_um": 0.12, "frame_interval_s": 0.005, "psf_fwhm_nm": 600.0}, "PSF sigma"),
])
def test_refuses_outside_training_ranges(tiny_model, sim, kwargs, match):
    pred = DiffusionPredictor.from_folder(tiny_model)
    with pytest.raises(InvalidInputError, match=match):
        pred.predict(sim.stacks, **kwargs)


def test_warns_for_another_frame_interval_and_refuses_bad_shapes(tiny_model, sim):
    pred = DiffusionPredictor.from_folder(tiny_model)
    with pytest.warns(UserWarning, match="frame_interval_s"):
        pred.predict(sim.stacks[:1], pixel_size_um=0.12, frame_interval_s=0.02, exposure_s=0.02, tta=False)
    with pytest.raises(InvalidInputError, match="16 frames"):
        pred.predict(sim.stacks[:, :8], pixel_size_um=0.12, frame_interval_s=0.005)
    with pytest.raises(InvalidInputError, match="smaller"):
        pred.predict(sim.stacks[:, :, :20, :20], pixel_size_um=0.12, frame_interval_s=0.005)


def test_corrupt_weights_and_unknown_name(tiny_model, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    with open(bad / "weights.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(FormatError, match="SHA-256"):
        DiffusionPredictor.from_folder(bad)
    with pytest.raises(InvalidInputError, match="no shipped diffusion model"):
        DiffusionPredictor.from_pretrained("nope")
