"""The model-based size search of a phase-contrast segmenter against the blob size estimate.

1. Calibration (``--calibrate``): the search is run on the model's own training frames
   (bacteria-phc 01 frames 0, 5, ..., 25), where the size the network works at is known (the blob
   estimate the card records, ``training_size_estimate_px``: its post-processing was tuned there); the factor
   :func:`dynacell.segment.predict.calibrate_size_search` returns becomes the card's
   ``size_search_calibration``.
2. Table (``--side val|test``): SEG (CTC measure) of the model run at the blob estimate and at the
   searched size, one size per set as ``dynacell segment`` does (estimated on the first frame), on
   bacteria-phc 01 frames of that side — whole frames and 512 × 512 / 800 × 800 crops centred on the
   colony (the blob estimate depends on the frame size) — and on rendered rod colonies of unseen
   draws (``rods``: seeds 12–13 validation, 14–15 test; one size per colony).

Usage::

    python benchmarks/segment_size_search.py --calibrate
    python benchmarks/segment_size_search.py --side val --calibration 1.262

Prints one JSON line per case. Seeds: the renders are fixed by their seeds; inference is deterministic.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import ndimage as ndi


def centred_crop(image: np.ndarray, labels: np.ndarray, half: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A ``2·half`` square crop of a frame and its labels centred on the labelled cells (None: the whole frame).

    Parameters
    ----------
    image, labels : numpy.ndarray
        One frame ``(Y, X)`` and its reference labels.
    half : int or None
        Half the crop side (pixels).

    Returns
    -------
    tuple of numpy.ndarray
        The cropped image and labels.
    """
    if half is None:
        return image, labels
    cy, cx = (int(v) for v in ndi.center_of_mass(labels > 0))
    y0, x0 = max(cy - half, 0), max(cx - half, 0)
    return image[y0:y0 + 2 * half, x0:x0 + 2 * half], labels[y0:y0 + 2 * half, x0:x0 + 2 * half]


def main() -> None:
    """Print the calibration or the table (see the module docstring)."""
    from dynacell.metrics.segmentation import ctc_seg
    from dynacell.segment.predict import Segmenter, blob_size_px, calibrate_size_search, segment_frame, size_estimate_px
    from dynacell.train.segment import load_frames, size_groups

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="cells-seg-2d-phc")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--side", default="val", choices=("val", "test"))
    ap.add_argument("--calibration", type=float, default=None, help="override the card's size_search_calibration")
    args = ap.parse_args()
    model = Segmenter.from_pretrained(args.model)
    if args.calibrate:
        frames = [f for f in load_frames("bacteria", "train") if f.t % 5 == 0]
        trained = float(model.card.training_size_estimate_px[0])
        cal, peaks = calibrate_size_search([f.image for f in frames], model, trained)
        print(json.dumps({"model": args.model, "frames": [f.t for f in frames], "trained_px": trained,
                          "peaks_px": [round(p, 2) for p in peaks], "calibration": round(cal, 3)}))
        return
    update = {"size_search": "confidence"}
    if args.calibration is not None:
        update["size_search_calibration"] = args.calibration
    searched = Segmenter(model.net, model.card.model_copy(update=update), model.folder)
    for dataset, half in (("bacteria", None), ("bacteria", 256), ("bacteria", 400), ("rods", None)):
        frames = load_frames(dataset, args.side)
        row: dict = {"side": args.side, "dataset": dataset, "crop": None if half is None else 2 * half,
                     "n_frames": len(frames)}
        for how in ("blob", "search"):
            segs, ns, sizes, secs = [], [], [], 0.0
            for group in size_groups(dataset, frames):
                data = [centred_crop(f.image, f.labels, half) for f in group]
                t0 = time.perf_counter()
                d = (blob_size_px(data[0][0], model.card.modality) if how == "blob"
                     else size_estimate_px(data[0][0], searched))
                secs += time.perf_counter() - t0
                sizes.append(round(d, 1))
                for img, ref in data:
                    s, n = ctc_seg(ref, segment_frame(img, model, nucleus_diameter_px=d))
                    segs.append(s)
                    ns.append(n)
            n_ref = np.asarray(ns)
            row[how] = {"SEG": round(float((np.asarray(segs) * n_ref).sum() / max(n_ref.sum(), 1)), 3),
                        "size_px": sizes, "estimate_s": round(secs, 1)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
