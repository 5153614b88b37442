"""Training of the segmentation networks: annotated frames, crops, the Lightning module, the run.

Data (read in place from the shared data folder, never copied):

==============  ===============================================  ==========================================
dataset         reference masks                                   split (time block / region)
==============  ===============================================  ==========================================
``gowt1``       CTC Fluo-N2DH-GOWT1 01_GT/SEG (sparse: about 5 of   train t ≤ 20, val 21–31, test ≥ 32
                ~24 nuclei per frame; the area around the other
                nuclei, found from the TRA markers, is ignored)
``gowt1-tra``   GOWT1 01 pseudo masks of every nucleus of every     train t ≤ 20 only (never ≥ 32)
                frame: one 01_GT/TRA marker per nucleus, grown by
                a seeded watershed inside a model's foreground
                (:func:`marker_pseudo_labels`); SEG objects pasted
``hela02``      CTC Fluo-N2DL-HeLa 02_ST/SEG (silver truth) on      train t ≤ 9, val 10–11, test 13–19
                frames with images (0–19)
``dsb``         DSB 2018 image (StarDist), 125 nuclei: one image    train = top 60 % of rows, test = the rest
``bacteria``    bacteria-phc 01_GT/TRA (full masks; phase contrast) test t ≥ 42 only (out of domain)
``mouse8``      mouse 8-cell 3D labels                              train t ≤ 6, val 7, test 8–10
``mouse8-zreg`` the same labels moved one plane down in z onto the  train t ≤ 6, val 7, test 8–10
                nuclear signal (:data:`MOUSE8_LABEL_Z_SHIFT`)
``stardist3d``  StarDist 3D stack, 51 nuclei                         test only
``epidermis``   mouse epidermis nuclei, 6 frames 200 × 200 (laptrack  test only (blind: never used for training,
                example ``napari_interactive_fix_data``): tracked     selection or tuning)
                labels of a published segmentation, not a CTC
                gold truth
``phc-mammal``  mammalian cells in phase contrast, 10 frames 234 ×   test only (blind)
                234 (laptrack example ``cell_segmentation_data``)
``stardist3d-half``  the same stack cut at the middle of X             train = x < 28 (t 0), test = x ≥ 28 (t 1)
``sim3d``       simulated 3D embryos (dynacell.simulate), random   train seeds 0–7 (domain randomisation)
                density, nucleus size, voxel aspect, photons
``sim3d-ls``    simulated 3D embryos imaged like the mouse 8-cell   train seeds 0–7 (seeds 8–11: validation
                light-sheet stack (:func:`_sim3d_ls_frames`)        renders of the benchmarks)
``wormguides3d``  the real C. elegans lineage (WormGUIDES: real 3D    train lineage frames 60–140 and 200–250,
                positions, diameters, divisions) rendered as       val 150–189, test 270–330 (time blocks;
                fluorescence volumes, imaging drawn per frame       :data:`WORMGUIDES_FRAMES`)
                (:func:`_wormguides_frame`): dense small nuclei
                under a blur stretched along z, exact labels
``sim``         simulated 2D colony with apoptosis (dynacell.        train seeds 0–1, val 2, test 3
                simulate), live/dead labels
``rods``        rendered phase-contrast rod colonies, one draw of   train seeds 0–11, val 12–13, test 14–15
                :data:`dynacell.simulate.rods.ROD_RANGES` per seed
                (:func:`_rods_frames`; domain randomisation)
==============  ===============================================  ==========================================

Every frame is normalised (:func:`dynacell.segment.learned.normalize_image`) and resampled so
that its nuclei are :data:`TARGET_DIAMETER_PX` across (the median equivalent diameter of the
reference objects of the training side; the nucleus-size rule of the state classifiers), at
three zooms (×0.8, ×1, ×1.25) for scale robustness. Crops of 128×128 are drawn at random
(half of them centred on a nucleus), flipped/rotated, and their intensities jittered.

``python -m dynacell.train.segment --architecture instance-unet --name nuclei-seg-2d`` trains and
writes a model folder (weights + card) through :func:`dynacell.train.engine.fit_module`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.segment.learned import (
    PostprocessParams,
    normalize_image,
    training_targets,
)

__all__ = [
    "DATASETS_2D",
    "MOUSE8_LABEL_Z_SHIFT",
    "PSEUDO_LABEL_MODEL",
    "RODS_FRAMES",
    "RODS_WALL_WIDTHS",
    "SPLITS",
    "STARDIST3D_CUT_X",
    "TARGET_DIAMETER_PX",
    "AnnotatedFrame",
    "CropDataset",
    "FrameDataset",
    "SegmentationModule",
    "add_teacher_maps",
    "load_frames",
    "marker_pseudo_labels",
    "narrowed_state_dict",
    "prepare",
    "estimated_diameter_px",
    "shift_labels_z",
    "size_groups",
    "size_search_fields",
    "train_segmenter",
    "voxel_aspect",
]

logger = logging.getLogger(__name__)

#: Nucleus diameter (model pixels) every frame is resampled to.
TARGET_DIAMETER_PX = 24.0

#: Default location of the shared data, beside the checkout.
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"

#: Split of each dataset: frame numbers (or DSB regions 0 = top 60 %, 1 = bottom 40 %) per side.
SPLITS: dict[str, dict[str, Any]] = {
    "gowt1": {"train": lambda t: t <= 20, "val": lambda t: 21 <= t <= 31, "test": lambda t: t >= 32},
    "gowt1-tra": {"train": lambda t: t <= 20, "val": lambda t: False, "test": lambda t: False},
    "hela02": {"train": lambda t: t <= 9, "val": lambda t: 10 <= t <= 11, "test": lambda t: t >= 13},
    "dsb": {"train": lambda t: t == 0, "val": lambda t: False, "test": lambda t: t == 1},
    # frames 30 and 41 are gaps between the sides (the colony changes little in one frame)
    "bacteria": {"train": lambda t: t <= 29, "val": lambda t: 31 <= t <= 40, "test": lambda t: t >= 42},
    "mouse8": {"train": lambda t: t <= 6, "val": lambda t: t == 7, "test": lambda t: t >= 8},
    "mouse8-zreg": {"train": lambda t: t <= 6, "val": lambda t: t == 7, "test": lambda t: t >= 8},
    "stardist3d": {"train": lambda t: False, "val": lambda t: False, "test": lambda t: True},
    "epidermis": {"train": lambda t: False, "val": lambda t: False, "test": lambda t: True},
    "phc-mammal": {"train": lambda t: False, "val": lambda t: False, "test": lambda t: True},
    "stardist3d-half": {"train": lambda t: t == 0, "val": lambda t: False, "test": lambda t: t == 1},
    "sim3d": {"train": lambda t: t <= 7, "val": lambda t: False, "test": lambda t: False},
    "sim3d-ls": {"train": lambda t: t <= 7, "val": lambda t: False, "test": lambda t: False},
    "sim": {"train": lambda t: t <= 1, "val": lambda t: t == 2, "test": lambda t: t == 3},
    "wormguides3d": {"train": lambda t: 60 <= t <= 140 or 200 <= t <= 250, "val": lambda t: 150 <= t <= 189,
                     "test": lambda t: 270 <= t <= 330},
    "rods": {"train": lambda t: t <= 11, "val": lambda t: 12 <= t <= 13, "test": lambda t: 14 <= t <= 15},
}

#: Split descriptions written in model cards.
SPLIT_TEXT: dict[str, str] = {
    "gowt1": "time blocks: train t<=20, val 21-31, test >=32 (01_GT/SEG frames)",
    "gowt1-tra": ("train t<=20 only (every frame; 01_GT/TRA markers grown in the foreground of the "
                  "pseudo-label model, SEG objects pasted); frames 21-31 validate, >=32 test (SEG)"),
    "hela02": "time blocks: train t<=9, val 10-11, test 13-19 (02_ST/SEG frames with images)",
    "dsb": "regions: train top 60% of rows, test bottom 40%",
    "bacteria": "train t<=29, val 31-40, test t>=42 (phase contrast; only the phase-contrast model trains on it)",
    "mouse8": "time blocks: train t<=6, val 7, test 8-10",
    "mouse8-zreg": "time blocks: train t<=6, val 7, test 8-10 (labels moved 1 plane in z onto the signal)",
    "stardist3d": "test only",
    "epidermis": "test only (blind: laptrack example napari_interactive_fix_data, 6 frames)",
    "phc-mammal": "test only (blind: laptrack example cell_segmentation_data, 10 frames)",
    "stardist3d-half": "regions: train x < 28 (left half of X), test x >= 28",
    "sim3d": "simulation seeds 0-7 (training only)",
    "wormguides3d": ("time blocks of the C. elegans lineage (rendered): train frames 60-140 and 200-250 (every 20th), "
                     "val 150-189 (4 frames), test 270-330 (4 frames)"),
    "sim3d-ls": "simulation seeds 0-7 (training only; seeds 8-11 are validation renders)",
    "sim": "simulation seeds: train 0-1, val 2, test 3",
    "rods": "rendered rod colonies (phase contrast), one parameter draw per seed: train 0-11, val 12-13, test 14-15",
}

DATASETS_2D = ("gowt1", "hela02", "dsb", "bacteria")

#: Planes by which ``mouse8-zreg`` moves the mouse 8-cell label volumes along z (negative: towards
#: plane 0) so that they lie on the nuclear signal. Measured on the training frames 0–6 only (56
#: nuclei): the centroid of each nucleus's background-subtracted, smoothed intensity (σ = 0.7 plane,
#: 1.5 px) within 4 voxels of its label lies 1.08 ± 0.20 planes below the label's centroid (y, x:
#: −0.08 ± 0.33, +0.11 ± 0.36 px; the same measure gives 0.0 ± 0.3 on the exact labels of ``sim3d``).
#: A one-plane shift of a perfect segmentation scores SEG 0.66 against the labels as given (frames
#: 0–6), so an image-aligned segmenter is capped there on ``mouse8``.
MOUSE8_LABEL_Z_SHIFT = -1

#: Column of the StarDist 3D stack where ``stardist3d-half`` cuts it (train left, test right).
STARDIST3D_CUT_X = 28


@dataclass
class AnnotatedFrame:
    """One annotated frame (or region) of a dataset.

    Attributes
    ----------
    dataset : str
        Dataset key (see the module table).
    t : int
        Frame number (DSB: region 0/1; sim: simulation seed).
    image : numpy.ndarray
        Raw intensities ``((Z), Y, X)``.
    labels : numpy.ndarray
        int32 reference instances, 0 = background.
    known : numpy.ndarray or None
        Boolean mask of the pixels whose class is known (None = all): a sparse reference's
        unannotated nuclei are unknown.
    full : bool
        Whether every nucleus is annotated (object precision / F1 need it).
    dead : set of int
        Reference ids of dead (apoptotic) nuclei.
    voxel_size_um : tuple of float or None
        Physical voxel size when known.
    """

    dataset: str
    t: int
    image: np.ndarray
    labels: np.ndarray
    known: np.ndarray | None = None
    full: bool = True
    dead: set[int] = field(default_factory=set)
    voxel_size_um: tuple[float, ...] | None = None


def _read(path: Path) -> np.ndarray:
    import tifffile

    return np.asarray(tifffile.imread(path))


def _gowt1_known(seg: np.ndarray, tra: np.ndarray, radius_px: int = 24) -> np.ndarray:
    """Known pixels of a sparse GOWT1 frame: everything but a disc around each unannotated TRA marker."""
    from scipy import ndimage as ndi

    unannotated = np.zeros(seg.shape, bool)
    for i in np.unique(tra[tra > 0]):
        m = tra == i
        if (seg[m] > 0).mean() < 0.5:
            unannotated |= m
    unknown = (ndi.distance_transform_edt(~unannotated) <= radius_px) & (seg == 0)
    return ~unknown


#: Model whose foreground and distance maps grow the GOWT1 TRA markers into the ``gowt1-tra``
#: pseudo masks (a model folder or shipped name; see :func:`marker_pseudo_labels`).
PSEUDO_LABEL_MODEL: str = "nuclei-seg-2d"


def marker_pseudo_labels(markers: np.ndarray, foreground: np.ndarray, elevation: np.ndarray, *,
                         annotated: np.ndarray | None = None,
                         margin_px: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo instance masks of a frame in which every nucleus carries one marker.

    Each marker is grown by a seeded watershed of ``elevation`` inside ``foreground`` (plus the
    markers): two touching nuclei with a marker each become two objects, however the foreground
    merges them. Foreground that no marker reaches (a nucleus without a marker, or noise) is
    unknown, with a margin, rather than background. Objects of a (sparse) manual annotation
    replace the pseudo object(s) whose marker they cover.

    Parameters
    ----------
    markers : numpy.ndarray
        int ``(Y, X)`` markers, one id per nucleus (CTC ``man_track``; 0 = none).
    foreground : numpy.ndarray
        bool ``(Y, X)`` foreground (for example a model's foreground probability > 0.5).
    elevation : numpy.ndarray
        float ``(Y, X)`` watershed landscape, low inside nuclei (for example minus a predicted
        distance-to-edge map).
    annotated : numpy.ndarray, optional
        int ``(Y, X)`` manual instance masks of some nuclei (CTC ``man_seg``; 0 = not annotated).
    margin_px : int
        Dilation (pixels) of the unknown area around foreground no marker reaches.

    Returns
    -------
    labels : numpy.ndarray
        int32 ``(Y, X)`` pseudo instances (0 = background).
    known : numpy.ndarray
        bool ``(Y, X)``: False where the class is unknown (foreground without a marker).

    Raises
    ------
    InvalidInputError
        If the arrays differ in shape.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    mk = np.asarray(markers).astype(np.int32)
    fg = np.asarray(foreground, bool)
    if mk.shape != fg.shape or np.shape(elevation) != mk.shape or (annotated is not None and np.shape(annotated) != mk.shape):
        raise InvalidInputError("marker_pseudo_labels: markers, foreground, elevation and annotated differ in shape")
    mask = fg | (mk > 0)
    lab = watershed(np.asarray(elevation, np.float32), mk, mask=mask).astype(np.int32)
    stray = mask & (lab == 0)
    unknown = (ndi.binary_dilation(stray, iterations=int(margin_px)) if stray.any() else stray) & (lab == 0)
    if annotated is not None:
        ann = np.asarray(annotated).astype(np.int32)
        next_id = int(max(lab.max(), 0)) + 1
        sizes = np.bincount(mk.ravel())
        for a in np.unique(ann[ann > 0]):
            obj = ann == a
            ids, n = np.unique(mk[obj & (mk > 0)], return_counts=True)
            lab[np.isin(lab, ids[2 * n > sizes[ids]])] = 0  # the pseudo object(s) of the markers it covers
            lab[obj] = next_id
            next_id += 1
        unknown &= ann == 0
    return lab, ~unknown


def _gowt1_marker_frames(keep: Any, base: Path, model: str | Path = PSEUDO_LABEL_MODEL) -> list[AnnotatedFrame]:
    """``gowt1-tra`` frames: TRA markers grown in the foreground of ``model`` (4 flips, 60 px nuclei)."""
    from dynacell.segment.predict import Segmenter, segment_frame

    seg_model = Segmenter.load(model).with_test_time_flips(4)
    out = []
    for f in sorted((base / "01_GT" / "TRA").glob("man_track*.tif")):
        t = int(f.stem[9:])
        if not keep(t):
            continue
        img = _read(base / "01" / f"t{t:03d}.tif")
        _, maps, _ = segment_frame(img, seg_model, nucleus_diameter_px=GOWT1_DIAMETER_PX, return_maps=True)
        seg_file = base / "01_GT" / "SEG" / f"man_seg{t:03d}.tif"
        lab, known = marker_pseudo_labels(_read(f), maps["foreground"] > seg_model.postprocess.foreground,
                                          -maps["distance"],
                                          annotated=_read(seg_file) if seg_file.is_file() else None)
        out.append(AnnotatedFrame("gowt1-tra", t, img, lab, known=known, full=False, voxel_size_um=(0.24, 0.24)))
    return out


#: Median equivalent diameter (pixels) of the GOWT1 01 SEG objects of frames 0–20 (as in the card).
GOWT1_DIAMETER_PX = 60.1


def load_frames(dataset: str, side: str, data_root: str | Path | None = None, *,
                pseudo_model: str | Path | None = None) -> list[AnnotatedFrame]:
    """Annotated frames of one dataset on one side of its split.

    Parameters
    ----------
    dataset : str
        A key of :data:`SPLITS`.
    side : {"train", "val", "test"}
        Side of the split.
    data_root : path, optional
        The shared data folder (default ``../shared/data`` beside the checkout).
    pseudo_model : path or str, optional
        ``gowt1-tra`` only: the model whose maps grow the markers (default
        :data:`PSEUDO_LABEL_MODEL`).

    Returns
    -------
    list of AnnotatedFrame

    Raises
    ------
    InvalidInputError
        Unknown dataset or side, or the data folder is missing.
    """
    if dataset not in SPLITS or side not in ("train", "val", "test"):
        raise InvalidInputError(f"unknown dataset/side {dataset!r}/{side!r}; datasets: {', '.join(SPLITS)}")
    root = Path(data_root) if data_root is not None else DEFAULT_DATA
    if dataset not in ("sim", "rods") and not root.is_dir():
        raise InvalidInputError(f"shared data folder {root} not found")
    keep = SPLITS[dataset][side]
    out: list[AnnotatedFrame] = []
    if dataset == "gowt1":
        base = root / "ctc" / "Fluo-N2DH-GOWT1"
        for f in sorted((base / "01_GT" / "SEG").glob("man_seg*.tif")):
            t = int(f.stem[7:])
            if not keep(t):
                continue
            seg = _read(f).astype(np.int32)
            tra = _read(base / "01_GT" / "TRA" / f"man_track{t:03d}.tif")
            out.append(AnnotatedFrame(dataset, t, _read(base / "01" / f"t{t:03d}.tif"), seg,
                                      known=_gowt1_known(seg, tra), full=False, voxel_size_um=(0.24, 0.24)))
    elif dataset == "gowt1-tra":
        out.extend(_gowt1_marker_frames(keep, root / "ctc" / "Fluo-N2DH-GOWT1", pseudo_model or PSEUDO_LABEL_MODEL))
    elif dataset == "hela02":
        base = root / "ctc" / "Fluo-N2DL-HeLa"
        for f in sorted((base / "02_ST" / "SEG").glob("man_seg*.tif")):
            t = int(f.stem[7:])
            img = base / "02" / f"t{t:03d}.tif"
            if keep(t) and img.is_file():
                out.append(AnnotatedFrame(dataset, t, _read(img), _read(f).astype(np.int32),
                                          voxel_size_um=(0.645, 0.645)))
    elif dataset == "dsb":
        base = root / "segmentation" / "dsb2018-stardist"
        img, lab = _read(base / "img2d.tif"), _read(base / "mask2d.tif").astype(np.int32)
        cut = int(round(0.6 * img.shape[0]))
        for t, sl in ((0, slice(0, cut)), (1, slice(cut, None))):
            if keep(t):
                out.append(AnnotatedFrame(dataset, t, img[sl], lab[sl]))
    elif dataset == "bacteria":
        base = root / "ctc" / "bacteria-phc"
        for f in sorted((base / "01_GT" / "TRA").glob("man_track*.tif")):
            t = int(f.stem[9:])
            if keep(t):
                out.append(AnnotatedFrame(dataset, t, _read(base / "01" / f"t{t:03d}.tif"), _read(f).astype(np.int32)))
    elif dataset in ("mouse8", "mouse8-zreg"):
        base = root / "embryo3d" / "mouse-8cell"
        for f in sorted((base / "labels").glob("t*.tif")):
            t = int(f.stem[1:])
            if keep(t):
                lab = _read(f).astype(np.int32)
                if dataset == "mouse8-zreg":
                    lab = shift_labels_z(lab, MOUSE8_LABEL_Z_SHIFT)
                out.append(AnnotatedFrame(dataset, t, _read(base / "images" / f.name), lab))
    elif dataset == "epidermis":
        base = root / "segmentation" / "laptrack-examples" / "napari_interactive_fix_data"
        imgs, labs = _read(base / "example_images.tif"), _read(base / "example_label.tif").astype(np.int32)
        for t in range(len(imgs)):
            if keep(t):
                out.append(AnnotatedFrame(dataset, t, imgs[t], labs[t]))
    elif dataset == "phc-mammal":
        with np.load(root / "segmentation" / "laptrack-examples" / "cell_segmentation_data" / "data_small.npz") as z:
            imgs, labs = z["images"], z["labels"].astype(np.int32)
        for t in range(len(imgs)):
            if keep(t):
                out.append(AnnotatedFrame(dataset, t, imgs[t], labs[t]))
    elif dataset in ("stardist3d", "stardist3d-half"):
        base = root / "segmentation" / "stardist-3d"
        img, lab = _read(base / "img3d.tif"), _read(base / "mask3d.tif").astype(np.int32)
        if dataset == "stardist3d":
            out.append(AnnotatedFrame(dataset, 0, img, lab))
        else:
            for t, sl in ((0, slice(0, STARDIST3D_CUT_X)), (1, slice(STARDIST3D_CUT_X, None))):
                if keep(t):
                    out.append(AnnotatedFrame(dataset, t, img[..., sl], lab[..., sl]))
    elif dataset == "sim3d":
        for seed in range(8):
            if keep(seed):
                out.extend(_sim3d_frames(seed))
    elif dataset == "sim3d-ls":
        for seed in range(8):
            if keep(seed):
                out.extend(_sim3d_ls_frames(seed))
    elif dataset == "wormguides3d":
        for t in WORMGUIDES_FRAMES:
            if keep(t):
                out.append(_wormguides_frame(root, t))
    elif dataset == "sim":
        for seed in range(4):
            if keep(seed):
                out.extend(_sim_frames(seed))
    elif dataset == "rods":
        for seed in range(16):
            if keep(seed):
                out.extend(_rods_frames(seed))
    return out


#: Range of :attr:`dynacell.simulate.rods.PhaseContrastParams.wall_widths` drawn per ``rods`` colony (after
#: :data:`~dynacell.simulate.rods.ROD_RANGES`): the bright walls between touching cells that outline each
#: cell of a packed colony in phase contrast (bacteria-phc: 2-4 px in all for cells ~16 px wide); 0 in a fifth of
#: the colonies (touching cells merged, as the state-classifier renders draw them).
RODS_WALL_WIDTHS = (0.04, 0.14)

#: Frames of each rendered rod colony (24 frames) in the ``rods`` set: the colony at about a quarter,
#: half and all of its final size (the real bacteria-phc colony grows from 6 to about 200 cells).
RODS_FRAMES = (12, 18, 23)


def _rods_frames(seed: int) -> list[AnnotatedFrame]:
    """Three frames of a rendered phase-contrast rod colony with its own parameter draw.

    Seed ``s`` draws one colony (``default_rng([9, s])``) from
    :data:`dynacell.simulate.rods.ROD_RANGES` (cell width 0.7–1.2 µm, pixel 0.06–0.12 µm, aspect at
    birth 2–4, dark contrast, halo strength and width, blur, shading, background texture, photons)
    by :func:`dynacell.simulate.rods.draw_rods`, then the bright walls between touching cells
    (:data:`RODS_WALL_WIDTHS`), grown over 24 frames towards 128 cells
    (:func:`dynacell.simulate.rods.simulate_rod_colony`, simulation seed ``4000 + s``); frames
    :data:`RODS_FRAMES`. Exact masks of every cell (labels before the blur).
    """
    from dynacell.simulate.rods import PhaseContrastParams, RodColonyParams, draw_rods, simulate_rod_colony

    rng = np.random.default_rng([9, seed])
    p = draw_rods(rng, n_frames=24)
    wall = float(rng.uniform(*RODS_WALL_WIDTHS))
    p["imaging"]["wall_widths"] = wall if rng.uniform() >= 0.2 else 0.0
    res = simulate_rod_colony(RodColonyParams(**p["colony"]), PhaseContrastParams(**p["imaging"]),
                              n_start=p["n_start"], n_frames=24, min_divisions=6, seed=4000 + seed)
    px = float(p["imaging"]["pixel_um"])
    return [AnnotatedFrame("rods", seed * 100 + i, np.asarray(res.images[i]), np.asarray(res.labels[i], np.int32),
                           voxel_size_um=(px, px)) for i in RODS_FRAMES]


#: Frames before (and at) its death in which a dying simulated nucleus counts as dead: the rendered
#: apoptosis is fragmented there (:class:`dynacell.simulate.params.AppearanceParams`: ``death_frames`` = 4,
#: fragments in its second half). Only the ``death`` node itself (the seed rule) left the fragmented
#: nucleus of the frame before it labelled live: a trained 3-class model then called 0 of 9 held-out dead
#: nuclei dead.
SIM_DEAD_FRAMES = 2


def _sim_frames(seed: int, n_frames: int = 16) -> list[AnnotatedFrame]:
    """Frames of a simulated 2D colony with a high death rate.

    Dead = nuclei in the last :data:`SIM_DEAD_FRAMES` frames of a track that ends in ``death``
    (rendered as fragmented apoptotic nuclei).
    """
    from dynacell.simulate import simulate_embryo

    res = simulate_embryo(ndim=2, n_start=12, n_frames=n_frames, death_rate_per_frame=0.12, min_deaths=6,
                          division_rate_per_frame=0.1, seed=1000 + seed, progress=False)
    states = res.states()
    last = states.groupby("track_id")["t"].transform("max")
    dies = states.groupby("track_id")["state"].transform(lambda s: s.iloc[-1] == "death" if len(s) else False)
    dying = states[dies.astype(bool) & (last - states["t"] < SIM_DEAD_FRAMES)]
    out = []
    for i in range(1, n_frames):
        dead = {int(v) for v in dying.loc[dying.t == i, "label"]}
        out.append(AnnotatedFrame("sim", seed * 100 + i, np.asarray(res.images[i]), np.asarray(res.labels[i], np.int32),
                                  dead=dead, voxel_size_um=tuple(res.voxel_size_um)))
    return out


def _sim3d_frames(seed: int) -> list[AnnotatedFrame]:
    """Two frames of a simulated 3D embryo with randomised appearance (domain randomisation).

    Seed ``s`` draws (``default_rng([7, s])``): 6–30 starting nuclei, nucleus radius 3–5 µm,
    z step 1–2.5 µm (lateral 0.5 µm), 8–60 signal photons over 5–40 background photons; frames
    0 and 3 of a 4-frame simulation (simulation seed ``2000 + s``). Exact labels.
    """
    from dynacell.simulate import simulate_embryo

    rng = np.random.default_rng([7, seed])
    vz = float(rng.uniform(1.0, 2.5))
    res = simulate_embryo(ndim=3, n_start=int(rng.integers(6, 31)), n_frames=4, radius_um=float(rng.uniform(3, 5)),
                          division_rate_per_frame=0.0, voxel_size_um=(vz, 0.5, 0.5),
                          photons=float(rng.uniform(8, 60)), background_photons=float(rng.uniform(5, 40)),
                          seed=2000 + seed, progress=False)
    return [AnnotatedFrame("sim3d", seed * 100 + i, np.asarray(res.images[i]), np.asarray(res.labels[i], np.int32),
                           voxel_size_um=tuple(float(v) for v in res.voxel_size_um)) for i in (0, 3)]


def _sim3d_ls_frames(seed: int) -> list[AnnotatedFrame]:
    """Two frames of a simulated 3D embryo imaged like the real mouse 8-cell light-sheet stack.

    Around :meth:`dynacell.simulate.params.ImagingParams.mouse_lightsheet` (voxels 2.0 × 0.832 ×
    0.832 µm, a point-spread function stretched along z, about 8 signal over 8 background photons)
    and the geometry of ``benchmarks/realism.py`` (``SIM_MOUSE``), seed ``s`` draws
    (``default_rng([8, s])``): 6–12 starting nuclei, nucleus radius 7.5–10 µm, cell radius
    1.5–1.8× the nucleus, PSF sigma 1.0–2.2 µm in z and 0.3–0.55 µm laterally, 5–14 signal over
    6–12 background photons, texture amplitude 0.5–1.0; frames 0 and 3 of a 4-frame simulation
    (simulation seed ``3000 + s``), no division or death. Exact labels (the nucleus before the blur).
    """
    from dynacell.simulate import simulate_embryo
    from dynacell.simulate.params import AppearanceParams, ImagingParams

    rng = np.random.default_rng([8, seed])
    radius = float(rng.uniform(7.5, 10.0))
    psf_z, psf_xy = float(rng.uniform(1.0, 2.2)), float(rng.uniform(0.3, 0.55))
    imaging = ImagingParams.mouse_lightsheet().with_overrides(
        psf_sigma_um=(psf_z, psf_xy, psf_xy), photons=float(rng.uniform(5, 14)),
        background_photons=float(rng.uniform(6, 12)))
    res = simulate_embryo(ndim=3, n_start=int(rng.integers(6, 13)), n_frames=4, division_rate_per_frame=0.0,
                          death_rate_per_frame=0.0, radius_um=radius, cell_radius_um=radius * float(rng.uniform(1.5, 1.8)),
                          motility_um_per_frame=0.5, imaging=imaging,
                          appearance=AppearanceParams(texture_amplitude=float(rng.uniform(0.5, 1.0)), texture_scale_um=4.0),
                          seed=3000 + seed, progress=False)
    return [AnnotatedFrame("sim3d-ls", seed * 100 + i, np.asarray(res.images[i]), np.asarray(res.labels[i], np.int32),
                           voxel_size_um=tuple(float(v) for v in res.voxel_size_um)) for i in (0, 3)]


#: Lineage frames of ``wormguides3d`` rendered per side (every 20th of the training blocks; 4 per held-out block).
WORMGUIDES_FRAMES = (*range(60, 141, 20), *range(200, 241, 20), 150, 163, 176, 189, 270, 290, 310, 330)


@lru_cache(maxsize=1)
def _wormguides_lineage(root: str) -> Any:
    from dynacell.lineage import read_lineage

    return read_lineage(Path(root) / "lineages" / "wormguides-celegans")


def _wormguides_frame(root: Path, t: int) -> AnnotatedFrame:
    """One frame of the real C. elegans lineage (WormGUIDES) rendered as a fluorescence volume.

    Every nucleus of lineage frame ``t`` is drawn at its real position and diameter
    (:func:`dynacell.simulate.render_lineage`, states and apoptosis from the lineage); the imaging is
    drawn per frame (``default_rng([9, t])``): z step 0.6–1.5 µm, lateral pixel 0.2–0.35 µm, Gaussian
    PSF σ 0.5–1.2 µm along z and 0.15–0.3 µm laterally, 20–80 signal over 3–15 background photons.
    Nuclei of 2–5 µm, a few planes deep and touching: the dense embryo the mouse stack and ``sim3d``
    do not show. Exact labels (the nuclei before the blur).

    Raises
    ------
    InvalidInputError
        If the lineage folder is missing.
    """
    from dynacell.simulate import render_lineage
    from dynacell.simulate.params import WORMGUIDES_VOXEL_SIZE_UM

    rng = np.random.default_rng([9, t])
    vz, vxy = float(rng.uniform(0.6, 1.5)), float(rng.uniform(0.2, 0.35))
    psf_z, psf_xy = float(rng.uniform(0.5, 1.2)), float(rng.uniform(0.15, 0.3))
    res = render_lineage(_wormguides_lineage(str(root)), frames=[t], lineage_voxel_size_um=WORMGUIDES_VOXEL_SIZE_UM,
                         voxel_size_um=(vz, vxy, vxy),
                         psf_sigma_um=(psf_z, psf_xy, psf_xy), photons=float(rng.uniform(20, 80)),
                         background_photons=float(rng.uniform(3, 15)), seed=t, progress=False)
    return AnnotatedFrame("wormguides3d", t, np.asarray(res.images[0]), np.asarray(res.labels[0], np.int32),
                          voxel_size_um=(vz, vxy, vxy))


def size_groups(dataset: str, frames: list[AnnotatedFrame]) -> list[list[AnnotatedFrame]]:
    """Frames that share one nucleus size and voxel aspect (one resampling zoom) within a dataset.

    A real sequence is one group; each simulated 3D embryo (``sim3d``, ``sim3d-ls``: a frame of its
    own draw) and each rendered rod colony (``rods``: the frames of one seed) is its own.

    Parameters
    ----------
    dataset : str
        Dataset key (:data:`SPLITS`).
    frames : list of AnnotatedFrame
        Frames of that dataset (one side or several).

    Returns
    -------
    list of list of AnnotatedFrame
        The groups, in the order of their first frame; empty if ``frames`` is.
    """
    if not frames:
        return []
    if dataset in ("sim3d", "sim3d-ls", "wormguides3d"):
        return [[f] for f in frames]
    if dataset == "rods":
        return [[f for f in frames if f.t // 100 == k] for k in sorted({f.t // 100 for f in frames})]
    return [frames]


def shift_labels_z(labels: np.ndarray, planes: int) -> np.ndarray:
    """A label volume moved by ``planes`` along z (axis 0), emptied planes set to background.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels ``(Z, Y, X)``.
    planes : int
        Shift in planes (negative: towards plane 0).

    Returns
    -------
    numpy.ndarray
        A new array of the same shape and dtype; labels moved past either end are cut.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((4, 1, 1), int); lab[2] = 5
    >>> shift_labels_z(lab, -1)[:, 0, 0].tolist()
    [0, 5, 0, 0]
    """
    out = np.zeros_like(labels)
    k = int(planes)
    if k == 0:
        out[:] = labels
    elif abs(k) < labels.shape[0]:
        if k > 0:
            out[k:] = labels[:-k]
        else:
            out[:k] = labels[-k:]
    return out


def size_search_fields(model: Any, frames: list[AnnotatedFrame], every: int = 5) -> dict[str, Any]:
    """Card fields that make a trained 2D model search its cell size at inference (``size_search: confidence``).

    Parameters
    ----------
    model : Segmenter
        The trained model (its card's ``modality`` decides the polarity of the blob estimate).
    frames : list of AnnotatedFrame
        Its training frames of one real sequence (2D), in time order, not empty.
    every : int
        Every ``every``-th frame is used (the shipped ``cells-seg-2d-phc``: frames 0, 5, …, 25).

    Returns
    -------
    dict
        ``size_search`` (``"confidence"``), ``training_size_estimate_px`` (min, max of the blob estimate
        over the frames used, rounded to 0.1 px: the model's operating size), ``size_search_calibration``
        (:func:`dynacell.segment.predict.calibrate_size_search` to the median blob estimate, rounded to
        0.001) and ``record`` (frames, blob sizes, search peaks: for the card's metrics).

    Raises
    ------
    InvalidInputError
        If no frame is given or a frame is not 2D; as the blob estimate (an empty or flat frame).
    """
    from dynacell.segment.predict import blob_size_px, calibrate_size_search

    used = frames[::max(1, int(every))]
    if not used:
        raise InvalidInputError("size search: no training frame to calibrate on")
    if any(f.image.ndim != 2 for f in used):
        raise InvalidInputError("size search: only 2D models search their size (3D frames given)")
    modality = getattr(model.card, "modality", "fluorescence")
    blobs = [blob_size_px(f.image, modality) for f in used]
    operating = float(np.median(blobs))
    cal, peaks = calibrate_size_search([f.image for f in used], model, operating)
    return {"size_search": "confidence", "training_size_estimate_px": (round(min(blobs), 1), round(max(blobs), 1)),
            "size_search_calibration": round(cal, 3),
            "record": {"dataset": used[0].dataset, "frames": [int(f.t) for f in used],
                       "blob_px": [round(b, 2) for b in blobs], "peaks_px": [round(v, 2) for v in peaks],
                       "operating_px": round(operating, 2), "calibration": round(cal, 3)}}


def estimated_diameter_px(frames: list[AnnotatedFrame], modality: str = "fluorescence") -> float:
    """The nucleus (cell) diameter inference would estimate for ``frames``, in pixels.

    The median of the image-based size estimate
    (:func:`dynacell.segment.predict.blob_size_px`, the estimate :func:`~dynacell.segment.predict.segment_frame`
    runs on a user's first frame) over the first, middle and last frame of the group. Training at the zoom
    this gives (``size_from="image"`` in :func:`train_segmenter`) shows the network its cells at the scale
    inference will show them, whatever the estimator reads on this kind of image.

    Parameters
    ----------
    frames : list of AnnotatedFrame
        One size group (:func:`size_groups`), not empty.
    modality : {"fluorescence", "phase-contrast"}
        Polarity of the estimate (phase contrast: on the inverted normalised frame).

    Returns
    -------
    float
        Lateral pixels.

    Raises
    ------
    InvalidInputError
        As :func:`dynacell.segment.predict.blob_size_px` (an empty or flat frame).
    """
    from dynacell.segment.predict import blob_size_px

    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    return float(np.median([blob_size_px(frames[i].image, modality, frames[i].voxel_size_um
                                         if frames[i].image.ndim == 3 else None) for i in picks]))


def reference_diameter_px(frames: list[AnnotatedFrame]) -> float:
    """Median lateral diameter (pixels) of the reference objects of ``frames``.

    2D: the equivalent diameter of each object; 3D: the equivalent diameter of each object's
    largest YX section (lateral pixels; the z step does not enter).
    """
    from dynacell.segment.learned import lateral_diameters_px

    d = [lateral_diameters_px(f.labels) for f in frames if f.labels.any()]
    if not d:
        raise InvalidInputError("no reference object to measure the nucleus size")
    return float(np.median(np.concatenate(d)))


def voxel_aspect(frames: list[AnnotatedFrame]) -> float:
    """z/x aspect of the voxels of 3D ``frames`` (1.0 for 2D).

    From the frames' ``voxel_size_um`` when known, else from the median extents of the
    reference objects (:func:`dynacell.segment.benchmark.aspect_from_reference`; the 3D files
    carry no trustworthy voxel size).

    Parameters
    ----------
    frames : list of AnnotatedFrame
        Frames of one dataset (images and reference labels; the first frame's ``voxel_size_um`` and
        dimensionality decide).

    Returns
    -------
    float
        z voxel size / x voxel size (dimensionless); 1.0 for 2D frames or an empty list.
    """
    if not frames or frames[0].image.ndim == 2:
        return 1.0
    if frames[0].voxel_size_um is not None:
        vs = frames[0].voxel_size_um
        return float(vs[0] / vs[-1])
    from dynacell.segment.benchmark import aspect_from_reference

    return float(aspect_from_reference(frames)[0])


@dataclass
class Prepared:
    """A frame at model scale: image ``(1, ...)``, targets ``(4, ...)`` (fg, boundary, distance, dead; ``(7, ...)`` with a teacher's fg, boundary, distance appended), weight."""

    dataset: str
    t: int
    image: np.ndarray
    targets: np.ndarray
    weight: np.ndarray
    labels: np.ndarray
    full: bool


def prepare(frame: AnnotatedFrame, zoom: float | tuple[float, ...], modality: str = "fluorescence") -> Prepared:
    """Normalise and resample one annotated frame to model scale and compute its targets.

    Parameters
    ----------
    frame : AnnotatedFrame
    zoom : float or tuple of float
        Resampling factor per spatial axis (> 1 enlarges).
    modality : {"fluorescence", "phase-contrast"}
        ``phase-contrast``: the normalised image is inverted (``1 − x``: dark cells become bright),
        as :func:`dynacell.segment.predict.segment_frame` does at inference for such a model.

    Returns
    -------
    Prepared
    """
    from scipy import ndimage as ndi

    from dynacell.segment.predict import polarity_normalised

    img = polarity_normalised(normalize_image(frame.image), modality)
    z = np.broadcast_to(np.asarray(zoom, dtype=float), (img.ndim,))
    if np.allclose(z, 1.0):
        lab, known = frame.labels, frame.known
    else:
        img = ndi.zoom(img, z, order=1)
        lab = ndi.zoom(frame.labels, z, order=0)
        known = None if frame.known is None else ndi.zoom(frame.known.astype(np.uint8), z, order=0) > 0
    tg = training_targets(lab)
    dead = np.isin(lab, list(frame.dead)) if frame.dead else np.zeros(lab.shape, bool)
    targets = np.concatenate([tg, dead[None].astype(np.float32)], 0)
    weight = np.ones(lab.shape, np.float32) if known is None else known.astype(np.float32)
    return Prepared(frame.dataset, frame.t, img[None].astype(np.float32), targets, weight[None], lab.astype(np.int32),
                    frame.full)


class CropDataset:
    """Random training crops (a ``torch.utils.data.Dataset``), balanced over datasets.

    Parameters
    ----------
    items : list of Prepared
        Frames at model scale (several zooms each).
    n_samples : int
        Crops per epoch.
    crop : tuple of int
        Crop shape ``((Z), Y, X)``.
    seed : int
        Seed; crop ``i`` of epoch ``e`` uses ``default_rng([seed, e, i])``.
    dim_nuclei : float
        Probability that each reference object of a crop is dimmed (its intensities multiplied
        by a factor drawn uniformly in ``dim_range``, blended over a 1.5-pixel Gaussian edge):
        teaches touching nuclei of very different brightness (0 = off, the default).
    dim_range : tuple of float
        Range of the dimming factor.
    """

    def __init__(self, items: list[Prepared], n_samples: int, crop: tuple[int, ...], seed: int = 0,
                 dim_nuclei: float = 0.0, dim_range: tuple[float, float] = (0.1, 0.6)) -> None:
        self.dim_nuclei = float(dim_nuclei)
        self.dim_range = (float(dim_range[0]), float(dim_range[1]))
        self.items = items
        self.n_samples = int(n_samples)
        self.crop = tuple(int(c) for c in crop)
        self.seed = int(seed)
        self.epoch = 0
        self.by_dataset: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            self.by_dataset.setdefault(it.dataset, []).append(i)
        self.fg_index = [np.flatnonzero(it.targets[0].ravel() > 0) for it in items]

    def __len__(self) -> int:
        return self.n_samples

    def __getitem__(self, i: int):
        import torch

        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        names = sorted(self.by_dataset)
        idx = self.by_dataset[names[rng.integers(len(names))]]
        k = idx[rng.integers(len(idx))]
        it = self.items[k]
        shape = it.image.shape[1:]
        if rng.random() < 0.5 and len(self.fg_index[k]):
            c = np.unravel_index(self.fg_index[k][rng.integers(len(self.fg_index[k]))], shape)
            start = [int(ci) - s // 2 + int(rng.integers(-s // 4, s // 4 + 1)) for ci, s in zip(c, self.crop)]
        else:
            start = [int(rng.integers(-s // 4, max(n - s + s // 4, -s // 4 + 1))) for n, s in zip(shape, self.crop)]
        x, y, w = (_window(a, start, self.crop) for a in (it.image, it.targets, it.weight))
        if self.dim_nuclei > 0:
            x = _dim_objects(x, _window(it.labels[None], start, self.crop)[0], self.dim_nuclei, self.dim_range, rng)
        nd = len(self.crop)
        # flips and 90° rotations in the lateral plane
        for ax in range(nd):
            if rng.random() < 0.5:
                x, y, w = (np.flip(a, axis=1 + ax) for a in (x, y, w))
        if self.crop[-1] == self.crop[-2]:
            r = int(rng.integers(4))
            x, y, w = (np.rot90(a, r, axes=(-2, -1)) for a in (x, y, w))
        x = x * rng.uniform(0.6, 1.4) + rng.uniform(-0.15, 0.15)
        g = rng.uniform(0.7, 1.4)
        x = np.sign(x) * np.abs(x) ** g
        x = x + rng.normal(0, rng.uniform(0, 0.06), x.shape)
        return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)))


def _dim_objects(x: np.ndarray, labels: np.ndarray, p: float, factor_range: tuple[float, float],
                 rng: np.random.Generator) -> np.ndarray:
    """``x`` (``(1, ...)``) with each object of ``labels`` dimmed with probability ``p`` (see :class:`CropDataset`)."""
    from scipy import ndimage as ndi

    ids = np.unique(labels[labels > 0])
    ids = ids[rng.random(len(ids)) < p]
    if not len(ids):
        return x
    f = np.ones(labels.shape, np.float32)
    for i in ids:
        f[labels == i] = rng.uniform(*factor_range)
    return x * ndi.gaussian_filter(f, 1.5)[None]


def _window(a: np.ndarray, start: list[int], size: tuple[int, ...]) -> np.ndarray:
    """``a[:, start:start+size]`` with zero padding outside (weight 0 there)."""
    out = np.zeros((a.shape[0], *size), dtype=a.dtype)
    src, dst = [slice(None)], [slice(None)]
    for s0, n, sz in zip(start, a.shape[1:], size):
        lo, hi = max(s0, 0), min(s0 + sz, n)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s0, hi - s0))
    out[tuple(dst)] = a[tuple(src)]
    return out


class FrameDataset:
    """Whole validation frames at model scale, padded to a multiple of ``multiple`` (one per batch)."""

    def __init__(self, items: list[Prepared], multiple: int = 16) -> None:
        self.items = items
        self.multiple = int(multiple)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        return it

    @staticmethod
    def collate(batch):
        return batch[0]


def pad_to_multiple(x: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Zero-pad the spatial axes of ``x`` (``(C, ...)``) to multiples of ``multiple``; return the crop back."""
    pads = [(0, 0)] + [(0, (-n) % multiple) for n in x.shape[1:]]
    return np.pad(x, pads, mode="reflect"), tuple(slice(0, n) for n in x.shape[1:])


def _lightning_module_base():
    import lightning.pytorch as pl

    return pl.LightningModule


def _soft_jaccard(prob, onehot, weight):
    inter = (prob * onehot * weight).sum(dim=(0, *range(2, prob.ndim)))
    union = ((prob + onehot - prob * onehot) * weight).sum(dim=(0, *range(2, prob.ndim)))
    return 1.0 - ((inter + 1.0) / (union + 1.0)).mean()


class SegmentationModule(_lightning_module_base()):
    """Lightning module of the segmentation networks (loss, optimiser, validation SEG).

    Parameters
    ----------
    architecture : str
        ``instance-unet`` (loss: BCE on foreground, boundary and distance maps),
        ``seed-unet`` (BCE on the sigmoid foreground, RMSprop as in the seed) or
        ``seed-attention-unet`` (cross-entropy + soft Jaccard on background/live/dead, Adam 1e-3
        as in the seed).
    model_kwargs : dict
        Network constructor arguments.
    lr : float
        Learning rate.
    postprocess : PostprocessParams, optional
        Instance extraction used for the validation SEG.
    time_budget_s : float, optional
        Wall-time budget (seconds): training stops after the epoch that exceeds it.
    distill_weight : float
        instance-unet only: weight of the distillation term, the BCE of the logits against a
        teacher's probability maps (target channels 4–6: foreground, boundary, distance; see
        :func:`add_teacher_maps`) averaged over every pixel of the crop, the unknown ones too
        (Hinton et al., "Distilling the knowledge in a neural network", 2015). 0: no term.
    epoch_dir : path, optional
        When given, the network's weights after every epoch are saved there as
        ``epoch_NNN.pt`` (1-based; a ``state_dict`` of :attr:`net`), so that an epoch can be chosen
        afterwards on validation sides the training loop does not see (renders, other datasets).

    Notes
    -----
    Logs ``train_loss`` per step and ``val_seg`` (mean over validation datasets of the
    object-weighted CTC SEG, at model scale) per epoch; only pixels with weight 1 count in the
    loss (unannotated nuclei of a sparse reference are unknown, not background).
    """

    def __init__(self, architecture: str, model_kwargs: dict[str, Any], lr: float = 1e-3,
                 postprocess: PostprocessParams | None = None, time_budget_s: float | None = None,
                 distill_weight: float = 0.0, epoch_dir: str | Path | None = None) -> None:
        super().__init__()
        self.time_budget_s = time_budget_s
        self.epoch_dir = None if epoch_dir is None else Path(epoch_dir)
        self.distill_weight = float(distill_weight)
        self._t0 = time.perf_counter()
        from dynacell.models.unet import build_segmentation_model

        self.architecture = architecture
        self.net = build_segmentation_model(architecture, **model_kwargs)
        self.lr = float(lr)
        self.postprocess = postprocess or PostprocessParams()
        self._val: dict[str, list[tuple[float, int]]] = {}

    def forward(self, x):
        return self.net(x)

    def loss(self, out, y, w):
        """Loss of a batch: logits ``out``, targets ``y`` (fg, boundary, distance, dead), weights ``w``."""
        import torch.nn.functional as F

        if self.architecture == "instance-unet":
            bce = F.binary_cross_entropy_with_logits(out, y[:, :3], reduction="none")
            bce[:, 1] *= 2.0
            loss = (bce * w).sum() / (3 * w.sum()).clamp_min(1.0)
            if self.distill_weight > 0 and y.shape[1] >= 7:  # a teacher's maps, every pixel (unknown ones too)
                soft = F.binary_cross_entropy_with_logits(out, y[:, 4:7], reduction="none")
                soft[:, 1] *= 2.0
                loss = loss + self.distill_weight * soft.mean()
            return loss
        if self.architecture == "seed-unet":
            bce = F.binary_cross_entropy_with_logits(out[:, 0:1], y[:, 0:1], reduction="none")
            return (bce * w).sum() / w.sum().clamp_min(1.0)
        target = (y[:, 0] + y[:, 3]).long()  # 0 background, 1 live, 2 dead
        ce = F.cross_entropy(out, target, reduction="none")
        ce = (ce * w[:, 0]).sum() / w.sum().clamp_min(1.0)
        onehot = F.one_hot(target, out.shape[1]).movedim(-1, 1).float()
        return ce + _soft_jaccard(out.softmax(1), onehot, w)

    def training_step(self, batch, batch_idx):
        x, y, w = batch
        loss = self.loss(self(x), y, w)
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self) -> None:
        # wall-time budget: stop after the epoch that used it up (the best checkpoint is kept)
        if self.time_budget_s is not None and time.perf_counter() - self._t0 > self.time_budget_s:
            self.trainer.should_stop = True

    def on_train_epoch_start(self) -> None:
        ds = getattr(self.trainer.train_dataloader, "dataset", None)
        if isinstance(ds, CropDataset):
            ds.epoch = int(self.current_epoch)

    def predict_maps(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Probability maps of one frame at model scale (``(1, ...)`` float32): see :func:`maps_from_logits`."""
        import torch

        x, crop = pad_to_multiple(image, 16)
        with torch.inference_mode():
            logits = self(torch.from_numpy(x[None]).to(self.device))[0].cpu().numpy()
        return maps_from_logits(self.architecture, logits[(slice(None), *crop)])

    def validation_step(self, item, batch_idx):
        from dynacell.metrics.segmentation import ctc_seg

        maps = self.predict_maps(item.image)
        pred = maps_to_instances(self.architecture, maps, self.postprocess)
        seg, n = ctc_seg(item.labels, pred)
        self._val.setdefault(item.dataset, []).append((seg, n))

    def on_validation_epoch_end(self) -> None:
        per = []
        for v in self._val.values():
            s = np.array([a for a, _ in v]); n = np.array([b for _, b in v])
            if n.sum():
                per.append(float(np.nansum(s * n) / n.sum()))
        self._val = {}
        self.log("val_seg", float(np.mean(per)) if per else 0.0, prog_bar=True)
        if self.epoch_dir is not None and not self.trainer.sanity_checking:
            import torch

            self.epoch_dir.mkdir(parents=True, exist_ok=True)
            torch.save(self.net.state_dict(), self.epoch_dir / f"epoch_{self.current_epoch + 1:03d}.pt")

    def configure_optimizers(self):
        import torch

        if self.architecture == "seed-unet":
            return torch.optim.RMSprop(self.parameters(), lr=self.lr)
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def add_teacher_maps(items: list[Prepared], teacher: str | Path, flips: int | None = None) -> dict[str, Any]:
    """Append a teacher's probability maps to the targets of training frames (distillation).

    Parameters
    ----------
    items : list of Prepared
        Frames at model scale; each ``targets`` ``(4, ...)`` becomes ``(7, ...)`` float32: the
        teacher's foreground, boundary and distance probabilities (in that order) appended. Use
        on training frames only: validation and test frames never see the teacher.
    teacher : path or str
        A 2D or 3D ``instance-unet`` model folder or shipped name, trained at the same nucleus
        size (``target_diameter_px``) as the student.
    flips : int, optional
        Test-time flips of the teacher (default: its card's).

    Returns
    -------
    dict
        ``folder``, ``weights_sha256`` and ``flips`` of the teacher (recorded in the student's card).

    Raises
    ------
    InvalidInputError
        If the teacher is not an instance-unet.
    """
    from dynacell.segment.predict import Segmenter

    seg = Segmenter.load(teacher).with_test_time_flips(flips)
    if seg.card.architecture != "instance-unet":
        raise InvalidInputError(f"teacher {teacher} is a {seg.card.architecture}, not an instance-unet")
    for it in items:
        m = seg.predict_maps(it.image[0])
        soft = np.stack([m["foreground"], m["boundary"], m["distance"]]).astype(np.float32)
        it.targets = np.concatenate([it.targets[:4], soft], 0)
    return {"folder": str(seg.folder), "weights_sha256": seg.card.weights_sha256,
            "flips": int(seg.card.test_time_flips)}


def narrowed_state_dict(wide: dict[str, Any], narrow_net: Any) -> dict[str, Any]:
    """Weights of a narrower :class:`~dynacell.models.unet.InstanceUNet` cut out of a wider one.

    Every convolution keeps the output filters of largest L1 norm (over the input channels kept
    upstream; Li et al., "Pruning filters for efficient ConvNets", ICLR 2017), its BatchNorm the
    same channels, and the next convolution the matching input channels (through the skip
    concatenations of the decoder). The result starts a fine-tuning (``--init`` with a wider
    model folder): it is not accurate by itself, since BatchNorm statistics shift.

    Parameters
    ----------
    wide : dict
        State dict of the wide InstanceUNet (same ``ndim``, ``depth``, in/out channels).
    narrow_net : torch.nn.Module
        The narrower InstanceUNet (its shapes set the number of filters kept per layer).

    Returns
    -------
    dict
        A state dict loadable by ``narrow_net``.

    Raises
    ------
    InvalidInputError
        If the layer names differ or a narrow layer is wider than the wide one.
    """
    import torch

    target = narrow_net.state_dict()
    if set(target) != set(wide):
        raise InvalidInputError("narrowed_state_dict: the two networks differ in layers (depth or architecture)")
    out: dict[str, Any] = {}

    def block(prefix: str, keep_in: torch.Tensor) -> torch.Tensor:
        for conv, bn in (("0", "1"), ("3", "4")):
            w = wide[f"{prefix}.{conv}.weight"][:, keep_in]
            n_out = target[f"{prefix}.{conv}.weight"].shape[0]
            if n_out > w.shape[0]:
                raise InvalidInputError(f"narrowed_state_dict: {prefix} is wider in the narrow network")
            keep = torch.sort(torch.argsort(w.abs().flatten(1).sum(1), descending=True)[:n_out]).values
            out[f"{prefix}.{conv}.weight"] = w[keep].clone()
            for k in ("weight", "bias", "running_mean", "running_var"):
                out[f"{prefix}.{bn}.{k}"] = wide[f"{prefix}.{bn}.{k}"][keep].clone()
            out[f"{prefix}.{bn}.num_batches_tracked"] = wide[f"{prefix}.{bn}.num_batches_tracked"].clone()
            keep_in = keep
        return keep_in

    depth = len({k.split(".")[1] for k in wide if k.startswith("down.")})
    keep = torch.arange(wide["down.0.0.weight"].shape[1])
    skips = []
    for i in range(depth):
        keep = block(f"down.{i}", keep)
        skips.append(keep)
    keep = block("middle", keep)
    width = wide["middle.3.weight"].shape[0]
    for j in range(depth):
        skip = skips[depth - 1 - j]
        keep = block(f"up_conv.{j}", torch.cat([keep, width + skip]))
        width = wide[f"up_conv.{j}.3.weight"].shape[0]
    out["head.weight"] = wide["head.weight"][:, keep].clone()
    out["head.bias"] = wide["head.bias"].clone()
    return out


def maps_from_logits(architecture: str, logits: np.ndarray) -> dict[str, np.ndarray]:
    """Probability maps from network logits ``(C, ...)``.

    Returns
    -------
    dict
        ``foreground`` (all architectures), ``boundary`` and ``distance`` (instance-unet),
        ``dead`` (probability of the dead class, seed-attention-unet).
    """
    from dynacell.segment.predict import maps_from_logits as _m

    return _m(architecture, logits)


def maps_to_instances(architecture: str, maps: dict[str, np.ndarray], params: PostprocessParams) -> np.ndarray:
    """Instances from probability maps (see :func:`dynacell.segment.predict.maps_to_instances`)."""
    from dynacell.segment.predict import maps_to_instances as _m

    return _m(architecture, maps, params)


def train_segmenter(*, architecture: str, name: str, out: str | Path, datasets: tuple[str, ...],
                    model_kwargs: dict[str, Any], minutes: float, batch_size: int = 8, crop: int = 128,
                    steps_per_epoch: int = 60, lr: float = 1e-3, seed: int = 0, data_root: str | Path | None = None,
                    training_command: str | None = None, overwrite: bool = False,
                    init: str | Path | None = None, target_diameter_px: float = TARGET_DIAMETER_PX,
                    pseudo_model: str | Path | None = None, dim_nuclei: float = 0.0,
                    teacher: str | Path | None = None, distill_weight: float = 1.0,
                    epoch_dir: str | Path | None = None, modality: str = "fluorescence",
                    size_from: str = "reference", zoom_jitter: tuple[float, ...] = (0.8, 1.0, 1.25),
                    size_search: str = "blob") -> dict[str, Any]:
    """Train one segmentation network and write its model folder (weights + card).

    Parameters
    ----------
    architecture : str
        See :class:`SegmentationModule`.
    name : str
        Model name (written in the card).
    out : path
        Model folder to create (atomically).
    datasets : tuple of str
        Training datasets (keys of :data:`SPLITS`).
    model_kwargs : dict
        Network arguments.
    minutes : float
        Wall-time budget of the fit: training stops after the epoch that exceeds it (the
        epoch bound is twice the estimate from the speed of one step).
    batch_size, crop, steps_per_epoch, lr, seed
        Optimisation settings.
    data_root : path, optional
        Shared data folder.
    training_command : str, optional
        Recorded in the card.
    overwrite : bool
        Replace an existing model folder.
    init : path, optional
        A model folder of the same architecture whose weights start the training (a second
        stage); its card is recorded under ``config["init"]``. A wider 2D/3D instance-unet
        (more ``base_filters``) is cut down to this one's width first
        (:func:`narrowed_state_dict`).
    target_diameter_px : float
        Lateral nucleus diameter (model pixels) every frame is resampled to (default
        :data:`TARGET_DIAMETER_PX`; smaller for a 3D model, whose cost grows with the cube).
        3D frames are also resampled in z to isotropic voxels (:func:`voxel_aspect`).
    pseudo_model : path or str, optional
        Model whose maps make the ``gowt1-tra`` pseudo masks (default :data:`PSEUDO_LABEL_MODEL`);
        its folder and weights' SHA-256 are recorded in the card.
    dim_nuclei : float
        Probability of dimming each object of a training crop (:class:`CropDataset`).
    teacher : path or str, optional
        instance-unet only: a model (folder or shipped name) whose probability maps on the
        training frames are extra targets (:func:`add_teacher_maps`; distillation); validation
        frames keep their reference masks only.
    distill_weight : float
        Weight of the distillation term when ``teacher`` is given (:class:`SegmentationModule`).
    epoch_dir : path, optional
        Folder for the weights after every epoch (``epoch_NNN.pt``, see :class:`SegmentationModule`);
        the model folder still holds the engine's best epoch by ``val_seg``.
    modality : {"fluorescence", "phase-contrast"}
        Recorded in the card; ``phase-contrast`` inverts the normalised images (:func:`prepare`), as
        inference then does for this model.
    size_from : {"reference", "image"}
        What sets each size group's zoom: the median diameter of its reference objects (the default),
        or the size inference estimates from the image (:func:`estimated_diameter_px`), so the network
        learns its cells at the scale the estimator will put them (phase contrast: the blob estimate
        reads the cell width on rendered rods but about twice it on bacteria-phc). Recorded in the card.
    zoom_jitter : tuple of float
        Each training frame is prepared at its zoom times each of these factors (scale augmentation;
        default ×0.8, ×1, ×1.25). A wider set makes the network tolerate a nucleus-size estimate that is
        off by as much at inference. Recorded in the card.
    size_search : {"blob", "confidence"}
        ``"confidence"`` (2D): after training, the card gets the fields of :func:`size_search_fields`,
        measured on the first dataset's training frames (put the real sequence first), so that inference
        reads a movie's cell size by :func:`dynacell.segment.predict.confident_size_px`. ``"blob"``: the
        blob estimate alone (default).

    Returns
    -------
    dict
        The card's ``metrics`` (validation SEG per dataset with the tuned post-processing).

    Raises
    ------
    InvalidInputError
        An unknown ``size_from`` / ``size_search``, ``size_search="confidence"`` for a 3D model, or a
        dataset whose dimension differs from the model's.
    """
    import torch
    from torch.utils.data import DataLoader

    from dynacell.cards import sha256_file, write_card
    from dynacell.io.writers import atomic_folder
    from dynacell.segment.predict import SegmentationCard, Segmenter, tune_postprocess
    from dynacell.train.engine import EngineConfig, fit_module

    if size_from not in ("reference", "image"):
        raise InvalidInputError(f"size_from must be 'reference' or 'image', got {size_from!r}")
    if size_search not in ("blob", "confidence"):
        raise InvalidInputError(f"size_search must be 'blob' or 'confidence', got {size_search!r}")
    ndim = int(model_kwargs.get("ndim", 2))
    if size_search == "confidence" and ndim != 2:
        raise InvalidInputError("size_search='confidence' is for 2D models only")
    torch.set_num_threads(1)
    train_items, val_items, scales = [], [], {}
    first_train: list[AnnotatedFrame] = []  # the first dataset's training frames (size-search calibration)
    for ds in datasets:
        tr = load_frames(ds, "train", data_root, pseudo_model=pseudo_model)
        if ds == datasets[0]:
            first_train = tr
        va = load_frames(ds, "val", data_root, pseudo_model=pseudo_model)
        if tr and tr[0].image.ndim != ndim:
            raise InvalidInputError(f"dataset {ds} is {tr[0].image.ndim}-D but the model is {ndim}-D")
        size_of = reference_diameter_px if size_from == "reference" else \
            (lambda g: estimated_diameter_px(g, modality))

        def zoom_of(g: list[AnnotatedFrame], d: float) -> np.ndarray:
            zoom = np.full(ndim, target_diameter_px / d)
            zoom[0] *= voxel_aspect(g) if ndim == 3 else 1.0
            return zoom

        zooms: list[np.ndarray] = []
        group_sizes: list[float] = []
        for g in size_groups(ds, tr):
            group_sizes.append(size_of(g))
            zooms.append(zoom_of(g, group_sizes[-1]))
            for f in g:
                for j in zoom_jitter:
                    train_items.append(prepare(f, tuple(zooms[-1] * j), modality))
        for g in size_groups(ds, va):
            zoom = zoom_of(g, size_of(g))
            val_items.extend(prepare(f, tuple(zoom), modality) for f in g)
        d = reference_diameter_px(tr)
        scales[ds] = {"nucleus_diameter_px": d,
                      **({"estimated_diameter_px": [round(v, 2) for v in group_sizes]} if size_from == "image" else {}),
                      "zoom": [float(v) for v in np.median(zooms, axis=0)], "n_train": len(tr), "n_val": len(va)}
        if ds == "gowt1-tra":
            pm = Segmenter.load(pseudo_model or PSEUDO_LABEL_MODEL)
            scales[ds]["pseudo_label_model"] = {"folder": str(pm.folder), "weights_sha256": pm.card.weights_sha256}
        logger.info("%s: %d train / %d val frames, nucleus %.1f px, zoom %s", ds, len(tr), len(va), d,
                    scales[ds]["zoom"])
    teacher_info = None
    if teacher is not None:
        teacher_info = {**add_teacher_maps(train_items, teacher), "distill_weight": float(distill_weight)}
        logger.info("teacher maps of %d training items from %s", len(train_items), teacher)
    crop_shape = (crop,) * ndim
    train_ds = CropDataset(train_items, steps_per_epoch * batch_size, crop_shape, seed=seed, dim_nuclei=dim_nuclei)
    train_loader = DataLoader(train_ds, batch_size=batch_size, shuffle=False, num_workers=0)
    val_loader = DataLoader(FrameDataset(val_items), batch_size=1, collate_fn=FrameDataset.collate)
    module = SegmentationModule(architecture, model_kwargs, lr=lr, time_budget_s=minutes * 60,
                                distill_weight=distill_weight if teacher is not None else 0.0, epoch_dir=epoch_dir)
    init_info = None
    if init is not None:
        from dynacell.models.runtime import load_state_dict

        init_card = SegmentationCard.model_validate(__import__("yaml").safe_load((Path(init) / "model.yaml").read_text()))
        state = load_state_dict(Path(init) / "weights.pt")
        narrowed = init_card.model_kwargs.get("base_filters") != model_kwargs.get("base_filters")
        if narrowed:
            state = narrowed_state_dict(state, module.net)
        module.net.load_state_dict(state)
        init_info = {"folder": str(init), "config": init_card.config, "training_command": init_card.training_command,
                     "metrics": init_card.metrics,
                     **({"narrowed_from": init_card.model_kwargs, "init_weights_sha256": init_card.weights_sha256}
                        if narrowed else {})}
    # time one epoch's worth of batches to size the run
    t0 = time.perf_counter()
    xb, yb, wb = next(iter(DataLoader(train_ds, batch_size=batch_size)))
    module.loss(module(xb), yb, wb).backward()
    module.zero_grad()
    per_step = time.perf_counter() - t0
    epochs = max(2, int(2 * minutes * 60 / (per_step * steps_per_epoch + 5)))
    logger.info("%.2f s per step -> %d epochs of %d steps", per_step, epochs, steps_per_epoch)
    config = EngineConfig(max_epochs=epochs, patience=max(4, epochs // 3), monitor="val_seg", mode="max",
                          seed=seed, accelerator="cpu", devices=1, num_threads=1)
    fit = fit_module(module, train_loader, val_loader, config, progress=False)
    module = fit.module
    # objects under an eighth of a trained-size nucleus are specks (2D: the historical 12 px)
    min_size = 12 if ndim == 2 else int(np.pi / 6 * target_diameter_px ** 3 / 8)
    post, val_metrics = tune_postprocess(module, val_items, min_size_px=min_size)
    with atomic_folder(out, overwrite=overwrite) as tmp:
        weights = Path(tmp) / "weights.pt"
        torch.save(module.net.state_dict(), weights)
        import dynacell

        card = SegmentationCard(
            name=name, dynacell_version=getattr(dynacell, "__version__", "0"), torch_version=torch.__version__,
            architecture=architecture, model_kwargs=model_kwargs,
            n_parameters=int(sum(p.numel() for p in module.net.parameters())), ndim=ndim,
            training_data={ds: {**scales[ds], "source": ds} for ds in datasets},
            split={ds: SPLIT_TEXT[ds] for ds in datasets},
            metrics={"val": val_metrics, "best_val_seg_during_training": fit.best_score},
            config={"batch_size": batch_size, "crop": crop, "steps_per_epoch": steps_per_epoch, "lr": lr,
                    "epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "max_epochs": epochs,
                    "fit_seconds": round(fit.seconds, 1), "zoom_jitter": [float(j) for j in zoom_jitter], "size_from": size_from,
                    "engine": config.model_dump(mode="json"), "init": init_info,
                    **({"teacher": teacher_info} if teacher_info else {}),
                    **({"epoch_dir": str(epoch_dir)} if epoch_dir is not None else {}),
                    **({"dim_nuclei": dim_nuclei, "dim_range": list(train_ds.dim_range)} if dim_nuclei else {})},
            training_command=training_command, seed=seed, weights_sha256=sha256_file(weights),
            target_diameter_px=target_diameter_px, postprocess=post.__dict__,
            classes=(["background", "live", "dead"] if architecture == "seed-attention-unet" else ["background", "nucleus"]),
            modality=modality,
        )
        write_card(card, tmp)
        if size_search == "confidence":  # calibrated on the first dataset's training frames (a real sequence first)
            fields = size_search_fields(Segmenter.from_folder(tmp), first_train)
            card = card.model_copy(update={**{k: v for k, v in fields.items() if k != "record"},
                                           "metrics": {**card.metrics, "size_search": fields["record"]}})
            write_card(card, tmp)
        (Path(tmp) / "history.csv").write_text(fit.history.to_csv(index=False))
    return card.metrics


def main(argv: list[str] | None = None) -> None:
    """Command line of the training run (see the module docstring)."""
    p = argparse.ArgumentParser(description="train a dynacell segmentation network")
    p.add_argument("--architecture", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--datasets", default="gowt1,hela02,dsb")
    p.add_argument("--model-kwargs", default="{}")
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--steps-per-epoch", type=int, default=60)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--init", default=None, help="model folder whose weights start the training")
    p.add_argument("--target-diameter-px", type=float, default=TARGET_DIAMETER_PX,
                   help="nucleus diameter (model pixels) frames are resampled to")
    p.add_argument("--pseudo-model", default=None, help="model whose maps grow the gowt1-tra markers")
    p.add_argument("--dim-nuclei", type=float, default=0.0, help="probability of dimming each object of a crop")
    p.add_argument("--teacher", default=None, help="model whose maps on the training frames are extra targets")
    p.add_argument("--distill-weight", type=float, default=1.0, help="weight of the teacher term (with --teacher)")
    p.add_argument("--epoch-dir", default=None, help="folder for the weights after every epoch (epoch_NNN.pt)")
    p.add_argument("--zoom-jitter", default="0.8,1,1.25",
                   help="comma-separated factors each training frame's zoom is multiplied by (scale augmentation)")
    p.add_argument("--size-from", default="reference", choices=["reference", "image"],
                   help="zoom each frame group by its reference objects' size or by the size inference estimates")
    p.add_argument("--size-search", default="blob", choices=["blob", "confidence"],
                   help="confidence: the model searches its cell size at inference, calibrated on the first "
                        "dataset's training frames (2D)")
    p.add_argument("--modality", default="fluorescence", choices=["fluorescence", "phase-contrast"],
                   help="phase-contrast: images inverted after normalisation (dark cells become bright)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cmd = "python -m dynacell.train.segment " + " ".join(shlex.quote(s) for s in (argv or sys.argv[1:]))
    metrics = train_segmenter(architecture=a.architecture, name=a.name, out=a.out, datasets=tuple(a.datasets.split(",")),
                              model_kwargs=json.loads(a.model_kwargs), minutes=a.minutes, batch_size=a.batch_size,
                              crop=a.crop, steps_per_epoch=a.steps_per_epoch, lr=a.lr, seed=a.seed,
                              training_command=cmd, overwrite=a.overwrite, init=a.init,
                              target_diameter_px=a.target_diameter_px, pseudo_model=a.pseudo_model,
                              dim_nuclei=a.dim_nuclei, teacher=a.teacher, distill_weight=a.distill_weight,
                              epoch_dir=a.epoch_dir, modality=a.modality, size_from=a.size_from,
                              zoom_jitter=tuple(float(v) for v in a.zoom_jitter.split(",")),
                              size_search=a.size_search)
    print(json.dumps(metrics, indent=1, default=float))


if __name__ == "__main__":
    main()
