"""Detection-level held-out check of 2D segmenters on GOWT1 01 frames that are in no split.

GOWT1 01 has a full outline (``01_GT/SEG``) on 30 of its 92 frames, every one of them in the
segmenters' split (train ≤ 20, validation 21–31, test ≥ 32: :data:`dynacell.train.segment.SPLITS`), and
the SEG test block has been scored many times across sessions. Its tracking markers (``01_GT/TRA``:
one marker, smaller than the nucleus, on *every* nucleus of *every* frame) also cover the 49 frames
≥ 32 that carry no outline (35, 36, 38, 42, 43, 48–91): no segmenter was trained, chosen or
diagnosed on them (they entered only the whole-movie tracking scores of ``dynacell run --gt``, which
were reported, never used for a choice). This script scores each model there at the level a marker allows — not SEG:

- ``hit``: markers that are the only marker of the predicted object covering more than half of them;
- ``merged``: markers that share that object with another marker (a merged pair counts 2), and
  ``merge_objects`` / ``frames_with_merge``;
- ``missed``: markers no predicted object covers more than half of;
- ``no_marker``: predicted objects holding no marker (false objects, split halves, or debris).

Each model runs as ``dynacell segment`` runs it (:func:`dynacell.segment.predict.segment_frame`,
nucleus size estimated once from the first frame of the set; ``classical`` = the classical segmenter,
given GOWT1's 0.24 µm pixels as ``benchmarks/segment.py`` gives them). ``--frames`` picks the set:
``fresh`` (default, the 49 frames above), ``seg-test`` (the 11 SEG test frames, whose markers were read
in earlier sessions' diagnoses: not fresh), ``val`` (21–31), or a comma list of frame numbers.

Usage::

    python benchmarks/segment_gowt1_markers.py --models nuclei-seg-2d-fast,nuclei-seg-2d,classical \\
        --out docs/figures/segmentation/gowt1_fresh_markers.csv

Prints one JSON line per model (totals) and writes the per-frame counts to ``--out`` (CSV).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def marker_detection(labels: np.ndarray, markers: np.ndarray) -> dict[str, int]:
    """Detection counts of one frame against one-per-nucleus markers.

    Parameters
    ----------
    labels : numpy.ndarray
        int predicted instances ``(Y, X)`` (0 = background).
    markers : numpy.ndarray
        int markers, same shape; one id per nucleus.

    Returns
    -------
    dict
        ``markers``, ``hit``, ``merged`` (markers sharing their object with another marker),
        ``merge_objects`` (objects holding two or more markers), ``missed``, ``no_marker``
        (objects holding none), ``objects``. A marker belongs to the predicted object covering
        more than half of it (else it is missed); ``hit + merged + missed == markers``.
    """
    from dynacell.metrics.segmentation import overlap_matrix

    labels, markers = np.asarray(labels), np.asarray(markers)
    ref_ids, pred_ids, overlap, _ = overlap_matrix(markers, labels)
    sizes = np.bincount(markers.ravel())[ref_ids]
    if overlap.shape[1]:
        best = overlap.max(axis=1)
        owner = np.where(2 * best > sizes, pred_ids[overlap.argmax(axis=1)], 0)
    else:
        owner = np.zeros(len(ref_ids), np.int64)
    owned = owner[owner > 0]
    ids, counts = np.unique(owned, return_counts=True)
    shared = set(ids[counts > 1].tolist())
    n_objects = len(pred_ids)
    return {"markers": len(ref_ids), "hit": int(sum(1 for o in owned if int(o) not in shared)),
            "merged": int(sum(1 for o in owned if int(o) in shared)), "merge_objects": len(shared),
            "missed": int((owner == 0).sum()), "no_marker": n_objects - len(ids), "objects": n_objects}


def frame_set(spec: str, root: Path) -> list[int]:
    """GOWT1 01 frame numbers of ``spec``: ``fresh``, ``seg-test``, ``val`` or a comma list."""
    g = root / "ctc" / "Fluo-N2DH-GOWT1" / "01_GT"
    seg = {int(p.stem[7:]) for p in (g / "SEG").glob("man_seg*.tif")}
    tra = sorted(int(p.stem[9:]) for p in (g / "TRA").glob("man_track*.tif"))
    if spec == "fresh":
        return [t for t in tra if t >= 32 and t not in seg]
    if spec == "seg-test":
        return sorted(t for t in seg if t >= 32)
    if spec == "val":
        return [t for t in tra if 21 <= t <= 31]
    return [int(v) for v in spec.split(",")]


def main() -> None:
    import pandas as pd
    import tifffile
    import torch

    from dynacell.segment import classical
    from dynacell.segment.benchmark import load_models, model_label
    from dynacell.segment.learned import estimate_nucleus_diameter_px
    from dynacell.segment.predict import segment_frame
    from dynacell.train.segment import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="nuclei-seg-2d-fast,nuclei-seg-2d,classical")
    p.add_argument("--frames", default="fresh", help="fresh, seg-test, val or a comma list of frame numbers")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--out", default=None, help="CSV of the per-frame counts")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    root = Path(a.data)
    g = root / "ctc" / "Fluo-N2DH-GOWT1"
    frames = frame_set(a.frames, root)
    images = {t: tifffile.imread(g / "01" / f"t{t:03d}.tif") for t in frames}
    diam = estimate_nucleus_diameter_px(images[frames[0]])
    rows: list[dict[str, Any]] = []
    for model in load_models([m for m in a.models.split(",") if m]):
        name = model_label(model)
        cpu = 0.0
        for t in frames:
            t0 = time.process_time()
            if model == "classical":
                lab = classical.segment_frame(images[t], voxel_size_um=(0.24, 0.24))  # as the benchmark gives it
            else:
                lab = segment_frame(images[t], model, nucleus_diameter_px=diam)
            cpu += time.process_time() - t0
            mk = tifffile.imread(g / "01_GT" / "TRA" / f"man_track{t:03d}.tif")
            rows.append({"model": name, "t": t, **marker_detection(lab, mk)})
        df = pd.DataFrame([r for r in rows if r["model"] == name])
        tot = {k: int(df[k].sum()) for k in ("markers", "hit", "merged", "merge_objects", "missed", "no_marker", "objects")}
        print(json.dumps({"model": name, "frames": a.frames, "n_frames": len(frames), "diameter_px": round(float(diam), 1),
                          **tot, "frames_with_merge": int((df["merge_objects"] > 0).sum()),
                          "frames_with_miss": int((df["missed"] > 0).sum()),
                          "cpu_s_per_frame": round(cpu / len(frames), 3)}), flush=True)
    if a.out:
        pd.DataFrame(rows).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
