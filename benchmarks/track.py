"""Tracking benchmark: link label masks with dynacell.track.link_labels, score with traccuracy.

Run from the checkout: ``python benchmarks/track.py [--data ../shared/data] [--seed 0]``.

Cases (Cell Tracking Challenge data in ``../shared/data/ctc``):

- ``GOWT1 01 from GT``: the ground-truth TRA masks of Fluo-N2DH-GOWT1 01, with the ids of
  every frame randomly permuted first (seeded) so that linking cannot use them, linked and
  scored against ``01_GT``.
- ``bacteria-phc 01 from GT``: the same on the bacterial colony (356 divisions); the peer
  tracker's result shipped in ``01_RES`` is scored the same way beside it.
- baselines: the same LAP on centroid distances only (no overlap, drift or local flow).
- ``HeLa 02 from 02_ERR_SEG``: the error-prone segmentation of frames 0-19 linked as is and
  scored against the sparse ``02_GT`` on the frames that have ground-truth masks
  (1, 2, 4, 6, 7, 9, 11, 13, 14, 16, 18).
- ``mouse-8cell in µm``: the real 3D embryo (``embryo3d/mouse-8cell`` labels, ids not consistent
  over time) linked in µm with the BlastoSPIM voxel size 2.0 × 0.208 × 0.208 µm and the motion
  gate of ``dynacell run`` (:func:`dynacell.track.gate.motion_gate`); no link-level ground truth:
  the truth is 8 nuclei on all 11 frames, no division, so the row gives tracks / whole tracks /
  divisions.

Every case is linked once per motion prior (``--priors``, default ``flow kalman positions``:
``flow`` = no track prior, the default; ``positions`` = the shipped ``positions-2d`` /
``positions-3d`` model by dimensionality) — before / after predictive linking, beside the peer
tracker on bacteria-phc.

Prints one table row per case and prior: TRA, DET, division precision / recall / F1 (frame
buffer 1), edge errors, frames evaluated and the linking time (wall clock, this machine).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from dynacell.io import Movie, open_labels, write_ctc_result
from dynacell.metrics.tracking import evaluate_tracks
from dynacell.track import link_labels, lineage_to_ctc_tracks

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shuffled_ids(labels: Movie, seed: int) -> Movie:
    """The label movie in memory with the ids of every frame randomly permuted (seeded by ``seed`` and the frame's
    position), read one frame at a time."""
    from skimage.util import map_array

    frames = []
    for i, t in enumerate(labels.frame_indices):
        frame = np.asarray(labels.frame(t))
        ids = np.unique(frame)
        ids = ids[ids > 0]
        new = np.random.default_rng([seed, i]).permutation(len(ids)) + 1
        frames.append(map_array(frame, ids, new.astype(frame.dtype)))
    return Movie(np.stack(frames), labels.axes, labels.voxel_size_um, labels.frame_interval_s, labels.frame_indices,
                 labels.source + " (ids permuted)")


#: Baseline linking: centroid distance only (no overlap, drift, mask flow, local flow or division size penalty), same
#: LAP.
BASELINE = {"overlap": False, "drift_correction": False, "flow_neighbors": 0, "division_sizes": False,
            "mask_flow": False}


def fmt(v: float | None) -> str:
    """A score in a 6-character table cell (``n/a`` for None)."""
    return "   n/a" if v is None else f"{v:6.3f}"


def run_case(name: str, labels: Movie, gt: Path, work: Path, **link_kw) -> dict:
    t0 = time.perf_counter()
    lineage, relabel = link_labels(labels, progress=False, **link_kw)
    link_s = time.perf_counter() - t0
    res_dir = work / name.replace(" ", "_")
    write_ctc_result(res_dir, relabel.frames(labels, progress=False), lineage_to_ctc_tracks(lineage),
                     frame_indices=labels.frame_indices)
    res = evaluate_tracks(res_dir, gt, progress=False)
    res["link_s"] = link_s
    res["nuclei"] = len(lineage)
    return res


def mouse_case(data: Path, prior: str) -> dict:
    """Link the mouse-8cell labels in µm (motion gate of ``dynacell run``); count tracks and divisions."""
    from dynacell.track import measure_nuclei
    from dynacell.track.gate import motion_gate

    labels = open_labels(data / "embryo3d" / "mouse-8cell" / "labels")
    voxel_um = (2.0, 0.208, 0.208)
    labels = Movie(labels.data, labels.axes, voxel_um, labels.frame_interval_s, labels.frame_indices, labels.source)
    gate = motion_gate(measure_nuclei(labels, progress=False), ndim=3, voxel_size_um=voxel_um)
    t0 = time.perf_counter()
    lineage, _ = link_labels(labels, max_distance_um=gate["max_distance"], motion_prior=prior, progress=False)
    tracks = lineage.tracks()
    return {"tracks": len(tracks), "whole": int((tracks["n_nodes"] == labels.n_frames).sum()),
            "divisions": len(lineage.divisions()), "link_s": time.perf_counter() - t0}


def prior_name(prior: str, ndim: int) -> str:
    """``positions`` → the shipped position model of that dimensionality; other names unchanged."""
    return f"positions-{ndim}d" if prior == "positions" else prior


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (default ../shared/data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-frame id permutation")
    parser.add_argument("--priors", nargs="+", default=["flow", "kalman", "positions"],
                        help="motion priors of link_labels to compare (flow = none, the default)")
    parser.add_argument("--without-mask-flow", action="store_true",
                        help="also link every case without the first pass's mask flow (mask_flow=False)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ctc = args.data / "ctc"
    if not ctc.is_dir():
        raise SystemExit(f"data not found at {ctc}; pass --data")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        gowt1 = ctc / "Fluo-N2DH-GOWT1"
        bact = ctc / "bacteria-phc"
        hela = ctc / "Fluo-N2DL-HeLa"
        variants = [(True, "")] + ([(False, ", no mask flow")] if args.without_mask_flow else [])
        for prior in args.priors:
            name = prior_name(prior, 2)
            for on, tag in variants:
                rows.append((f"GOWT1 01 from GT, {name}{tag}",
                             run_case(f"gowt1_{name}{on}",
                                      shuffled_ids(open_labels(gowt1 / "01_GT" / "TRA"), args.seed),
                                      gowt1 / "01_GT", work, motion_prior=name, mask_flow=on)))
        for prior in args.priors:
            name = prior_name(prior, 2)
            for on, tag in variants:
                rows.append((f"bacteria-phc 01 from GT, {name}{tag}",
                             run_case(f"bacteria_{name}{on}",
                                      shuffled_ids(open_labels(bact / "01_GT" / "TRA"), args.seed),
                                      bact / "01_GT", work, motion_prior=name, mask_flow=on)))
        rows.append(("  baseline: centroid distance only",
                     run_case("bacteria_base", shuffled_ids(open_labels(bact / "01_GT" / "TRA"), args.seed),
                              bact / "01_GT", work, **BASELINE)))
        peer = evaluate_tracks(bact / "01_RES", bact / "01_GT", progress=False)
        peer["link_s"] = float("nan")
        peer["nuclei"] = 0
        rows.append(("  peer tracker 01_RES", peer))
        for prior in args.priors:
            name = prior_name(prior, 2)
            for on, tag in variants:
                rows.append((f"HeLa 02 from 02_ERR_SEG, {name}{tag}",
                             run_case(f"hela_{name}{on}", open_labels(hela / "02_ERR_SEG"), hela / "02_GT", work,
                                      motion_prior=name, mask_flow=on)))
        rows.append(("  baseline: centroid distance only",
                     run_case("hela_base", open_labels(hela / "02_ERR_SEG"), hela / "02_GT", work, **BASELINE)))
        mouse = [(prior_name(p, 3), mouse_case(args.data, prior_name(p, 3))) for p in args.priors]

    head = (f"{'case':42s} {'TRA':>7s} {'DET':>7s} {'divP':>6s} {'divR':>6s} {'divF1':>6s} {'FPe':>5s} {'FNe':>5s} "
            f"{'WSe':>5s} {'frames':>6s} {'link_s':>7s}")
    print(head)
    print("-" * len(head))

    for name, r in rows:
        print(f"{name:42s} {r['TRA']:7.4f} {r['DET']:7.4f} {fmt(r['division_precision'])} {fmt(r['division_recall'])} "
              f"{fmt(r['division_f1'])} {r['fp_edges']:5d} {r['fn_edges']:5d} {r['ws_edges']:5d} "
              f"{len(r['frames_evaluated']):6d} {r['link_s']:7.1f}")
    print(f"\nseed {args.seed}; division measures with frame buffer 1; HeLa scored on frames "
          f"{rows[-2][1]['frames_evaluated']} (frames with GT masks).")
    print("\nmouse-8cell linked in µm (2.0 x 0.208 x 0.208), motion gate; truth: 8 whole tracks (11 frames), "
          "0 divisions")
    print(f"{'prior':16s} {'tracks':>6s} {'whole':>6s} {'divisions':>9s} {'link_s':>7s}")
    for name, m in mouse:
        print(f"{name:16s} {m['tracks']:6d} {m['whole']:6d} {m['divisions']:9d} {m['link_s']:7.1f}")


if __name__ == "__main__":
    main()
