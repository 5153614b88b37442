"""Choose the post-processing of a 2D segmenter on the validation side only (never the test frames).

Each variant (fields of :class:`dynacell.segment.learned.PostprocessParams` and the number of
test-time flips) is run the way ``dynacell segment`` runs a model
(:func:`dynacell.segment.predict.segment_frame`: nucleus size estimated once from the first
frame of each set, maps resized back) on:

- GOWT1 01 frames ``--gowt1-from``–31 with their tracking markers (``01_GT/TRA``, one per
  nucleus, every nucleus of the frame): ``merges`` (a predicted object covering more than half
  of two or more markers), ``missed`` markers, predicted objects holding no marker
  (``no_marker``: false objects or split halves); frames 0–20 are the segmenter's training
  frames — the post-processing is not trained, so they count here as validation of it;
- GOWT1 SEG on the validation frames 21–31 (``01_GT/SEG``, sparse);
- HeLa 02 validation frames 10–11 (``02_ST/SEG`` silver truth): SEG, object F1 at IoU 0.5,
  objects predicted / referenced.

Usage::

    python benchmarks/segment_postprocess.py --model nuclei-seg-2d --flips 4 \\
        --grid '[{}, {"min_mean_foreground": 0.7}]'

Prints one JSON line per variant. Maps are computed once per frame and flip setting.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace

import numpy as np


def marker_counts(labels: np.ndarray, markers: np.ndarray) -> tuple[int, int, int, int]:
    """Merges, objects without a marker, missed markers and markers of one frame.

    Parameters
    ----------
    labels : numpy.ndarray
        int predicted instances ``(Y, X)``.
    markers : numpy.ndarray
        int reference markers (or full reference objects), same shape; one id per nucleus.

    Returns
    -------
    tuple of int
        ``(merges, no_marker, missed, n_markers)``: a marker belongs to the predicted object that
        covers most of it, if that covers more than half of it (else it is missed); ``merges`` =
        markers beyond the first in one object.
    """
    from dynacell.metrics.segmentation import overlap_matrix

    ref_ids, pred_ids, overlap, _ = overlap_matrix(markers, labels)
    sizes = np.bincount(np.asarray(markers).ravel())[ref_ids]
    best = overlap.max(axis=1) if overlap.shape[1] else np.zeros(len(ref_ids), np.int64)
    owned = 2 * best > sizes  # the largest object covers more than half of the marker
    owners = pred_ids[overlap[owned].argmax(axis=1)] if owned.any() else pred_ids[:0]
    n_owners = len(np.unique(owners))
    return int(owned.sum()) - n_owners, len(pred_ids) - n_owners, int((~owned).sum()), len(ref_ids)


def main() -> None:
    import tifffile
    import torch

    from dynacell.metrics.segmentation import ctc_seg, object_scores
    from dynacell.segment.learned import estimate_nucleus_diameter_px
    from dynacell.segment.predict import Segmenter, segment_frame
    from dynacell.train.segment import DEFAULT_DATA, load_frames

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="nuclei-seg-2d")
    p.add_argument("--flips", type=int, default=None, help="test-time flips (1, 2, 4); default: the card's")
    p.add_argument("--grid", default="[{}]", help="JSON list of PostprocessParams overrides")
    p.add_argument("--gowt1-from", type=int, default=0, help="first GOWT1 frame of the marker counts (<= 31)")
    a = p.parse_args()
    torch.set_num_threads(1)

    base = Segmenter.load(a.model)
    flips = base.card.test_time_flips if a.flips is None else a.flips
    cache: dict = {}
    raw = base.predict_maps

    def cached(x: np.ndarray, **kw):
        key = (x.shape, hashlib.md5(x.tobytes()).hexdigest())
        if key not in cache:
            cache[key] = raw(x, flips=flips, **kw)
        return cache[key]

    class Variant(Segmenter):
        def __init__(self, params):
            super().__init__(base.net, base.card, base.folder)
            self._params = params
            self.predict_maps = cached

        @property
        def postprocess(self):
            return self._params

    g = DEFAULT_DATA / "ctc" / "Fluo-N2DH-GOWT1"
    tra = [(tifffile.imread(g / "01" / f"t{t:03d}.tif"), tifffile.imread(g / "01_GT" / "TRA" / f"man_track{t:03d}.tif"))
           for t in range(a.gowt1_from, 32)]
    gseg, hseg = load_frames("gowt1", "val"), load_frames("hela02", "val")
    dg, dh = estimate_nucleus_diameter_px(gseg[0].image), estimate_nucleus_diameter_px(hseg[0].image)
    for over in json.loads(a.grid):
        m = Variant(replace(base.postprocess, **over))
        gs = [ctc_seg(f.labels, segment_frame(f.image, m, nucleus_diameter_px=dg)) for f in gseg]
        counts = np.array([marker_counts(segment_frame(im, m, nucleus_diameter_px=dg), mk) for im, mk in tra]).sum(0)
        hs, ho = [], []
        for f in hseg:
            lab = segment_frame(f.image, m, nucleus_diameter_px=dh)
            hs.append(ctc_seg(f.labels, lab))
            ho.append(object_scores(f.labels, lab))
        tp = sum(o["tp@0.5"] for o in ho)
        npred, nref = sum(o["n_predicted"] for o in ho), sum(o["n_reference"] for o in ho)
        print(json.dumps({"flips": flips, **over,
                          "gowt1_val_seg": round(sum(s * n for s, n in gs) / sum(n for _, n in gs), 4),
                          "gowt1_merges": int(counts[0]), "gowt1_no_marker": int(counts[1]),
                          "gowt1_missed": int(counts[2]), "gowt1_markers": int(counts[3]),
                          "hela_val_seg": round(sum(s * n for s, n in hs) / sum(n for _, n in hs), 4),
                          "hela_val_f1": round(2 * tp / max(npred + nref, 1), 4), "hela_n_pred": npred,
                          "hela_n_ref": nref}), flush=True)


if __name__ == "__main__":
    main()
