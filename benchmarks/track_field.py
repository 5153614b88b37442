"""Tracking when the field of view cuts the colony: a window, fixed or drifting, over real ground truth.

Run from the checkout: ``python benchmarks/track_field.py [--data ../shared/data] [--seed 0] [--fraction 0.6]
[--corner tl|tr|bl|br]``.

The Cell Tracking Challenge movies of ``../shared/data`` keep their cells inside the frame (the bacteria-phc colony
grows in the middle of it). Many users' movies do not: the field cuts a colony or a tissue, cells enter and leave
at the borders, and the stage or the tissue drifts. This benchmark makes such movies from the real ground truth:

- ``fixed window``: the ``fraction`` of every frame (Y and X) at the ``--corner`` (default top-left);
- ``drifting window``: a window of the same size that moves linearly from that corner to the opposite one over the
  movie (bacteria-phc at 0.6: 10.0 × 7.8 px per frame for cells about 16 px wide; GOWT1: 4.5 × 4.5 px).

The reference lineage of a window (:func:`window_ground_truth`) follows the CTC conventions: each stretch of frames
in which a cell is visible is a track; a cell that leaves and comes back gets a new track without a parent; a
daughter keeps her mother as parent only when the mother is visible in the frame before her first one. The label
masks (ids permuted per frame, seeded, as in ``benchmarks/track.py``) are linked by
:func:`dynacell.track.link_labels` (the linking of ``dynacell run``, before the state classifier's division check)
and by the centroid-distance baseline of ``benchmarks/track.py``; every row is scored with traccuracy
(:func:`dynacell.metrics.tracking.evaluate_tracks`, through ``run_case``). The whole frames are linked too, as the reference row.

Prints one row per movie, window and linker: TRA, LNK, division precision / recall / F1 (frame buffer 1), edge
errors, the reference divisions, and the divisions whose daughter touches the window's border in her first frame.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from dynacell.io import open_labels, read_ctc_tracks

from track import BASELINE, DATA, fmt, run_case, shuffled_ids  # the tracking benchmark's helpers (same folder)

#: Movies: name → (CTC folder, ground-truth folder) under ``ctc/``.
MOVIES = {"bacteria-phc 01": ("bacteria-phc", "01_GT"), "GOWT1 01": ("Fluo-N2DH-GOWT1", "01_GT")}


def _segments(frames: list[int]) -> list[list[int]]:
    """Runs of consecutive frame numbers of a sorted list."""
    runs: list[list[int]] = [[frames[0]]]
    for t in frames[1:]:
        if t == runs[-1][-1] + 1:
            runs[-1].append(t)
        else:
            runs.append([t])
    return runs


def window_ground_truth(gt: Path, out: Path, fraction: float, drifting: bool, corner: str = "tl") -> dict:
    """Write the ground truth of a window of every frame of ``gt/TRA`` as a CTC ``TRA`` folder under ``out``.

    Parameters
    ----------
    gt : Path
        A CTC ``NN_GT`` folder with ``TRA/man_trackTTT.tif`` for consecutive frames and ``TRA/man_track.txt``.
    out : Path
        New ``NN_GT``-like folder (``out/TRA``).
    fraction : float
        Window size as a fraction of the frame's Y and X size, in (0, 1].
    drifting : bool
        Move the window linearly from ``corner`` to the opposite corner over the movie; else fixed at ``corner``.
    corner : {"tl", "tr", "bl", "br"}
        Starting corner (top/bottom, left/right).

    Returns
    -------
    dict
        ``frames``, ``shape`` (window, px), ``drift_px_per_frame`` (Y, X), ``tracks``, ``divisions`` (reference
        divisions: a parent with two or more visible daughters).
    """
    table = read_ctc_tracks(gt / "TRA" / "man_track.txt")
    parent_of = dict(zip(table["label"].astype(int), table["parent"].astype(int)))
    files = sorted((gt / "TRA").glob("man_track[0-9]*.tif"))
    ts = [int(f.stem[9:]) for f in files]
    if ts != list(range(ts[0], ts[0] + len(ts))):
        raise SystemExit(f"{gt}: the TRA masks are not consecutive frames")
    first = tifffile.imread(files[0])
    H, W = first.shape[-2:]
    h, w = int(H * fraction), int(W * fraction)
    (out / "TRA").mkdir(parents=True)
    masks, visible = [], {}
    if corner not in ("tl", "tr", "bl", "br"):
        raise SystemExit(f"corner must be tl, tr, bl or br, got {corner!r}")
    ys, xs = float(corner[0] == "b"), float(corner[1] == "r")
    for k, f in enumerate(files):
        a = k / (len(files) - 1) if drifting else 0.0
        y0, x0 = int(round((ys + a * (1 - 2 * ys)) * (H - h))), int(round((xs + a * (1 - 2 * xs)) * (W - w)))
        m = tifffile.imread(f)[y0:y0 + h, x0:x0 + w].astype(np.uint16)
        masks.append(m)
        for lab in np.unique(m)[1:]:
            visible.setdefault(int(lab), []).append(k)
    next_id = max(int(table["label"].max()), max(visible)) + 1
    runs = {}  # label -> [(id, first frame, last frame)] of its visible stretches
    for lab in sorted(visible):
        runs[lab] = []
        for j, run in enumerate(_segments(visible[lab])):
            new = lab if j == 0 else next_id
            next_id += j > 0
            if new != lab:
                for k in run:
                    masks[k][masks[k] == lab] = new
            runs[lab].append((new, run[0], run[-1]))
    rows = []
    for lab, stretches in runs.items():
        for j, (new, begin, end) in enumerate(stretches):
            mother = parent_of.get(lab, 0) if j == 0 else 0
            last = runs.get(mother, [])[-1:] if mother > 0 else []
            rows.append((new, begin, end, last[0][0] if last and last[0][2] == begin - 1 else 0))
    for k, m in enumerate(masks):
        tifffile.imwrite(out / "TRA" / f"man_track{k:03d}.tif", m, compression="zlib")
    tracks = pd.DataFrame(rows, columns=["label", "begin", "end", "parent"]).sort_values("label")
    tracks.to_csv(out / "TRA" / "man_track.txt", sep=" ", header=False, index=False)
    n_div = int((tracks[tracks["parent"] > 0].groupby("parent").size() >= 2).sum())
    drift = ((H - h) / (len(files) - 1), (W - w) / (len(files) - 1)) if drifting else (0.0, 0.0)
    return {"frames": len(files), "shape": (h, w), "drift_px_per_frame": drift, "tracks": len(tracks),
            "divisions": n_div}


def border_daughter_divisions(res: Path) -> int:
    """Linked divisions (≥ 2 daughters) of a CTC result folder with a daughter touching the border in her first frame."""
    tracks = read_ctc_tracks(res / "res_track.txt")
    n = 0
    for _, kids in tracks[tracks["parent"] > 0].groupby("parent"):
        if len(kids) < 2:
            continue
        for lab, t in zip(kids["label"], kids["begin"]):
            m = tifffile.imread(res / f"mask{int(t):03d}.tif") == lab
            if m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any():
                n += 1
                break
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-frame id permutation")
    parser.add_argument("--fraction", type=float, default=0.6, help="window size as a fraction of the frame")
    parser.add_argument("--corner", default="tl", choices=("tl", "tr", "bl", "br"),
                        help="the fixed window's corner, and the drifting window's starting corner (default top-left)")
    parser.add_argument("--without-mask-flow", action="store_true",
                        help="also link without the first pass's mask flow (mask_flow=False), for comparison")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not 0 < args.fraction <= 1:
        raise SystemExit("--fraction must be in (0, 1]")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for movie, (folder, gt_name) in MOVIES.items():
            gt_full = args.data / "ctc" / folder / gt_name
            if not gt_full.is_dir():
                raise SystemExit(f"data not found at {gt_full}; pass --data")
            for window in ("whole frame", "fixed window", "drifting window"):
                if window == "whole frame":
                    gt = gt_full
                    info = {"divisions": int((read_ctc_tracks(gt / "TRA" / "man_track.txt")
                                              .query("parent > 0").groupby("parent").size() >= 2).sum())}
                else:
                    gt = work / f"{folder}_{window.split()[0]}_GT"
                    info = window_ground_truth(gt_full, gt, args.fraction, window.startswith("drifting"), args.corner)
                linkers = [("dynacell", {})] + ([("no mask flow", {"mask_flow": False})]
                                                if args.without_mask_flow else []) + [("centroid distance", BASELINE)]
                for linker, kw in linkers:
                    case = f"{folder}_{window.split()[0]}_{linker.replace(' ', '_')}"
                    labels = shuffled_ids(open_labels(gt / "TRA"), args.seed)
                    r = run_case(case, labels, gt, work, **kw)
                    r["border"] = border_daughter_divisions(work / case)
                    rows.append((movie, window, linker, info, r))
    head = (f"{'movie':16s} {'window':16s} {'linker':18s} {'TRA':>6s} {'LNK':>6s} {'divP':>6s} {'divR':>6s} "
            f"{'divF1':>6s} {'FPe':>5s} {'FNe':>5s} {'ref div':>7s} {'border':>6s}")
    print(head)
    print("-" * len(head))

    for movie, window, linker, info, r in rows:
        print(f"{movie:16s} {window:16s} {linker:18s} {r['TRA']:6.3f} {fmt(r.get('LNK'))} {fmt(r['division_precision'])} "
              f"{fmt(r['division_recall'])} {fmt(r['division_f1'])} {r['fp_edges']:5d} {r['fn_edges']:5d} "
              f"{info['divisions']:7d} {r['border']:6d}")
    shapes = {(m, w): i for m, w, _, i, _ in rows if "shape" in i}
    print(f"\nseed {args.seed}; window {args.fraction:g} of the frame, corner {args.corner}; division measures with frame buffer 1; "
          "'border' = linked divisions with a daughter touching the window's border in her first frame.")
    for (m, w), i in shapes.items():
        print(f"{m}, {w}: {i['frames']} frames of {i['shape'][0]} x {i['shape'][1]} px, drift "
              f"{i['drift_px_per_frame'][0]:.1f} x {i['drift_px_per_frame'][1]:.1f} px/frame, {i['tracks']} tracks")


if __name__ == "__main__":
    main()
