"""Where a 2D segmenter loses SEG on the validation side, and the cheap levers around its outlines.

Validation frames only (never the test frames): GOWT1 01 frames 21–31 (``01_GT/SEG``, sparse) and
HeLa 02 frames 10–11 (``02_ST/SEG``), nucleus size estimated once per set from its first frame, as
``dynacell segment`` runs a model (:func:`dynacell.segment.predict.segment_frame`).

``--mode diagnose`` prints, per dataset, the distribution of the Jaccard index of every reference
object with the predicted object covering more than half of it (the terms of the CTC SEG mean), the
mean and median area ratio predicted / reference of the matched objects (a systematic outline offset
shows as a ratio away from 1), the mean fraction of each reference covered and of each prediction
inside its reference, and the numbers of missed (Jaccard 0), split (two or more predicted objects
each covering > 10 % of the reference) and merged (one predicted object covering more than half of
two references) reference objects, and the worst objects.

``--mode grid`` scores variants (JSON object of lists; every combination):

- ``scale``: the estimated nucleus diameter is multiplied by this (< 1 runs the frame at a finer
  model scale: nucleus-size normalisation target);
- ``flips``: test-time flips (1, 2, 4);
- ``cut``: foreground probability at which the resized-back outline is cut (``segment_frame``
  uses the model-scale threshold ``foreground``);
- ``grow``: labels grown (> 0, scikit-image ``expand_labels``) or shrunk (< 0, one pixel per
  step, also from touching neighbours) by this many frame pixels at the end;
- any field of :class:`dynacell.segment.learned.PostprocessParams`.

Usage::

    python benchmarks/segment_boundary_2d.py --model nuclei-seg-2d-fast --mode diagnose
    python benchmarks/segment_boundary_2d.py --mode grid --grid '{"cut": [0.4, 0.5, 0.6], "grow": [-1, 0, 1]}'

Prints JSON lines. The variant ``{scale 1, flips: the card's, cut = foreground, grow 0}`` is what
``segment_frame`` computes (same private steps of :mod:`dynacell.segment.predict`).
"""

from __future__ import annotations

import argparse
import itertools
import json
from dataclasses import replace
from typing import Any

import numpy as np


def shrink_labels(labels: np.ndarray, steps: int) -> np.ndarray:
    """Remove the outermost pixel ring of every object ``steps`` times (8-connected, also between objects).

    Parameters
    ----------
    labels : numpy.ndarray
        int instances ``(Y, X)``.
    steps : int
        Rings removed.

    Returns
    -------
    numpy.ndarray
        A shrunk copy, same dtype.
    """
    from scipy import ndimage as ndi

    out = labels.copy()
    for _ in range(int(steps)):
        edge = (ndi.grey_erosion(out, size=3) != out) | (ndi.grey_dilation(out, size=3) != out)
        out[edge] = 0
    return out


def per_object(reference: np.ndarray, predicted: np.ndarray) -> list[dict[str, float]]:
    """The SEG term of every reference object and how its match differs from it.

    Parameters
    ----------
    reference, predicted : numpy.ndarray
        int label images of equal shape.

    Returns
    -------
    list of dict
        Per reference object: ``jaccard`` (0 unless a predicted object covers more than half of it),
        ``area_ratio`` (matched predicted / reference area; NaN when missed), ``covered`` (fraction
        of the reference inside the match), ``inside`` (fraction of the match inside the
        reference), ``pieces`` (predicted objects each covering > 10 % of it), ``merged`` (reference
        objects the match covers more than half of), ``area_px``.
    """
    from dynacell.metrics.segmentation import overlap_matrix

    ref_ids, pred_ids, ov, iou = overlap_matrix(reference, predicted)
    ref_sizes = np.bincount(np.asarray(reference).ravel())[ref_ids]
    pred_sizes = np.bincount(np.asarray(predicted).ravel(), minlength=int(np.max(predicted)) + 1)
    rows = []
    for k, size in enumerate(ref_sizes):
        row = {"jaccard": 0.0, "area_ratio": float("nan"), "covered": 0.0, "inside": float("nan"),
               "pieces": 0, "merged": 0, "area_px": int(size)}
        if ov.shape[1]:
            b = int(ov[k].argmax())
            row["pieces"] = int((ov[k] > 0.1 * size).sum())
            row["covered"] = float(ov[k, b] / size)
            if 2 * ov[k, b] > size:
                ps = pred_sizes[pred_ids[b]]
                row.update(jaccard=float(iou[k, b]), area_ratio=float(ps / size), inside=float(ov[k, b] / ps),
                           merged=int((2 * ov[:, b] > ref_sizes).sum()))
        rows.append(row)
    return rows


def main() -> None:
    import torch
    from skimage.segmentation import expand_labels

    from dynacell.metrics.segmentation import ctc_seg
    from dynacell.segment import predict as P
    from dynacell.segment.learned import estimate_nucleus_diameter_px, normalize_image
    from dynacell.train.segment import load_frames

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="nuclei-seg-2d-fast")
    p.add_argument("--mode", choices=("diagnose", "grid"), default="diagnose")
    p.add_argument("--grid", default='{"cut": [0.5]}', help="JSON object of lists (see the module docstring)")
    a = p.parse_args()
    torch.set_num_threads(1)

    seg = P.Segmenter.load(a.model)
    sets = {"gowt1": load_frames("gowt1", "val"), "hela02": load_frames("hela02", "val")}
    diam = {ds: estimate_nucleus_diameter_px(fr[0].image) for ds, fr in sets.items()}
    maps_cache: dict[tuple, Any] = {}

    def labels_of(ds: str, i: int, scale: float = 1.0, flips: int | None = None, cut: float | None = None,
                  grow: float = 0.0, **over: Any) -> np.ndarray:
        f = sets[ds][i]
        flips = seg.card.test_time_flips if flips is None else int(flips)
        key = (ds, i, scale, flips)
        if key not in maps_cache:
            x = normalize_image(f.image)
            zoom = P._zoom_factors(f.image.shape, diam[ds] * scale, seg.card.target_diameter_px, None)
            maps_cache[key] = (seg.predict_maps(P._resize_linear(x, P._zoomed_shape(x.shape, zoom)), flips=flips), zoom)
        maps, zoom = maps_cache[key]
        params = replace(seg.postprocess, **over)
        lab = P.maps_to_instances(seg.card.architecture, maps, params)
        if not np.allclose(zoom, 1):  # as segment_frame: nearest back, grown one model pixel, cut by the foreground
            fg = P._resize_linear(maps["foreground"], f.image.shape)
            lab = P._expand_in_box(P._resize_nearest(lab, f.image.shape), max(1.0, float(1 / np.min(zoom))), expand_labels)
            lab[fg <= (params.foreground if cut is None else cut)] = 0
        lab = P._drop_specks(lab, float(diam[ds] * scale))
        if grow > 0:
            lab = expand_labels(lab, distance=float(grow))
        elif grow < 0:
            lab = shrink_labels(lab, round(-grow))
        return lab

    if a.mode == "diagnose":
        for ds, frames in sets.items():
            rows = [r for i, f in enumerate(frames) for r in per_object(f.labels, labels_of(ds, i))]
            j = np.array([r["jaccard"] for r in rows])
            ratio = np.array([r["area_ratio"] for r in rows])
            print(json.dumps({
                "dataset": ds, "n_reference": len(rows), "seg": round(float(j.mean()), 4),
                "jaccard_quantiles_0_5_10_25_50_75": [round(float(q), 3) for q in np.quantile(j, [0, .05, .1, .25, .5, .75])],
                "area_ratio_mean": round(float(np.nanmean(ratio)), 3), "area_ratio_median": round(float(np.nanmedian(ratio)), 3),
                "covered_mean": round(float(np.mean([r["covered"] for r in rows])), 3),
                "inside_mean": round(float(np.nanmean([r["inside"] for r in rows])), 3),
                "missed": int((j == 0).sum()), "split": sum(r["pieces"] > 1 for r in rows),
                "merged": sum(r["merged"] > 1 for r in rows),
                "worst": [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}
                          for r in sorted(rows, key=lambda r: r["jaccard"])[:5]]}), flush=True)
        return
    spec = json.loads(a.grid)
    for values in itertools.product(*spec.values()):
        kw = dict(zip(spec, values))
        out: dict[str, Any] = dict(kw)
        for ds, frames in sets.items():
            s = [ctc_seg(f.labels, labels_of(ds, i, **kw)) for i, f in enumerate(frames)]
            out[f"{ds}_val_seg"] = round(sum(v * n for v, n in s) / sum(n for _, n in s), 4)
        out["mean"] = round((out["gowt1_val_seg"] + out["hela02_val_seg"]) / 2, 4)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
