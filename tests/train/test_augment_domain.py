"""Tests of the domain-randomisation augmentations and dcnet's nucleus-contrast normalisation
(the leave-one-dataset-out recipes of benchmarks/states_lodo.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from dynacell.models.dcnet import DCNet, nucleus_contrast_norm
from dynacell.train import AugmentConfig, augment_batch
from dynacell.train.augment import _gaussian_blur

#: Every default augmentation switched off, so one ingredient can be checked alone.
OFF = dict(flip=False, rot90=False, contrast=(1.0, 1.0), brightness=0.0, noise_std=0.0)


def _crops(n: int = 6, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, size, size, generator=g)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2) <= (size / 4) ** 2).float()
    x[:, 3] = disc
    x[:, 4] = disc
    x[:, 5] = 0.5 * disc
    return x


def test_inversion_and_gamma_change_the_raw_channels_only() -> None:
    x = _crops()
    gen = torch.Generator().manual_seed(1)
    y = augment_batch(x, AugmentConfig(**OFF, invert_p=1.0), gen)
    assert torch.allclose(y[:, :3], 1.0 - x[:, :3]) and torch.equal(y[:, 3:], x[:, 3:])
    y = augment_batch(x, AugmentConfig(**OFF, gamma=(2.0, 2.0)), gen)
    assert torch.allclose(y[:, :3], x[:, :3] ** 2, atol=1e-6) and torch.equal(y[:, 3:], x[:, 3:])
    y = augment_batch(x, AugmentConfig(**OFF, raw_dropout=1.0), gen)
    assert torch.count_nonzero(y[:, :3]) == 0 and torch.equal(y[:, 3:], x[:, 3:])


def test_gaussian_blur_matches_scipy_per_sample_sigma() -> None:
    raw = torch.zeros(2, 3, 21, 21)
    raw[:, :, 10, 10] = 1.0
    out = _gaussian_blur(raw, torch.tensor([0.0, 1.2]))
    assert torch.equal(out[0], raw[0])                      # σ = 0: unchanged
    ref = ndimage.gaussian_filter(raw[1, 0].numpy(), 1.2, mode="constant", truncate=3.0)
    # same 3σ support as scipy with truncate=3 (radius ceil(3.6) = 4)
    np.testing.assert_allclose(out[1, 0].numpy(), ref, atol=1e-5)
    assert torch.allclose(out[1, 0], out[1, 2])


def test_zoom_enlarges_masks_and_keeps_their_values() -> None:
    x = _crops(size=32)
    y = augment_batch(x, AugmentConfig(**OFF, zoom=(2.0, 2.0)), torch.Generator().manual_seed(0))
    area_before, area_after = x[:, 3].sum((1, 2)), y[:, 3].sum((1, 2))
    assert torch.all((area_after / area_before - 4.0).abs() < 0.5)
    assert set(torch.unique(y[:, 3:]).tolist()) <= {0.0, 0.5, 1.0}


def test_extra_noise_scales_with_noise_max() -> None:
    x = torch.full((64, 6, 16, 16), 0.5)
    gen = torch.Generator().manual_seed(0)
    y = augment_batch(x, AugmentConfig(**OFF, noise_max=0.2), gen)
    sd = (y[:, :3] - 0.5).std(dim=(1, 2, 3))
    assert 0.05 < float(sd.mean()) < 0.15 and float(sd.max()) <= 0.21   # σ ~ U(0, 0.2): mean 0.1
    assert torch.equal(y[:, 3:], x[:, 3:])


def test_nucleus_contrast_norm_is_polarity_free() -> None:
    mask = torch.zeros(2, 1, 10, 10)
    mask[:, :, 3:7, 3:7] = 1.0
    bright = 0.1 + 0.7 * mask.repeat(1, 3, 1, 1)            # fluorescence: nucleus 0.8 on 0.1
    out = nucleus_contrast_norm(bright, mask)
    assert torch.allclose(out[mask.expand_as(out) > 0], torch.tensor(1.0))
    assert torch.allclose(out[mask.expand_as(out) == 0], torch.tensor(0.0), atol=1e-6)
    # phase contrast: the same cell dark on a bright background reads the same
    assert torch.allclose(nucleus_contrast_norm(1.0 - bright, mask), out, atol=1e-6)
    # no contrast at all (raw channels dropped): stays 0, no division by ~0
    assert torch.count_nonzero(nucleus_contrast_norm(torch.zeros_like(bright), mask)) == 0


def test_dcnet_with_nucleus_norm_gives_the_same_logits_for_inverted_raw_channels() -> None:
    torch.manual_seed(0)
    x = _crops(n=4, size=24)
    x[:, :3] = 0.2 + 0.5 * x[:, 3:4] + 0.2 * x[:, :3]      # nuclei brighter than their surroundings
    inv = x.clone()
    inv[:, :3] = 1.0 - inv[:, :3]
    net = DCNet(2, 6, 3, width=8, nucleus_norm=True).eval()
    plain = DCNet(2, 6, 3, width=8).eval()
    with torch.no_grad():
        assert torch.allclose(net(x), net(inv), atol=1e-5)
        assert not torch.allclose(plain(x), plain(inv), atol=1e-3)


def test_lodo_recipes_merge_into_the_config(tmp_path: Path) -> None:
    from dynacell.train import TrainConfig

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "states_lodo.py"
    spec = importlib.util.spec_from_file_location("states_lodo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    base = TrainConfig(name="m", data=["a.npz"], out=str(tmp_path), model_kwargs={"width": 16})
    cfg = mod.with_recipe(base, "dr+norm+drop")
    assert cfg.model_kwargs == {"width": 16, "nucleus_norm": True}
    assert cfg.augment.invert_p == 0.5 and cfg.augment.raw_dropout == 0.3 and cfg.augment.flip
    assert mod.with_recipe(base, None) == base
    with pytest.raises(KeyError):
        mod.with_recipe(base, "no-such-recipe")
