"""Segmentation networks: the two seed U-Nets and dynacell's instance U-Net (pure ``nn.Module`` s).

Every network maps a batch of normalised images ``(N, 1, [Z,] Y, X)`` float32 to per-pixel
logits ``(N, C, [Z,] Y, X)`` of the same spatial size (sizes divisible by ``2**depth``; the
inference code pads). No sigmoid/softmax is applied inside: the losses use the logit forms
(``BCEWithLogits``, cross-entropy) and the inference code applies the activation.

- :class:`SeedUNet` — the seed U-Net for binary segmentation of an embryo: 4 contracting blocks
  of two 3×3 ReLU convolutions, 2×2 max pooling and dropout (0.25 after the first block, 0.5
  after the others), a 512-channel middle block (32 base filters doubled per block), 3×3
  stride-2 transposed convolutions, concatenation with the skip, dropout 0.5, two 3×3 ReLU
  convolutions; a 1×1 convolution to one channel (sigmoid, trained with binary cross-entropy).
- :class:`SelfAttentionUNet` — the seed self-attention U-Net for live/dead segmentation: a U-Net
  whose every convolution block is followed by multi-head self-attention (4 heads, scaled
  dot-product attention, residual) and a GELU feed-forward network with a residual
  (``A_out = GELU(A W1 + b1) W2 + b2 + A``); a 3-class head background / live / dead, trained
  with cross-entropy + Jaccard loss. On CPU, attention over all pixels of a 128×128 map is out
  of reach (16,384² weights per head), so attention runs inside non-overlapping windows of
  ``window`` × ``window`` pixels (global once a map is that small) — the windowing of
  Liu et al., "Swin Transformer", ICCV 2021, without the shifted windows.
- :class:`InstanceUNet` — dynacell's instance model: a compact 2D/3D U-Net (Conv–BatchNorm–ReLU
  blocks) with three output maps: foreground, object boundary and the normalised distance to
  the object's edge. A seeded watershed turns them into instances
  (:func:`dynacell.segment.learned.instances_from_maps`). Foreground + boundary targets follow
  Chen et al., "DCAN: deep contour-aware networks", CVPR 2016; distance-map seeds follow
  Naylor et al., IEEE TMI 38 (2019) 448–459.

Sources: Ronneberger et al., "U-Net", MICCAI 2015; the seed notebooks on U-Net embryo
segmentation and on the self-attention U-Net for live/dead CHO cells (Vaswani et al., 2017
for the attention; Hendrycks & Gimpel, 2016 for GELU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dynacell.errors import InvalidInputError
from dynacell.models.layers import batchnorm_nd, check_ndim, conv_nd, maxpool_nd

__all__ = [
    "SEGMENTATION_ARCHITECTURES",
    "InstanceUNet",
    "SeedUNet",
    "SelfAttentionUNet",
    "build_segmentation_model",
]


def _convtranspose_nd(ndim: int) -> type[nn.Module]:
    return nn.ConvTranspose2d if check_ndim(ndim) == 2 else nn.ConvTranspose3d


def _dropout_nd(ndim: int) -> type[nn.Module]:
    return nn.Dropout2d if check_ndim(ndim) == 2 else nn.Dropout3d


class SeedUNet(nn.Module):
    """The seed U-Net (binary segmentation, sigmoid output), faithfully.

    Parameters
    ----------
    in_channels : int
        Input channels (1: one grey-level image).
    base_filters : int
        Filters of the first block (32), doubled in each of the 4 blocks; middle block 16×.
    depth : int
        Contracting blocks (4).
    dropout_first, dropout : float
        Dropout after the first pooling (0.25) and everywhere else (0.5).

    Notes
    -----
    Input ``(N, in_channels, Y, X)`` with ``Y`` and ``X`` divisible by ``2**depth``; output
    ``(N, 1, Y, X)`` logits (apply a sigmoid for the probability of foreground). 7.8 M
    parameters with the defaults (31 MB in float32).
    """

    def __init__(self, in_channels: int = 1, base_filters: int = 32, depth: int = 4,
                 dropout_first: float = 0.25, dropout: float = 0.5) -> None:
        super().__init__()
        self.depth = int(depth)
        f = [base_filters * 2**i for i in range(depth)]

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))

        self.down = nn.ModuleList()
        self.drop_down = nn.ModuleList()
        cin = in_channels
        for i, c in enumerate(f):
            self.down.append(block(cin, c))
            self.drop_down.append(nn.Dropout(dropout_first if i == 0 else dropout))
            cin = c
        self.pool = nn.MaxPool2d(2)
        self.middle = block(f[-1], f[-1] * 2)
        self.up = nn.ModuleList()
        self.up_conv = nn.ModuleList()
        cin = f[-1] * 2
        for c in reversed(f):
            self.up.append(nn.ConvTranspose2d(cin, c, 3, stride=2, padding=1, output_padding=1))
            self.up_conv.append(nn.Sequential(nn.Dropout(dropout), block(2 * c, c)))
            cin = c
        self.head = nn.Conv2d(f[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for blk, drop in zip(self.down, self.drop_down):
            x = blk(x)
            skips.append(x)
            x = drop(self.pool(x))
        x = self.middle(x)
        for up, conv, skip in zip(self.up, self.up_conv, reversed(skips)):
            x = conv(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class _WindowSelfAttention(nn.Module):
    """Multi-head self-attention + GELU feed-forward, both residual, inside square windows."""

    def __init__(self, channels: int, heads: int = 4, window: int = 8, ff_mult: int = 2) -> None:
        super().__init__()
        self.window = int(window)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, ff_mult * channels), nn.GELU(),
                                nn.Linear(ff_mult * channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h0, w0 = x.shape
        wy, wx = min(self.window, h0), min(self.window, w0)
        # zero-pad to whole windows (frames of any size); the padding is cropped afterwards
        x = nn.functional.pad(x, (0, (-w0) % wx, 0, (-h0) % wy))
        h, w = x.shape[2:]
        t = x.reshape(n, c, h // wy, wy, w // wx, wx).permute(0, 2, 4, 3, 5, 1).reshape(-1, wy * wx, c)
        q = self.norm1(t)
        a = self.attn(q, q, q, need_weights=False)[0] + t
        a = self.ff(self.norm2(a)) + a
        a = a.reshape(n, h // wy, w // wx, wy, wx, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h, w)
        return a[:, :, :h0, :w0]


class SelfAttentionUNet(nn.Module):
    """The seed self-attention U-Net with a 3-class head (background / live / dead).

    Parameters
    ----------
    in_channels : int
        Input channels (1).
    n_classes : int
        Output classes (3: background, live, dead).
    base_filters : int
        Filters of the first block, doubled per level.
    depth : int
        Pooling levels (4).
    heads : int
        Attention heads (4).
    window : int
        Side of the attention windows in pixels (see the module docstring).

    Notes
    -----
    Input ``(N, in_channels, Y, X)``, ``Y``, ``X`` divisible by ``2**depth``; output
    ``(N, n_classes, Y, X)`` logits (softmax over dim 1).
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 3, base_filters: int = 16, depth: int = 4,
                 heads: int = 4, window: int = 8) -> None:
        super().__init__()
        f = [base_filters * 2**i for i in range(depth + 1)]

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 _WindowSelfAttention(cout, heads=heads, window=window))

        self.down = nn.ModuleList([block(in_channels if i == 0 else f[i - 1], f[i]) for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.middle = block(f[depth - 1], f[depth])
        self.up = nn.ModuleList([nn.ConvTranspose2d(f[i + 1], f[i], 2, stride=2) for i in reversed(range(depth))])
        self.up_conv = nn.ModuleList([block(2 * f[i], f[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(f[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = self.pool(x)
        x = self.middle(x)
        for up, conv, skip in zip(self.up, self.up_conv, reversed(skips)):
            x = conv(torch.cat([up(x), skip], dim=1))
        return self.head(x)


class InstanceUNet(nn.Module):
    """dynacell's instance U-Net (2D or 3D): foreground, boundary and distance maps.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    in_channels : int
        Input channels (1).
    base_filters : int
        Filters of the first level, doubled per level.
    depth : int
        Pooling levels.
    out_channels : int
        Output maps (3: foreground, boundary, distance logits).

    Notes
    -----
    Input ``(N, in_channels, [Z,] Y, X)`` with every spatial size divisible by ``2**depth``;
    output ``(N, out_channels, [Z,] Y, X)`` logits. Bilinear/trilinear upsampling (no
    checkerboard artefacts), Conv–BatchNorm–ReLU ×2 per level.
    """

    def __init__(self, ndim: int = 2, in_channels: int = 1, base_filters: int = 16, depth: int = 3,
                 out_channels: int = 3) -> None:
        super().__init__()
        conv, bn, pool = conv_nd(ndim), batchnorm_nd(ndim), maxpool_nd(ndim)
        self.ndim = check_ndim(ndim)
        f = [base_filters * 2**i for i in range(depth + 1)]

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True),
                                 conv(cout, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True))

        self.down = nn.ModuleList([block(in_channels if i == 0 else f[i - 1], f[i]) for i in range(depth)])
        self.pool = pool(2)
        self.middle = block(f[depth - 1], f[depth])
        self.up_conv = nn.ModuleList([block(f[i + 1] + f[i], f[i]) for i in reversed(range(depth))])
        self.head = conv(f[0], out_channels, 1)
        self._mode = "bilinear" if ndim == 2 else "trilinear"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The contracting path: the bottleneck features and the skip features of each level.

        Parameters
        ----------
        x : torch.Tensor
            Input ``(N, in_channels, [Z,] Y, X)``.

        Returns
        -------
        tuple
            The middle block's output and the list of skip tensors, finest level first (shared by
            :meth:`forward` and the inference forward of :mod:`dynacell.segment.predict`).
        """
        skips = []
        for blk in self.down:
            x = blk(x)
            skips.append(x)
            x = self.pool(x)
        return self.middle(x), skips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, skips = self.encode(x)
        for conv, skip in zip(self.up_conv, reversed(skips)):
            x = nn.functional.interpolate(x, size=skip.shape[2:], mode=self._mode, align_corners=False)
            x = conv(torch.cat([x, skip], dim=1))
        return self.head(x)


#: Architecture names accepted by :func:`build_segmentation_model` and written in model cards.
SEGMENTATION_ARCHITECTURES: dict[str, type[nn.Module]] = {
    "seed-unet": SeedUNet,
    "seed-attention-unet": SelfAttentionUNet,
    "instance-unet": InstanceUNet,
}


def build_segmentation_model(architecture: str, **kwargs: Any) -> nn.Module:
    """Build a segmentation network by name.

    Parameters
    ----------
    architecture : str
        One of :data:`SEGMENTATION_ARCHITECTURES`.
    **kwargs
        Constructor arguments (as stored in a model card's ``model_kwargs``).

    Returns
    -------
    torch.nn.Module

    Raises
    ------
    InvalidInputError
        If the name is unknown.
    """
    if architecture not in SEGMENTATION_ARCHITECTURES:
        raise InvalidInputError(f"unknown segmentation architecture {architecture!r}; expected one of "
                                f"{', '.join(SEGMENTATION_ARCHITECTURES)}")
    return SEGMENTATION_ARCHITECTURES[architecture](**kwargs)
