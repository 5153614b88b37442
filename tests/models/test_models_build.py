"""Tests of dynacell.models: the seed's baselines and dcnet, 2D and 3D."""

from __future__ import annotations

import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.models import MODEL_NAMES, build_model, count_parameters, model_channels


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("ndim", [2, 3])
def test_every_model_maps_crops_to_logits(name: str, ndim: int) -> None:
    torch.manual_seed(0)
    ch = len(model_channels(name))
    model = build_model(name, ndim, n_classes=3).eval()
    x = torch.rand(2, ch, *([16] * ndim))
    y = model(x)
    assert y.shape == (2, 3)
    assert torch.isfinite(y).all()


def test_seed_4ncnn_matches_the_seed_parameter_count() -> None:
    # SEEDS.md §1: 4ncnn has 71k parameters in 3D, ConvLSTM 236k.
    assert round(count_parameters(build_model("4ncnn", 3, n_classes=4)), -3) == 71_000
    assert round(count_parameters(build_model("convlstm", 3, n_classes=3)), -3) == 236_000


def test_seed_block_order_is_conv_relu_pool_bn() -> None:
    blocks = build_model("4ncnn", 2).features
    assert [type(m).__name__ for m in blocks[0]] == ["Conv2d", "ReLU", "MaxPool2d", "BatchNorm2d"]
    assert [b[0].out_channels for b in blocks] == [16, 32, 64]


def test_channels_per_model() -> None:
    assert model_channels("4ncnn") == (0, 1, 2, 3)
    assert model_channels("3ncnn") == (0, 1, 2)
    assert model_channels("cnn-only") == (1,)


def test_unknown_model_and_bad_channels_raise() -> None:
    with pytest.raises(InvalidInputError, match="4ncnn"):
        build_model("resnet9000", 2)
    with pytest.raises(InvalidInputError, match="reads 4 channels"):
        build_model("4ncnn", 2, in_channels=3)
    with pytest.raises(InvalidInputError, match="ndim"):
        build_model("4ncnn", 4)
    with pytest.raises(InvalidInputError, match="option"):
        build_model("dcnet", 2, not_an_option=1)


def test_dcnet_components_switch() -> None:
    full = build_model("dcnet", 2)
    no_mask_pool = build_model("dcnet", 2, mask_pool=False)
    assert full.classifier.in_features == 2 * no_mask_pool.classifier.in_features
    no_tdiff = build_model("dcnet", 2, temporal_diff=False)
    assert no_tdiff.stem[0].in_channels == 4 and full.stem[0].in_channels == 6


def test_dcnet_temporal_difference_sees_change() -> None:
    """With identical frames the difference channels are zero; a change in t+1 changes the output."""
    torch.manual_seed(0)
    model = build_model("dcnet", 2, n_classes=3).eval()
    x = torch.rand(1, 4, 16, 16)
    x[:, 0] = x[:, 1]
    x[:, 2] = x[:, 1]
    y0 = model(x)
    x2 = x.clone()
    x2[:, 2] = 0.0
    assert not torch.allclose(model(x2), y0)


def test_dcnet_anisotropic_3d_keeps_z_in_stem() -> None:
    model = build_model("dcnet", 3, anisotropic=True).eval()
    x = torch.rand(1, 4, 8, 16, 16)
    assert model.stem(torch.cat([x, x[:, :2]], 1)).shape[2] == 8
    assert model(x).shape == (1, 4)


def test_gradients_reach_first_layer() -> None:
    model = build_model("dcnet", 3, n_classes=2, width=4)
    loss = model(torch.rand(2, 4, 8, 8, 8)).sum()
    loss.backward()
    assert model.stem[0].weight.grad is not None and model.stem[0].weight.grad.abs().sum() > 0
