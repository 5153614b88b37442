"""Batch augmentation of state-classifier crops (torch ops on whole batches).

Respects the data: the three raw channels ``t−1, t, t+1`` of a sample get the *same*
intensity change (a per-frame change would fake a temporal difference); the mask channel
is only flipped / rotated. Values follow the seed (the seed state classifier, dineshchhantyal/3d-cnn-classification): flips on each axis with
p = 0.5, contrast × U(0.8, 1.2), brightness ± 0.1 with p = 0.7, Gaussian noise σ = 0.02;
dynacell adds in-plane 90° rotations (Y, X only: in 3D Z is the anisotropic axis).

Domain randomisation (all off by default; used by the leave-one-dataset-out recipes of
``benchmarks/states_lodo.py``, docs/states-generalisation.md): the same nucleus state looks
different under another microscope, so the raw channels can be *inverted* (``invert_p``: phase
contrast shows cells dark on a bright background, fluorescence bright on dark), bent by a gamma
curve (``gamma``), blurred (``blur_sigma_px``: another PSF or focus), given more noise
(``noise_max``: another SNR) or dropped altogether (``raw_dropout``: the network must then decide
from the masks of ``t`` and the segmentation context alone), and the whole crop zoomed
(``zoom``: the nucleus-size rule's error on another dataset). Every change is drawn per sample
and applied identically to the three frames.

Segmentation errors (``context_noise``, 6-channel crops only): the context channels
``[seg t−1, seg t+1]`` come from a segmentation, which at inference is automatic and makes
mistakes. :func:`degrade_context` simulates one error per corrupted sample on one of the two
channels, drawn uniformly: *miss* (the nucleus is not segmented: channel zeroed), *static*
(the channel replaced by the mask at ``t``: a division or death the segmentation did not show),
*erode* or *dilate* (3-voxel min / max filter: under- or over-segmentation), *merge* (every
overlapping object set to the primary value: touching nuclei merged into one).
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AugmentConfig", "augment_batch", "degrade_context", "shift_neighbours", "CONTEXT_ERRORS"]

#: Segmentation errors simulated by :func:`degrade_context`.
CONTEXT_ERRORS: tuple[str, ...] = ("miss", "static", "erode", "dilate", "merge")


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
    temporal_shift: int = Field(0, ge=0, description="max shift (crop voxels, per spatial axis) of the t-1 and t+1 "
                                "channels relative to t, drawn independently: nucleus or whole-embryo motion "
                                "between frames (shift_neighbours)")
    context_noise: float = Field(0.0, ge=0, le=1, description="probability that a sample's segmentation-context "
                                 "channels get one simulated segmentation error (degrade_context); 6-channel crops")
    invert_p: float = Field(0.0, ge=0, le=1, description="probability of inverting the raw channels (x -> 1 - x): "
                            "dark cells on a bright background (phase contrast) vs bright nuclei (fluorescence)")
    gamma: tuple[float, float] | None = Field(None, description="raw channels (clipped to [0, 1]) raised to a "
                                              "log-uniform power in [a, b]; None: off")
    blur_sigma_px: float = Field(0.0, ge=0, description="Gaussian blur of the raw channels, σ ~ U(0, value) "
                                 "crop px per sample (another PSF / focus); 0: off")
    noise_max: float = Field(0.0, ge=0, description="extra Gaussian noise on the raw channels, σ ~ U(0, value) "
                             "per sample (another SNR); 0: off")
    zoom: tuple[float, float] | None = Field(None, description="zoom the whole crop about its centre by a "
                                             "log-uniform factor in [a, b] (bilinear for the raw channels, nearest "
                                             "for masks; 2D crops only); None: off")
    raw_dropout: float = Field(0.0, ge=0, le=1, description="probability of zeroing the raw channels of a sample "
                               "(the masks and segmentation context stay)")


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
    x = _domain_randomise(x, cfg, rand, generator, rc)
    raw = x[:, :rc]
    lo, hi = cfg.contrast
    scale = _per_sample(x.shape, x.ndim, lo + (hi - lo) * rand(n))
    shift = _per_sample(x.shape, x.ndim, (rand(n) * 2 - 1) * cfg.brightness * (rand(n) < cfg.brightness_p).float())
    noise = torch.randn(raw.shape, generator=generator).to(dev) * cfg.noise_std
    if cfg.noise_max > 0:
        noise = noise + torch.randn(raw.shape, generator=generator).to(dev) * _per_sample(
            raw.shape, raw.ndim, rand(n) * cfg.noise_max)
    x[:, :rc] = raw * scale + shift + noise
    if cfg.raw_dropout > 0:
        x[:, :rc] = x[:, :rc] * _per_sample(raw.shape, raw.ndim, (rand(n) >= cfg.raw_dropout).float())
    if cfg.temporal_shift > 0:
        x = shift_neighbours(x, cfg.temporal_shift, generator)
    if cfg.context_noise > 0 and x.shape[1] == 6:
        x = degrade_context(x, cfg.context_noise, generator)
    return x


def _log_uniform(lo: float, hi: float, u: torch.Tensor) -> torch.Tensor:
    import math

    return torch.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)


def _gaussian_blur(raw: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur ``(N, C, Y, X)`` (or 3D, in Y/X only) with a per-sample σ ``(N,)`` (px; 0 = unchanged)."""
    half = int(torch.ceil(3 * sigma.max()).item()) if len(sigma) else 0
    if half < 1:
        return raw
    r = torch.arange(-half, half + 1, dtype=raw.dtype, device=raw.device)
    k = torch.exp(-0.5 * (r[None] / sigma.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigma[:, None] > 1e-3, k, (r[None] == 0).to(raw.dtype))
    k = k / k.sum(1, keepdim=True)                                      # (N, L)
    n, c = raw.shape[:2]
    spatial = raw.shape[2:]
    flat = raw.reshape(1, n * c, -1, spatial[-2], spatial[-1]).flatten(1, 2) if raw.ndim == 5 else \
        raw.reshape(1, n * c, *spatial)
    groups = flat.shape[1]
    kk = k.repeat_interleave(flat.shape[1] // n, dim=0)               # one kernel per channel of sample i
    out = torch.nn.functional.conv2d(flat, kk[:, None, :, None], padding=(half, 0), groups=groups)
    out = torch.nn.functional.conv2d(out, kk[:, None, None, :], padding=(0, half), groups=groups)
    return out.reshape(raw.shape)


def _zoom(x: torch.Tensor, factor: torch.Tensor, raw_channels: int) -> torch.Tensor:
    """Zoom 2D crops ``(N, C, Y, X)`` about their centre by ``factor`` ``(N,)`` (> 1 enlarges), zero-filled."""
    n = x.shape[0]
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    raw = torch.nn.functional.grid_sample(x[:, :raw_channels], grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=False)
    masks = torch.nn.functional.grid_sample(x[:, raw_channels:], grid, mode="nearest", padding_mode="zeros",
                                            align_corners=False)
    return torch.cat([raw, masks], dim=1)


def _domain_randomise(x: torch.Tensor, cfg: AugmentConfig, rand, generator: torch.Generator,
                      rc: int) -> torch.Tensor:
    """Inversion, gamma, blur and zoom of :class:`AugmentConfig` (in place on the clone ``x``)."""
    n = x.shape[0]
    raw = x[:, :rc]
    if cfg.invert_p > 0:
        inv = _per_sample(raw.shape, raw.ndim, rand(n) < cfg.invert_p)
        raw = torch.where(inv, 1.0 - raw, raw)
    if cfg.gamma is not None:
        g = _per_sample(raw.shape, raw.ndim, _log_uniform(*cfg.gamma, rand(n)))
        raw = raw.clamp(0.0, 1.0) ** g
    if cfg.blur_sigma_px > 0:
        raw = _gaussian_blur(raw, rand(n) * cfg.blur_sigma_px)
    x[:, :rc] = raw
    if cfg.zoom is not None and x.ndim == 4:
        x = _zoom(x, _log_uniform(*cfg.zoom, rand(n)), rc)
    return x


def _shift(a: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """Shift the trailing spatial axes of ``a`` by integer ``offsets``, zero-filling (no wrap-around)."""
    out = torch.zeros_like(a)
    src, dst = [], []
    for o, n in zip(offsets, a.shape[-len(offsets):]):
        o = max(-n, min(n, int(o)))
        src.append(slice(max(0, -o), n - max(0, o)))
        dst.append(slice(max(0, o), n - max(0, -o)))
    out[(..., *dst)] = a[(..., *src)]
    return out


def shift_neighbours(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift the ``t−1`` and ``t+1`` channels of crops relative to ``t`` (motion between frames).

    Parameters
    ----------
    x : torch.Tensor, float32, shape (N, 4 or 6, [Z,] Y, X)
        Crops; the ``t−1`` group is channel 0 (and 4, ``seg t−1``), the ``t+1`` group channel 2
        (and 5, ``seg t+1``).
    max_shift : int
        Largest shift per spatial axis, crop voxels; each group of each sample gets its own
        uniform integer shift in ``[−max_shift, max_shift]`` per axis (zero-filled borders).
    generator : torch.Generator
        Seeded random source (CPU).

    Returns
    -------
    torch.Tensor
        A shifted copy; channel ``t`` and the mask are unchanged.

    Notes
    -----
    dynacell's augmentation for movies whose nuclei (or whole embryo) move a large part of a
    diameter between frames (the real mouse 8-cell movie moves 5–10 µm per frame for ~6–16 µm
    nuclei), where the crops at ``t±1`` no longer centre the nucleus.
    """
    if max_shift <= 0 or x.shape[0] == 0:
        return x
    x = x.clone()
    nsp = x.ndim - 2
    groups = [(0, 4), (2, 5)] if x.shape[1] == 6 else [(0,), (2,)]
    shifts = torch.randint(-max_shift, max_shift + 1, (x.shape[0], 2, nsp), generator=generator)
    for i in range(x.shape[0]):
        for g, chans in enumerate(groups):
            offs = shifts[i, g].tolist()
            if any(offs):
                idx = list(chans)
                x[i, idx] = _shift(x[i, idx], offs)
    return x


def _pool(c: torch.Tensor, dilate: bool) -> torch.Tensor:
    """3-voxel max (dilate) or min (erode) filter of ``(n, [Z,] Y, X)`` channels."""
    f = torch.nn.functional.max_pool2d if c.ndim == 3 else torch.nn.functional.max_pool3d
    c1 = c.unsqueeze(1)
    out = f(c1, 3, stride=1, padding=1) if dilate else -f(-c1, 3, stride=1, padding=1)
    return out.squeeze(1)


def degrade_context(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Simulate segmentation errors in the segmentation-context channels of 6-channel crops.

    Parameters
    ----------
    x : torch.Tensor, float32, shape (N, 6, [Z,] Y, X)
        Crops ``[t−1, t, t+1, mask, seg t−1, seg t+1]`` (:func:`dynacell.samples.crops.context_mask`).
    p : float
        Probability, per sample, of one error (in [0, 1]).
    generator : torch.Generator
        Seeded random source (CPU).

    Returns
    -------
    torch.Tensor
        A copy with, for each corrupted sample, one of :data:`CONTEXT_ERRORS` applied to the channel
        ``seg t−1`` or ``seg t+1`` (chosen with equal probability); the other channels unchanged.

    Raises
    ------
    ValueError
        If ``x`` does not have 6 channels.

    Notes
    -----
    dynacell's robustness model (no seed counterpart): used as training augmentation
    (``AugmentConfig.context_noise``) and to score models on corrupted context
    (``benchmarks/states_2d_heldout.py --degrade``, ``benchmarks/states_3d_heldout.py --degrade``).
    """
    if x.shape[1] != 6:
        raise ValueError(f"degrade_context needs 6-channel crops, got shape {tuple(x.shape)}")
    n, dev = x.shape[0], x.device
    if n == 0 or p <= 0:
        return x
    x = x.clone()
    hit = (torch.rand(n, generator=generator) < p).to(dev)
    chan = 4 + (torch.rand(n, generator=generator) < 0.5).long().to(dev)
    kind = (torch.rand(n, generator=generator) * len(CONTEXT_ERRORS)).long().clamp(max=len(CONTEXT_ERRORS) - 1).to(dev)
    for k, name in enumerate(CONTEXT_ERRORS):
        for c in (4, 5):
            idx = (hit & (kind == k) & (chan == c)).nonzero().flatten()
            if len(idx) == 0:
                continue
            ch = x[idx, c]
            if name == "miss":
                new = torch.zeros_like(ch)
            elif name == "static":
                new = x[idx, 3]
            elif name in ("erode", "dilate"):
                new = _pool(ch, dilate=name == "dilate")
            else:  # merge: every overlapping object becomes the primary one
                new = (ch > 0).to(ch.dtype)
            x[idx, c] = new
    return x
