"""Networks that read the diffusion coefficient from a single-molecule image stack.

Every network takes a normalised stack ``x`` of shape ``(B, T, Y, X)`` (float32; see
:func:`dynacell.diffusion.preprocess.normalise_stacks`) and a condition vector ``cond`` of shape
``(B, N_COND)`` (PSF size in pixels and exposure fraction, see
:func:`dynacell.diffusion.preprocess.condition_features`) and returns ``(B, 2)``: the mean and
the log-variance of a Gaussian over ``log(D * frame_interval / pixel_size**2)`` (D in pixels² per
frame, dimensionless), trained with the Gaussian negative log-likelihood.

- :class:`ParkCNN`: the plain CNN with Swish activations of Park et al. 2023 (*Commun. Biol.*
  6:336, "Pix2D"), frames as input channels, as the single-molecule seed project used it.
- :class:`ResNet2D`: a small 2D ResNet with the frames as channels (the seed project's ResNet-2D).
- :class:`BlurNet`: our own: a crop follows the spot from frame to frame; one small 2D CNN shared
  by every frame reads the blur of the spot (its size and elongation) and refines its position
  (soft-argmax); the per-frame features are mixed over time by 1D convolutions and pooled, and the
  mean squared displacements of the positions at lags 1, 2 and 4 frames are added, so the head
  sees both the blur inside each frame and the motion between frames.

Pure ``nn.Module`` s: no I/O, no training code.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["N_COND", "BlurNet", "ParkCNN", "ResNet2D", "build_diffusion_model"]

#: Length of the condition vector every network takes.
N_COND = 2


def _head(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in + N_COND, hidden), nn.SiLU(), nn.Linear(hidden, 2))


class ParkCNN(nn.Module):
    """Park et al. (2023) CNN: 3×3 convolutions, batch norm, Swish, max pooling, dense head.

    Parameters
    ----------
    n_frames : int
        Frames of the stack (input channels).
    width : int
        Channels of the first block (doubled after each pooling).
    """

    def __init__(self, n_frames: int = 16, width: int = 32) -> None:
        super().__init__()
        w = int(width)

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())

        self.features = nn.Sequential(
            block(n_frames, w), block(w, w), nn.MaxPool2d(2),
            block(w, 2 * w), block(2 * w, 2 * w), nn.MaxPool2d(2),
            block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = _head(4 * w, 64)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, T, Y, X)``, ``(B, N_COND)`` → ``(B, 2)`` (mean, log-variance of log D)."""
        return self.head(torch.cat([self.features(x), cond], dim=1))


class _Basic(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResNet2D(nn.Module):
    """A small ResNet (basic blocks, ReLU) with the frames as input channels.

    Parameters
    ----------
    n_frames : int
        Frames of the stack (input channels).
    width : int
        Channels of the first stage (doubled at each of the two later, strided stages).
    """

    def __init__(self, n_frames: int = 16, width: int = 24) -> None:
        super().__init__()
        w = int(width)
        self.stem = nn.Sequential(nn.Conv2d(n_frames, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.stages = nn.Sequential(_Basic(w, w, 1), _Basic(w, 2 * w, 2), _Basic(2 * w, 4 * w, 2))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = _head(4 * w, 64)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, T, Y, X)``, ``(B, N_COND)`` → ``(B, 2)`` (mean, log-variance of log D)."""
        return self.head(torch.cat([self.pool(self.stages(self.stem(x))), cond], dim=1))


class BlurNet(nn.Module):
    """Per-frame blur features on a crop that follows the spot, and its motion, mixed over time.

    Parameters
    ----------
    width : int
        Channels of the per-frame encoder's first layer (then ``2 width`` and ``3 width``).
    crop : int
        Side of the square crop (odd, pixels) cut around the spot in every frame.
    lags : tuple of int
        Frame lags of the position mean squared displacements given to the head.

    Notes
    -----
    1. Follow the spot: each frame is smoothed by a fixed Gaussian (sigma 1.5 pixels); a
       ``crop × crop`` window is cut around the brightest pixel of the sum of that frame smoothed
       over time (weights 1/4, 1/2, 1/4 on the previous, same and next frame, the ends repeated)
       and the time-average of the smoothed stack (the frame is zero-padded, so the window may
       overhang the border). The time terms keep the window on the molecule at a peak SNR of
       2–5, where the brightest pixel of a single frame is often a noise peak (on simulated
       stacks at SNR 2–5 the window centre missed the molecule by more than 3 pixels in 16–21 %
       of the frames when it followed single frames, under 6 % with the time terms). This keeps
       the cost per frame small on a CPU.
    2. Frame encoder (shared by all frames): conv 3×3 → GELU → conv 3×3 → BN → GELU; a 1-channel
       heat map whose spatial softmax refines the spot's position inside the crop (soft-argmax);
       a strided conv block, then average + max pooling: the blur features of the frame.
    3. Time mixer: two 1D convolutions (kernel 3) over the frames, mean and max pooled.
    4. Head: MLP on [time features, log mean squared displacement of the positions
       (crop origin + soft-argmax) at ``lags``, condition].
    """

    def __init__(self, width: int = 12, crop: int = 15, lags: tuple[int, ...] = (1, 2, 4)) -> None:
        super().__init__()
        w = int(width)
        if int(crop) % 2 != 1:
            raise ValueError(f"BlurNet: crop must be odd, got {crop}")
        self.crop = int(crop)
        self.lags = tuple(int(v) for v in lags)
        r = torch.arange(-4, 5, dtype=torch.float32)
        g = torch.exp(-(r**2) / (2 * 1.5**2))
        self.register_buffer("smooth", (g / g.sum()).reshape(1, 1, 1, 9), persistent=False)
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, padding=1), nn.GELU(),
                                  nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w), nn.GELU())
        self.heat = nn.Conv2d(2 * w, 1, 3, padding=1)
        self.down = nn.Sequential(nn.Conv2d(2 * w, 3 * w, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(3 * w), nn.GELU())
        f = 6 * w
        self.time = nn.Sequential(nn.Conv1d(f, f, 3, padding=1), nn.GELU(), nn.Conv1d(f, f, 3, padding=1), nn.GELU())
        self.head = _head(2 * f + len(self.lags), 96)

    def _follow(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Crops ``(B*T, 1, c, c)`` and their origins ``(B*T, 2)`` (pixels) of stacks ``(B, T, Y, X)``.

        The window of frame ``t`` is centred on the brightest pixel of
        ``smooth_t/2 + (smooth_{t-1} + smooth_{t+1})/4 + mean_t(smooth)`` (see the class notes).
        """
        B, T, Y, X = x.shape
        N = B * T
        frames = x.reshape(N, Y, X)
        c, h = self.crop, self.crop // 2
        with torch.no_grad():
            f = frames[:, None]
            sm = nn.functional.conv2d(nn.functional.pad(f, (4, 4, 0, 0), mode="replicate"), self.smooth)
            sm = nn.functional.conv2d(nn.functional.pad(sm, (0, 0, 4, 4), mode="replicate"),
                                      self.smooth.transpose(2, 3)).reshape(B, T, Y, X)
            ends = torch.cat([sm[:, :1], sm, sm[:, -1:]], dim=1)
            score = 0.5 * sm + 0.25 * (ends[:, :-2] + ends[:, 2:]) + sm.mean(dim=1, keepdim=True)
            idx = score.reshape(N, Y * X).argmax(dim=1)
            cy, cx = idx // X, idx % X
        padded = nn.functional.pad(frames, (h, h, h, h))
        off = torch.arange(c, device=frames.device)
        rows = (cy[:, None] + off[None, :])[:, :, None].expand(N, c, c)
        cols = (cx[:, None] + off[None, :])[:, None, :].expand(N, c, c)
        n_idx = torch.arange(N, device=frames.device)[:, None, None].expand(N, c, c)
        crops = padded[n_idx, rows, cols][:, None]
        origin = torch.stack([cy - h, cx - h], dim=1).to(frames.dtype)
        return crops, origin

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, T, Y, X)``, ``(B, N_COND)`` → ``(B, 2)`` (mean, log-variance of log D)."""
        B, T = x.shape[:2]
        crops, origin = self._follow(x)
        h = self.stem(crops)
        c = self.crop
        p = torch.softmax(self.heat(h).reshape(B * T, c * c), dim=1).reshape(B * T, c, c)
        ar = torch.arange(c, dtype=x.dtype, device=x.device)
        pos = origin + torch.stack([(p.sum(2) * ar).sum(1), (p.sum(1) * ar).sum(1)], dim=-1)
        pos = pos.reshape(B, T, 2)
        msd = [torch.log(((pos[:, k:] - pos[:, :-k]) ** 2).sum(-1).mean(1) + 1e-2) for k in self.lags if k < T]
        msd += [torch.zeros(B, dtype=x.dtype, device=x.device)] * (len(self.lags) - len(msd))
        d = self.down(h)
        feat = torch.cat([d.mean(dim=(2, 3)), d.amax(dim=(2, 3))], dim=1).reshape(B, T, -1).transpose(1, 2)
        t = self.time(feat)
        pooled = torch.cat([t.mean(2), t.amax(2)], dim=1)
        return self.head(torch.cat([pooled, torch.stack(msd, dim=1), cond], dim=1))


_ARCH = {"park-cnn": ParkCNN, "resnet2d": ResNet2D, "blurnet": BlurNet}


def build_diffusion_model(architecture: str, **kwargs) -> nn.Module:
    """Build a diffusion network by name: ``"park-cnn"``, ``"resnet2d"`` or ``"blurnet"``.

    Parameters
    ----------
    architecture : str
        The network's name.
    **kwargs
        Arguments of the network's constructor.

    Returns
    -------
    torch.nn.Module
        The untrained network.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the known ones).
    """
    try:
        cls = _ARCH[architecture]
    except KeyError:
        raise KeyError(f"unknown diffusion architecture {architecture!r}; known: {sorted(_ARCH)}") from None
    return cls(**kwargs)
