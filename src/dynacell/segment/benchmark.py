"""Benchmark of the nucleus segmenters on the held-out side of every dataset, and their speed.

``dynacell benchmark segmentation`` (and the thin script ``benchmarks/segment.py``) run every
model — any shipped segmenter by name, any model folder, and ``classical`` — the way a user
runs it (:func:`dynacell.segment.predict.segment_frame`: percentile normalisation, nucleus
size estimated once per sequence from its first frame, one pass or tiled inference, resampled
back), on the test frames of :data:`dynacell.train.segment.SPLITS` (never used for training or
model selection):

- CTC SEG (object-weighted mean over the test frames; sparse GOWT1 reference: annotated
  nuclei only), object precision / recall / F1 and AP at IoU 0.5 and AP 0.5:0.95 (full
  references only), pixel IoU and ROC-AUC of the foreground probability (GOWT1: known region
  only), objects predicted / referenced, median |relative area error| of matched objects,
  wall and CPU seconds per frame (maps resized back included);
- live/dead on the held-out simulation for models with a ``dead`` class;
- speed (:func:`speed`): wall and CPU seconds (best of 3) of the first test frame of GOWT1
  (1024×1024), HeLa 02 (700×1100) and mouse 8-cell (71×180×247), nucleus size estimated
  beforehand, labels only, with the load average beside (on a shared machine wall time is an
  upper bound).

The 3D files carry no voxel size; the z:y:x aspect of their voxels is taken from the median
extents of the reference objects (:func:`aspect_from_reference`), as a user would give
``--voxel-size-um``. A 2D instance model runs on 3D frames plane by plane; the 2D semantic
(seed) models are not run on 3D frames, nor 3D models on 2D frames.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.errors import InvalidInputError

__all__ = [
    "DATASETS",
    "SPEED_DATASETS",
    "aspect_from_reference",
    "evaluate",
    "live_dead",
    "load_models",
    "markdown",
    "model_label",
    "run_benchmark",
    "speed",
]

#: Datasets of the held-out table (keys of :data:`dynacell.train.segment.SPLITS`). ``stardist3d-half`` is the
#: right half of the StarDist 3D stack, held out from models trained on its left half (``nuclei-seg-3d``);
#: ``mouse8-zreg`` scores the same mouse 8-cell test frames against their labels moved one plane in z onto the
#: nuclear signal (:data:`dynacell.train.segment.MOUSE8_LABEL_Z_SHIFT`). ``epidermis`` and ``phc-mammal`` are
#: blind movies: no model was trained, selected or tuned on them.
DATASETS = ("gowt1", "hela02", "dsb", "bacteria", "epidermis", "phc-mammal", "mouse8", "mouse8-zreg", "stardist3d",
            "stardist3d-half")

#: Datasets whose first test frame is timed by :func:`speed`.
SPEED_DATASETS = ("gowt1", "hela02", "mouse8")

#: ``loader(dataset, side) -> list[AnnotatedFrame]``.
Loader = Callable[[str, str], list]


def _loader(loader: Loader | None) -> Loader:
    if loader is not None:
        return loader
    from dynacell.train import segment as train_segment

    return lambda ds, side: train_segment.load_frames(ds, side)


def load_models(specs: Sequence[str], device: str = "cpu") -> list[Any]:
    """Models of a benchmark from their names.

    Parameters
    ----------
    specs : sequence of str
        ``classical``, a shipped segmenter name (e.g. ``nuclei-seg-2d``) or a model folder.
    device : str
        Torch device of the learned models.

    Returns
    -------
    list
        ``"classical"`` or a :class:`~dynacell.segment.predict.Segmenter` per spec, with
        ``benchmark_label`` set (:func:`model_label`).

    Raises
    ------
    InvalidInputError
        Empty list, or a name that is neither shipped nor a folder.
    """
    from dynacell.segment.predict import Segmenter

    specs = [s.strip() for s in specs if s.strip()]
    if not specs:
        raise InvalidInputError("no model to benchmark: give --models, e.g. nuclei-seg-2d,classical")
    out: list[Any] = []
    for s in specs:
        if s == "classical":
            out.append("classical")
            continue
        m = Segmenter.load(s, device)
        # a folder is labelled by its folder name (two stages of one model keep one card name)
        m.benchmark_label = Path(s).name if Path(s).is_dir() else m.name
        out.append(m)
    return out


def model_label(model: Any) -> str:
    """The row label of a model: ``classical``, the folder name it was loaded from, or its card name.

    Parameters
    ----------
    model : str or Segmenter
        ``"classical"`` or a loaded model.

    Returns
    -------
    str
        The label.
    """
    if isinstance(model, str):
        return model
    return getattr(model, "benchmark_label", None) or model.name


def _runs_on(model: Any, ndim: int) -> bool:
    """Whether ``model`` is run on ``ndim``-D frames (see the module docstring)."""
    if isinstance(model, str):
        return True
    if model.card.ndim == ndim:
        return True
    return model.card.ndim == 2 and ndim == 3 and model.card.architecture == "instance-unet"


def aspect_from_reference(frames: Sequence[Any]) -> tuple[float, float, float]:
    """z:y:x voxel aspect of 3D frames from the median extents of their reference objects.

    Parameters
    ----------
    frames : sequence of AnnotatedFrame
        3D frames, ``labels`` int ``(Z, Y, X)``.

    Returns
    -------
    tuple of float
        ``(z/x, 1, 1)``: the lateral median extent over the axial one (voxels).

    Raises
    ------
    InvalidInputError
        No 3D reference object.
    """
    from scipy import ndimage as ndi

    ext = []
    for f in frames:
        if f.labels.ndim != 3:
            raise InvalidInputError(f"aspect_from_reference needs 3D labels, got shape {f.labels.shape}")
        for s in ndi.find_objects(f.labels):
            if s is not None:
                ext.append([sl.stop - sl.start for sl in s])
    if not ext:
        raise InvalidInputError("aspect_from_reference: no reference object")
    e = np.median(np.asarray(ext, float), axis=0)
    lateral = (e[1] + e[2]) / 2
    return (float(lateral / e[0]), 1.0, 1.0)


def _run_model(model: Any, frame: Any, vs: tuple[float, ...] | None, diameter: float | None):
    """Labels and foreground probability of one frame (probability None for classical)."""
    from dynacell.segment import classical
    from dynacell.segment.predict import segment_frame

    if isinstance(model, str):
        # the classical segmenter's parameters are in µm: give it the pixel size where the data has one
        return classical.segment_frame(frame.image, voxel_size_um=vs if vs is not None else frame.voxel_size_um), None
    lab, maps, _ = segment_frame(frame.image, model, voxel_size_um=vs, nucleus_diameter_px=diameter, return_maps=True)
    return lab, maps["foreground"]


def evaluate(models: Sequence[Any], datasets: Sequence[str], out: str | Path | None = None, *,
             diameter_from_card: bool = False, loader: Loader | None = None, verbose: bool = True) -> pd.DataFrame:
    """Scores of every model on the test frames of every dataset.

    Parameters
    ----------
    models : sequence
        From :func:`load_models`.
    datasets : sequence of str
        Dataset keys (see :data:`DATASETS`).
    out : path, optional
        Folder for the overlays ``<dataset>_<model>.png`` of the first test frame.
    diameter_from_card : bool
        Give each learned model the median reference nucleus diameter (px) of the dataset's
        *training* frames recorded in its card instead of the image-based estimate (as a user who
        knows the nucleus size passes ``--nucleus-diameter-px``).
    loader : callable, optional
        ``loader(dataset, side)`` → annotated frames (default
        :func:`dynacell.train.segment.load_frames`, the shared data).
    verbose : bool
        Print one JSON line per dataset and per row.

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, model): ``dataset, model, frames, n_ref, SEG, pixel_IoU, ROC_AUC,
        median_abs_area_err, s_per_frame, cpu_s_per_frame`` and, for full references, ``n_pred,
        P@0.5, R@0.5, F1@0.5, AP@0.5, AP@0.5:0.95`` (mouse 8-cell: ``frames_with_8_found``).

    Raises
    ------
    InvalidInputError
        A dataset without test frames.
    """
    from dynacell.metrics.segmentation import (
        IOU_THRESHOLDS,
        ctc_seg,
        object_scores,
        pixel_scores,
    )
    from dynacell.segment.learned import estimate_nucleus_diameter_px
    from dynacell.segment.measure import relative_area_error
    from dynacell.segment.predict import size_estimate_px
    from dynacell.train.segment import size_groups

    load = _loader(loader)
    out = Path(out) if out is not None else None
    rows = []
    for ds in datasets:
        frames = load(ds, "test")
        if not frames:
            raise InvalidInputError(f"dataset {ds!r} has no test frames")
        ndim = frames[0].image.ndim
        vs = aspect_from_reference(frames) if ndim == 3 else None
        # one size estimate per sequence (a rendered colony of ``rods`` is a sequence of its own)
        sequences = size_groups(ds, frames)
        seq_of = {id(f): k for k, g in enumerate(sequences) for f in g}
        diams = [estimate_nucleus_diameter_px(g[0].image, voxel_size_um=vs) for g in sequences]
        if verbose:
            print(json.dumps({"dataset": ds, "estimated_nucleus_diameter_px": [round(d, 1) for d in diams],
                              "voxel_aspect": vs}))
        for model in models:
            if not _runs_on(model, ndim):
                continue
            name = model_label(model)
            # a phase-contrast model reads the size on the inverted frame (size_estimate_px); fluorescence: diams
            d_seq = list(diams) if isinstance(model, str) or model.card.modality == "fluorescence" else \
                [size_estimate_px(g[0].image, model, vs) for g in sequences]
            if diameter_from_card and not isinstance(model, str):
                given = model.card.training_data.get(ds, {}).get("nucleus_diameter_px")
                d_seq = [given if given is not None else v for v in d_seq]
                name = f"{name} (diameter {d_seq[0]:.0f} px given)"
            segs, ns, objs, pix, errs, secs, cpus = [], [], [], [], [], [], []
            for f in frames:
                t0, c0 = time.perf_counter(), time.process_time()
                lab, prob = _run_model(model, f, vs, d_seq[seq_of[id(f)]])
                secs.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
                s, n = ctc_seg(f.labels, lab)
                segs.append(s)
                ns.append(n)
                pix.append(pixel_scores(f.labels, lab, probability=prob, valid=f.known))
                if f.full:
                    objs.append(object_scores(f.labels, lab, thresholds=IOU_THRESHOLDS))
                errs.extend(np.abs(relative_area_error(f.labels, lab)))
                if out is not None and f is frames[0]:
                    _overlay(f, lab, out / f"{ds}_{name}.png")
            ns_a = np.asarray(ns)
            aucs = [p.get("roc_auc") for p in pix]
            row: dict[str, Any] = {
                "dataset": ds, "model": name, "frames": len(frames), "n_ref": int(ns_a.sum()),
                "SEG": float(np.nansum(np.asarray(segs, float) * ns_a) / max(ns_a.sum(), 1)),
                "pixel_IoU": float(np.nanmean([p["iou"] for p in pix])),
                "ROC_AUC": float(np.nanmean([np.nan if a is None else a for a in aucs])) if aucs[0] is not None else np.nan,
                "median_abs_area_err": float(np.median(errs)) if errs else np.nan,
                "s_per_frame": float(np.mean(secs)), "cpu_s_per_frame": float(np.mean(cpus))}
            if objs:
                tp = sum(o["tp@0.5"] for o in objs)
                npred = sum(o["n_predicted"] for o in objs)
                nref = sum(o["n_reference"] for o in objs)
                row.update({"n_pred": npred, "P@0.5": tp / max(npred, 1), "R@0.5": tp / max(nref, 1),
                            "F1@0.5": 2 * tp / max(npred + nref, 1),
                            "AP@0.5": float(np.mean([o["ap@0.5"] for o in objs])),
                            "AP@0.5:0.95": float(np.mean([o["ap@0.5:0.95"] for o in objs]))})
                if ds in ("mouse8", "mouse8-zreg"):
                    row["frames_with_8_found"] = int(sum(o["tp@0.5"] == 8 for o in objs))
            rows.append(row)
            if verbose:
                print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    table = pd.DataFrame(rows)
    for c in ("n_pred", "frames_with_8_found"):  # counts stay integers beside rows without them
        if c in table:
            table[c] = table[c].astype("Int64")
    return table


def live_dead(models: Sequence[Any], *, loader: Loader | None = None, verbose: bool = True) -> pd.DataFrame:
    """Live/dead of the models with a ``dead`` class on the held-out simulation (rendered apoptosis).

    Parameters
    ----------
    models : sequence
        From :func:`load_models`; models without a ``dead`` class are skipped (no frame is
        loaded when none has one).
    loader : callable, optional
        As in :func:`evaluate` (dataset ``sim``).
    verbose : bool
        Print each model's object-level confusion.

    Returns
    -------
    pandas.DataFrame
        One row per model: foreground and dead-class pixel IoU / ROC-AUC, live and dead nuclei
        classified right (dominant predicted class) out of how many.
    """
    from dynacell.metrics.segmentation import live_dead_confusion, pixel_scores
    from dynacell.segment.predict import segment_frame

    chosen = [m for m in models if not isinstance(m, str) and "dead" in m.card.classes]
    if not chosen:
        return pd.DataFrame()
    frames = _loader(loader)("sim", "test")
    rows = []
    for model in chosen:
        tables, pix_fg, pix_dead = [], [], []
        for f in frames:
            lab, maps, _ = segment_frame(f.image, model, return_maps=True)
            cls = np.where(maps["foreground"] > 0.5, np.where(maps["dead"] > maps["foreground"] - maps["dead"], 2, 1), 0)
            tables.append(live_dead_confusion(f.labels, f.dead, cls))
            pix_fg.append(pixel_scores(f.labels, lab, probability=maps["foreground"]))
            dead_ref = np.isin(f.labels, list(f.dead))
            if dead_ref.any():
                pix_dead.append(pixel_scores(dead_ref, cls == 2, probability=maps["dead"]))
        conf = sum(tables)
        if verbose:
            print(f"live/dead confusion of {model_label(model)} on {len(frames)} held-out simulated frames "
                  f"(rows: reference, columns: dominant predicted class):")
            print(conf.to_string())
        rows.append({"model": model_label(model), "frames": len(frames),
                     "fg_IoU": float(np.nanmean([p["iou"] for p in pix_fg])),
                     "fg_ROC_AUC": float(np.nanmean([p["roc_auc"] for p in pix_fg])),
                     "dead_IoU": float(np.nanmean([p["iou"] for p in pix_dead])) if pix_dead else np.nan,
                     "dead_ROC_AUC": float(np.nanmean([p["roc_auc"] for p in pix_dead])) if pix_dead else np.nan,
                     "live_as_live": int(conf.loc["live", "live"]), "live_n": int(conf.loc["live"].sum()),
                     "dead_as_dead": int(conf.loc["dead", "dead"]), "dead_n": int(conf.loc["dead"].sum())})
    return pd.DataFrame(rows)


def _overlay(frame: Any, lab: np.ndarray, path: Path) -> None:
    """PNG of a frame with reference (green) and predicted (magenta) outlines (3D: busiest plane)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from skimage.segmentation import find_boundaries

    img, ref = frame.image, frame.labels
    if img.ndim == 3:
        z = int(np.argmax((ref > 0).sum(axis=(1, 2))))
        img, ref, lab = img[z], ref[z], lab[z]
    x = np.clip((img - np.percentile(img, 1)) / (np.percentile(img, 99.8) - np.percentile(img, 1) + 1e-9), 0, 1)
    rgb = np.stack([x, x, x], -1)
    rgb[find_boundaries(ref, mode="inner")] = (0, 1, 0)
    rgb[find_boundaries(lab, mode="inner")] = (1, 0, 1)
    h, w = x.shape
    s = 5.0 / max(h, w)
    fig = plt.figure(figsize=(w * s, h * s), dpi=80)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(rgb)
    ax.axis("off")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def speed(models: Sequence[Any], threads: int, *, datasets: Sequence[str] = SPEED_DATASETS,
          repeats: int = 3, loader: Loader | None = None, verbose: bool = True,
          flips: Sequence[int | None] = (None,), diameter_px: dict[str, float] | None = None) -> pd.DataFrame:
    """Seconds per frame of every model on the first test frame of each dataset.

    Parameters
    ----------
    models : sequence
        From :func:`load_models`.
    threads : int
        Torch CPU threads (recorded; set them with ``torch.set_num_threads`` before).
    datasets : sequence of str
        Datasets whose first test frame is timed (default GOWT1 1024×1024, HeLa 02 700×1100,
        mouse 8-cell 71×180×247).
    repeats : int
        Timed runs; the best is kept.
    loader : callable, optional
        As in :func:`evaluate`.
    verbose : bool
        Print one JSON line per row.
    flips : sequence of int or None
        Test-time flips each learned model is timed with (None: its card's; see
        :meth:`dynacell.segment.predict.Segmenter.with_test_time_flips`); the classical
        segmenter is timed once.
    diameter_px : dict, optional
        ``dataset -> nucleus diameter (px)`` given instead of the estimate: e.g. ``{"gowt1": 24}``
        times the 1024×1024 GOWT1 frame as a frame of 24-px nuclei (the network then runs at
        full resolution: the worst case of a 1024² frame). Rows say ``d=24px``.

    Returns
    -------
    pandas.DataFrame
        ``model, frame, flips, threads, wall_s, cpu_s, load_avg_1min``: wall and CPU seconds
        (``time.process_time``, all threads) of segmenting the frame, labels only, nucleus size
        estimated beforehand (once per movie, as ``dynacell segment`` does); ``flips`` is
        empty for the classical segmenter.
    """
    from dynacell.segment import classical
    from dynacell.segment.learned import estimate_nucleus_diameter_px
    from dynacell.segment.predict import segment_frame, size_estimate_px

    load = _loader(loader)
    cases = []
    for ds in datasets:
        frames = load(ds, "test")
        if not frames:
            raise InvalidInputError(f"dataset {ds!r} has no test frames")
        f = frames[0]
        vs = aspect_from_reference(frames) if f.image.ndim == 3 else None
        given = (diameter_px or {}).get(ds)
        label = f"{f.image.ndim}D {'x'.join(map(str, f.image.shape))} {ds}" + (f" d={given:g}px" if given else "")
        cases.append((label, f, vs, given))
    rows = []
    for model in models:
        for label, f, vs, given in cases:
            if not _runs_on(model, f.image.ndim):
                continue
            d = given or (estimate_nucleus_diameter_px(f.image, voxel_size_um=vs) if isinstance(model, str)
                          else size_estimate_px(f.image, model, vs))
            for n_flips in ([None] if isinstance(model, str) else list(flips)):
                m = model if isinstance(model, str) else model.with_test_time_flips(n_flips)
                wall, cpu = [], []
                for _ in range(max(1, int(repeats))):
                    t0, c0 = time.perf_counter(), time.process_time()
                    if isinstance(m, str):
                        classical.segment_frame(f.image, voxel_size_um=vs if vs is not None else f.voxel_size_um)
                    else:
                        segment_frame(f.image, m, voxel_size_um=vs, nucleus_diameter_px=d)
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                rows.append({"model": model_label(model), "frame": label,
                             "flips": None if isinstance(m, str) else m.card.test_time_flips, "threads": int(threads),
                             "wall_s": min(wall), "cpu_s": min(cpu), "load_avg_1min": os.getloadavg()[0]})
                if verbose:
                    print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows, columns=["model", "frame", "flips", "threads", "wall_s", "cpu_s", "load_avg_1min"])
    table["flips"] = table["flips"].astype("Int64")
    return table


def markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``df`` for the docs: floats rounded to ``digits``, NaN as ``–``.

    Parameters
    ----------
    df : pandas.DataFrame
        The table; its columns are the header.
    digits : int
        Decimal places of the float cells.

    Returns
    -------
    str
        The Markdown pipe table.
    """
    def cell(v: Any) -> str:
        if v is pd.NA:
            return "–"
        if isinstance(v, float):
            return f"{v:.{digits}f}" if np.isfinite(v) else "–"
        return str(v)

    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def run_benchmark(models: Sequence[str], datasets: Sequence[str] = DATASETS, out: str | Path | None = None, *,
                  threads: int = 1, with_speed: bool = True, speed_datasets: Sequence[str] | None = None,
                  diameter_from_card: bool = False, suffix: str = "", loader: Loader | None = None, echo: Callable[[str], None] = print) -> dict[str, pd.DataFrame]:
    """The whole segmentation benchmark: held-out table, live/dead, speed; CSVs and overlays in ``out``.

    Parameters
    ----------
    models : sequence of str
        ``classical``, shipped segmenter names or model folders.
    datasets : sequence of str
        Dataset keys (:data:`DATASETS`).
    out : path, optional
        Folder for ``segment_benchmark{suffix}.csv``, ``segment_live_dead{suffix}.csv``,
        ``segment_speed{suffix}.csv`` and the overlays.
    threads : int
        Torch CPU threads (``torch.set_num_threads``).
    with_speed : bool
        Also time the first test frame of some datasets (:func:`speed`).
    speed_datasets : sequence of str, optional
        Those datasets (default: the :data:`SPEED_DATASETS` among ``datasets``).
    diameter_from_card : bool
        See :func:`evaluate`.
    suffix : str
        Suffix of the CSV names (runs split over processes).
    loader : callable, optional
        As in :func:`evaluate`.
    echo : callable
        Where the markdown tables are written.

    Returns
    -------
    dict
        ``{"table": ..., "live_dead": ..., "speed": ...}`` data frames (empty when not run).

    Raises
    ------
    InvalidInputError
        Unknown dataset, no model, a model that cannot be loaded, ``threads`` < 1.
    """
    import torch

    from dynacell.train.segment import SPLITS

    datasets = [d.strip() for d in datasets if d.strip()]
    bad = [d for d in datasets if d not in SPLITS or d in ("sim", "sim3d")]  # simulations: no real test side
    if loader is None and bad:
        raise InvalidInputError(f"unknown dataset(s) {bad}; choose from {', '.join(DATASETS)}")
    if not datasets:
        raise InvalidInputError(f"no dataset: choose from {', '.join(DATASETS)}")
    if int(threads) < 1:
        raise InvalidInputError(f"threads must be >= 1, got {threads}")
    torch.manual_seed(0)
    torch.set_num_threads(int(threads))
    loaded = load_models(models)
    out = Path(out) if out is not None else None
    table = evaluate(loaded, datasets, out, diameter_from_card=diameter_from_card, loader=loader)
    echo(markdown(table))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / f"segment_benchmark{suffix}.csv", index=False)
    ld = live_dead(loaded, loader=loader)
    if len(ld):
        echo(markdown(ld))
        if out is not None:
            ld.to_csv(out / f"segment_live_dead{suffix}.csv", index=False)
    sp = pd.DataFrame()
    if with_speed:
        sds = [d for d in SPEED_DATASETS if d in datasets] if speed_datasets is None else list(speed_datasets)
        if sds:
            sp = speed(loaded, int(threads), datasets=sds, loader=loader)
            echo(markdown(sp, 2))
            if out is not None:
                sp.to_csv(out / f"segment_speed{suffix}.csv", index=False)
    return {"table": table, "live_dead": ld, "speed": sp}
