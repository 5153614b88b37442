"""Benchmark of the nucleus segmenters on the held-out side of every dataset, and their speed.

Every model (the shipped instance model ``nuclei-seg-2d``, the seed U-Net, the seed
self-attention U-Net) and the classical segmenter are run the way a user runs them
(:func:`dynacell.segment.predict.segment_frame`: percentile normalisation, nucleus size
estimated from the image, tiled inference, resampled back), on the test frames of
:data:`dynacell.train.segment.SPLITS` (never used for training or model selection):

- CTC SEG (object-weighted mean over the test frames; sparse GOWT1 reference: annotated
  nuclei only), object precision / recall / F1 and AP at IoU 0.5 and AP 0.5:0.95 (full
  references only), pixel IoU and ROC-AUC of the foreground probability (GOWT1: known region
  only), objects predicted / referenced, median |relative area error| of matched objects;
- seconds per frame (wall and CPU, best of 3, with the load average of the machine beside): a
  1024×1024 GOWT1 frame, a 700×1100 HeLa frame and a 71×180×247 mouse-8cell volume, with the
  nucleus size estimated beforehand (once per movie, as ``dynacell segment`` does).

The 3D files carry no voxel size; the z:y:x aspect of their voxels is taken from the median
extents of the reference objects (stated in the output), as a user would give
``--voxel-size-um``.

Usage::

    python benchmarks/segment.py --models nuclei-seg-2d,/tmp/D/models/seed-unet,/tmp/D/models/seed-attention-unet,classical \
        --out docs/figures/segmentation

Prints a markdown table; writes ``segment_benchmark.csv`` and example overlays to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from dynacell.metrics.segmentation import (
    IOU_THRESHOLDS,
    ctc_seg,
    object_scores,
    pixel_scores,
)
from dynacell.segment import classical
from dynacell.segment.learned import estimate_nucleus_diameter_px
from dynacell.segment.measure import relative_area_error
from dynacell.segment.predict import Segmenter, segment_frame
from dynacell.train.segment import load_frames

DATASETS = ("gowt1", "hela02", "dsb", "bacteria", "mouse8", "stardist3d")


def aspect_from_reference(frames) -> tuple[float, ...]:
    """z:y:x voxel aspect (y = x = 1) from the median extents of the reference objects."""
    from scipy import ndimage as ndi

    ext = []
    for f in frames:
        for s in ndi.find_objects(f.labels):
            if s is not None:
                ext.append([sl.stop - sl.start for sl in s])
    e = np.median(np.asarray(ext, float), axis=0)
    lateral = (e[1] + e[2]) / 2
    return (float(lateral / e[0]), 1.0, 1.0)


def run_model(model, frame, vs, diameter=None):
    """Labels and foreground probability of one frame (probability None for classical).

    ``diameter``: the nucleus size, estimated once per sequence (as ``dynacell segment`` does).
    """
    if model == "classical":
        # the classical segmenter's parameters are in µm: give it the pixel size where the data has one
        return classical.segment_frame(frame.image, voxel_size_um=vs if vs is not None else frame.voxel_size_um), None
    lab, maps, _ = segment_frame(frame.image, model, voxel_size_um=vs, nucleus_diameter_px=diameter, return_maps=True)
    return lab, maps["foreground"]


def evaluate(models, datasets, out: Path | None, diameter_from_card: bool = False) -> pd.DataFrame:
    """Scores of every model on the test frames of every dataset (see the module docstring).

    ``diameter_from_card``: instead of the image-based estimate, give the model the median
    reference nucleus diameter of the dataset's *training* frames recorded in its card (as a
    user who knows the nucleus size passes ``--nucleus-diameter-px``).
    """
    rows = []
    for ds in datasets:
        frames = load_frames(ds, "test")
        vs = aspect_from_reference(frames) if frames[0].image.ndim == 3 else None
        diam = estimate_nucleus_diameter_px(frames[0].image, voxel_size_um=vs)
        print(json.dumps({"dataset": ds, "estimated_nucleus_diameter_px": round(diam, 1), "voxel_aspect": vs}))
        for model in models:
            name = model if isinstance(model, str) else model.name
            if not isinstance(model, str) and model.card.ndim == 2 and frames[0].image.ndim == 3 and name != "nuclei-seg-2d":
                continue  # the seed models are 2D semantic models; only ours is run plane by plane in 3D
            d_used = diam
            if diameter_from_card and not isinstance(model, str):
                d_used = model.card.training_data.get(ds, {}).get("nucleus_diameter_px", diam)
                name = f"{name} (diameter {d_used:.0f} px given)"
            segs, ns, objs, pix, errs, secs = [], [], [], [], [], []
            for f in frames:
                t0 = time.perf_counter()
                lab, prob = run_model(model, f, vs, d_used)
                secs.append(time.perf_counter() - t0)
                s, n = ctc_seg(f.labels, lab)
                segs.append(s)
                ns.append(n)
                valid = f.known
                pix.append(pixel_scores(f.labels, lab, probability=prob, valid=valid))
                if f.full:
                    objs.append(object_scores(f.labels, lab, thresholds=IOU_THRESHOLDS))
                errs.extend(np.abs(relative_area_error(f.labels, lab)))
                if out is not None and f is frames[0]:
                    _overlay(f, lab, out / f"{ds}_{name}.png")
            ns = np.asarray(ns)
            row = {"dataset": ds, "model": name, "frames": len(frames), "n_ref": int(ns.sum()),
                   "SEG": float(np.nansum(np.asarray(segs) * ns) / max(ns.sum(), 1)),
                   "pixel_IoU": float(np.nanmean([p["iou"] for p in pix])),
                   "ROC_AUC": float(np.nanmean([p.get("roc_auc", np.nan) for p in pix])) if pix[0].get("roc_auc") is not None else np.nan,
                   "median_abs_area_err": float(np.median(errs)) if errs else np.nan,
                   "s_per_frame": float(np.mean(secs))}
            if objs:
                tp = sum(o["tp@0.5"] for o in objs)
                npred = sum(o["n_predicted"] for o in objs)
                nref = sum(o["n_reference"] for o in objs)
                row.update({"n_pred": npred, "P@0.5": tp / max(npred, 1), "R@0.5": tp / max(nref, 1),
                            "F1@0.5": 2 * tp / max(npred + nref, 1),
                            "AP@0.5": float(np.mean([o["ap@0.5"] for o in objs])),
                            "AP@0.5:0.95": float(np.mean([o["ap@0.5:0.95"] for o in objs]))})
                if ds == "mouse8":
                    row["frames_with_8_found"] = int(sum(o["tp@0.5"] == 8 for o in objs))
            rows.append(row)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    return pd.DataFrame(rows)


def live_dead(models) -> pd.DataFrame:
    """Live/dead on the held-out simulation (rendered apoptosis): pixel scores and object confusion."""
    from dynacell.metrics.segmentation import live_dead_confusion

    frames = load_frames("sim", "test")
    rows = []
    for model in models:
        if isinstance(model, str) or "dead" not in model.card.classes:
            continue
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
        print(f"live/dead confusion of {model.name} on {len(frames)} held-out simulated frames "
              f"(rows: reference, columns: dominant predicted class):")
        print(conf.to_string())
        rows.append({"model": model.name, "frames": len(frames),
                     "fg_IoU": float(np.nanmean([p["iou"] for p in pix_fg])),
                     "fg_ROC_AUC": float(np.nanmean([p["roc_auc"] for p in pix_fg])),
                     "dead_IoU": float(np.nanmean([p["iou"] for p in pix_dead])) if pix_dead else np.nan,
                     "dead_ROC_AUC": float(np.nanmean([p["roc_auc"] for p in pix_dead])) if pix_dead else np.nan,
                     "live_as_live": int(conf.loc["live", "live"]), "live_n": int(conf.loc["live"].sum()),
                     "dead_as_dead": int(conf.loc["dead", "dead"]), "dead_n": int(conf.loc["dead"].sum())})
    return pd.DataFrame(rows)


def _overlay(frame, lab, path: Path) -> None:
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


def speed(models, threads: int) -> pd.DataFrame:
    """Seconds per frame (best of 3, wall and CPU) of a 1024² GOWT1 frame, a 700×1100 HeLa frame and a
    71×180×247 mouse-8cell volume, nucleus size estimated beforehand (once per movie, as ``dynacell
    segment`` does), labels only (no maps). The machine's load average is printed beside: on a shared
    machine wall time is an upper bound."""
    import os

    g = load_frames("gowt1", "test")[0]
    h = load_frames("hela02", "test")[0]
    m = load_frames("mouse8", "test")[0]
    vs3 = aspect_from_reference(load_frames("mouse8", "test"))
    rows = []
    cases = [("2D 1024x1024 GOWT1", g, None), ("2D 700x1100 HeLa", h, None), ("3D 71x180x247 mouse-8cell", m, vs3)]
    for model in models:
        name = model if isinstance(model, str) else model.name
        for label, f, vs in cases:
            if label.startswith("3D") and not isinstance(model, str) and name != "nuclei-seg-2d":
                continue
            d = estimate_nucleus_diameter_px(f.image, voxel_size_um=vs)
            wall, cpu = [], []
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                if model == "classical":
                    classical.segment_frame(f.image, voxel_size_um=vs if vs is not None else f.voxel_size_um)
                else:
                    segment_frame(f.image, model, voxel_size_um=vs, nucleus_diameter_px=d)
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            rows.append({"model": name, "frame": label, "threads": threads, "wall_s": min(wall), "cpu_s": min(cpu),
                         "load_avg_1min": os.getloadavg()[0]})
            print(json.dumps(rows[-1]), flush=True)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """A pipe table of ``df`` (floats rounded)."""
    cols = list(df.columns)
    fmt = lambda v: (f"{v:.{digits}f}" if isinstance(v, float) and np.isfinite(v) else ("–" if isinstance(v, float) else str(v)))
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="nuclei-seg-2d,classical")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--diameter-from-card", action="store_true",
                   help="give the models the training-side nucleus diameter from their card")
    p.add_argument("--suffix", default="", help="suffix of the CSV names (runs split over processes)")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    models = [m if m == "classical" else Segmenter.load(m) for m in a.models.split(",")]
    table = evaluate(models, a.datasets.split(","), a.out, a.diameter_from_card)
    pd.set_option("display.width", 200)
    print(markdown(table))
    if a.out is not None:
        a.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(a.out / f"segment_benchmark{a.suffix}.csv", index=False)
    ld = live_dead(models)
    if len(ld):
        print(markdown(ld))
        if a.out is not None:
            ld.to_csv(a.out / f"segment_live_dead{a.suffix}.csv", index=False)
    if not a.no_speed:
        sp = speed(models, a.threads)
        print(markdown(sp, 2))
        if a.out is not None:
            sp.to_csv(a.out / f"segment_speed{a.suffix}.csv", index=False)


if __name__ == "__main__":
    main()
