"""Fixtures of the segmentation tests: synthetic nuclei images and a tiny model folder."""

from __future__ import annotations


import numpy as np
import pytest

def discs(shape=(96, 96), centres=((30, 30), (30, 48), (70, 60)), radius=10, seed=0):
    """Image (float32, bright discs + noise) and labels (int32) of discs; the first two touch."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, start=1):
        lab[((yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2) & (lab == 0)] = i
    img = np.where(lab > 0, 200.0, 10.0).astype(np.float32)
    from scipy import ndimage as ndi

    img = ndi.gaussian_filter(img, 1.0) + rng.normal(0, 3, shape).astype(np.float32)
    return img.astype(np.float32), lab


@pytest.fixture
def make_discs():
    """The :func:`discs` builder."""
    return discs


@pytest.fixture
def disc_image():
    """``(image, labels)`` of three discs of radius 10 px (two touching)."""
    return discs()


@pytest.fixture
def tiny_model(tmp_path):
    """A model folder with an untrained 2-level instance U-Net (plumbing tests only)."""
    import torch

    import dynacell
    from dynacell.cards import sha256_file, write_card
    from dynacell.models.unet import InstanceUNet
    from dynacell.segment.predict import SegmentationCard

    torch.manual_seed(0)
    kw = {"ndim": 2, "base_filters": 4, "depth": 2}
    net = InstanceUNet(**kw)
    folder = tmp_path / "tiny-model"
    folder.mkdir()
    torch.save(net.state_dict(), folder / "weights.pt")
    card = SegmentationCard(name="tiny", dynacell_version=getattr(dynacell, "__version__", "0"),
                            torch_version=torch.__version__, architecture="instance-unet", model_kwargs=kw,
                            n_parameters=sum(p.numel() for p in net.parameters()), ndim=2, training_data={},
                            split={}, metrics={}, config={}, seed=0, weights_sha256=sha256_file(folder / "weights.pt"),
                            target_diameter_px=24.0, postprocess={"foreground": 0.5, "seed_distance": 0.5,
                                                                  "min_size_px": 12},
                            classes=["background", "nucleus"])
    write_card(card, folder)
    return folder
