"""Inference of the learned nucleus segmenters: model folders, frames, movies, sanity checks.

- :class:`SegmentationCard` — the model card of a segmentation model folder.
- :class:`Segmenter` — a loaded network with its card; :meth:`Segmenter.from_pretrained` (a
  shipped model, e.g. ``nuclei-seg-2d``) or :meth:`Segmenter.from_folder`.
- :func:`segment_frame` — one frame: normalise, resample so nuclei are the trained size
  (nucleus-size rule, estimated from the image when not given), one forward pass (frames over
  1024 model pixels a side: MONAI's ``sliding_window_inference``, Gaussian-weighted overlapping
  tiles), seeded watershed at model scale
  (:func:`dynacell.segment.learned.instances_from_maps`), labels resized back to the frame.
- :func:`segment_movie` — every frame of a :class:`~dynacell.io.movie.Movie`, streamed frame by
  frame into a zarr store (memory flat in ``T``), with the sanity check
  :func:`check_segmentation`. ``model="classical"`` runs :mod:`dynacell.segment.classical`.

This module never imports :mod:`dynacell.train`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dynacell.cards import ModelCard
from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.segment.learned import (
    PostprocessParams,
    cut_outlines_by_object,
    estimate_nucleus_diameter_px,
    instances_from_maps,
    lateral_diameters_px,
    normalize_image,
)

__all__ = [
    "DEFAULT_MODEL",
    "PRETRAINED_DIR",
    "SegmentationCard",
    "Segmenter",
    "SIZE_SEARCH_STEPS",
    "SIZE_WARNING_FACTOR",
    "TRAINING_FRACTION",
    "blob_size_px",
    "calibrate_size_search",
    "check_segmentation",
    "confident_size_px",
    "estimate_nucleus_diameter_for_model",
    "iter_segment",
    "background_level",
    "looks_like_fluorescence",
    "looks_like_phase_contrast",
    "maps_from_logits",
    "maps_to_instances",
    "modality_warning",
    "polarity_normalised",
    "segment_frame",
    "segment_movie",
    "size_estimate_px",
    "searches_size",
    "size_warning",
    "training_fraction_for",
    "fraction_range_factor",
    "CARD_FRACTION_FACTOR",
    "tune_postprocess",
    "volume_weighted_median",
    "window_plan",
]

logger = logging.getLogger(__name__)

#: Folder of the shipped segmentation models.
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"

#: The default learned segmenter of ``dynacell segment`` and ``dynacell run``.
DEFAULT_MODEL = "nuclei-seg-2d-fast"

#: Model-scale voxels a 3D frame may have for one network pass (256³); a larger one is tiled in windows of at most
#: :data:`TILE_3D_VOXELS` ³ voxels (:func:`window_plan`), one at a time, so the memory of a 3D segmentation stays
#: bounded. Measured 2026-12-02 with ``nuclei-seg-3d``, 1 thread, on a 190 × 322 × 570 model-scale volume (a rendered
#: C. elegans frame tiled 2 × 2), with the cubic windows used before :func:`window_plan`: one pass 7.1 GB peak,
#: 72 CPU-s; windows of 192: 3.4 GB, 87 CPU-s; windows of 160: 2.8 GB, 162 CPU-s
#: (SEG 0.339 / 0.340 / 0.342). Below the budget nothing changes (one pass, as before).
MAX_ONE_PASS_VOXELS_3D = 256 ** 3

#: Side (model voxels) of the windows of a 3D frame beyond :data:`MAX_ONE_PASS_VOXELS_3D`: a window holds at most
#: ``TILE_3D_VOXELS ** 3`` voxels, shaped by :func:`window_plan` to the frame.
TILE_3D_VOXELS = 192

#: Least overlap (model voxels) of neighbouring 3D windows: two trained nucleus diameters (``nuclei-seg-3d``: 12
#: voxels). Measured 2026-12-02 on rendered C. elegans frames 220 and 250 (one thread): 24 voxels 58.6 / 58.1 CPU-s,
#: 48 voxels 72.5 / 72.5, for the same SEG to ±0.015 and the same agreement with an untiled pass (foreground IoU
#: 0.978 / 0.963 against 0.977 / 0.970).
WINDOW_OVERLAP_3D_VOXELS = 24


class SegmentationCard(ModelCard):
    """Model card of a segmentation model (``model.yaml``).

    Attributes
    ----------
    task : "segmentation"
    target_diameter_px : float
        Nucleus diameter (model pixels) every frame is resampled to (nucleus-size rule).
    postprocess : dict
        :class:`~dynacell.segment.learned.PostprocessParams` fields, tuned on the validation side.
    classes : list of str
        Semantic classes of the output (``background, nucleus`` or ``background, live, dead``).
    modality : {"fluorescence", "phase-contrast"}
        Imaging modality the model was trained on. A ``phase-contrast`` model sees the normalised frame
        inverted (``1 − x``: cells darker than the background become bright, as fluorescent nuclei
        are), in training and at inference (:func:`polarity_normalised`).
    test_time_flips : int
        Probability maps averaged over this many flipped copies of the frame (1: none; 2: also
        rotated by 180°; 4: also flipped left-right and up-down; a 3D model on a 3D frame also
        reverses z: 2 = the point reflection), chosen on the validation frames; see
        :meth:`Segmenter.predict_maps`.
    outline_shifts : int
        1 (off), 2 or 4: on a frame shrunk to model scale by a lateral zoom of at most
        ``outline_shifts ** -0.5`` (so all copies together cost no more than one network pass at the
        frame's own size), the foreground probability that cuts the resized-back outlines is the mean
        of this many copies, run on grids shifted laterally by half a model pixel (:data:`_OUTLINE_SHIFTS`,
        :func:`_shifted_foreground`); the instances are those of the first copy. 2D model on a 2D frame,
        or 3D model on a 3D frame (the extra copies one pass each without flips, in the box of the
        first copy's nuclei). Chosen on the validation frames (``nuclei-seg-2d-fast``: 2; see its card).
    outline_sigma_model : float
        0 (off), or the Gaussian σ in **model** voxels of the foreground map resized back to the frame
        before the outline cut (σ / zoom frame voxels per axis, so a nucleus is smoothed by the same
        fraction of its size on every frame; the cut stays at ``postprocess.outline_foreground`` or,
        when that is 0, ``postprocess.foreground``). Replaces ``postprocess.outline_sigma_px`` (frame
        voxels) when set.
    training_size_estimate_px : tuple of float, optional
        ``(min, max)`` of the image-based size estimate (:func:`size_estimate_px`, as this model reads
        a frame) over its training frames; a new movie whose estimate falls far outside it gets
        :func:`size_warning` (``cells-seg-2d-phc``: 31.1 px on every bacteria-phc 01 frame 0–40).
        None: no check.
    size_search : {"blob", "confidence"}
        How :func:`size_estimate_px` reads a new frame's cell size: ``"blob"`` (default), the scale-space
        blob estimate alone; ``"confidence"``, the blob estimate refined by :func:`confident_size_px` (the
        model is run at several sizes and the one it is most confident at is kept; 2D frames only).
    size_search_calibration : float
        Factor applied to the size :func:`confident_size_px` finds: the median, over the model's own
        training frames, of the size it is run at on them (the blob estimate its post-processing was tuned
        at, ``training_size_estimate_px``) divided by the size the search reads on them (the network is most
        confident slightly below that scale). 1.0: none.
    training_fraction : tuple of float, optional
        Range of the segmented fraction (cell pixels / all pixels) of the model's own training and
        validation reference masks; :func:`training_fraction_for` prefers it to :data:`TRAINING_FRACTION`
        (``cells-seg-2d-phc``: 0.0018–0.078, its reference masks of bacteria-phc 01 frames 0–40 —
        0.0019–0.077 — rounded outward; a colony growing from a few cells in a large field).
    """

    task: Literal["segmentation"] = "segmentation"
    target_diameter_px: float
    postprocess: dict[str, Any]
    classes: list[str]
    modality: Literal["fluorescence", "phase-contrast"] = "fluorescence"
    test_time_flips: Literal[1, 2, 4] = 1
    outline_shifts: Literal[1, 2, 4] = 1
    outline_sigma_model: float = 0.0
    training_size_estimate_px: tuple[float, float] | None = None
    size_search: Literal["blob", "confidence"] = "blob"
    size_search_calibration: float = 1.0
    training_fraction: tuple[float, float] | None = None


def maps_from_logits(architecture: str, logits: np.ndarray) -> dict[str, np.ndarray]:
    """Probability maps from network logits ``(C, ...)``.

    Parameters
    ----------
    architecture : str
        ``instance-unet`` (channels foreground, boundary, distance), ``seed-unet`` (one
        foreground channel) or ``seed-attention-unet`` (background, live, dead).
    logits : numpy.ndarray
        float ``(C, (Z), Y, X)``.

    Returns
    -------
    dict
        float32 maps ``((Z), Y, X)``: ``foreground`` always; ``boundary`` and ``distance``
        (instance-unet); ``dead`` (seed-attention-unet: probability of the dead class).
    """
    z = np.asarray(logits, dtype=np.float32)
    sig = lambda a: 1.0 / (1.0 + np.exp(-np.clip(a, -30, 30)))
    if architecture == "instance-unet":
        return {"foreground": sig(z[0]), "boundary": sig(z[1]), "distance": sig(z[2])}
    if architecture == "seed-unet":
        return {"foreground": sig(z[0])}
    e = np.exp(z - z.max(0, keepdims=True))
    p = e / e.sum(0, keepdims=True)
    return {"foreground": 1.0 - p[0], "dead": p[2]}


def maps_to_instances(architecture: str, maps: dict[str, np.ndarray], params: PostprocessParams | None = None,
                      min_size_px: int | None = None) -> np.ndarray:
    """Instances from probability maps.

    The instance model uses the seeded watershed of
    :func:`~dynacell.segment.learned.instances_from_maps`; the seed models, which predict a
    semantic mask only, give the connected components of ``foreground > threshold`` (their
    natural instance reading).

    Parameters
    ----------
    architecture : str
    maps : dict
        From :func:`maps_from_logits` (possibly resampled).
    params : PostprocessParams, optional
    min_size_px : int, optional
        Overrides ``params.min_size_px`` (sizes at the maps' scale).

    Returns
    -------
    numpy.ndarray
        int32 labels.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import relabel_sequential

    p = params or PostprocessParams()
    if min_size_px is not None:
        p = replace(p, min_size_px=int(min_size_px))
    if architecture == "instance-unet":
        return instances_from_maps(maps["foreground"], maps["distance"], maps.get("boundary"), p)
    lab, _ = ndi.label(maps["foreground"] > p.foreground)
    sizes = np.bincount(lab.ravel())
    small = sizes < p.min_size_px
    small[0] = False
    lab[small[lab]] = 0
    return relabel_sequential(lab)[0].astype(np.int32)


def tune_postprocess(module: Any, items: list[Any], min_size_px: int = 12) -> tuple[PostprocessParams, dict[str, Any]]:
    """Grid-search the post-processing thresholds on validation frames (model selection side).

    Parameters
    ----------
    module : object
        Has ``architecture`` and ``predict_maps(image) -> maps`` (the training module).
    items : list
        Validation frames at model scale with ``dataset``, ``image``, ``labels``.
    min_size_px : int
        Smallest object kept (pixels/voxels at model scale), not searched.

    Returns
    -------
    params : PostprocessParams
        The thresholds with the best mean (over datasets) object-weighted SEG.
    metrics : dict
        Validation SEG per dataset with those thresholds, and the grid searched.
    """
    from dynacell.metrics.segmentation import ctc_seg

    maps = [module.predict_maps(it.image) for it in items]
    fgs = (0.3, 0.4, 0.5, 0.6)
    seeds = (0.3, 0.4, 0.5, 0.6, 0.7) if module.architecture == "instance-unet" else (0.5,)
    best = None
    for fg in fgs:
        for sd in seeds:
            p = PostprocessParams(fg, sd, int(min_size_px))
            per: dict[str, list[tuple[float, int]]] = {}
            for it, m in zip(items, maps):
                per.setdefault(it.dataset, []).append(ctc_seg(it.labels, maps_to_instances(module.architecture, m, p)))
            scores = {ds: float(np.nansum([s * n for s, n in v]) / max(1, sum(n for _, n in v))) for ds, v in per.items()}
            mean = float(np.mean(list(scores.values()))) if scores else 0.0
            if best is None or mean > best[0]:
                best = (mean, p, scores)
    assert best is not None
    return best[1], {"seg_model_scale": best[2], "mean_seg": best[0],
                     "grid": {"foreground": list(fgs), "seed_distance": list(seeds)}}


class Segmenter:
    """A loaded segmentation network with its card.

    Parameters
    ----------
    net : torch.nn.Module
        The network (eval mode).
    card : SegmentationCard
    folder : Path
        Where it was loaded from.
    """

    def __init__(self, net: Any, card: SegmentationCard, folder: Path) -> None:
        self.net = net
        self.card = card
        self.folder = Path(folder)
        self._forward: Any = None

    @property
    def forward(self) -> Any:
        """The inference forward pass: :class:`_ConcatFreeUNet` of an instance U-Net, else the network."""
        if self._forward is None:
            from dynacell.models.unet import InstanceUNet

            self._forward = _ConcatFreeUNet(self.net) if isinstance(self.net, InstanceUNet) else self.net
        return self._forward

    @property
    def name(self) -> str:
        """Model name."""
        return self.card.name

    @property
    def postprocess(self) -> PostprocessParams:
        """Tuned post-processing thresholds."""
        return PostprocessParams(**self.card.postprocess)

    def with_test_time_flips(self, flips: int | None) -> Segmenter:
        """The same network with another number of test-time flips (speed against accuracy).

        Parameters
        ----------
        flips : int or None
            1 (no flips: the fastest), 2 or 4 copies averaged (see :meth:`predict_maps`); None keeps
            the card's ``test_time_flips``.

        Returns
        -------
        Segmenter
            ``self`` when ``flips`` is None or already the card's; else a new instance sharing the
            network, whose card records the new value.

        Raises
        ------
        InvalidInputError
            If ``flips`` is not 1, 2 or 4.
        """
        if flips is None or int(flips) == self.card.test_time_flips:
            return self
        if int(flips) not in _FLIPS:
            raise InvalidInputError(f"test-time flips must be one of {sorted(_FLIPS)}, got {flips}")
        return Segmenter(self.net, self.card.model_copy(update={"test_time_flips": int(flips)}), self.folder)

    @classmethod
    def from_folder(cls, folder: str | Path, device: str = "cpu") -> Segmenter:
        """Load a model folder (``model.yaml`` + ``weights.pt``).

        Raises
        ------
        FormatError
            Missing/invalid card or weights, or weights whose SHA-256 differs from the card's.
        """
        from dynacell.models.runtime import fuse_conv_bn, load_model_folder, resolve_device
        from dynacell.models.unet import build_segmentation_model

        folder = Path(folder)
        net, card = load_model_folder(folder, SegmentationCard,
                                      lambda c: build_segmentation_model(c.architecture, **c.model_kwargs),
                                      device=resolve_device(device))
        fuse_conv_bn(net)  # inference only: BatchNorm folded into the convolutions (same maps, less CPU)
        net = net.to(memory_format=_channels_last(card.ndim))  # see predict_maps
        return cls(net, card, folder)

    @classmethod
    def from_pretrained(cls, name: str = DEFAULT_MODEL, device: str = "cpu") -> Segmenter:
        """Load a shipped model by name (a folder of :data:`PRETRAINED_DIR`).

        Raises
        ------
        InvalidInputError
            If no shipped model has that name (the message lists the shipped ones).
        """
        from dynacell.models.runtime import shipped_model_folder

        return cls.from_folder(shipped_model_folder(name, PRETRAINED_DIR, "segmentation"), device)

    @classmethod
    def load(cls, model: str | Path | Segmenter, device: str = "cpu") -> Segmenter:
        """A :class:`Segmenter` from a name, a folder path or an instance."""
        if isinstance(model, Segmenter):
            return model
        p = Path(model)
        if p.is_dir():
            return cls.from_folder(p, device)
        return cls.from_pretrained(str(model), device)

    def predict_maps(self, x: np.ndarray, *, tile: int = 1024, batch_size: int = 4,
                     flips: int | None = None) -> dict[str, np.ndarray]:
        """Probability maps of a normalised frame at model scale ``((Z), Y, X)``.

        With ``flips`` (default: the card's ``test_time_flips``) of 2 or 4, the maps are the mean
        of the maps of that many flipped copies of the frame (identity and 180° rotation; plus
        left-right and up-down flips), each flipped back: test-time augmentation, at 2× / 4× the
        network's cost.

        A 2D frame (or plane) of up to ``tile``² pixels (a 3D frame: up to ``tile`` voxels a
        side and :data:`MAX_ONE_PASS_VOXELS_3D` in all) runs in one pass (reflect-padded to a
        multiple of 16; no overlap to recompute); a larger one is tiled with MONAI's
        ``sliding_window_inference`` (Gaussian blending), its windows shaped to the frame by
        :func:`window_plan`: 2D, ``batch_size`` windows per pass of at most ``tile``² pixels overlapping by
        two trained nucleus diameters; 3D, one window per pass of at most :data:`TILE_3D_VOXELS` ³ voxels
        overlapping by :data:`WINDOW_OVERLAP_3D_VOXELS`. (Before 2026-12-02: square / cubic windows of
        ``tile`` / 192 with 25 % overlap; HeLa 02 validation frames 10–11 tiled 2 × 2 with
        ``nuclei-seg-2d-fast``: 3.68 / 2.87 → 2.32 / 2.37 CPU-s a frame, SEG 0.950 / 0.944 both ways.)
        The 2D model on a 3D frame runs plane by plane (YX planes, ``batch_size`` planes per forward
        pass). Inputs and weights are in channels-last memory layout, 2D and 3D (faster oneDNN
        convolutions on CPU; a whole mouse 8-cell ``segment_frame`` with ``nuclei-seg-3d``, 1 thread:
        2.9–3.1 → 1.9 CPU-s together with the torch resampling of :func:`segment_frame`). An instance
        U-Net runs through
        :attr:`forward` (:class:`_ConcatFreeUNet`: no channel concatenation; ``nuclei-seg-2d`` on
        1024² model pixels, network alone: median 2.12 → 1.78 CPU-s of 5 alternate runs). A 700×1100 HeLa frame is 669×1052 at model
        scale: one pass, not two overlapping 1024-px windows (3.6 → 1.8 CPU-s, whole
        ``segment_frame``, before the BatchNorm folding of :meth:`from_folder`).

        A 3D model on a 3D frame flips all three axes: 2 copies = the frame and its point
        reflection (z, y, x reversed), 4 = also z alone and the 180° lateral rotation
        (:data:`_FLIPS_3D`); the flipped copies are computed only in the bounding box of the
        first pass's foreground grown by half a trained nucleus diameter
        (:func:`_flipped_in_box`). Chosen on the validation side for ``nuclei-seg-3d`` (see its
        card): mouse 8-cell frame 7 SEG 0.738 → 0.759 with 2 copies (lateral 180° only: 0.747).
        """
        import torch

        dev = next(self.net.parameters()).device
        nd = self.card.ndim

        def to_tensor(a: np.ndarray) -> Any:
            t = torch.from_numpy(a).to(dev)
            return t.contiguous(memory_format=_channels_last(t.ndim - 2))

        def run(arr: np.ndarray) -> np.ndarray:  # arr (N, 1, ...) float32
            n_vox = int(np.prod(arr.shape[2:]))
            one_pass = (n_vox <= tile ** 2 if arr.ndim == 4
                        else max(arr.shape[2:]) <= tile and n_vox <= MAX_ONE_PASS_VOXELS_3D)
            if one_pass:
                pads = [(0, 0), (0, 0)] + [(0, (-n) % 16) for n in arr.shape[2:]]
                padded = np.pad(arr, pads, mode="reflect")
                with torch.inference_mode():
                    out = self.forward(to_tensor(padded)).cpu().numpy()
                return out[(slice(None), slice(None), *(slice(0, n) for n in arr.shape[2:]))]
            from monai.inferers import sliding_window_inference

            if arr.ndim == 4:  # 2D: windows of up to tile² pixels overlapping by two trained nucleus diameters
                roi, overlap = window_plan(arr.shape[2:], tile ** 2, int(2 * self.card.target_diameter_px))
                n_batch = batch_size
            else:
                roi, overlap = window_plan(arr.shape[2:], min(tile, TILE_3D_VOXELS) ** 3, WINDOW_OVERLAP_3D_VOXELS)
                n_batch = 1
            with torch.inference_mode():
                out = sliding_window_inference(to_tensor(arr), roi, n_batch, self.forward, overlap=overlap,
                                               mode="gaussian", padding_mode="reflect")
            return out.cpu().numpy()

        def maps_of(a: np.ndarray) -> dict[str, np.ndarray]:
            if nd == a.ndim:
                logits = run(a[None, None].astype(np.float32))[0]
            elif nd == 2 and a.ndim == 3:
                outs = [run(a[i:i + batch_size, None].astype(np.float32)) for i in range(0, a.shape[0], batch_size)]
                logits = np.concatenate(outs, 0).transpose(1, 0, 2, 3)
            else:
                raise InvalidInputError(f"model {self.name} is {nd}-D and cannot segment a {a.ndim}-D frame")
            return maps_from_logits(self.card.architecture, logits)

        n_flips = int(self.card.test_time_flips if flips is None else flips)
        if n_flips not in _FLIPS:
            raise InvalidInputError(f"flips must be one of {sorted(_FLIPS)}, got {flips}")
        if nd == 3 and x.ndim == 3 and n_flips > 1:
            return _flipped_in_box(maps_of, x, _FLIPS_3D[n_flips], float(self.postprocess.foreground),
                                   int(np.ceil(self.card.target_diameter_px / 2)))
        total: dict[str, np.ndarray] = {}
        for axes in _FLIPS[n_flips]:  # flips of the last two (lateral) axes
            m = maps_of(np.ascontiguousarray(np.flip(x, axes)) if axes else x)
            for k, v in m.items():
                v = np.flip(v, axes) if axes else v
                total[k] = total[k] + v if k in total else v.copy()
        return {k: np.ascontiguousarray(v / n_flips, dtype=np.float32) for k, v in total.items()}


def window_plan(shape: tuple[int, ...], max_voxels: int, overlap_px: int,
                multiple: int = 16) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Window shape and overlaps that tile a frame with the fewest network voxels, for MONAI's sliding windows.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the frame (model pixels / voxels), e.g. ``(Z, Y, X)``.
    max_voxels : int
        Most voxels one window may hold (the memory bound of one network pass).
    overlap_px : int
        Least overlap of two neighbouring windows along an axis (model voxels): the context a window's
        edge lacks.
    multiple : int
        Each window side is a multiple of this (the U-Net's down-sampling factor).

    Returns
    -------
    roi : tuple of int
        Window side per axis (at most ``shape`` rounded up to ``multiple``; MONAI reflect-pads a frame
        smaller than its window).
    overlap : tuple of float
        Overlap per axis as MONAI's fraction of the window: with it, ``sliding_window_inference`` lays
        exactly the planned number of windows along each axis.

    Raises
    ------
    ValueError
        If no window of ``multiple``-sized sides fits ``max_voxels`` (``max_voxels < multiple ** ndim``).

    Notes
    -----
    Every split of the axes into ``n`` windows (1 to 16 per axis) is tried: a window is the axis
    divided by ``n`` plus ``overlap_px`` for each seam, rounded up to ``multiple``; the plan with the
    fewest voxels passed through the network in all (windows × window voxels) that fits ``max_voxels``
    wins (fewer windows on a tie). Cubic windows of 192 with 25 % overlap, as before 2026-12-02, passed
    3.2 × the frame's voxels through the network on a dense rendered C. elegans frame (351 × 289 × 518
    model voxels: 24 windows of 192³); the plan passes 1.35 × (12 windows of 192 × 160 × 192). Measured with
    ``nuclei-seg-3d``, one thread, on rendered lineage frames 220 / 250 / 300 (``segment_frame``, 2 flipped
    copies): 130 / 127 / 266 → 59 / 58 / 124 CPU-s, SEG 0.677 / 0.582 / 0.504 → 0.690 / 0.580 / 0.503; an untiled
    pass of frames 220 / 250 takes 56 / 51 CPU-s (docs/segmentation.md, "Windows shaped to the frame").
    """
    import itertools

    shape = tuple(int(s) for s in shape)
    if max_voxels < multiple ** len(shape):
        raise ValueError(f"window_plan: no window of {multiple}-voxel sides fits {max_voxels} voxels")

    def up(v: float) -> int:
        return int(np.ceil(v / multiple)) * multiple

    options = []
    for s in shape:
        axis = []
        for n in range(1, 17):
            side = up(s) if n == 1 else up(np.ceil((s + (n - 1) * overlap_px) / n))
            if n > 1 and (side >= s or (axis and side == axis[-1][1])):
                continue  # one window already covers the axis, or n windows are no smaller than n - 1
            axis.append((n, side))
        options.append(axis)
    best = None
    for combo in itertools.product(*options):
        window = int(np.prod([side for _, side in combo]))
        if window > max_voxels:
            continue
        n_windows = int(np.prod([n for n, _ in combo]))
        key = (n_windows * window, n_windows)
        if best is None or key < best[0]:
            best = (key, combo)
    if best is None:
        raise ValueError(f"window_plan: no window fits {max_voxels} voxels for a frame of {shape}")
    roi, overlap = [], []
    for s, (n, side) in zip(shape, best[1]):
        roi.append(side)
        if n == 1:
            overlap.append(0.0)
        else:  # MONAI steps int(side * (1 - overlap)) voxels: the interval that lays exactly n windows
            interval = int(np.ceil((s - side) / (n - 1)))
            overlap.append(1.0 - (interval + 0.5) / side)
    return tuple(roi), tuple(overlap)


class _ConcatFreeUNet:
    """Inference forward of an :class:`~dynacell.models.unet.InstanceUNet` without its channel concatenations.

    Each decoder block starts with a convolution of ``cat([upsampled, skip])``; that convolution
    is linear in its input channels, so it equals ``conv(skip, W_skip) + conv(upsampled, W_up)``
    with the kernel split along its input channels (bias once). The concatenated feature map —
    an interleaved copy in channels-last layout, 13 % of a 2D pass — is never built. Same maps as
    ``net(x)`` to float32 rounding (about 1e-5); the network's own weights are not modified.

    Parameters
    ----------
    net : InstanceUNet
        In eval mode, BatchNorm folded or not.

    Notes
    -----
    Called on ``(N, 1, (Z), Y, X)`` float32 tensors whose spatial sizes are multiples of
    ``2**depth``; returns the ``(N, 3, (Z), Y, X)`` logits of ``net.forward``.
    """

    def __init__(self, net: Any) -> None:
        import torch

        self.net = net
        self.splits = []
        for block in net.up_conv:
            conv = block[0]
            n_up = conv.in_channels - conv.out_channels  # cat([upsampled, skip]); the skip has out_channels
            w = conv.weight.detach()
            fmt = _channels_last(net.ndim)
            self.splits.append((conv, w[:, :n_up].contiguous(memory_format=fmt),
                                w[:, n_up:].contiguous(memory_format=fmt),
                                None if conv.bias is None else conv.bias.detach()))
        self._conv = torch.nn.functional.conv2d if net.ndim == 2 else torch.nn.functional.conv3d

    def __call__(self, x: Any) -> Any:
        import torch

        net = self.net
        x, skips = net.encode(x)
        for block, skip, (conv, w_up, w_skip, bias) in zip(net.up_conv, reversed(skips), self.splits, strict=True):
            x = torch.nn.functional.interpolate(x, size=skip.shape[2:], mode=net._mode, align_corners=False)
            y = self._conv(skip, w_skip, bias, conv.stride, conv.padding, conv.dilation, conv.groups)
            y += self._conv(x, w_up, None, conv.stride, conv.padding, conv.dilation, conv.groups)
            x = block[1:](y)
        return net.head(x)


def _channels_last(ndim: int) -> Any:
    """Channels-last memory format of a network input with ``ndim`` spatial axes (faster oneDNN convolutions)."""
    import torch

    return torch.channels_last if ndim == 2 else torch.channels_last_3d


#: Lateral flips averaged by :meth:`Segmenter.predict_maps` for each number of copies.
_FLIPS: dict[int, tuple[tuple[int, ...], ...]] = {1: ((),), 2: ((), (-2, -1)), 4: ((), (-1,), (-2,), (-2, -1))}

#: Sub-pixel offsets (model pixels; Y, X) of the shifted copies of :func:`_shifted_foreground`, by number of copies.
_OUTLINE_SHIFTS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((0.0, 0.0),), 2: ((0.0, 0.0), (0.5, 0.5)), 4: ((0.0, 0.0), (0.0, 0.5), (0.5, 0.0), (0.5, 0.5))}

#: The same lateral shifts for a 3D frame, z not shifted (z is upsampled to model scale on light-sheet
#: stacks, e.g. ×1.2 on the mouse 8-cell volume, so a z shift resolves nothing finer than the frame).
_OUTLINE_SHIFTS_3D: dict[int, tuple[tuple[float, float, float], ...]] = {
    n: tuple((0.0, *o) for o in offs) for n, offs in _OUTLINE_SHIFTS.items()}

#: Flips averaged by :meth:`Segmenter.predict_maps` for a 3D model on a 3D frame: 2 = the frame and its
#: point reflection (z, y and x reversed); 4 = also z reversed alone and the 180° lateral rotation.
_FLIPS_3D: dict[int, tuple[tuple[int, ...], ...]] = {2: ((), (-3, -2, -1)), 4: ((), (-3,), (-2, -1), (-3, -2, -1))}


def _flipped_in_box(maps_of: Any, x: np.ndarray, flips: tuple[tuple[int, ...], ...], threshold: float,
                    margin: int) -> dict[str, np.ndarray]:
    """Test-time flips of a 3D frame, the flipped copies computed only around the nuclei of the first pass.

    Parameters
    ----------
    maps_of : callable
        ``maps_of(frame) -> dict`` of float32 maps, same shape as the frame (one network pass).
    x : numpy.ndarray
        float32 frame ``(Z, Y, X)`` at model scale.
    flips : tuple of tuple of int
        Axes reversed in each copy; the first must be ``()`` (the frame itself).
    threshold : float
        Foreground probability of the first pass above which a voxel is in the box.
    margin : int
        Voxels added on every side of the bounding box of those voxels (model voxels;
        :meth:`Segmenter.predict_maps` gives half a trained nucleus diameter).

    Returns
    -------
    dict
        float32 maps: inside the box the mean over the copies (each flipped back), outside it
        the first pass alone (background there, more than ``margin`` voxels from any nucleus).

    Notes
    -----
    A sparse embryo fills a small part of a light-sheet volume, so the flipped copy costs
    less than a pass of the whole frame: mouse 8-cell validation frame 7 with ``nuclei-seg-3d``
    (box: foreground above the post-processing threshold, 6 voxels of margin), 1 thread,
    best of 3 alternating: 1.59 CPU-s with 1 copy, 2.20 with 2 (the whole frame flipped: 2.80;
    the same validation SEG to ±0.007). Each flipped copy of the box is reflect-padded at
    its edges as the whole frame is.
    """
    first = maps_of(x)
    box = _foreground_box(first["foreground"], threshold, margin)
    if box is None:
        return first
    sub = x[box]
    total = {k: v[box].astype(np.float32, copy=True) for k, v in first.items()}
    for axes in flips[1:]:
        m = maps_of(np.ascontiguousarray(np.flip(sub, axes)))
        for k, v in m.items():
            total[k] += np.flip(v, axes)
    out = {k: np.array(v, dtype=np.float32, copy=True) for k, v in first.items()}
    for k in out:
        out[k][box] = total[k] / len(flips)
    return out


def _foreground_box(foreground: np.ndarray, threshold: float, margin: int) -> tuple[slice, ...] | None:
    """Bounding box of ``foreground > threshold`` grown by ``margin`` voxels a side (clipped); None if empty."""
    fg = foreground > threshold
    if not fg.any():
        return None
    box = []
    for ax in range(fg.ndim):
        nz = np.flatnonzero(fg.any(axis=tuple(a for a in range(fg.ndim) if a != ax)))
        box.append(slice(max(int(nz[0]) - margin, 0), min(int(nz[-1]) + margin + 1, fg.shape[ax])))
    return tuple(box)


def _zoom_factors(shape: tuple[int, ...], diameter_px: float, target_px: float,
                  voxel_size_um: tuple[float, ...] | None) -> np.ndarray:
    lateral = target_px / float(diameter_px)
    z = np.full(len(shape), lateral)
    if len(shape) == 3 and voxel_size_um is not None:
        vs = np.asarray(voxel_size_um, dtype=float)
        z[0] = lateral * vs[0] / vs[-1]
    return z


def segment_frame(image: np.ndarray, model: Segmenter, *, nucleus_diameter_px: float | None = None,
                  voxel_size_um: tuple[float, ...] | None = None, return_maps: bool = False) -> Any:
    """Segment the nuclei of one frame with a learned model.

    Parameters
    ----------
    image : numpy.ndarray
        One frame ``((Z), Y, X)``, intensities of any real dtype.
    model : Segmenter
        A loaded model (2D models also segment 3D frames plane by plane).
    nucleus_diameter_px : float, optional
        Typical nucleus diameter in (lateral) pixels of this frame; estimated from the image
        with :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px` when absent (the
        model-refined 3D estimate :func:`estimate_nucleus_diameter_for_model` was measured on the
        validation sides and is not the default, see its notes).
    voxel_size_um : tuple of float, optional
        Voxel size (µm, axis order); with a 3D model its z/x ratio makes the resampled frame
        isotropic (a 2D model keeps the frame's planes and resamples them laterally).
    return_maps : bool
        Also return the probability maps at the frame's size and the diameter used.

    Returns
    -------
    numpy.ndarray or tuple
        int32 labels ``((Z), Y, X)`` (0 = background); with ``return_maps`` a tuple
        ``(labels, maps, nucleus_diameter_px)``.

    Raises
    ------
    InvalidInputError
        If the frame is not 2-D/3-D, or the voxel size does not match it.

    Notes
    -----
    The seeded watershed runs at model scale (nuclei ``target_diameter_px`` across); the labels
    are resized back to the frame by nearest neighbour, grown by one model pixel and cut to the
    foreground probability resized back (linear) — outlines finer than a model pixel. Chosen on
    the validation frames (second-stage model: SEG GOWT1 0.791, HeLa 0.888, the same as a watershed of the maps at
    full resolution; nearest neighbour alone 0.783 / 0.878), at a fraction of the cost. A 2D model on a 3D frame also drops objects smaller than half of one
    trained-size cross-section (``0.5·π/4·target_diameter_px²`` model voxels): single-plane
    noise specks of light-sheet stacks. In 2D, objects smaller than an eighth of the estimated
    nucleus area (``π/4·nucleus_diameter_px²/8`` pixels) are dropped after the resize.
    """

    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise InvalidInputError(f"segmentation: expected a 2-D or 3-D frame, got shape {img.shape}")
    if voxel_size_um is not None and len(voxel_size_um) != img.ndim:
        raise InvalidInputError(f"segmentation: voxel_size_um {voxel_size_um} does not match a {img.ndim}-D frame")
    x = polarity_normalised(normalize_image(img), getattr(model.card, "modality", "fluorescence"))
    if nucleus_diameter_px is None:
        nucleus_diameter_px = size_estimate_px(img, model, voxel_size_um)
    zoom = _zoom_factors(img.shape, nucleus_diameter_px, model.card.target_diameter_px, voxel_size_um)
    if model.card.ndim == 2 and img.ndim == 3:
        zoom[0] = 1.0  # a 2D model runs on the frame's own planes; only the lateral axes are resampled
    resampled = not np.allclose(zoom, 1)
    xs = _resize_linear(x, _zoomed_shape(x.shape, zoom)) if resampled else x
    maps = model.predict_maps(xs)
    params = model.postprocess
    if model.card.ndim == 2 and img.ndim == 3:
        # a nucleus is at least half of one trained-size cross-section: drops single-plane noise specks
        params = replace(params, min_size_px=max(params.min_size_px,
                                                 int(0.5 * np.pi / 4 * model.card.target_diameter_px ** 2)))
    labels = maps_to_instances(model.card.architecture, maps, params)  # at model scale (sizes in model pixels)
    if resampled:
        from skimage.segmentation import expand_labels

        # nearest-neighbour labels, outlines refined by the foreground resized back (sub-model-pixel edges)
        fg = _outline_foreground(model, x, maps["foreground"], zoom)
        step_px = float(1.0 / np.min(zoom[-2:]))
        labels = _expand_in_box(_resize_nearest(labels, img.shape), max(1.0, step_px), expand_labels)
        sigma_model = float(getattr(model.card, "outline_sigma_model", 0.0))
        if params.outline_foreground > 0 or sigma_model > 0:
            cut = params.outline_foreground if params.outline_foreground > 0 else params.foreground
            sigma = tuple(sigma_model / float(z) for z in zoom) if sigma_model > 0 else params.outline_sigma_px
            labels = _cut_outlines(labels, fg, cut, sigma)
        elif params.outline_intensity_weight > 0 and img.ndim == 2:  # each object at its own level (session 12)
            labels = cut_outlines_by_object(labels, fg, x, threshold=params.foreground,
                                            weight=params.outline_intensity_weight,
                                            fraction=params.outline_intensity_fraction,
                                            sigma_px=params.outline_intensity_sigma_px)
        else:
            labels[fg <= params.foreground] = 0
        if return_maps:
            maps = {k: (fg if k == "foreground" else _resize_linear(v, img.shape)) for k, v in maps.items()}
    if img.ndim == 2:
        labels = _drop_specks(labels, float(nucleus_diameter_px))
    if return_maps:
        return labels, maps, float(nucleus_diameter_px)
    return labels


def estimate_nucleus_diameter_for_model(image: np.ndarray, model: Segmenter, *,
                                        voxel_size_um: tuple[float, ...] | None = None,
                                        refine: bool = True) -> float:
    """Typical lateral nucleus diameter of a frame (pixels), as the model will be run on it.

    Parameters
    ----------
    image : numpy.ndarray
        One frame ``((Z), Y, X)`` of bright nuclei on a dark background.
    model : Segmenter
        The model that will segment the frame.
    voxel_size_um : tuple of float, optional
        Voxel size (µm, axis order); its z/x ratio makes the 3D first pass isotropic.
    refine : bool
        With a 3D model on a 3D frame, refine the blob estimate by one first pass of the model
        (False: the blob estimate alone, what :func:`segment_frame` and :func:`iter_segment` use).

    Returns
    -------
    float
        Lateral pixels of the input frame. 2D models, or 2D frames: the scale-space blob estimate
        :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`. A 3D model on a 3D frame:
        the frame is first segmented at the blob estimate with one copy (no test-time flips), and
        the volume-weighted median lateral diameter of the objects found
        (:func:`~dynacell.segment.learned.lateral_diameters_px`: equivalent diameter of each
        object's largest YX section — the definition the model's nucleus size was trained with;
        :func:`volume_weighted_median`: fragments of an over-split first pass weigh by their
        voxels, not their number) is returned; the blob estimate when the first pass finds no
        object. One refinement iteration.

    Raises
    ------
    InvalidInputError
        As :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px` (empty or flat frame,
        mismatched voxel size).

    Notes
    -----
    The blob estimate reads the nuclei's intensity profile, not their outline: on the mouse 8-cell
    light-sheet stacks it gave 24.5 px for nuclei whose labels give 19.8, on the StarDist stack
    9–10.7 for 12.6, so those frames ran at 0.8× / 1.2× the trained scale. The network was
    trained with zoom jitter ×0.8–1.25, so its first-pass outlines at such a scale are close to the
    nuclei's own; their median lateral diameter is a size estimate in the training definition.
    Measured on the validation sides with ``nuclei-seg-3d`` (``benchmarks/segment_postprocess_3d.py``;
    ``docs/segmentation.md``, 3D model, "model-refined nucleus size"): it reads 20.5 px for the
    mouse nuclei of 19.8 (blob estimate 24.5) and 11.8–16.6 for rendered embryos of 10.8–15.5
    (blob 7.5–13.9), but 16.0 on the StarDist left half of 12.6 (blob 10.7; the first pass merges
    touching nuclei there). Segmentation at the refined size did not improve the mouse validation
    frame clearly (SEG +0.006 against the moved labels, −0.006 against the labels as given), so
    it is **not** the default of :func:`segment_frame` / :func:`iter_segment`. Costs one
    single-copy model pass on top of the blob estimate.
    """
    img = np.asarray(image)
    d0 = size_estimate_px(img, model, voxel_size_um)
    if not refine or model.card.ndim != 3 or img.ndim != 3:
        return d0
    first = segment_frame(img, model.with_test_time_flips(1), nucleus_diameter_px=d0, voxel_size_um=voxel_size_um)
    d = lateral_diameters_px(first)
    if not len(d):
        return d0
    volume = np.bincount(first.ravel())[1:]
    return volume_weighted_median(d, volume[volume > 0])


def volume_weighted_median(values: np.ndarray, volumes: np.ndarray) -> float:
    """Median of ``values`` weighted by ``volumes``: the value of the object holding the median voxel.

    Parameters
    ----------
    values : numpy.ndarray
        One value per object (e.g. lateral diameters, pixels), shape ``(N,)``, N ≥ 1.
    volumes : numpy.ndarray
        Voxel counts of the same objects, shape ``(N,)``, positive.

    Returns
    -------
    float
        The smallest value whose objects hold at least half of all voxels (sizing's D50 by volume):
        small fragments of an over-split first pass weigh by their few voxels, not by their number.

    Raises
    ------
    InvalidInputError
        If the arrays are empty or of different lengths.
    """
    v = np.asarray(values, dtype=float)
    w = np.asarray(volumes, dtype=float)
    if v.ndim != 1 or v.shape != w.shape or not len(v):
        raise InvalidInputError(f"volume-weighted median: got {v.shape} values for {w.shape} volumes")
    order = np.argsort(v, kind="stable")
    c = np.cumsum(w[order])
    return float(v[order][np.searchsorted(c, 0.5 * c[-1])])


def _expand_in_box(labels: np.ndarray, distance: float, expand: Any) -> np.ndarray:
    """``expand(labels, distance=distance)`` computed inside the labels' bounding box grown by ``distance``.

    The same labels as on the whole frame (nothing grows further than ``distance``), at the cost of
    the box: a sparse 3D embryo (8 nuclei in 0.4 % of a light-sheet volume) skips the distance
    transform of the empty volume (1.0 → ~0.1 s).
    """
    if not labels.any():
        return labels
    pad = int(np.ceil(distance)) + 1
    box = []
    for ax in range(labels.ndim):
        nz = np.nonzero(labels.any(axis=tuple(a for a in range(labels.ndim) if a != ax)))[0]
        box.append(slice(max(int(nz[0]) - pad, 0), min(int(nz[-1]) + pad + 1, labels.shape[ax])))
    box = tuple(box)
    out = np.zeros_like(labels)
    out[box] = expand(labels[box], distance=distance)
    return out


def _cut_outlines(labels: np.ndarray, foreground: np.ndarray, threshold: float,
                  sigma_px: float | tuple[float, ...]) -> np.ndarray:
    """Cut labels to ``gaussian(foreground, sigma_px) > threshold``, computed in the labels' bounding box.

    Parameters
    ----------
    labels : numpy.ndarray
        int labels ``((Z), Y, X)`` at the frame's size (0 = background); modified in place.
    foreground : numpy.ndarray
        Foreground probability (0..1), same shape.
    threshold : float
        Probability at or below which a labelled voxel becomes background.
    sigma_px : float or tuple of float
        Gaussian σ in voxels (one for every axis, or one per axis; scipy ``gaussian_filter``, truncated
        at 4σ); 0 = no smoothing.

    Returns
    -------
    numpy.ndarray
        ``labels``, cut. The box is grown by 4σ + 1 voxels, so the smoothed map inside it equals the
        one of the whole frame up to the border mode at the frame's edges.
    """
    if not labels.any():
        return labels
    sigma = np.broadcast_to(np.asarray(sigma_px, dtype=float), (labels.ndim,))
    box = []
    for ax in range(labels.ndim):
        pad = int(np.ceil(4 * sigma[ax])) + 1
        nz = np.nonzero(labels.any(axis=tuple(a for a in range(labels.ndim) if a != ax)))[0]
        box.append(slice(max(int(nz[0]) - pad, 0), min(int(nz[-1]) + pad + 1, labels.shape[ax])))
    box = tuple(box)
    fg = np.asarray(foreground[box], dtype=np.float32)
    if np.any(sigma > 0):
        from scipy import ndimage as ndi

        fg = ndi.gaussian_filter(fg, tuple(float(v) for v in sigma))
    sub = labels[box]
    sub[fg <= threshold] = 0
    return labels


def _drop_specks(labels: np.ndarray, nucleus_diameter_px: float, fraction: float = 0.125) -> np.ndarray:
    """Remove 2D objects smaller than ``fraction`` of a nucleus's area (``π/4·d²``, pixels), in place.

    Fragments left where the resized-back outline cut a label, or noise specks, are never nuclei: an
    eighth of the estimated nucleus area (GOWT1 ~380 px for nuclei of ~3,000; HeLa ~60 for ~500).
    """
    if labels.max() == 0 or not np.isfinite(nucleus_diameter_px):
        return labels
    min_px = fraction * np.pi / 4 * nucleus_diameter_px ** 2
    sizes = np.bincount(labels.ravel())
    small = np.flatnonzero(sizes < min_px)
    small = small[small > 0]
    if len(small):
        labels[np.isin(labels, small)] = 0
    return labels


def _resize_nearest(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label image to ``shape`` (pixel centres aligned)."""
    idx = [np.minimum(((np.arange(n) + 0.5) * (m / n)).astype(np.intp), m - 1) for n, m in zip(shape, labels.shape)]
    return labels[np.ix_(*idx)]


def _zoomed_shape(shape: tuple[int, ...], zoom: np.ndarray) -> tuple[int, ...]:
    """Shape of a frame resampled by ``zoom`` (rounded per axis, as ``scipy.ndimage.zoom`` rounds it)."""
    return tuple(round(float(n) * float(z)) for n, z in zip(shape, zoom, strict=True))


def _resize_linear(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(Bi/tri)linear resize of a 2D or 3D float map to ``shape``, corner pixel centres aligned.

    Parameters
    ----------
    a : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)``, any real dtype (computed in float32).
    shape : tuple of int
        Output shape, same number of axes.

    Returns
    -------
    numpy.ndarray
        float32 ``shape``.

    Notes
    -----
    Output index ``i`` samples the input at ``i·(n_in − 1)/(n_out − 1)``: the sampling of
    ``scipy.ndimage.zoom(a, shape / a.shape, order=1, grid_mode=False)``, which this replaces
    (the frame resampled to model scale and the maps resized back). Computed with
    ``torch.nn.functional.interpolate(align_corners=True)``: the same values to float32
    rounding (about 1e-5), and 4–6× less CPU (a mouse 8-cell volume, 71×180×247 ↔ 93×99×136:
    0.33 → 0.06 CPU-s for both directions). One difference, a fix: SciPy's ``constant``
    boundary mode returned 0 for a whole last plane, row or column whenever rounding put its
    sample a hair past the edge (the last row and column of a GOWT1 frame at model scale, the
    last z plane of the StarDist 3D half-stack); here it is the edge value.
    """
    import torch

    x = np.ascontiguousarray(a, dtype=np.float32)
    if tuple(x.shape) == tuple(shape):
        return x.copy()
    mode = "bilinear" if x.ndim == 2 else "trilinear"
    with torch.inference_mode():
        out = torch.nn.functional.interpolate(torch.from_numpy(x)[None, None], size=tuple(int(n) for n in shape),
                                              mode=mode, align_corners=True)
    return out[0, 0].numpy()


def _resize_linear_shifted(a: np.ndarray, shape: tuple[int, ...], offset_px: tuple[float, ...]) -> np.ndarray:
    """(Bi/tri)linear resize of a 2D or 3D map to ``shape`` on a grid shifted by ``offset_px`` output pixels.

    Parameters
    ----------
    a : numpy.ndarray
        ``(Y, X)`` or ``(Z, Y, X)``, any real dtype (computed in float32).
    shape : tuple of int
        Output shape, same number of axes.
    offset_px : tuple of float
        Offset of the sampling grid per axis, in output pixels.

    Returns
    -------
    numpy.ndarray
        float32 ``shape``: output index ``i`` samples the input at ``(i + offset)·(n_in − 1)/(n_out − 1)``,
        clamped to the edge pixels; offset 0 is :func:`_resize_linear` (to float32 rounding). Computed
        with ``torch.nn.functional.grid_sample(align_corners=True, padding_mode="border")``.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
    axes = []
    for n_out, n_in, off in zip(shape, a.shape, offset_px, strict=True):
        c = (torch.arange(int(n_out), dtype=torch.float32) + float(off)) * ((n_in - 1) / max(int(n_out) - 1, 1))
        axes.append(2.0 * c / max(n_in - 1, 1) - 1.0)  # normalised coordinates, -1 / +1 at the corner pixels
    grids = torch.meshgrid(*axes, indexing="ij")
    with torch.inference_mode():  # grid_sample takes (x, y[, z]): the axes reversed
        out = torch.nn.functional.grid_sample(x, torch.stack(grids[::-1], -1)[None], mode="bilinear",
                                              padding_mode="border", align_corners=True)
    return out[0, 0].numpy()


def _shifted_foreground(model: Segmenter, x: np.ndarray, first: np.ndarray, n_copies: int) -> np.ndarray:
    """Foreground probability of a frame at its own size, averaged over sub-model-pixel shifted copies.

    Parameters
    ----------
    model : Segmenter
        A model of the frame's dimension (2D model on a 2D frame, 3D model on a 3D frame).
    x : numpy.ndarray
        float32 normalised frame ``((Z), Y, X)`` at its own size.
    first : numpy.ndarray
        Foreground probability of the unshifted copy at model scale (already computed).
    n_copies : int
        Number of copies (a key of :data:`_OUTLINE_SHIFTS`).

    Returns
    -------
    numpy.ndarray
        float32 ``x.shape``: the mean over the copies; copy ``k`` resamples the frame to the model's
        grid shifted by :data:`_OUTLINE_SHIFTS` ``[k]`` model pixels (3D: :data:`_OUTLINE_SHIFTS_3D`, lateral
        only; one linear interpolation from the frame, :func:`_resize_linear_shifted`), runs
        :meth:`Segmenter.predict_maps` and samples its foreground back at the frame's pixels with the
        same shift. 2D: the whole frame, the card's flips. 3D: one pass without flips, only in the
        bounding box of the first copy's foreground above the post-processing threshold grown by half a
        trained nucleus diameter (:func:`_foreground_box`, the box of :func:`_flipped_in_box`); outside
        it the first copy alone.

    Notes
    -----
    Where a frame is shrunk (GOWT1: one model pixel is 2.5 frame pixels; the mouse 8-cell volume: 2
    frame pixels laterally), the outline of one copy is resolved to a model pixel; copies on
    interleaved grids resolve it finer (test-time augmentation by sub-pixel translation). Chosen on
    the validation frames, see ``docs/segmentation.md``.
    """
    step = [(n_in - 1) / max(n_m - 1, 1) for n_in, n_m in zip(x.shape, first.shape, strict=True)]
    total = _resize_linear(first, x.shape)
    shifts = (_OUTLINE_SHIFTS if x.ndim == 2 else _OUTLINE_SHIFTS_3D)[int(n_copies)]
    box = None
    if x.ndim == 3:
        margin = int(np.ceil(model.card.target_diameter_px / 2))
        box = _foreground_box(first, float(model.postprocess.foreground), margin)
        if box is None:
            return total
    for off in shifts[1:]:
        xs = _resize_linear_shifted(x, first.shape, off)
        if box is None:
            fg = model.predict_maps(xs)["foreground"]
        else:
            fg = first.copy()
            fg[box] = model.predict_maps(np.ascontiguousarray(xs[box]), flips=1)["foreground"]
        total += _resize_linear_shifted(fg, x.shape, tuple(-o * s for o, s in zip(off, step, strict=True)))
    return total / len(shifts)


def _outline_foreground(model: Segmenter, x: np.ndarray, first: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    """The foreground probability at the frame's size that cuts the resized-back outlines.

    :func:`_shifted_foreground` with the card's ``outline_shifts`` when the model and the frame have the
    same dimension (2D or 3D) and the frame is shrunk by a lateral zoom of at most ``outline_shifts ** -0.5``;
    else the first copy's foreground resized (:func:`_resize_linear`). ``x`` is the normalised frame,
    ``first`` the foreground at model scale, ``zoom`` the per-axis zoom to model scale.
    """
    n = int(getattr(model.card, "outline_shifts", 1))
    if n > 1 and model.card.ndim == x.ndim and float(np.max(zoom[-2:])) <= n ** -0.5:
        return _shifted_foreground(model, x, first, n)
    return _resize_linear(first, x.shape)


def polarity_normalised(x: np.ndarray, modality: str) -> np.ndarray:
    """A normalised frame as a model of ``modality`` sees it: phase contrast inverted.

    Parameters
    ----------
    x : numpy.ndarray, float
        Frame normalised to 0..1 (:func:`~dynacell.segment.learned.normalize_image`), any shape.
    modality : {"fluorescence", "phase-contrast"}
        The model card's ``modality``.

    Returns
    -------
    numpy.ndarray, float32
        ``x`` (fluorescence) or ``1 − x`` (phase contrast: cells darker than their background
        become bright objects on a dark background, the fluorescence models' input; the scale-space
        blob estimate of the cell size then reads the cells, not the bright halos between them).

    Raises
    ------
    InvalidInputError
        For another modality.
    """
    if modality == "fluorescence":
        return np.asarray(x, dtype=np.float32)
    if modality == "phase-contrast":
        return 1.0 - np.asarray(x, dtype=np.float32)
    raise InvalidInputError(f"unknown segmentation modality {modality!r}; use fluorescence or phase-contrast")


def size_estimate_px(image: np.ndarray, model: Segmenter, voxel_size_um: tuple[float, ...] | None = None) -> float:
    """The blob estimate of the nucleus (cell) diameter of a frame, read as ``model`` sees the frame.

    Parameters
    ----------
    image : numpy.ndarray
        One raw frame ``((Z), Y, X)``.
    model : Segmenter
        Its card's ``modality`` decides the polarity (:func:`polarity_normalised`).
    voxel_size_um : tuple of float, optional
        As :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`.

    Returns
    -------
    float
        Lateral pixels: :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px` of the raw frame
        (fluorescence) or of the inverted normalised frame (phase contrast; on bacteria-phc 01 frames 5–45:
        31.1 px every time for cells whose masks give 34–37 px, where the raw frame gives 23–42 px). When
        the card's ``size_search`` is ``"confidence"`` and the frame is 2D, that estimate is refined by
        :func:`confident_size_px`.

    Raises
    ------
    InvalidInputError
        As :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`.
    """
    d0 = blob_size_px(image, getattr(model.card, "modality", "fluorescence"), voxel_size_um)
    if searches_size(model, np.ndim(image)):
        return confident_size_px(image, model, d0)[0]
    return d0


def searches_size(model: Any, ndim: int) -> bool:
    """Whether :func:`size_estimate_px` refines the blob estimate with :func:`confident_size_px`.

    Parameters
    ----------
    model : Segmenter or str
        A loaded model (``"classical"`` or any object without a card: False).
    ndim : int
        Spatial dimensions of the frames (2 or 3).

    Returns
    -------
    bool
        True for a card with ``size_search: confidence`` on 2D frames.
    """
    card = getattr(model, "card", None)
    return card is not None and getattr(card, "size_search", "blob") == "confidence" and int(ndim) == 2


#: Candidate sizes of :func:`confident_size_px`: the blob estimate times ``2 ** (k / 4)``.
SIZE_SEARCH_STEPS = tuple(range(-4, 7))


def confident_size_px(image: np.ndarray, model: Segmenter, d0_px: float) -> tuple[float, list[dict[str, float]]]:
    """The cell size at which the model is most confident about a 2D frame (a model-based size search).

    Parameters
    ----------
    image : numpy.ndarray
        One raw 2D frame ``(Y, X)``.
    model : Segmenter
        The model that will segment the frame (its test-time flips are not used here: one copy per size).
    d0_px : float
        Starting estimate (pixels), normally the blob estimate (:func:`blob_size_px`).

    Returns
    -------
    diameter_px : float
        Among the candidates ``d0_px · 2^(k/4)``, ``k`` in :data:`SIZE_SEARCH_STEPS` (0.5× to 2.8×), the
        one whose segmentation has the highest mean foreground probability inside its objects, searched
        coarse to fine (the even ``k`` first, then the two odd neighbours of the best: 8 model passes at
        most); refined to the vertex of the parabola through it and its two neighbours on the log-size axis
        (at most half a step away), then multiplied by the card's ``size_search_calibration``.
        ``d0_px`` when no candidate finds an object.
    table : list of dict
        One row per size tried: ``diameter_px``, ``confidence`` (mean foreground probability inside the
        objects, 0 when none), ``n_objects``.

    Raises
    ------
    InvalidInputError
        If the frame is not 2D or ``d0_px`` is not a positive number.

    Notes
    -----
    The blob estimate depends on the frame's size as well as on the cells' (it downsamples large frames):
    on phase-contrast bacteria it reads 31.1 px on a whole 1305 × 1009 frame and 15.7 on a 512 × 512 crop of
    it, and ``cells-seg-2d-phc`` run at 15.7 px finds objects of a third of a cell (SEG 0.004). A network run
    at the wrong scale is less sure of its foreground: measured on the validation sides (bacteria-phc 01
    frames 31–40 whole and cropped to 512² / 800², rendered rod colonies of seeds 12–13) the mean foreground
    probability inside the objects peaked at the size with the best SEG, or the next one, in 4 of 4 cases
    for ``cells-seg-2d-phc``, slightly below its training scale: on its own training frames (bacteria-phc 01
    frames 0–25, where the blob estimate it was validated at reads 31.1 px) the vertex read 23.2–27.0 px, hence its
    calibration 1.262
    (:func:`calibrate_size_search`). It did **not** for ``nuclei-seg-2d-fast`` on GOWT1 and HeLa (it peaks at 0.5–0.7×,
    where SEG is lower), so only cards with ``size_search: confidence`` use it
    (``docs/segmentation.md``, "Model-based size search"). The same idea as a size chosen by the
    segmentation itself; one frame's search costs up to 8 single-copy passes, once per movie.
    """
    img = np.asarray(image)
    if img.ndim != 2:
        raise InvalidInputError(f"size search: expected a 2-D frame, got shape {img.shape}")
    if not np.isfinite(d0_px) or d0_px <= 0:
        raise InvalidInputError(f"size search: the starting size must be a positive number of pixels, got {d0_px}")
    one = model.with_test_time_flips(1)
    rows: dict[int, dict[str, float]] = {}

    def score(k: int) -> float:
        if k not in rows:
            d = float(d0_px) * 2.0 ** (k / 4)
            lab, maps, _ = segment_frame(img, one, nucleus_diameter_px=d, return_maps=True)
            inside = lab > 0
            conf = float(maps["foreground"][inside].mean()) if inside.any() else 0.0
            rows[k] = {"diameter_px": d, "confidence": conf, "n_objects": float(lab.max())}
        return rows[k]["confidence"]

    steps = SIZE_SEARCH_STEPS
    best = max((k for k in steps if k % 2 == 0), key=score)
    best = max([k for k in (best - 1, best, best + 1) if k in steps], key=score)
    neighbours = [k for k in (best - 1, best + 1) if k in steps]
    for k in neighbours:
        score(k)
    table = [rows[k] for k in sorted(rows)]
    if rows[best]["confidence"] <= 0:
        return float(d0_px), table
    offset = 0.0
    if len(neighbours) == 2:  # vertex of the parabola through the best and its two neighbours (log-size axis)
        lo, mid, hi = (rows[k]["confidence"] for k in (best - 1, best, best + 1))
        curvature = lo - 2 * mid + hi
        if curvature < 0:
            offset = float(np.clip(0.5 * (lo - hi) / curvature, -0.5, 0.5))
    calibration = float(getattr(model.card, "size_search_calibration", 1.0))
    return float(d0_px) * 2.0 ** ((best + offset) / 4) * calibration, table


def blob_size_px(image: np.ndarray, modality: str = "fluorescence",
                 voxel_size_um: tuple[float, ...] | None = None) -> float:
    """The blob estimate of the nucleus (cell) diameter of a frame in a given imaging modality.

    Parameters
    ----------
    image : numpy.ndarray
        One raw frame ``((Z), Y, X)``.
    modality : {"fluorescence", "phase-contrast"}
        Fluorescence: the raw frame; phase contrast: the inverted normalised frame
        (:func:`polarity_normalised`), where cells are bright.
    voxel_size_um : tuple of float, optional
        As :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`.

    Returns
    -------
    float
        Lateral pixels (:func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`).

    Raises
    ------
    InvalidInputError
        As :func:`~dynacell.segment.learned.estimate_nucleus_diameter_px`, or an unknown modality.
    """
    if modality == "fluorescence":
        return estimate_nucleus_diameter_px(image, voxel_size_um=voxel_size_um)
    return estimate_nucleus_diameter_px(polarity_normalised(normalize_image(image), modality),
                                        voxel_size_um=voxel_size_um)


#: Factor outside a card's ``training_size_estimate_px`` range beyond which :func:`size_warning` warns.
SIZE_WARNING_FACTOR = 1.4


def calibrate_size_search(images: list[np.ndarray], model: Segmenter, trained_size_px: float) -> tuple[float, list[float]]:
    """The card's ``size_search_calibration`` of a model, from frames it was trained on.

    Parameters
    ----------
    images : list of numpy.ndarray
        Raw 2D training frames ``(Y, X)`` of the model (at least one).
    model : Segmenter
        The trained model (its card's calibration is ignored: the raw search is measured).
    trained_size_px : float
        The cell size (pixels) the model is known to work at on those frames: the blob estimate recorded in
        ``training_size_estimate_px``, at which its post-processing was tuned and its validation measured.

    Returns
    -------
    calibration : float
        ``median(trained_size_px / peak)`` over the frames.
    peaks_px : list of float
        The uncalibrated size the search read on each frame.

    Raises
    ------
    InvalidInputError
        If no frame is given, or as :func:`confident_size_px`.
    """
    if not len(images):
        raise InvalidInputError("size search calibration: no training frame given")
    raw = model.with_test_time_flips(1)
    raw = Segmenter(raw.net, raw.card.model_copy(update={"size_search_calibration": 1.0}), raw.folder)
    modality = getattr(model.card, "modality", "fluorescence")
    peaks = [confident_size_px(img, raw, blob_size_px(img, modality))[0] for img in images]
    return float(np.median([float(trained_size_px) / p for p in peaks])), peaks


def size_warning(estimated_px: float | None, model: Any) -> str | None:
    """A warning when a movie's estimated nucleus (cell) size is far from the sizes the model was trained at.

    The blob size estimate depends on the frame as well as on the cells: on phase-contrast rods it
    reads 31.1 px on a whole 1305 × 1009 bacteria-phc frame but 15.7 px on a 512 × 512 crop of the same
    frame (it downsamples large frames), and ``cells-seg-2d-phc``, which learned one movie at one
    scale, then scores SEG 0.004 instead of 0.84; given the cells' size (``--nucleus-diameter-px 35``,
    their equivalent diameter) it scores 0.84 again (``docs/segmentation.md``, "Rendered rod colonies
    and the frame-size trap"). Since that model searches its size (:func:`confident_size_px`) the crop
    reads 33.5 px and no longer warns; the warning stays for a size far from the trained one whatever
    the estimate.

    Parameters
    ----------
    estimated_px : float or None
        The size estimate used for the movie (pixels); None (a size given by the user) never warns.
    model : Segmenter or str
        A loaded model; its card's ``training_size_estimate_px`` range (None: no check) and ``"classical"``
        never warn.

    Returns
    -------
    str or None
        ``"estimated cell size X px is outside ..."`` when ``estimated_px`` lies more than
        :data:`SIZE_WARNING_FACTOR` × outside the card's range; else None.
    """
    rng = getattr(getattr(model, "card", None), "training_size_estimate_px", None)
    if estimated_px is None or rng is None:
        return None
    lo, hi = float(rng[0]), float(rng[1])
    if lo / SIZE_WARNING_FACTOR <= float(estimated_px) <= hi * SIZE_WARNING_FACTOR:
        return None
    return (f"estimated cell size {float(estimated_px):.1f} px is outside the range this model was trained at "
            f"({lo:.1f}-{hi:.1f} px as the estimate reads its training frames; it depends on the frame size as well "
            f"as the cells); if the masks look wrong, measure the cells' equivalent diameter in pixels and pass "
            f"--nucleus-diameter-px; if they are still wrong, the model does not know these cells (see the training "
            f"data on its card): give masks with --labels")


def modality_warning(image: np.ndarray, model: Any) -> str | None:
    """A warning when a frame does not look like the imaging modality the model was trained on.

    Parameters
    ----------
    image : numpy.ndarray
        One raw frame (the movie's first).
    model : Segmenter or str
        A loaded model (its card's ``modality``); ``"classical"`` is never warned about.

    Returns
    -------
    str or None
        ``"input does not look like fluorescence nuclei (bright on a dark background); ..."`` for a
        fluorescence model on a grey-background movie (phase contrast, bright field), ``"input looks like
        fluorescence (bright objects on a dark background); the model was trained on phase contrast"``
        when a phase-contrast model gets a frame without a grey background, else None
        (:func:`looks_like_fluorescence`, :func:`looks_like_phase_contrast`).
    """
    modality = getattr(getattr(model, "card", None), "modality", None)
    if modality is None:
        return None
    if modality == "fluorescence" and not looks_like_fluorescence(image):
        return ("input does not look like fluorescence nuclei (bright on a dark background); the model was trained "
                "on fluorescence (for phase contrast use --segmenter auto or cells-seg-2d-phc)")
    if modality == "phase-contrast" and not looks_like_phase_contrast(image):
        return ("input looks like fluorescence (bright objects on a dark background); the model was trained on "
                "phase contrast (dark cells on a grey background)")
    return None


def looks_like_fluorescence(image: np.ndarray) -> bool:
    """Whether a frame looks like bright objects on a dark background (fluorescence).

    The median of the percentile-normalised frame (1st → 0, 99.8th → 1) is below 0.35 for
    fluorescence nuclei (mostly dark background); phase contrast and bright field have a grey
    background near the middle of the range. (A light-sheet volume sits near the bound: the mouse 8-cell
    frames read 0.33–0.35. The routing of 2D movies to a phase-contrast model uses
    :func:`looks_like_phase_contrast` instead.)

    Parameters
    ----------
    image : numpy.ndarray
        One frame, 2D or 3D.

    Returns
    -------
    bool
        True for a dark background with bright objects.
    """
    x = normalize_image(image)
    return bool(np.median(x) < 0.35)


def background_level(image: np.ndarray) -> float:
    """The background level of a frame: the most common value of the percentile-normalised frame.

    Parameters
    ----------
    image : numpy.ndarray
        One frame, 2D or 3D.

    Returns
    -------
    float
        Centre of the fullest bin of a 50-bin histogram of the frame normalised 1st → 0, 99.8th
        percentile → 1 (:func:`~dynacell.segment.learned.normalize_image`), 0..1.
    """
    counts, edges = np.histogram(normalize_image(image), bins=50, range=(0.0, 1.0))
    k = int(np.argmax(counts))
    return float((edges[k] + edges[k + 1]) / 2)


def looks_like_phase_contrast(image: np.ndarray) -> bool:
    """Whether a 2D frame has the grey background of phase contrast (cells darker, halos brighter).

    A 2D frame whose :func:`background_level` is at least 0.2. Measured on the shared data:
    fluorescence 0.01–0.07 (GOWT1 01 frames 0 and 91, HeLa 02 frames 0 and 19, the DSB image, a CHO
    maximum projection), phase contrast 0.27–0.41 (bacteria-phc 01 frames 0, 30, 52; the median of
    :func:`looks_like_fluorescence` reads frame 52, a dense colony, as fluorescence). 3D frames are never
    called phase contrast: a light-sheet volume's broad noise puts its background near 0.35 too (mouse
    8-cell).

    Parameters
    ----------
    image : numpy.ndarray
        One frame.

    Returns
    -------
    bool
    """
    img = np.asarray(image)
    return bool(img.ndim == 2 and background_level(img) >= 0.2)


#: Range of segmented fractions (nucleus voxels / all voxels) of the training data, by number of spatial
#: dimensions: in 3D the 8 nuclei of a mouse 8-cell frame fill 0.37–0.44 % of the light-sheet volume
#: (``nuclei-seg-3d`` training frames), the StarDist 3D half-stack 39 %.
TRAINING_FRACTION: dict[int, tuple[float, float]] = {2: (0.005, 0.6), 3: (0.001, 0.6)}


def training_fraction_for(model: Any, ndim: int) -> tuple[float, float]:
    """The segmented-fraction range a model was trained on, for :func:`check_segmentation`.

    Parameters
    ----------
    model : Segmenter or str
        A loaded model (its card's ``training_fraction`` when set) or ``"classical"``.
    ndim : {2, 3}
        Spatial dimensionality of the movie.

    Returns
    -------
    tuple of float
        ``(low, high)``: the card's range, else :data:`TRAINING_FRACTION` of ``ndim``.
    """
    own = getattr(getattr(model, "card", None), "training_fraction", None)
    return tuple(own) if own is not None else TRAINING_FRACTION[ndim]


#: Tolerance of :func:`check_segmentation` around a range recorded on a model's card (``training_fraction``):
#: an order of magnitude, as for the jumps between frames.
CARD_FRACTION_FACTOR = 10.0


def fraction_range_factor(model: Any) -> float:
    """How far outside :func:`training_fraction_for`'s range a frame's segmented fraction may lie before a warning.

    Parameters
    ----------
    model : Segmenter or str
        A loaded model or ``"classical"``.

    Returns
    -------
    float
        :data:`CARD_FRACTION_FACTOR` for a range recorded on the model's card — the masks of its own training
        movie, which a later frame or a crop of the same kind of movie leaves legitimately (bacteria-phc 01:
        0.0019–0.077 over frames 0–40, 0.085–0.25 over its test frames 41–52, 0.16–0.63 in 512² crops around
        the colony, all segmented at SEG 0.81–0.84 by ``cells-seg-2d-phc``) — and 1 for the hand-set
        plausibility ranges of :data:`TRAINING_FRACTION`.
    """
    return CARD_FRACTION_FACTOR if getattr(getattr(model, "card", None), "training_fraction", None) is not None else 1.0


def check_segmentation(stats: list[dict[str, Any]], *, factor: float = 10.0,
                       training_fraction: tuple[float, float] = TRAINING_FRACTION[2],
                       range_factor: float = 1.0) -> list[str]:
    """Sanity check of a segmented movie; returns (and logs) one warning per problem.

    Parameters
    ----------
    stats : list of dict
        One per frame, in time order: ``t``, ``n_objects``, ``foreground_fraction``.
    factor : float
        A jump of the object count or of the segmented fraction by this factor between two
        consecutive frames is reported (an order of magnitude by default).
    training_fraction : tuple of float
        Range of segmented fractions seen in the training data; frames outside are reported
        (:data:`TRAINING_FRACTION` of the movie's dimension).
    range_factor : float
        Frames are reported when their fraction lies more than this factor outside ``training_fraction``
        (1: any departure; :func:`fraction_range_factor` of the model).

    Returns
    -------
    list of str
        Warnings (empty when nothing is suspicious).
    """
    msgs: list[str] = []
    for a, b in itertools.pairwise(stats):
        for key, what in (("n_objects", "object count"), ("foreground_fraction", "segmented fraction")):
            va, vb = float(a[key]), float(b[key])
            lo, hi = min(va, vb), max(va, vb)
            if hi > 0 and (lo == 0 or hi / lo >= factor) and hi >= (3 if key == "n_objects" else 1e-3):
                msgs.append(f"frames {a['t']}->{b['t']}: {what} jumps from {va:g} to {vb:g}")
    empty = [s["t"] for s in stats if s["n_objects"] == 0]
    if empty:
        msgs.append(f"{len(empty)} frame(s) with no nucleus found (first: {empty[0]})")
    lo, hi = training_fraction
    rf = max(1.0, float(range_factor))
    out = [s["t"] for s in stats if s["n_objects"] and not lo / rf <= s["foreground_fraction"] <= hi * rf]
    if out:
        beyond = f" by more than {rf:g}x" if rf > 1 else ""
        msgs.append(f"{len(out)} frame(s) with a segmented fraction outside the training range {lo:g}-{hi:g}{beyond} "
                    f"(first: frame {out[0]})")
    for m in msgs:
        logger.warning("segmentation check: %s", m)
    return msgs


def iter_segment(images: Movie, model: str | Path | Segmenter = DEFAULT_MODEL, *,
                 voxel_size_um: tuple[float, ...] | None = None, nucleus_diameter_px: float | None = None,
                 device: str = "cpu", progress: bool | None = None) -> Iterator[tuple[int, np.ndarray, dict[str, Any]]]:
    """Segment a movie frame by frame (a generator; memory holds one frame).

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    model : str, path or Segmenter
        A shipped model name, a model folder, a loaded model, or ``"classical"``.
    voxel_size_um : tuple of float, optional
        Overrides the movie's voxel size.
    nucleus_diameter_px : float, optional
        Typical nucleus diameter (lateral pixels); estimated once from the first non-empty
        frame when absent (learned models only).
    device : str
        Torch device.
    progress : bool or None
        Progress bar (None: only on a terminal).

    Yields
    ------
    t : int
        Frame number.
    labels : numpy.ndarray
        int32 labels of that frame.
    info : dict
        ``seconds``, ``n_objects``, ``foreground_fraction``, ``nucleus_diameter_px``.
    """
    from tqdm.auto import tqdm

    from dynacell.segment import classical

    vs = voxel_size_um if voxel_size_um is not None else images.voxel_size_um
    show = bool(progress) if progress is not None else False
    seg = None if str(model) == classical.METHOD_NAME else Segmenter.load(model, device)
    diam = nucleus_diameter_px
    for t in tqdm(images.frame_indices, desc="segment", disable=not show):
        frame = images.frame(t)
        t0 = time.perf_counter()
        if seg is None:
            lab = classical.segment_frame(frame, voxel_size_um=vs)
        else:
            if diam is None and float(np.ptp(frame)) > 0:
                try:
                    diam = size_estimate_px(frame, seg, vs)
                    logger.info("nucleus diameter estimated from frame %d: %.1f px", t, diam)
                except InvalidInputError:
                    diam = None
            lab = (segment_frame(frame, seg, nucleus_diameter_px=diam, voxel_size_um=vs) if diam is not None
                   else np.zeros(frame.shape, np.int32))
        yield int(t), lab, {"seconds": time.perf_counter() - t0, "n_objects": int(lab.max()),
                            "foreground_fraction": float((lab > 0).mean()), "nucleus_diameter_px": diam}


def segment_movie(images: Movie, model: str | Path | Segmenter = DEFAULT_MODEL, *,
                  voxel_size_um: tuple[float, ...] | None = None, nucleus_diameter_px: float | None = None,
                  store: str | Path | None = None, device: str = "cpu", progress: bool | None = None) -> Movie:
    """Segment every frame of a movie into a labels :class:`~dynacell.io.movie.Movie`.

    Parameters
    ----------
    images : Movie
        Intensities ``(T, (Z), Y, X)``.
    model : str, path or Segmenter
        ``"nuclei-seg-2d-fast"`` (default, shipped), another shipped name (``"nuclei-seg-2d"``: its
        teacher, 4 flips), a model folder, a loaded
        :class:`Segmenter`, or ``"classical"`` (threshold + watershed).
    voxel_size_um : tuple of float, optional
        Overrides the movie's voxel size (µm, spatial axis order).
    nucleus_diameter_px : float, optional
        Typical nucleus diameter in lateral pixels (estimated from the first frame if absent).
    store : path, optional
        Folder of a zarr array receiving the labels frame by frame (memory flat in ``T``);
        None keeps them in memory.
    device : str
        Torch device.
    progress : bool or None
        Progress bar.

    Returns
    -------
    Movie
        int32 labels ``(T, (Z), Y, X)`` with the movie's frame numbers (ids per frame, not
        consistent over time); ``metadata`` holds ``segmenter`` (model name), ``warnings``
        (:func:`check_segmentation`), ``frames`` (per-frame statistics) and
        ``nucleus_diameter_px``.

    Raises
    ------
    InvalidInputError
        Unknown model name, or frames that are not 2-D/3-D.

    Examples
    --------
    >>> from dynacell.segment.predict import segment_movie
    >>> labels = segment_movie(images, "nuclei-seg-2d")  # doctest: +SKIP
    """
    import dask.array as da

    if images.n_frames == 0:
        raise InvalidInputError(f"movie {images.source}: no frame to segment")
    first = images.frame(images.frame_indices[0])
    if store is not None:
        import zarr

        arr = zarr.create_array(str(store), shape=images.shape, chunks=(1, *images.frame_shape), dtype="int32",
                                fill_value=0)
    else:
        arr = np.zeros(images.shape, np.int32)
    stats = []
    if str(model) != "classical":
        model = Segmenter.load(model, device)
    modality_note = modality_warning(first, model)
    if modality_note:
        logger.warning("movie %s: %s; check the masks", images.source, modality_note)
    name = model.name if isinstance(model, Segmenter) else "classical"
    diam = None
    for i, (t, lab, info) in enumerate(iter_segment(images, model, voxel_size_um=voxel_size_um,
                                                    nucleus_diameter_px=nucleus_diameter_px, device=device,
                                                    progress=progress)):
        arr[i] = lab
        diam = info["nucleus_diameter_px"]
        stats.append({"t": t, **{k: v for k, v in info.items() if k != "nucleus_diameter_px"}})
    warnings_ = check_segmentation(stats, training_fraction=training_fraction_for(model, images.ndim_spatial),
                                   range_factor=fraction_range_factor(model))
    size_note = size_warning(diam if nucleus_diameter_px is None else None, model)
    if size_note:
        logger.warning("movie %s: %s", images.source, size_note)
        warnings_.insert(0, size_note)
    if modality_note:
        warnings_.insert(0, modality_note)
    data = da.from_zarr(str(store)) if store is not None else arr
    vs = voxel_size_um if voxel_size_um is not None else images.voxel_size_um
    return Movie(data=data, axes=images.axes, voxel_size_um=vs, frame_interval_s=images.frame_interval_s,
                 frame_indices=images.frame_indices, source=f"{name} segmentation of {images.source}",
                 metadata={"segmenter": name, "warnings": warnings_, "frames": stats, "nucleus_diameter_px": diam,
                           "postprocess": asdict(model.postprocess) if isinstance(model, Segmenter) else None})
