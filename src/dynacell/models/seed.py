"""The seed's nucleus state classifiers, rebuilt as baselines.

Source: The seed's repository (dineshchhantyal/3d-cnn-classification,
``model/4ncnn`` and ``model/rnn``). The seed used 3D crops ``32³``; here every model also
exists in 2D (``Conv2d``) for 2D+t movies.

- ``4ncnn``: 4 channels ``[t−1, t, t+1, mask]`` → three blocks
  ``Conv(k=3, pad 1) → ReLU → MaxPool(2) → BatchNorm`` with 16/32/64 filters → global
  average pooling → Dropout(0.1) → Linear. 71,444 parameters in 3D with 4 classes (the
  seed reports 71k).
- ``3ncnn``: the same network on the 3 raw channels (no mask); ``cnn-only``: frame ``t`` only.
- ``convlstm``: the same two first blocks applied to each frame ``t−1, t, t+1`` (shared
  weights), a convolutional LSTM cell (Shi et al. 2015, NeurIPS, "Convolutional LSTM
  Network") with 32 hidden channels run over the three encoded frames, global average
  pooling of the last hidden state, Dropout(0.1), Linear. The seed's digest gives only the
  parameter count (236k); this layout gives 235,811 parameters in 3D with 3 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from dynacell.models.layers import batchnorm_nd, check_ndim, conv_nd, maxpool_nd

__all__ = ["SeedCNN", "ConvLSTMCell", "SeedConvLSTM"]


def _seed_block(ndim: int, c_in: int, c_out: int) -> nn.Sequential:
    """``Conv(k=3, pad=1) → ReLU → MaxPool(2) → BatchNorm``, the seed's block order."""
    return nn.Sequential(
        conv_nd(ndim)(c_in, c_out, kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        maxpool_nd(ndim)(2),
        batchnorm_nd(ndim)(c_out),
    )


class SeedCNN(nn.Module):
    """The seed's 4ncnn / 3ncnn / CNN-only classifier.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality of the crops.
    in_channels : int
        4 for 4ncnn (``[t−1, t, t+1, mask]``), 3 for 3ncnn, 1 for CNN-only.
    n_classes : int
        Number of output classes.
    widths : tuple of int
        Filters of the three blocks (seed: 16, 32, 64).
    dropout : float
        Dropout before the linear layer (seed: 0.1).

    Notes
    -----
    Input ``(N, in_channels, [Z,] Y, X)`` float32, output logits ``(N, n_classes)`` float32.
    Every spatial size works (global average pooling); the seed used 32³.
    """

    def __init__(self, ndim: int, in_channels: int = 4, n_classes: int = 4,
                 widths: tuple[int, ...] = (16, 32, 64), dropout: float = 0.1) -> None:
        super().__init__()
        check_ndim(ndim)
        blocks, c = [], in_channels
        for w in widths:
            blocks.append(_seed_block(ndim, c, w))
            c = w
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of crops ``x`` ``(N, C, [Z,] Y, X)``."""
        f = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(f))


class ConvLSTMCell(nn.Module):
    """A convolutional LSTM cell (Shi et al. 2015): LSTM gates computed by one convolution.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    in_channels, hidden_channels : int
        Input and hidden-state channels.
    kernel_size : int
        Gate convolution kernel (padding keeps the size).
    """

    def __init__(self, ndim: int, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = conv_nd(ndim)(in_channels + hidden_channels, 4 * hidden_channels,
                                   kernel_size=kernel_size, padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: input ``(N, C_in, *S)``, state ``(h, c)`` each ``(N, C_h, *S)``; returns new ``(h, c)``."""
        if state is None:
            zeros = x.new_zeros((x.shape[0], self.hidden_channels, *x.shape[2:]))
            state = (zeros, zeros)
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class SeedConvLSTM(nn.Module):
    """The seed's ConvLSTM baseline over the frames ``t−1, t, t+1``.

    Parameters
    ----------
    ndim : {2, 3}
        Spatial dimensionality.
    in_channels : int
        Number of time steps (3: ``t−1, t, t+1``), one channel each.
    n_classes : int
        Number of output classes.
    hidden_channels : int
        ConvLSTM hidden channels (32).
    dropout : float
        Dropout before the linear layer (0.1).

    Notes
    -----
    Input ``(N, T, [Z,] Y, X)`` float32 with the time steps as channels; output logits
    ``(N, n_classes)``.
    """

    def __init__(self, ndim: int, in_channels: int = 3, n_classes: int = 4,
                 hidden_channels: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        check_ndim(ndim)
        self.encoder = nn.Sequential(_seed_block(ndim, 1, 16), _seed_block(ndim, 16, hidden_channels))
        self.cell = ConvLSTMCell(ndim, hidden_channels, hidden_channels)
        self.pool = nn.AdaptiveAvgPool2d(1) if ndim == 2 else nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, n_classes)`` of frame stacks ``x`` ``(N, T, [Z,] Y, X)``."""
        n, steps = x.shape[:2]
        enc = self.encoder(x.reshape(n * steps, 1, *x.shape[2:]))
        enc = enc.reshape(n, steps, *enc.shape[1:])
        state = None
        for s in range(steps):
            state = self.cell(enc[:, s], state)
        f = self.pool(state[0]).flatten(1)
        return self.classifier(self.dropout(f))
