"""Forecast networks, training through the engine, model folders and the shipped models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dynacell.errors import FormatError, InvalidInputError
from dynacell.forecast import (
    FrameForecaster,
    PositionForecaster,
    available_models,
    from_folder,
    from_pretrained,
    history_windows,
)
from dynacell.models.forecast import PositionTransformer, ResidualUNet, TinyCNN


def test_tinycnn_is_the_seed_network():
    net = TinyCNN(k=4)
    assert sum(p.numel() for p in net.parameters()) == 72 * 4 + 1193 == 1481
    x = torch.rand(2, 4, 20, 24)
    assert net(x).shape == (2, 1, 20, 24)
    vel = TinyCNN(k=4, velocity=True)
    with torch.no_grad():
        for p in vel.head[-1].parameters():
            p.zero_()
    torch.testing.assert_close(vel(x), x[:, -1:])
    with torch.no_grad():  # the fast Conv2d form equals the seed's Conv3d
        z = net.enc(x[:, None]).squeeze(2)
        torch.testing.assert_close(net(x), net.head(z))


def test_untrained_residual_unet_is_persistence_on_odd_sizes():
    net = ResidualUNet(k=3, width=8).eval()
    x = torch.rand(1, 3, 21, 30)
    with torch.no_grad():
        torch.testing.assert_close(net(x), x[:, -1:])
    with pytest.raises(ValueError):
        ResidualUNet(k=1)


def test_position_transformer_shapes_and_residual():
    net = PositionTransformer(ndim=3, seq_len=5, horizon=2, residual=True)
    steps = torch.ones(4, 4, 3)
    out = net(steps)
    assert out.shape == (4, 2, 3)
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
        torch.testing.assert_close(net(steps)[:, 1], 2 * steps[:, -1])


@pytest.mark.parametrize("name", ["positions-2d", "positions-3d"])
def test_eval_forward_of_the_last_token_equals_the_full_encoder(name):
    net = from_pretrained(name).net
    steps = torch.randn(64, net.seq_len - 1, net.ndim)
    with torch.no_grad():
        fast = net.eval()(steps)
        full = net.train()(steps)  # dropout is 0: training mode runs the full encoder, same arithmetic
        net.eval()
    assert not torch.equal(fast, torch.zeros_like(fast))
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


def test_linear_anchor_starts_at_constant_velocity_and_can_be_set():
    steps = torch.randn(6, 4, 2)
    net = PositionTransformer(ndim=2, seq_len=5, horizon=2, residual=True, anchor="linear")
    w = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.0, 0.2, 0.4, 0.6]])
    net.set_anchor(w)
    with torch.no_grad():
        torch.testing.assert_close(net(steps), torch.einsum("hi,bid->bhd", w, steps))
    with pytest.raises(ValueError):
        net.set_anchor(torch.zeros(3, 4))
    with pytest.raises(ValueError):
        PositionTransformer(residual=True, anchor="kalman")
    with pytest.raises(ValueError):
        PositionTransformer(residual=True).set_anchor(w)
    fresh = PositionTransformer(ndim=2, seq_len=5, horizon=2, residual=True, anchor="linear")
    torch.testing.assert_close(fresh.anchor.weight[:, -1], torch.tensor([1.0, 2.0]))


def test_least_squares_anchor_recovers_a_linear_rule():
    from dynacell.train.forecast import least_squares_anchor

    rng = np.random.default_rng(0)
    past = np.cumsum(rng.normal(size=(200, 5, 2)), axis=1)
    steps = np.diff(past, axis=1)
    w = np.array([0.0, 0.1, 0.2, 0.5])
    future = past[:, -1:] + np.einsum("i,nid->nd", w, steps)[:, None]
    np.testing.assert_allclose(least_squares_anchor(past, future)[0], w, atol=1e-9)
    with pytest.raises(InvalidInputError):
        least_squares_anchor(past[:0], future[:0])


@pytest.mark.slow
def test_train_positions_writes_a_loadable_folder(tmp_path, make_tracks):
    from dynacell.train.engine import EngineConfig
    from dynacell.train.forecast import PositionTrainConfig, TrackSpec, train_positions

    csv = tmp_path / "tracks.csv"
    make_tracks(n_tracks=30, n_frames=12, noise=0.3).to_csv(csv, index=False)
    cfg = PositionTrainConfig(name="tiny", datasets=[TrackSpec(name="syn", path=str(csv))], d_model=8,
                              engine=EngineConfig(max_epochs=1, monitor="val_ade_um", mode="min"))
    res = train_positions(cfg, tmp_path / "model", progress=False)
    test = res["metrics"]["test"]["syn"]
    assert {"model", "constant_position", "constant_velocity", "kalman"} <= set(test)
    m = from_folder(tmp_path / "model")
    assert isinstance(m, PositionForecaster) and m.card.seed == 0 and m.card.split["by"].startswith("lineage tree")
    past = history_windows(make_tracks(), history=5, horizon=1)["past"]
    assert m.predict(past, horizon=3).shape == (len(past), 3, 2)
    with pytest.raises(InvalidInputError, match="histories"):
        m.predict(past[:, :3])
    (tmp_path / "model" / "weights.pt").write_bytes(b"not weights")
    with pytest.raises(FormatError, match="SHA-256"):
        from_folder(tmp_path / "model")


@pytest.mark.slow
def test_untrained_least_squares_anchored_model_is_the_linear_forecast(tmp_path, make_tracks):
    from dynacell.train.engine import EngineConfig
    from dynacell.train.forecast import (
        PositionTrainConfig,
        TrackSpec,
        least_squares_anchor,
        train_positions,
    )

    csv = tmp_path / "tracks.csv"
    make_tracks(n_tracks=30, n_frames=12, noise=0.3).to_csv(csv, index=False)
    cfg = PositionTrainConfig(name="tiny", datasets=[TrackSpec(name="syn", path=str(csv))], d_model=8, lr=0.0,
                              anchor="linear", anchor_init="least_squares", loss="euclidean", balance_datasets=True,
                              engine=EngineConfig(max_epochs=1, monitor="val_ade_um", mode="min"))
    train_positions(cfg, tmp_path / "model", progress=False)
    m = from_folder(tmp_path / "model")
    assert m.card.model_kwargs["anchor"] == "linear"
    past = history_windows(make_tracks(n_tracks=30, n_frames=12, noise=0.3), history=5, horizon=1)["past"]
    w = m.net.anchor.weight.detach().numpy().astype(float)
    expected = past[:, -1] + np.einsum("i,nid->nd", w[0], np.diff(past, axis=1))
    np.testing.assert_allclose(m.predict(past)[:, 0], expected, atol=1e-4)
    assert not np.allclose(w[0], [0, 0, 0, 1])  # fitted, not the constant-velocity start
    assert least_squares_anchor(past[:, :-1], past[:, -1:]).shape == (1, 3)


@pytest.mark.slow
def test_train_frames_writes_a_loadable_folder(tmp_path, make_blob):
    from dynacell.train.engine import EngineConfig
    from dynacell.train.forecast import FrameTrainConfig, MovieSpec, train_frames

    movie = (make_blob(n_frames=14, size=32) * 200).astype(np.uint16)
    np.savez(tmp_path / "m.npz", images=movie)
    cfg = FrameTrainConfig(name="tiny", architecture="tinycnn", k=3, movies=[MovieSpec(name="m", path=str(tmp_path / "m.npz"))],
                           patch=16, patches_per_epoch=8, batch_size=4,
                           engine=EngineConfig(max_epochs=1, monitor="val_mse", mode="min"))
    res = train_frames(cfg, tmp_path / "fm", progress=False)
    t = res["metrics"]["test"]["m"]
    assert {"mse", "mse_persistence", "mse_smoothed_persistence", "mse_linear", "mse_flow", "com_error_px"} <= set(t)
    fm = from_folder(tmp_path / "fm")
    assert isinstance(fm, FrameForecaster) and fm.k == 3
    assert fm.rollout(movie.astype(np.float32) / 200, 2).shape == (2, 32, 32)


@pytest.mark.parametrize("name", available_models())
def test_shipped_models_load_and_report_baselines(name):
    m = from_pretrained(name)
    assert (m.path / "weights.pt").stat().st_size < 2_000_000
    test = m.card.metrics["test"]
    assert test, "a shipped model reports held-out metrics"
    for res in test.values():
        base = ("persistence", "flow") if isinstance(m, FrameForecaster) else ("constant_velocity", "kalman")
        assert all(b in res for b in base)


def test_unknown_model_name_lists_the_shipped_ones():
    with pytest.raises(InvalidInputError, match="no shipped forecast model .no-such-model.; shipped: .*positions"):
        from_pretrained("no-such-model")
