"""DCNet: dynacell's nucleus state classifier.

Designed for the window ``[t−1, t, t+1, mask]`` and for speed on CPU. Each part can be
switched off for the ablation (``benchmarks/states.py --ablation``, docs/models.md):

``temporal_diff``
    Adds the temporal differences ``I(t+1) − I(t)`` and ``I(t) − I(t−1)`` as two input
    channels. A division shows as a sign-changing difference (one blob → two), a death as a
    vanishing one, so the network sees change directly rather than learning to subtract.
``residual``
    Identity shortcuts around each pair of convolutions (He et al. 2016, "Deep Residual
    Learning for Image Recognition").
``mask_pool``
    Mask-guided pooling: besides the global average, features are averaged under the nucleus
    mask (the mask channel, average-pooled to the feature grid), so that neighbours inside the
    crop do not dilute the centre nucleus.
``nucleus_norm`` (off by default)
    Rescales the raw channels by the nucleus's own contrast, ``(I − m_out) / (m_in − m_out)``
    with ``m_in`` / ``m_out`` the mean of frame ``t`` inside / outside the mask at ``t``, so the
    nucleus reads ≈ 1 and its surroundings ≈ 0 whatever the modality: a phase-contrast cell
    (darker than its background) gets the same polarity as a fluorescent nucleus. Parameter-free,
    so it runs wherever the model runs (docs/states-generalisation.md).
``anisotropic`` (3D only)
    Convolutions of the first stages use ``(1, 3, 3)`` kernels (no mixing along Z), for
    light-sheet / confocal data whose Z step is several times the XY pixel.

Layout: stride-2 stem → [block(w)] → stride-2 conv → block(2w) → stride-2 conv → block(4w)
→ pooling → Dropout → Linear. Input ``(N, 4, [Z,] Y, X)`` float32 in channel order
``[t−1, t, t+1, mask]``; output logits ``(N, n_classes)``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from dynacell.errors import InvalidInputError
from dynacell.models.layers import batchnorm_nd, check_ndim, conv_nd

__all__ = ["ConvBlock", "DCNet", "nucleus_contrast_norm"]


def _kernel(ndim: int, anisotropic: bool) -> tuple[int, ...] | int:
    return (1, 3, 3) if (ndim == 3 and anisotropic) else 3


def _padding(kernel: tuple[int, ...] | int) -> tuple[int, ...] | int:
    return tuple(k // 2 for k in kernel) if isinstance(kernel, tuple) else kernel // 2


class ConvBlock(nn.Module):
    """Two ``Conv → BatchNorm`` with ReLU, optionally with an identity shortcut.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    channels : int
        Input = output channels.
    residual : bool
        Add the input to the output before the last ReLU.
    anisotropic : bool
        Use ``(1, 3, 3)`` kernels in 3D.
    """

    #: ``(conv, BatchNorm)`` attribute pairs applied as ``bn(conv(x))`` in :meth:`forward`, folded for
    #: inference by :func:`dynacell.models.runtime.fuse_conv_bn`.
    conv_bn_pairs = (("conv1", "bn1"), ("conv2", "bn2"))

    def __init__(self, ndim: int, channels: int, residual: bool = True, anisotropic: bool = False) -> None:
        super().__init__()
        k = _kernel(ndim, anisotropic)
        conv, bn = conv_nd(ndim), batchnorm_nd(ndim)
        self.conv1 = conv(channels, channels, k, padding=_padding(k), bias=False)
        self.bn1 = bn(channels)
        self.conv2 = conv(channels, channels, k, padding=_padding(k), bias=False)
        self.bn2 = bn(channels)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *S) → (N, C, *S)``."""
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        if self.residual:
            y = y + x
        return F.relu(y, inplace=True)


def _down(ndim: int, c_in: int, c_out: int, anisotropic: bool = False) -> nn.Sequential:
    k = _kernel(ndim, anisotropic)
    stride = (1, 2, 2) if (ndim == 3 and anisotropic) else 2
    return nn.Sequential(conv_nd(ndim)(c_in, c_out, k, stride=stride, padding=_padding(k), bias=False),
                         batchnorm_nd(ndim)(c_out), nn.ReLU(inplace=True))


def nucleus_contrast_norm(raw: torch.Tensor, mask: torch.Tensor, min_contrast: float = 0.02,
                          clip: float = 4.0) -> torch.Tensor:
    """Raw channels rescaled so that the nucleus reads 1 and its surroundings 0, whatever the polarity.

    Parameters
    ----------
    raw : torch.Tensor, float32, shape (N, 3, [Z,] Y, X)
        Frames ``[t−1, t, t+1]`` of each crop (any intensity scale).
    mask : torch.Tensor, float32, shape (N, 1, [Z,] Y, X)
        Nucleus mask at ``t`` (> 0.5 inside).
    min_contrast : float
        Smallest magnitude of ``m_in − m_out`` divided by (a crop without contrast, e.g. all zeros,
        stays near 0 rather than blowing up); a contrast below it is replaced by ``+min_contrast``.
    clip : float
        Output clipped to ``[−clip, clip]``.

    Returns
    -------
    torch.Tensor
        ``(raw − m_out) / (m_in − m_out)`` with ``m_in`` / ``m_out`` the means of frame ``t`` inside /
        outside the mask (one pair per crop, applied to all three frames so that temporal
        differences keep their sign); same shape and dtype as ``raw``. A crop whose nucleus is darker
        than its surroundings (phase contrast) is thus inverted.

    Notes
    -----
    dynacell's input normalisation for models that must work across modalities (no seed
    counterpart); the sample sets' own normalisation (percentiles 1 / 99.8 of the crop) is kept.
    """
    inside = (mask > 0.5).to(raw.dtype)
    dims = tuple(range(1, mask.ndim))
    t = raw[:, 1:2]
    n_in = inside.sum(dims).clamp(min=1.0)
    n_out = (1.0 - inside).sum(dims).clamp(min=1.0)
    m_in = (t * inside).sum(dims) / n_in
    m_out = (t * (1.0 - inside)).sum(dims) / n_out
    d = m_in - m_out
    d = torch.where(d.abs() < min_contrast, torch.full_like(d, min_contrast), d)
    shape = (-1,) + (1,) * (raw.ndim - 1)
    return ((raw - m_out.view(shape)) / d.view(shape)).clamp(-clip, clip)


class DCNet(nn.Module):
    """dynacell's classifier (see the module docstring for the design and its sources).

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality of the crops.
    in_channels : int
        4: ``[t−1, t, t+1, mask]``, or 6 with the segmentation-context channels
        ``[seg t−1, seg t+1]`` (:func:`dynacell.samples.crops.context_mask`).
    n_classes : int
        Number of output classes.
    width : int
        Filters of the first stage (then ×2, ×4). Default 16.
    temporal_diff, residual, mask_pool : bool
        Switch the components on or off (all on by default).
    anisotropic : bool
        3D only: ``(1, 3, 3)`` kernels in the stem and first stage (stride 1 along Z).
    first_block : bool
        Whether the first (highest resolution) stage has a block (default True).
    dropout : float
        Dropout before the linear layer.
    input_pool : int
        Average-pool the crop by this factor before the stem (1: off). Lets a model see a
        wide field of view (e.g. 64² crops of long bacteria) at the cost of a 32² one.
    nucleus_norm : bool
        Rescale the raw channels by the nucleus's contrast (:func:`nucleus_contrast_norm`); default False.

    Raises
    ------
    InvalidInputError
        If ``in_channels`` is not 4 or 6, or ``ndim`` not 2/3.
    """

    def __init__(self, ndim: int, in_channels: int = 4, n_classes: int = 4, width: int = 16,
                 temporal_diff: bool = True, residual: bool = True, mask_pool: bool = True,
                 anisotropic: bool = False, first_block: bool = True, dropout: float = 0.1,
                 input_pool: int = 1, nucleus_norm: bool = False) -> None:
        super().__init__()
        self.nucleus_norm = bool(nucleus_norm)
        check_ndim(ndim)
        if in_channels not in (4, 6):
            raise InvalidInputError(
                "dcnet needs the 4-channel window [t-1, t, t+1, mask] or the 6-channel window with "
                f"segmentation context [.., seg t-1, seg t+1], got in_channels={in_channels}")
        self.ndim = ndim
        self.temporal_diff = temporal_diff
        self.mask_pool = mask_pool
        if input_pool < 1:
            raise InvalidInputError(f"dcnet input_pool must be >= 1, got {input_pool}")
        pool = nn.AvgPool2d if ndim == 2 else nn.AvgPool3d
        self.input_pool = pool(input_pool) if input_pool > 1 else nn.Identity()
        c0 = in_channels + (2 if temporal_diff else 0)
        w = width
        self.stem = _down(ndim, c0, w, anisotropic)
        self.stage1 = ConvBlock(ndim, w, residual, anisotropic) if first_block else nn.Identity()
        self.down2 = _down(ndim, w, 2 * w)
        self.stage2 = ConvBlock(ndim, 2 * w, residual)
        self.down3 = _down(ndim, 2 * w, 4 * w)
        self.stage3 = ConvBlock(ndim, 4 * w, residual)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear((8 if mask_pool else 4) * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of crops ``x`` ``(N, 4 or 6, [Z,] Y, X)``."""
        x = self.input_pool(x)
        mask = x[:, 3:4]
        if self.nucleus_norm:
            x = torch.cat([nucleus_contrast_norm(x[:, :3], mask), x[:, 3:]], dim=1)
        if self.temporal_diff:
            x = torch.cat([x, x[:, 2:3] - x[:, 1:2], x[:, 1:2] - x[:, 0:1]], dim=1)
        f = self.stage1(self.stem(x))
        f = self.stage2(self.down2(f))
        f = self.stage3(self.down3(f))
        dims = tuple(range(2, f.ndim))
        pooled = f.mean(dim=dims)
        if self.mask_pool:
            m = F.adaptive_avg_pool2d(mask, f.shape[2:]) if self.ndim == 2 else F.adaptive_avg_pool3d(mask, f.shape[2:])
            m = m.clamp(min=0)
            masked = (f * m).sum(dim=dims) / (m.sum(dim=dims) + 1e-6)
            pooled = torch.cat([pooled, masked], dim=1)
        return self.classifier(self.dropout(pooled))
