"""Batch augmentation of state-classifier crops (torch ops on whole batches).

Respects the data: the three raw channels ``t−1, t, t+1`` of a sample get the *same*
intensity change (a per-frame change would fake a temporal difference); the mask channel
is only flipped / rotated. Values follow the seed (SEEDS.md §1): flips on each axis with
p = 0.5, contrast × U(0.8, 1.2), brightness ± 0.1 with p = 0.7, Gaussian noise σ = 0.02;
dynacell adds in-plane 90° rotations (Y, X only: in 3D Z is the anisotropic axis).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AugmentConfig", "augment_batch"]


class AugmentConfig(BaseModel):
    """Augmentation settings (defaults: the seed's values plus in-plane rotations)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    flip: bool = Field(True, description="random flip of every spatial axis, p = 0.5 each")
    rot90: bool = Field(True, description="random k·90° rotation in the (Y, X) plane")
    contrast: tuple[float, float] = Field((0.8, 1.2), description="raw channels × U(a, b)")
    brightness: float = Field(0.1, ge=0, description="raw channels + U(-b, b) with probability brightness_p")
    brightness_p: float = Field(0.7, ge=0, le=1)
    noise_std: float = Field(0.02, ge=0, description="Gaussian noise σ on the raw channels")


def _per_sample(shape: tuple[int, ...], ndim: int, values: torch.Tensor) -> torch.Tensor:
    return values.view(shape[0], *([1] * (ndim - 1)))


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator,
                  raw_channels: int = 3) -> torch.Tensor:
    """Augment a batch of crops.

    Parameters
    ----------
    x : torch.Tensor, float32, shape (N, C, [Z,] Y, X)
        Crops; channels ``[t−1, t, t+1, mask]`` (the first ``raw_channels`` are intensities in [0, 1]).
    cfg : AugmentConfig
        What to apply.
    generator : torch.Generator
        Seeded random source (CPU).
    raw_channels : int
        Number of leading intensity channels (3 for the window).

    Returns
    -------
    torch.Tensor
        Augmented copy, same shape and dtype.
    """
    if not cfg.enabled or x.shape[0] == 0:
        return x
    n, dev = x.shape[0], x.device

    def rand(*size: int) -> torch.Tensor:
        return torch.rand(*size, generator=generator).to(dev)

    x = x.clone()
    if cfg.flip:
        for axis in range(2, x.ndim):
            sel = _per_sample(x.shape, x.ndim, rand(n) < 0.5)
            x = torch.where(sel, x.flip(axis), x)
    if cfg.rot90 and x.shape[-1] == x.shape[-2]:
        k = (rand(n) * 4).long().clamp(max=3)
        out = x.clone()
        for r in (1, 2, 3):
            idx = (k == r).nonzero().flatten()
            if len(idx):
                out[idx] = torch.rot90(x[idx], r, dims=(-2, -1))
        x = out
    rc = min(raw_channels, x.shape[1])
    raw = x[:, :rc]
    lo, hi = cfg.contrast
    scale = _per_sample(x.shape, x.ndim, lo + (hi - lo) * rand(n))
    shift = _per_sample(x.shape, x.ndim, (rand(n) * 2 - 1) * cfg.brightness * (rand(n) < cfg.brightness_p).float())
    noise = torch.randn(raw.shape, generator=generator).to(dev) * cfg.noise_std
    x[:, :rc] = raw * scale + shift + noise
    return x
