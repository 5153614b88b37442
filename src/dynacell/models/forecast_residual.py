"""Learned correction on top of the motion-compensated linear forecast (``frames-mc-residual``).

A pure :class:`torch.nn.Module` (no I/O, no training code). Its input is what
:class:`dynacell.forecast.motion.MotionCompensatedForecaster` computes for one window: the
``frames-mc-linear`` forecast and the K past frames moved onto the last one by optical flow.
It returns that forecast plus a correction; its last layer starts at zero, so an untrained
network *is* ``frames-mc-linear`` (issue 14, step 3: a learned residual on top of it).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["McResidualUNet"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GELU(), nn.Conv2d(cout, cout, 3, padding=1), nn.GELU())


class McResidualUNet(nn.Module):
    """Small U-Net predicting ``frame[t + 1] − frames-mc-linear forecast``, added back to the forecast.

    Parameters
    ----------
    k : int
        Frames per window K (≥ 2); the input has K + 1 channels.
    width : int
        Channels of the first level (doubled at each coarser level).
    levels : int
        Resolution levels (2 or 3; each coarser level halves Y and X by average pooling).

    Raises
    ------
    ValueError
        For k < 2 or levels not in (2, 3).

    Notes
    -----
    Input ``(B, K + 1, Y, X)`` float32, intensities normalised per movie (0.5 / 99.9 percentiles of
    its training frames → 0 / 1): channel 0 the ``frames-mc-linear`` forecast ``m``, channels
    1 .. K the aligned past frames ``a_0 = frame t, a_1, ..., a_{K−1}`` (newest first; from
    :func:`dynacell.forecast.motion.align_window`). The network sees ``m``, ``a_0``, ``m − a_0`` and
    ``a_j − a_0`` (j ≥ 1): K + 2 maps. Output ``(B, 1, Y, X)`` float32: ``m`` plus the correction.
    Y and X need not be multiples of 2^(levels − 1) (padded by reflection, cropped back). No
    normalisation layers, so patches and whole frames are treated alike.
    """

    def __init__(self, k: int = 4, width: int = 12, levels: int = 2) -> None:
        super().__init__()
        if k < 2:
            raise ValueError(f"McResidualUNet needs k >= 2 frames, got {k}")
        if levels not in (2, 3):
            raise ValueError(f"McResidualUNet has 2 or 3 levels, got {levels}")
        self.k, self.levels = int(k), int(levels)
        w = int(width)
        chans = [w * 2 ** i for i in range(self.levels)]
        self.enc = nn.ModuleList([_block(self.k + 2, chans[0])] +
                                 [_block(chans[i - 1], chans[i]) for i in range(1, self.levels)])
        self.dec = nn.ModuleList([_block(chans[i] + chans[i + 1], chans[i]) for i in range(self.levels - 1)])
        self.pool = nn.AvgPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.out = nn.Conv2d(chans[0], 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m, a0 = x[:, :1], x[:, 1:2]
        z = torch.cat([m, a0, m - a0, x[:, 2:] - a0], dim=1)
        mult = 2 ** (self.levels - 1)
        ph, pw = (-h) % mult, (-w) % mult
        if ph or pw:
            z = nn.functional.pad(z, (0, pw, 0, ph), mode="reflect")
        skips = []
        for i, enc in enumerate(self.enc):
            z = enc(z if i == 0 else self.pool(z))
            skips.append(z)
        for i in reversed(range(self.levels - 1)):
            z = self.dec[i](torch.cat([skips[i], self.up(z)], dim=1))
        return m + self.out(z)[..., :h, :w]
