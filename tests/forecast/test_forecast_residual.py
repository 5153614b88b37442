"""The learned residual on top of ``frames-mc-linear`` and the coarse chaining of its flows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.forecast import MotionCompensatedForecaster
from dynacell.forecast.frames import make_windows
from dynacell.forecast.motion import upsample_flow
from dynacell.forecast.residual import McResidualForecaster, mc_residual_inputs
from dynacell.models.forecast_residual import McResidualUNet


def test_untrained_network_is_the_mc_linear_forecast(make_blob):
    movie = make_blob(n_frames=9, size=30, speed_px=1.0, sigma=3.0)
    mc = MotionCompensatedForecaster().fit(movie, range(4, 7))
    fc = McResidualForecaster(McResidualUNet(k=4, width=4, levels=3), mc)
    x, _ = make_windows(movie, 4, [7, 8])
    np.testing.assert_allclose(fc.predict(x), mc.predict(x), atol=1e-6)  # 30 px: padded to 32 and cropped back
    inp = mc_residual_inputs(mc, x[0])
    assert inp.shape == (5, 30, 30) and inp.dtype == np.float32
    np.testing.assert_array_equal(inp[1], x[0, -1])  # channel 1 is frame t itself
    assert fc.rollout(movie[:4], 2).shape == (2, 30, 30)
    with pytest.raises(InvalidInputError):
        fc.predict(x[:, :3])
    with pytest.raises(ValueError):
        McResidualUNet(levels=4)


def test_network_output_is_its_first_channel_plus_a_correction():
    net = McResidualUNet(k=3, width=4, levels=2)
    torch.nn.init.constant_(net.out.bias, 0.25)
    x = torch.rand(2, 4, 17, 9)
    y = net(x)
    assert y.shape == (2, 1, 17, 9)
    torch.testing.assert_close(y, x[:, :1] + 0.25)


def test_training_learns_a_correction_mc_linear_misses():
    from dynacell.train.engine import EngineConfig
    from dynacell.train.forecast import train_mc_residual

    rng = np.random.default_rng(0)

    def item():  # the true next frame is the mc forecast made brighter where frame t is bright
        x = rng.random((5, 16, 16), dtype=np.float32)
        return x, (x[0] + 0.5 * x[1]).astype(np.float32), 1.0

    train = [item() for _ in range(16)]
    val = [item() for _ in range(4)]
    val = [(x, y, 1.0 / (len(val) * float(np.mean((x[0] - y) ** 2)))) for x, y, _ in val]
    fit = train_mc_residual(train, val, width=4, patch=16, patches_per_epoch=64, batch_size=8, lr=1e-2,
                            engine=EngineConfig(max_epochs=4, patience=4, accelerator="cpu", devices=1),
                            progress=False)
    assert fit.best_score < 0.5  # validation MSE relative to mc-linear (1 = the untrained network)


def test_coarse_chaining_gives_the_same_flows_with_fewer_full_resolution_warps(make_blob, monkeypatch):
    from dynacell.forecast import motion

    movie = make_blob(n_frames=4, size=48, speed_px=1.0, sigma=4.0)
    fine = MotionCompensatedForecaster(flow_downsample=2, flow_compose_coarse=False)
    coarse = MotionCompensatedForecaster(flow_downsample=2)  # the default
    shapes = []
    real = motion.warp_by_flow_f32
    monkeypatch.setattr(motion, "warp_by_flow_f32", lambda im, v: shapes.append(im.shape) or real(im, v))
    a = [fine._cached_flow(movie, 3, n) for n in (1, 2, 3)]
    assert shapes and all(s == (48, 48) for s in shapes)  # chained at full resolution
    shapes.clear()
    b = [coarse._cached_flow(movie, 3, n) for n in (1, 2, 3)]
    assert shapes and all(s == (24, 24) for s in shapes)  # chained at the flows' half resolution
    for n in (1, 2, 3):
        assert b[n - 1].shape == (2, 48, 48)
        assert b[n - 1][1, 22:27, 12:19].mean() == pytest.approx(-0.8 * n, abs=0.2)  # on the spot (TV-L1 ~0.8 px/frame)
        assert np.abs(a[n - 1] - b[n - 1])[:, 8:40, 8:40].mean() < 0.1
    np.testing.assert_allclose(upsample_flow(np.ones((2, 3, 3), np.float32), 4, (10, 11)), 4.0)
