"""Diffusion networks: shapes, size, and BlurNet's crop that follows the spot."""

import pytest
import torch

from dynacell.models.diffusion import N_COND, BlurNet, build_diffusion_model


@pytest.mark.parametrize("name,kw", [("park-cnn", {"n_frames": 16}), ("resnet2d", {"n_frames": 16}), ("blurnet", {})])
def test_output_shape_and_small(name, kw):
    torch.manual_seed(0)
    net = build_diffusion_model(name, **kw).eval()
    out = net(torch.randn(3, 16, 32, 32), torch.zeros(3, N_COND))
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    assert sum(p.numel() for p in net.parameters()) < 1_000_000


def test_unknown_architecture():
    with pytest.raises(KeyError, match="known"):
        build_diffusion_model("vit")


def test_blurnet_crop_follows_the_spot():
    net = BlurNet(crop=7)
    frames = torch.zeros(2, 1, 20, 24)
    frames[0, 0, 5, 17] = 10.0
    frames[1, 0, 0, 0] = 10.0  # at the corner the window overhangs (zero padding)
    crops, origin = net._follow(frames)
    assert crops.shape == (2, 1, 7, 7)
    assert origin.tolist() == [[2.0, 14.0], [-3.0, -3.0]]
    assert crops[0, 0].argmax().item() == 3 * 7 + 3 and crops[1, 0, 3, 3] > 0


def test_blurnet_crop_stays_on_a_dim_spot_despite_a_noise_peak():
    """A faint static spot in every frame beats a brighter one-frame noise peak (the time terms)."""
    net = BlurNet(crop=7)
    x = torch.zeros(1, 8, 24, 24)
    x[0, :, 6, 6] = 3.0
    x[0, 4, 18, 18] = 8.0  # a single-frame noise peak, brighter than the spot in that frame
    crops, origin = net._follow(x)
    assert origin[4].tolist() == [3.0, 3.0]
    assert crops[4, 0, 3, 3] == 3.0
