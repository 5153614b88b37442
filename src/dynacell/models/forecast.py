"""Forecasting networks: next frame from K frames, next positions from a short track history.

Pure :class:`torch.nn.Module` s (no I/O, no training code); inputs are already normalised.

Frames: input ``(B, K, Y, X)`` float32 (K past frames, oldest first), output ``(B, 1, Y, X)``, the
next frame.

* :class:`TinyCNN` — the project's forecasting seed: ``Conv3d(1→8, kernel (K, 3, 3))`` collapses
  time, then ``Conv2d 8→16 (3×3)``, ReLU, ``Conv2d 16→1 (1×1)``. ``velocity=True`` is the seed's
  velocity variant: the network predicts ``frame[t+1] − frame[t]`` and the last frame is added
  back (trained with an L1 loss in the seed).
* :class:`ResidualUNet` — dynacell's stronger model: a two-level U-Net on the K frames and their
  K − 1 differences that predicts a correction added to the last frame (residual learning), so
  that "no change" is its starting point.

Positions: input ``(B, L − 1, D)``, the L − 1 displacements (µm) between the last L positions of a
track; output ``(B, H, D)``, the next H displacements relative to the last position (µm).

* :class:`PositionTransformer` — the project's motion seed: a transformer encoder (2 layers,
  4 heads) over the sequence of a track's last steps with a linear read-out, MSE.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["FRAME_ARCHITECTURES", "POSITION_ARCHITECTURES", "PositionTransformer", "ResidualUNet", "TinyCNN"]


class TinyCNN(nn.Module):
    """The forecasting seed's TinyCNN: K frames → next frame.

    Parameters
    ----------
    k : int
        Number of input frames K.
    velocity : bool
        Predict the change ``frame[t+1] − frame[t]`` and add the last frame (the seed's velocity
        variant) instead of the frame itself.

    Notes
    -----
    Input ``(B, K, Y, X)`` float32, output ``(B, 1, Y, X)``. 72·K + 1193 parameters
    (1481 at K = 4).
    """

    def __init__(self, k: int = 4, velocity: bool = False) -> None:
        super().__init__()
        self.k = int(k)
        self.velocity = bool(velocity)
        self.enc = nn.Sequential(nn.Conv3d(1, 8, kernel_size=(self.k, 3, 3), padding=(0, 1, 1)), nn.ReLU())
        self.head = nn.Sequential(nn.Conv2d(8, 16, kernel_size=3, padding=1), nn.ReLU(), nn.Conv2d(16, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The Conv3d's kernel spans all K frames without temporal padding, so it equals a Conv2d over
        # K input channels with the same weights (8, 1, K, 3, 3) → (8, K, 3, 3): the same network and
        # parameters, about 20 % less CPU time than PyTorch's Conv3d (1024 × 1024, one thread).
        conv = self.enc[0]
        z = torch.relu(nn.functional.conv2d(x, conv.weight[:, 0], conv.bias, padding=1))
        out = self.head(z)
        return out + x[:, -1:] if self.velocity else out


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.GELU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.GELU())


class ResidualUNet(nn.Module):
    """Small U-Net that predicts the next frame as the last frame plus a learned correction.

    Parameters
    ----------
    k : int
        Number of input frames K (≥ 2).
    width : int
        Channels of the first level (doubled at the second and third levels).

    Notes
    -----
    Input ``(B, K, Y, X)`` float32; Y and X need not be multiples of 4 (the input is padded by
    reflection and the output cropped back). The network sees the K frames and the K − 1 frame
    differences; its last layer starts at zero, so an untrained network is persistence.
    """

    def __init__(self, k: int = 4, width: int = 16) -> None:
        super().__init__()
        if k < 2:
            raise ValueError(f"ResidualUNet needs k >= 2 frames, got {k}")
        self.k = int(k)
        w = int(width)
        self.e1 = _block(2 * self.k - 1, w)
        self.e2 = _block(w, 2 * w)
        self.e3 = _block(2 * w, 4 * w)
        self.pool = nn.AvgPool2d(2)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.d2 = _block(6 * w, 2 * w)
        self.d1 = _block(3 * w, w)
        self.out = nn.Conv2d(w, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        xin = torch.cat([x, x[:, 1:] - x[:, :-1]], dim=1)
        if ph or pw:
            xin = nn.functional.pad(xin, (0, pw, 0, ph), mode="reflect")
        a = self.e1(xin)
        b = self.e2(self.pool(a))
        c = self.e3(self.pool(b))
        b = self.d2(torch.cat([self.up(c), b], dim=1))
        a = self.d1(torch.cat([self.up(b), a], dim=1))
        return x[:, -1:] + self.out(a)[..., :h, :w]


class PositionTransformer(nn.Module):
    """The motion seed's transformer encoder for next positions of a track.

    Parameters
    ----------
    ndim : int
        Spatial dimensions D (2 or 3).
    seq_len : int
        Positions of history L (the seed uses 5); the network sees the L − 1 steps between them.
    horizon : int
        Future steps H predicted at once.
    d_model : int
        Embedding width.
    nhead : int
        Attention heads (the seed: 4).
    num_layers : int
        Encoder layers (the seed: 2).
    residual : bool
        Add an *anchor* forecast to the network's output, so that the network learns a
        correction to it (dynacell's variant); False = the seed's plain read-out.
    anchor : {"velocity", "linear"}
        The anchor of ``residual=True``. ``"velocity"``: constant velocity, the last step repeated
        (``h · step``). ``"linear"``: a learned linear combination of the L − 1 history steps per
        horizon, the same weights on every axis (so it turns with the track), ``anchor.weight`` of
        shape (H, L − 1); it starts at constant velocity and holds constant position (all zero),
        constant velocity and the steady-state Kalman forecast as special cases. Training may set it
        by least squares first (:meth:`set_anchor`); the read-out then starts at zero, so the
        untrained network *is* the anchor.

    Notes
    -----
    Input ``(B, L − 1, D)`` displacements in µm; output ``(B, H, D)`` cumulative displacements
    from the last position (µm). Learned positional embedding; the read-out uses the last token,
    so in eval mode the last encoder layer is computed for that token only (same outputs as the
    full encoder, about 30 % fewer operations: the batched forecasts of many tracks).

    Raises
    ------
    ValueError
        For an unknown ``anchor``.
    """

    def __init__(self, ndim: int = 2, seq_len: int = 5, horizon: int = 1, d_model: int = 32, nhead: int = 4,
                 num_layers: int = 2, residual: bool = False, anchor: str = "velocity") -> None:
        super().__init__()
        if anchor not in ("velocity", "linear"):
            raise ValueError(f"anchor must be 'velocity' or 'linear', got {anchor!r}")
        self.ndim, self.seq_len, self.horizon, self.residual = int(ndim), int(seq_len), int(horizon), bool(residual)
        self.anchor_name = anchor
        self.embed = nn.Linear(self.ndim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, self.seq_len - 1, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, self.horizon * self.ndim)
        self.anchor = None
        if self.residual and anchor == "linear":
            self.anchor = nn.Linear(self.seq_len - 1, self.horizon, bias=False)
            with torch.no_grad():
                self.anchor.weight.zero_()
                self.anchor.weight[:, -1] = torch.arange(1, self.horizon + 1, dtype=torch.float32)

    def set_anchor(self, weight: torch.Tensor) -> None:
        """Set the linear anchor's weights (H, L − 1) and zero the read-out: the network becomes the anchor.

        Parameters
        ----------
        weight : torch.Tensor, shape (H, L − 1)
            ``weight[h, i]`` multiplies history step ``i`` (oldest first) in the displacement
            ``h + 1`` frames ahead (e.g. from
            :func:`dynacell.train.forecast.least_squares_anchor`).

        Raises
        ------
        ValueError
            If the network has no linear anchor or the shape is wrong.
        """
        if self.anchor is None:
            raise ValueError("set_anchor needs residual=True and anchor='linear'")
        w = torch.as_tensor(weight, dtype=self.anchor.weight.dtype)
        if tuple(w.shape) != tuple(self.anchor.weight.shape):
            raise ValueError(f"anchor weight must have shape {tuple(self.anchor.weight.shape)}, got {tuple(w.shape)}")
        with torch.no_grad():
            self.anchor.weight.copy_(w)
            self.head.weight.zero_()
            self.head.bias.zero_()

    def _last_token(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output of the last token only (what the read-out uses), shape (B, d_model).

        The layers before the last run in full; the last one attends from the last token alone and
        runs its feed-forward block on that token only — the same arithmetic as the full encoder for
        that token (post-norm layer, no dropout at inference) with about 30 % fewer operations.
        """
        layers = self.encoder.layers
        for layer in layers[:-1]:
            x = layer(x)
        last = layers[-1]
        q = x[:, -1:]
        y = last.norm1(q + last.self_attn(q, x, x, need_weights=False)[0])
        y = last.norm2(y + last.linear2(last.activation(last.linear1(y))))
        return y[:, 0]

    def forward(self, steps: torch.Tensor) -> torch.Tensor:
        x = self.embed(steps) + self.pos
        if self.training or self.encoder.norm is not None or self.encoder.layers[-1].norm_first:
            z = self.encoder(x)[:, -1]
        else:
            z = self._last_token(x)
        out = self.head(z).view(-1, self.horizon, self.ndim)
        if self.anchor is not None:
            out = out + self.anchor(steps.transpose(1, 2)).transpose(1, 2)
        elif self.residual:
            h = torch.arange(1, self.horizon + 1, dtype=steps.dtype, device=steps.device).view(1, -1, 1)
            out = out + h * steps[:, -1:, :]
        return out


#: Frame-forecasting networks by architecture name (the ``architecture`` field of a model card).
FRAME_ARCHITECTURES = {"tinycnn": TinyCNN, "residual-unet": ResidualUNet}
#: Position-forecasting networks by architecture name.
POSITION_ARCHITECTURES = {"position-transformer": PositionTransformer}
