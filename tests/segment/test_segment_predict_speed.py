"""Inference speed-ups keep the outputs: channels-last networks (2D and 3D) and the torch resampling."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import small_embryo_3d

from dynacell.segment.predict import Segmenter, segment_frame


def _scipy_linear(a, shape):
    """The former resampling (``scipy.ndimage.zoom``, order 1, corner-aligned), edge read with ``nearest``."""
    from scipy import ndimage as ndi

    out = ndi.zoom(np.asarray(a, np.float32), np.asarray(shape) / np.asarray(a.shape), order=1, grid_mode=False,
                   mode="nearest")
    return out[tuple(slice(0, n) for n in shape)]


@pytest.mark.parametrize(("shape", "out"), [((37, 50), (63, 17)), ((40, 41), (40, 96)),
                                            ((9, 30, 28), (23, 16, 37)), ((31, 61, 29), (80, 82, 39))])
def test_resize_linear_is_scipy_zoom(shape, out):
    from dynacell.segment.predict import _resize_linear

    a = np.random.default_rng(0).random(shape, dtype=np.float32)
    got = _resize_linear(a, out)
    assert got.shape == out and got.dtype == np.float32
    np.testing.assert_allclose(got, _scipy_linear(a, out), atol=2e-5)
    np.testing.assert_array_equal(_resize_linear(a, shape), a)


def test_zoomed_shape_rounds_as_scipy():
    from scipy import ndimage as ndi

    from dynacell.segment.predict import _zoomed_shape

    for shape, zoom in [((71, 180, 247), (1.309, 0.551, 0.551)), ((31, 61, 29), (2.5695, 1.33615, 1.33615)),
                        ((1024, 1024), (0.3993, 0.3993))]:
        assert _zoomed_shape(shape, np.asarray(zoom)) == ndi.zoom(np.zeros(shape, np.float32), zoom, order=0).shape


def _contiguous_copy(seg):
    import copy

    import torch

    net = copy.deepcopy(seg.net).to(memory_format=torch.contiguous_format)
    return Segmenter(net, seg.card, seg.folder)


def test_channels_last_3d_network_and_labels_unchanged(monkeypatch):
    """The shipped 3D model in channels-last layout: the maps of the plain layout (float tolerance), and the
    same labels as the former path (plain layout, SciPy resampling) on a small synthetic embryo."""
    import torch

    from dynacell.segment import predict

    seg = Segmenter.from_pretrained("nuclei-seg-3d")
    assert seg.net.down[0][0].weight.is_contiguous(memory_format=torch.channels_last_3d)
    res = small_embryo_3d(5)
    img = np.asarray(res.images[0])
    new = segment_frame(img, seg, voxel_size_um=(1.5, 0.5, 0.5), nucleus_diameter_px=16.0)
    plain = _contiguous_copy(seg)
    x = predict.normalize_image(img)[:, ::2, ::2].copy()
    for k, v in seg.predict_maps(x).items():
        np.testing.assert_allclose(v, plain.predict_maps(x)[k], atol=1e-4)
    monkeypatch.setattr(predict, "_resize_linear", _scipy_linear)
    monkeypatch.setattr(predict, "_channels_last", lambda ndim: torch.contiguous_format)
    old = segment_frame(img, plain, voxel_size_um=(1.5, 0.5, 0.5), nucleus_diameter_px=16.0)
    assert old.max() >= 4
    np.testing.assert_array_equal(new, old)


def test_2d_labels_unchanged_with_flips(monkeypatch, make_discs):
    """The shipped 2D model with 4 flips: same labels as the former path on synthetic discs resampled ×0.5."""
    import torch

    from dynacell.segment import predict

    img, _ = make_discs(shape=(160, 176), centres=((50, 50), (50, 96), (110, 120)), radius=24)
    seg = Segmenter.from_pretrained("nuclei-seg-2d")
    new = segment_frame(img, seg, nucleus_diameter_px=48.0)
    monkeypatch.setattr(predict, "_resize_linear", _scipy_linear)
    monkeypatch.setattr(predict, "_channels_last", lambda ndim: torch.contiguous_format)
    old = segment_frame(img, _contiguous_copy(seg), nucleus_diameter_px=48.0)
    assert old.max() == 3
    np.testing.assert_array_equal(new, old)


def test_auto_segmenter_is_the_learned_model_of_the_movie_dimension(tmp_path):
    """``dynacell run``'s ``auto``: nuclei-seg-3d for a 3D movie (nuclei found on a rendered embryo)."""
    from dynacell.io.movie import Movie
    from dynacell.metrics.segmentation import object_scores
    from dynacell.segment.select import DEFAULT_2D, DEFAULT_3D, segment_for_run

    assert (DEFAULT_2D, DEFAULT_3D) == ("nuclei-seg-2d-fast", "nuclei-seg-3d")
    res = small_embryo_3d(11)
    movie = Movie(np.asarray(res.images), "TZYX", voxel_size_um=(1.5, 0.5, 0.5), source="embryo")
    labels, name, notes = segment_for_run(movie, "auto", tmp_path, test_time_flips=1)
    assert name == "nuclei-seg-3d" and "learned segmenter nuclei-seg-3d" in notes[0]
    ref = np.asarray(res.labels[0])
    assert object_scores(ref, np.asarray(labels.frame(labels.frame_indices[0])))["tp@0.5"] >= len(np.unique(ref)) - 2


@pytest.mark.parametrize("ndim", [2, 3])
def test_concat_free_forward_is_the_network(ndim):
    """The decoder convolutions split along their input channels give the logits of ``net(x)``."""
    import torch

    from dynacell.models.runtime import fuse_conv_bn
    from dynacell.models.unet import InstanceUNet
    from dynacell.segment.predict import _ConcatFreeUNet

    torch.manual_seed(0)
    net = InstanceUNet(ndim=ndim, base_filters=4, depth=3)
    for m in net.modules():  # non-trivial BatchNorms, folded into biased convolutions as at load
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.bias.data.uniform_(-0.2, 0.2)
    fuse_conv_bn(net.eval())
    x = torch.randn(2, 1, *([16] * (ndim - 2)), 24, 32)
    with torch.inference_mode():
        want = net(x)
        got = _ConcatFreeUNet(net)(x)
    assert got.shape == want.shape == (2, 3, *x.shape[2:])
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    seg = Segmenter(net, Segmenter.from_pretrained("nuclei-seg-3d" if ndim == 3 else "nuclei-seg-2d").card, ".")
    assert isinstance(seg.forward, _ConcatFreeUNet) and seg.forward is seg.forward


def test_auto_3d_without_voxel_size_says_so(tmp_path, monkeypatch):
    """A 3D model on a movie of unknown voxel size assumed cubic voxels: the notes say so (2D: no such note)."""
    from dynacell.io.movie import Movie
    from dynacell.segment import predict
    from dynacell.segment.select import segment_for_run

    def fake(images, model, **_):
        return Movie(np.zeros(images.shape, np.int32), images.axes, voxel_size_um=images.voxel_size_um,
                     metadata={"segmenter": model.name, "warnings": [], "nucleus_diameter_px": 10.0})

    monkeypatch.setattr(predict, "segment_movie", fake)
    vol = Movie(np.zeros((1, 4, 16, 16), np.float32), "TZYX", source="x")
    notes = segment_for_run(vol, "auto", tmp_path / "a")[2]
    assert any(n.startswith("Voxel size unknown: nuclei-seg-3d") for n in notes)
    vol = Movie(np.zeros((1, 4, 16, 16), np.float32), "TZYX", voxel_size_um=(2.0, 0.5, 0.5), source="x")
    assert not any("Voxel size unknown" in n for n in segment_for_run(vol, "auto", tmp_path / "b")[2])
    flat = Movie(np.zeros((1, 16, 16), np.float32), "TYX", source="x")
    assert not any("Voxel size unknown" in n for n in segment_for_run(flat, "auto", tmp_path / "c")[2])
