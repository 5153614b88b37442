"""Helpers shared by the test modules (importable as ``_helpers``: ``pythonpath = ["tests"]``).

Test modules never import each other; what several of them need lives here or in ``conftest.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import tifffile
import yaml

from dynacell import STATES
from dynacell.cli.main import main
from dynacell.io.movie import Movie

__all__ = ["synthetic_set", "state_card", "FixedClassifier", "make_tiny_model", "make_live_dead_model", "run_main",
           "synthetic_movie", "_ctc_folder", "division_lineage", "load_benchmark"]


def division_lineage(n_frames: int = 8, split: int = 3, daughters=((30, 30), (30, 30))):
    """Mother 1 at (y, x) = (30, 30) over frames 0..split, daughters 2 and 3 at ``daughters`` from split+1 on::

        (0,1) ─ ... ─ (split,1) ─┬─ (split+1,2) ─ ... ─ (n-1,2)
                                 └─ (split+1,3) ─ ... ─ (n-1,3)
    """
    from dynacell.lineage.graph import Lineage

    lin = Lineage(n_frames=n_frames)
    for t in range(split + 1):
        lin.add_node((t, 1), centroid=(0, 30, 30))
        if t:
            lin.add_edge((t - 1, 1), (t, 1))
    for t in range(split + 1, n_frames):
        for lab, pos in zip((2, 3), daughters, strict=True):
            lin.add_node((t, lab), centroid=(0, *pos))
            lin.add_edge((t - 1, 1 if t == split + 1 else lab), (t, lab))
    return lin


def synthetic_movie(T: int = 6, size: int = 64, seed: int = 0, ndim: int = 2):
    """Images and labels ``(T, [Z,] Y, X)`` of nucleus A (static) and B (divides after frame 2)."""
    rng = np.random.default_rng(seed)
    if ndim == 2:
        grid = np.mgrid[:size, :size]
        shape = (size, size)
    else:
        grid = np.mgrid[:8, :size, :size]
        shape = (8, size, size)
    imgs = np.zeros((T, *shape), np.float32)
    labs = np.zeros((T, *shape), np.uint16)
    for t in range(T):
        cells = [(20, 20)] + ([(44, 44)] if t <= 2 else [(44, 34), (44, 54)])
        ids = rng.permutation(np.arange(1, 10))[:len(cells)]
        for (cy, cx), lab in zip(cells, ids, strict=True):
            d = (grid[-2] - cy) ** 2 + (grid[-1] - cx) ** 2
            if ndim == 3:
                d = d + 4 * (grid[0] - 4) ** 2
            labs[t][d <= 25] = lab
            imgs[t] += 100 * np.exp(-d / 30)
    imgs += rng.normal(0, 2, imgs.shape).astype(np.float32)
    axes = "TYX" if ndim == 2 else "TZYX"
    return Movie(imgs, axes, source="synthetic"), Movie(labs, axes, source="synthetic-labels")


class FixedClassifier:
    """A stand-in state classifier: the same probabilities for every crop (stable most likely; p_mitotic and
    p_new_daughter at 0.2, not below the division check's default contradiction threshold)."""

    classes = STATES
    crop_size = (16, 16)
    name = "fixed"

    def __init__(self, proba=(0.55, 0.2, 0.2, 0.05), ndim: int = 2):
        self.proba = np.asarray(proba, dtype=float)
        self.ndim = ndim
        self.crop_size = (16,) * ndim
        self.card = {"name": "fixed", "ndim": ndim}
        self.n_calls = 0

    def predict_proba(self, x):
        self.n_calls += 1
        assert x.shape[1:] == (4, *self.crop_size)  # test double: checks the crop contract
        return np.tile(self.proba, (len(x), 1))


def run_main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run ``dynacell <args>`` through ``main()``; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["dynacell", "-q", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def _ctc_folder(root, T=12, split_at=5):
    """A tiny CTC sequence: ``01/tTTT.tif`` + ``01_GT/TRA`` (48×64 px) with one division after frame ``split_at`` (5).

    ::

        track 1: t0 ── t5 ─┬─ track 2: t6 ── t11
                           └─ track 3: t6 ── t11
        track 4: t0 ─────────────────────── t11
    """
    img_dir, tra = root / "01", root / "01_GT" / "TRA"
    img_dir.mkdir(parents=True)
    tra.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in range(T):
        lab = np.zeros((48, 64), np.uint16)
        if t <= split_at:
            lab[10:18, 10:18] = 1
        else:
            lab[6:12, 8:14] = 2
            lab[16:22, 14:20] = 3
        lab[30:38, 40:48] = 4
        img = rng.integers(0, 30, lab.shape).astype(np.uint16) + (lab > 0) * 300
        tifffile.imwrite(img_dir / f"t{t:03d}.tif", img.astype(np.uint16))
        tifffile.imwrite(tra / f"man_track{t:03d}.tif", lab)
    (tra / "man_track.txt").write_text(
        f"1 0 {split_at} 0\n2 {split_at + 1} {T - 1} 1\n3 {split_at + 1} {T - 1} 1\n4 0 {T - 1} 0\n")
    return img_dir, tra


def make_tiny_model(folder, ndim: int, size: int = 16):
    """An untrained 4ncnn model folder (weights.pt + model.yaml) for ``ndim``-D crops of ``size`` px."""
    import torch

    from dynacell.models import build_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_model("4ncnn", ndim, n_classes=len(STATES))
    torch.save(model.state_dict(), folder / "weights.pt")
    from dynacell.cards import sha256_file

    card = state_card(name=f"tiny-untrained-{ndim}d", architecture="4ncnn", classes=list(STATES), ndim=ndim,
                      crop_size_px=[size] * ndim, weights_sha256=sha256_file(folder / "weights.pt"))
    (folder / "model.yaml").write_text(yaml.safe_dump(card))
    return folder


def make_live_dead_model(folder, dead_bias: float = 0.0):
    """An untrained tiny background/live/dead segmentation model folder (seed self-attention U-Net).

    ``dead_bias`` is added to the dead logit (a large value makes every nucleus pixel dead).
    """
    import torch

    import dynacell
    from dynacell.cards import sha256_file, write_card
    from dynacell.models.unet import build_segmentation_model
    from dynacell.segment.predict import SegmentationCard

    torch.manual_seed(0)
    kw = {"base_filters": 4, "depth": 2}
    net = build_segmentation_model("seed-attention-unet", **kw)
    with torch.no_grad():
        net.head.bias[2] += float(dead_bias)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "weights.pt")
    card = SegmentationCard(name="tiny-live-dead", dynacell_version=getattr(dynacell, "__version__", "0"),
                            torch_version=torch.__version__, architecture="seed-attention-unet", model_kwargs=kw,
                            n_parameters=sum(p.numel() for p in net.parameters()), ndim=2, training_data={"sim": {}},
                            split={}, metrics={}, config={}, seed=0, weights_sha256=sha256_file(folder / "weights.pt"),
                            target_diameter_px=24.0, postprocess={"foreground": 0.5, "seed_distance": 0.5,
                                                                  "min_size_px": 12},
                            classes=["background", "live", "dead"])
    write_card(card, folder)
    return folder


def state_card(**fields) -> dict:
    """A complete, valid state model card (``model.yaml`` dict) for test model folders; ``fields`` override."""
    card = {"name": "test-model", "task": "states", "format_version": 1, "dynacell_version": "test",
            "torch_version": "test", "architecture": "4ncnn", "model_kwargs": {}, "n_parameters": 0,
            "ndim": 2, "training_data": {"files": []}, "split": {"by": "none"}, "metrics": {"test": {}},
            "config": {}, "weights_sha256": "", "classes": list(STATES),
            "channels": ["t-1", "t", "t+1", "mask"], "model_channels": [0, 1, 2, 3], "crop_size_px": [16, 16],
            "normalization": "per-crop percentiles", "temperature": 1.0}
    card.update(fields)
    return card


def _blob(size: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2)).astype(np.float32)


def synthetic_set(n_per_class: int = 40, size: int = 16, seed: int = 0):
    """Stable: one blob in t−1, t, t+1; mitotic: one blob then two at t+1; new_daughter: big blob at t−1 then small."""
    from dynacell.samples import SampleSet

    rng = np.random.default_rng(seed)
    c = size / 2
    xs, rows = [], []
    for k, state in enumerate(["stable", "mitotic", "new_daughter"]):
        for i in range(n_per_class):
            j = rng.normal(0, 0.5, 2)
            big = _blob(size, c + j[0], c + j[1], 3.0)
            if state == "stable":
                frames = [big, big, big]
            elif state == "mitotic":
                two = _blob(size, c - 4, c, 1.5) + _blob(size, c + 4, c, 1.5)
                frames = [big, big, two]
            else:
                small = _blob(size, c + j[0], c + j[1], 1.5)
                frames = [big, small, small]
            x = np.stack(frames + [(frames[1] > 0.5).astype(np.float32)])
            x[:3] += rng.normal(0, 0.03, x[:3].shape).astype(np.float32)
            xs.append(x)
            rows.append({"dataset": "synth" if i % 4 else "synth-b", "t": i % 20, "label": i + 1,
                         "track_id": 1000 * k + i, "tree_id": 1000 * k + i, "state": state,
                         "z": 0.0, "y": c, "x": c})
    return SampleSet(np.stack(xs), pd.DataFrame(rows), {"normalization": "synthetic", "voxel_size_um": [0.5, 0.5]})


def load_benchmark(name: str) -> ModuleType:
    """The script ``benchmarks/<name>.py`` loaded as a module (the benchmarks folder is not a package).

    The folder is on ``sys.path`` while the script loads, for scripts that import a sibling (``from track import``).
    """
    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(folder))
    return mod


def small_embryo_3d(seed: int = 5):
    """A one-frame simulated 3D embryo of 5 nuclei (radius 4 µm, voxel 1.5 × 0.5 × 0.5 µm, 40 / 10 photons).

    Returns the :func:`dynacell.simulate.simulate_embryo` result (``images``, ``labels``: ``(1, Z, Y, X)``).
    """
    from dynacell.simulate import simulate_embryo

    return simulate_embryo(ndim=3, n_start=5, n_frames=1, radius_um=4.0, division_rate_per_frame=0.0,
                           voxel_size_um=(1.5, 0.5, 0.5), photons=40.0, background_photons=10.0, seed=seed,
                           progress=False)
