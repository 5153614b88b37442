"""Tests of dynacell.models.runtime.inference_graph: PyTorch's optimised inference graph of a network."""

from __future__ import annotations

import copy

import pytest
import torch

from dynacell.errors import InvalidInputError
from dynacell.models import build_model
from dynacell.models import runtime
from dynacell.models.runtime import fuse_conv_bn, inference_graph


def _dcnet(ndim: int = 2, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = build_model("dcnet", ndim, in_channels=6, n_classes=3, width=4).eval()
    for m in net.modules():  # BatchNorms with statistics of their own, so the folding matters
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return fuse_conv_bn(net)


def _is_graph(g: torch.nn.Module) -> bool:
    return type(g).__name__ == "InferenceGraph" and isinstance(g.graph, torch.jit.ScriptModule)


@pytest.mark.parametrize("ndim", [2, 3])
def test_graph_gives_the_network_logits_at_any_batch_size(ndim: int) -> None:
    net = _dcnet(ndim)
    shape = (6, *([16] * ndim))
    graph = inference_graph(net, shape)
    assert _is_graph(graph)
    assert "mkldnn_convolution" in str(graph.graph.graph)  # oneDNN convolutions with prepacked weights
    for n in (1, 4, 7, 130):
        x = torch.rand(n, *shape)
        x[:, 3] = (x[:, 3] > 0.5).float()
        with torch.inference_mode():
            ref, got = net(x), graph(x)
        assert got.shape == ref.shape == (n, 3)
        assert float((got - ref).abs().max()) <= 1e-5 * max(1.0, float(ref.abs().max()))


def test_graph_is_made_once_per_weights() -> None:
    net = _dcnet(2)
    shape = (6, 16, 16)
    first = inference_graph(net, shape)
    assert inference_graph(copy.deepcopy(net), shape) is first  # the same weights: the cached graph
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.classifier.bias += 1.0
    changed = inference_graph(other, shape)
    assert changed is not first
    x = torch.rand(3, *shape)
    with torch.inference_mode():
        assert torch.allclose(changed(x), other(x), atol=1e-5)
        assert not torch.allclose(changed(x), net(x), atol=1e-3)
    assert inference_graph(net, (6, 24, 24)) is not first  # another input shape: another graph


class _FixedBatch(torch.nn.Module):
    """A network whose trace would bake the batch size of the example in."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x.reshape(int(x.shape[0]), -1)[:, :8])


class _NoTrace(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> dict:
        return {"logits": self.lin(x.flatten(1))}


@pytest.mark.parametrize("cls", [_FixedBatch, _NoTrace])
def test_network_the_graph_cannot_hold_is_returned_as_it_is(cls: type) -> None:
    torch.manual_seed(0)
    net = cls().eval()
    assert inference_graph(net, (8,)) is net


def test_training_mode_is_refused_and_other_devices_are_left_alone() -> None:
    net = _dcnet(2).train()
    with pytest.raises(InvalidInputError, match="training mode"):
        inference_graph(net, (6, 16, 16))
    net.eval()
    runtime._GRAPHS.clear()
    net.requires_grad_(True)
    assert _is_graph(inference_graph(net, (6, 16, 16)))
    assert all(p.requires_grad for p in net.parameters())  # the caller's network as it was
    off_cpu = copy.deepcopy(net).to("meta")
    assert inference_graph(off_cpu, (6, 16, 16)) is off_cpu


def test_the_graph_is_made_on_one_thread_and_the_thread_count_restored() -> None:
    net = _dcnet(2, seed=3)
    before = torch.get_num_threads()
    seen = []
    real = torch.jit.optimize_for_inference

    def spy(mod, *a, **k):
        seen.append(torch.get_num_threads())
        return real(mod, *a, **k)

    try:
        torch.set_num_threads(2)
        torch.jit.optimize_for_inference = spy
        graph = inference_graph(net, (6, 16, 16))
        assert _is_graph(graph) and seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.jit.optimize_for_inference = real
        torch.set_num_threads(before)
