"""Test-time BatchNorm adaptation (AdaBN): dynacell.states.adapt."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from dynacell.errors import InvalidInputError
from dynacell.states.adapt import adapt_batchnorm, adapt_classifier


def _threshold_net(mean: float, var: float) -> nn.Module:
    """Class 1 iff an image's mean is above the training mean: conv (identity) → BatchNorm → average → ±1."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1)
    lin = nn.Linear(1, 2)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        bn.running_mean.fill_(mean)
        bn.running_var.fill_(var)
        lin.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        lin.bias.zero_()
    return nn.Sequential(conv, bn, nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin).eval()


def _images(n: int, gain: float, offset: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose mean is 0 ± 1 (class from its sign), then a covariate shift ``gain · x + offset``."""
    rng = np.random.default_rng(seed)
    level = rng.standard_normal(n)
    x = level[:, None, None, None] + 0.3 * rng.standard_normal((n, 1, 8, 8))
    return (gain * x + offset).astype(np.float32), (level > 0).astype(int)


def _accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def test_adabn_undoes_a_synthetic_covariate_shift() -> None:
    x_src, y_src = _images(400, 1.0, 0.0, seed=0)
    net = _threshold_net(float(x_src.mean()), float(x_src.var()))
    assert _accuracy(net, x_src, y_src) > 0.95
    x_new, y_new = _images(400, 3.0, 5.0, seed=1)  # brighter, more contrast: every image looks "above the mean"
    assert _accuracy(net, x_new, y_new) < 0.6
    adapted = adapt_batchnorm(net, x_new, batch_size=64)
    assert _accuracy(adapted, x_new, y_new) > 0.95
    bn, bn0 = adapted[1], net[1]
    assert bn.running_mean.item() == pytest.approx(float(x_new.mean()), abs=0.05)  # the movie's own statistics
    assert bn.running_var.item() == pytest.approx(float(x_new.var()), rel=0.1)
    assert bn0.running_mean.item() == pytest.approx(float(x_src.mean()))  # the original is untouched
    # alpha blends the two estimates linearly; alpha 0 gives back the original outputs
    half = adapt_batchnorm(net, x_new, alpha=0.5, batch_size=64)[1]
    assert half.running_mean.item() == pytest.approx(0.5 * (bn.running_mean.item() + bn0.running_mean.item()), rel=1e-5)
    assert half.running_var.item() == pytest.approx(0.5 * (bn.running_var.item() + bn0.running_var.item()), rel=1e-5)
    same = adapt_batchnorm(net, x_new, alpha=0.0)
    with torch.no_grad():
        torch.testing.assert_close(same(torch.from_numpy(x_new)), net(torch.from_numpy(x_new)))
    assert bn.momentum == bn0.momentum and not adapted.training


def test_adapt_errors() -> None:
    x, _ = _images(10, 1.0, 0.0, seed=0)
    net = _threshold_net(0.0, 1.0)
    with pytest.raises(InvalidInputError, match="alpha"):
        adapt_batchnorm(net, x, alpha=1.5)
    with pytest.raises(InvalidInputError, match="at least 2"):
        adapt_batchnorm(net, x[:1])
    with pytest.raises(InvalidInputError, match="no BatchNorm"):
        adapt_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1)), x)


def test_adapted_classifier_folds_the_new_statistics() -> None:
    """A dcnet state classifier adapted to shifted crops predicts with the adapted (then folded) BatchNorms."""
    from dynacell.models import build_model
    from dynacell.states.registry import StateClassifier

    torch.manual_seed(0)
    net = build_model("dcnet", 2, in_channels=4, n_classes=3, width=4).eval()
    card = SimpleNamespace(name="dcnet (untrained)", architecture="dcnet", temperature=1.0,
                           classes=["stable", "mitotic", "new_daughter"], ndim=2, crop_size_px=[16, 16],
                           model_channels=[0, 1, 2, 3], target_voxel_um=None)
    clf = StateClassifier(net, card, path=None)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    crops = (4.0 * rng.random((50, 4, 16, 16)) + 2.0).astype(np.float32)
    before = clf.predict_logits(crops)
    ad = adapt_classifier(clf, crops, alpha=1.0, batch_size=16)
    after = ad.predict_logits(crops)  # folded on CPU
    with torch.no_grad():
        unfolded = ad.model.eval()(torch.from_numpy(crops)).numpy()
    np.testing.assert_allclose(after, unfolded, atol=1e-4)
    assert np.abs(after - before).max() > 1e-2  # the statistics changed the outputs
    np.testing.assert_allclose(clf.predict_logits(crops), before)  # the original classifier is unchanged
    stem_bn = ad.model.stem[1]
    with torch.no_grad():  # the first BatchNorm's new mean is the mean of its input over the movie's crops
        xin = torch.from_numpy(crops)
        xin = torch.cat([xin, xin[:, 2:3] - xin[:, 1:2], xin[:, 1:2] - xin[:, 0:1]], 1)
        feat = net.stem[0](xin)
    np.testing.assert_allclose(stem_bn.running_mean.numpy(), feat.mean((0, 2, 3)).numpy(), rtol=1e-3, atol=1e-4)
    with pytest.raises(InvalidInputError):
        adapt_classifier(clf, crops[:, :, :8, :8])


def test_balanced_weights_keep_a_label_shifted_movie_right() -> None:
    """A movie of the training appearance but 90 % one class: plain AdaBN drags the statistics to that
    class (and miscalls it), re-weighting by the model's own calls keeps them where training had them."""
    rng = np.random.default_rng(3)
    y = (rng.random(1000) < 0.1).astype(int)  # 10 % class 1 (training batches: 50 %)
    level = np.where(y == 1, 1.0, -1.0) + 0.6 * rng.standard_normal(1000)
    x = (level[:, None, None, None] + 0.3 * rng.standard_normal((1000, 1, 8, 8))).astype(np.float32)
    net = _threshold_net(0.0, 1.4)  # the balanced training mixture's statistics
    assert _accuracy(net, x, y) > 0.9
    plain = adapt_batchnorm(net, x, batch_size=100)
    assert _accuracy(plain, x, y) < 0.85
    with torch.no_grad():
        calls = net(torch.from_numpy(x)).argmax(1).numpy()
    balanced = adapt_batchnorm(net, x, batch_size=100, weights=1.0 / np.bincount(calls)[calls])
    assert _accuracy(balanced, x, y) > 0.9
    assert abs(balanced[1].running_mean.item()) < 0.2 < abs(plain[1].running_mean.item())
    with pytest.raises(InvalidInputError, match="weights"):
        adapt_batchnorm(net, x, weights=np.zeros(len(x)))
