"""Build the 3D sample set for ``nuclei-3d`` from movies rendered from the real WormGUIDES lineage.

The real C. elegans lineage (``../shared/data/lineages/wormguides-celegans``: 663 divisions,
113 annotated programmed cell deaths) is rendered with
:func:`dynacell.simulate.render_lineage` (default imaging, ``scale=0.5`` to keep CPU time
short) in chunks of consecutive frames; ground-truth states come from the *whole* lineage
(:func:`dynacell.simulate.ground_truth_states`, rules ``EventRules.annotated_deaths()``:
deaths only where annotated). Every mitotic, new-daughter and death node is kept, plus a
random subsample of stable nodes; each is cropped with the one crop function
(:func:`dynacell.samples.iter_frame_crops`) to ``size³`` voxels of ``target_voxel_um`` µm.
``tree_id`` is the sublineage (ABal, ABar, ABpl, ABpr, MS, E, C, D, P4; see
:data:`SUBLINEAGES`) from the cell name, so that whole sublineages can be held out
(``meta["sublineage"]``; ``split.test_groups`` in the training config).

Usage::

    python benchmarks/build_state_sets_3d.py --out /tmp/dynacell_state_sets/wormguides-3d.npz

Prints the samples per state and sublineage.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lineages" / "wormguides-celegans"

#: Sublineages of C. elegans (Sulston et al. 1983) by name prefix: the four AB great-granddaughter
#: sublineages (ABal, ABar, ABpl, ABpr; AB holds 70% of the cells), the founders MS, E, C, D, P4
#: (Z2/Z3 are P4's daughters), AB for AB, ABa, ABp themselves; anything earlier is P0.
SUBLINEAGES = ("ABal", "ABar", "ABpl", "ABpr", "AB", "MS", "E", "C", "D", "P4", "Z2", "Z3")


def sublineage(name: str) -> str:
    """Sublineage of a C. elegans cell name (``ABplpa`` → ``ABpl``; ``Z2`` → ``P4``; ``EMS`` → ``P0``)."""
    name = str(name)
    if name in ("EMS", "P0", "P1", "P2", "P3"):
        return "P0"
    for f in SUBLINEAGES:
        if name.startswith(f):
            return "P4" if f in ("Z2", "Z3") else f
    return "P0"


def tree_id(name: str) -> int:
    """Integer id of :func:`sublineage` (1-based index in SUBLINEAGES; 0 for P0)."""
    sub = sublineage(name)
    return SUBLINEAGES.index(sub) + 1 if sub in SUBLINEAGES else 0


def main() -> None:
    """Render, crop and save the set."""
    from dynacell.lineage import read_lineage
    from dynacell.samples import SampleSet, iter_frame_crops
    from dynacell.simulate import ground_truth_states, render_lineage

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell_state_sets/wormguides-3d.npz"))
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--size", type=int, default=24, help="crop edge, voxels")
    ap.add_argument("--target-voxel-um", type=float, default=1.0, help="isotropic crop voxel, µm")
    ap.add_argument("--scale", type=float, default=0.5, help="render scale (voxel = imaging voxel / scale)")
    ap.add_argument("--stable", type=int, default=2500, help="random stable nodes kept")
    ap.add_argument("--chunk", type=int, default=30, help="frames rendered per call")
    ap.add_argument("--frames", type=int, nargs=2, default=None, help="only frames [a, b) (quick runs)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    lin = read_lineage(args.data)
    states = ground_truth_states(lin)
    rng = np.random.default_rng(args.seed)
    nodes = sorted(states)
    if args.frames:
        nodes = [n for n in nodes if args.frames[0] <= n[0] < args.frames[1]]
    stable = [n for n in nodes if states[n] == "stable"]
    events = [n for n in nodes if states[n] in ("mitotic", "new_daughter", "death")]
    if len(stable) > args.stable:
        stable = [stable[i] for i in sorted(rng.choice(len(stable), args.stable, replace=False))]
    chosen = sorted(events + stable)
    by_t: dict[int, list[int]] = {}
    for t, label in chosen:
        by_t.setdefault(t, []).append(label)
    print(f"lineage read, {len(chosen)} nodes chosen ({len(events)} events) in {time.perf_counter() - t0:.0f} s")
    ts = sorted(by_t)
    xs, rows = [], []
    for c0 in range(0, len(ts), args.chunk):
        block = ts[c0:c0 + args.chunk]
        lo, hi = max(block[0] - 1, 0), min(block[-1] + 1, lin.n_frames - 1)
        t1 = time.perf_counter()
        res = render_lineage(lin, frames=range(lo, hi + 1), scale=args.scale, seed=args.seed, progress=False)
        images, labels = res.to_movies()
        local = {t - lo: by_t[t] for t in block}
        for fc in iter_frame_crops(images, labels, frames=sorted(local), size=args.size,
                                   target_voxel_um=args.target_voxel_um, label_ids=local):
            src_t = fc.t + lo
            for i, label in enumerate(fc.label_ids.tolist()):
                d = lin.graph.nodes[(src_t, label)]
                xs.append(fc.x[i])
                rows.append({"dataset": "wormguides", "t": src_t, "label": label, "track_id": int(d.get("track_id", -1)),
                             "tree_id": tree_id(d.get("name", "")),
                             "state": states[(src_t, label)], "z": fc.centroids[i, 0], "y": fc.centroids[i, 1],
                             "x": fc.centroids[i, 2], "sublineage": sublineage(d.get("name", "")),
                             "name": str(d.get("name", ""))})
        print(f"frames {lo}-{hi}: {len(xs)} crops so far, {time.perf_counter() - t1:.0f} s", flush=True)
    meta = pd.DataFrame(rows)
    attrs = {"dataset": "wormguides", "size": [args.size] * 3, "target_voxel_um": args.target_voxel_um,
             "voxel_size_um": list(res.voxel_size_um), "render": {"scale": args.scale, "seed": args.seed},
             "rules": "EventRules.annotated_deaths (simulate.default_rules)", "stable_subsample": args.stable,
             "sources": {"lineage": str(args.data)}}
    from dynacell.samples.crops import NORMALIZATION

    attrs["normalization"] = NORMALIZATION
    ss = SampleSet(np.stack(xs), meta, attrs)
    ss.save(args.out, overwrite=True)
    print(f"wrote {args.out}: {ss.counts()} in {time.perf_counter() - t0:.0f} s")
    print(meta.groupby(["sublineage", "state"]).size().unstack(fill_value=0))


if __name__ == "__main__":
    main()
