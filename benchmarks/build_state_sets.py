"""Build the real 2D sample sets used to train and test the shipped ``nuclei-2d`` model.

Reads the CTC data in place (``../shared/data/ctc``), labels states from the ground-truth
lineage with :func:`dynacell.lineage.label_events` and crops 32² windows with
:func:`dynacell.samples.build_sample_set` (the one crop function). Event rules: the seed's
(1 mitotic frame, 1 new-daughter frame) but with a stability window W = 2 and fraction 2.0
(a node is stable with >= 4 directly stable nodes of its track within ±2 frames, so not
within one frame of a division or birth; nodes in between are ``unknown`` and left out, as
the seed's rule does with W = 8): with the seed's W = 8 no bacterium is ever stable (they
divide every few frames). Track ends count
as ``death`` as in the seed; the 3-class model leaves them out.

bacteria-phc is one colony grown from 2 cells (2 lineage trees), too few groups for a split
by tree; its ``tree_id`` is replaced by the *clade*: the track id of the node's ancestor
at frame ``--clade-frame`` (25: ~30 clades; nodes before that frame form clade 0). A clade
is a whole sub-tree, so mothers, daughters and sisters never fall on two sides.

Scale normalisation (``--target-diameter D``): every movie is resampled so that the median
equivalent diameter of its label objects (first 3 labelled frames) is ``D`` crop pixels
(:mod:`dynacell.samples.scale`, the rule the shipped model applies at inference).

HeLa masks (``--hela-masks``): ``tra`` crops the 02_GT/TRA markers (small, ~7.6 px) as the mask
channel; ``err_seg`` (or ``st``) uses the full nuclei of 02_ERR_SEG (or 02_ST/SEG) relabelled with
the TRA marker ids (:func:`dynacell.samples.relabel_movie_by_markers`; segments with 0 or ≥ 2
markers dropped and counted in ``attrs["relabel"]``), like the full masks fed at inference.

Segmentation context (``--context``): 6-channel crops with ``[seg t−1, seg t+1]``
(:func:`dynacell.samples.crops.context_mask`) read from the masks themselves (bacteria, GOWT1:
TRA masks of every frame) or, for HeLa, from the unrelabelled ``02_ERR_SEG`` of every frame
(an automatic, error-prone segmentation, as at inference).

Usage::

    python benchmarks/build_state_sets.py --out /tmp/dynacell_state_sets [--max-stable 2000]
    python benchmarks/build_state_sets.py --out /tmp/dynacell_state_sets --size 32 --target-diameter 12 \
        --hela-masks err_seg --suffix=-d12

Prints one line per set: samples per state.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ctc"

#: name: (images, TRA masks, man_track.txt)
SETS = {
    "bacteria-phc": ("bacteria-phc/01", "bacteria-phc/01_GT/TRA", "bacteria-phc/01_GT/TRA/man_track.txt"),
    "hela02": ("Fluo-N2DL-HeLa/02", "Fluo-N2DL-HeLa/02_GT/TRA", "Fluo-N2DL-HeLa/02_GT/TRA/man_track.txt"),
    "gowt1": ("Fluo-N2DH-GOWT1/01", "Fluo-N2DH-GOWT1/01_GT/TRA", "Fluo-N2DH-GOWT1/01_GT/TRA/man_track.txt"),
}


def _clade(lin, node, frame: int) -> int:
    """Track id of the ancestor of ``node`` at frame ``frame`` (0 for nodes before it)."""
    if node[0] < frame:
        return 0
    while node[0] > frame:
        parents = lin.parents(node)
        if not parents:
            break
        node = parents[0]
    lin.assign_tracks()
    return int(lin.graph.nodes[node]["track_id"])


def main() -> None:
    """Build and save the sets; print their class counts."""
    from dynacell.io import open_labels, open_movie
    from dynacell.lineage import EventRules, read_lineage
    from dynacell.samples import build_sample_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/dynacell_state_sets"))
    ap.add_argument("--data", type=Path, default=DATA, help="the ctc folder of ../shared/data")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--max-stable", type=int, default=2000, help="random subsample of stable nodes per movie")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", default=list(SETS))
    ap.add_argument("--bin", type=float, default=1.0,
                    help="image pixels per crop pixel (crop covers size*bin px; linear resampling)")
    ap.add_argument("--suffix", default="", help="appended to the file names")
    ap.add_argument("--stable-window", type=int, default=2, help="EventRules.stable_window W")
    ap.add_argument("--stable-fraction", type=float, default=2.0, help="EventRules.stable_fraction")
    ap.add_argument("--target-diameter", type=float, default=None,
                    help="nucleus-size rule: median nucleus diameter in crop pixels (default: pixel crops)")
    ap.add_argument("--hela-masks", choices=("tra", "err_seg", "st"), default="tra",
                    help="HeLa mask channel: TRA markers, or ERR_SEG / ST full masks relabelled with the TRA ids")
    ap.add_argument("--clade-frame", type=int, default=25, help="bacteria-phc: clades rooted at this frame")
    ap.add_argument("--context", action="store_true", help="add the segmentation-context channels (6 channels)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rules = EventRules(stable_window=args.stable_window, stable_fraction=args.stable_fraction)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only:
        img, tra, track = SETS[name]
        images = open_movie(args.data / img)
        labels = open_labels(args.data / tra)
        relabel = None
        context_labels = None
        if name == "hela02" and args.hela_masks != "tra":
            from dynacell.samples import relabel_movie_by_markers

            full_masks = {"err_seg": "Fluo-N2DL-HeLa/02_ERR_SEG", "st": "Fluo-N2DL-HeLa/02_ST/SEG"}[args.hela_masks]
            context_labels = open_labels(args.data / full_masks)
            labels, relabel = relabel_movie_by_markers(context_labels, labels)
            print(f"{name}: relabelled {full_masks} with TRA ids: {relabel}")
        lin = read_lineage(args.data / track)
        scale = {} if args.bin == 1.0 else {"voxel_size_um": (1.0, 1.0), "target_voxel_um": args.bin}
        if args.target_diameter is not None:
            scale = {"target_diameter_px": args.target_diameter}
        full = build_sample_set(images, labels, lin, rules, size=args.size, dataset=name, **scale,
                                states=("stable", "mitotic", "new_daughter", "death"),
                                seed=args.seed, progress=False, context=args.context,
                                context_labels=context_labels if args.context else None)
        keep = full.meta.index[full.meta["state"] != "stable"].to_numpy()
        stable = full.meta.index[full.meta["state"] == "stable"].to_numpy()
        if len(stable) > args.max_stable:
            import numpy as np

            stable = np.random.default_rng(args.seed).choice(stable, args.max_stable, replace=False)
        ss = full.subset(sorted([*keep.tolist(), *stable.tolist()]))
        if name == "bacteria-phc":
            ss.meta["tree_id"] = [_clade(lin, (t, lab), args.clade_frame)
                                  for t, lab in zip(ss.meta["t"].tolist(), ss.meta["label"].tolist())]
            ss.attrs["tree_id"] = f"clade: track id of the ancestor at frame {args.clade_frame} (0 before it)"
        if relabel is not None:
            ss.attrs["relabel"] = {"masks": args.hela_masks, **relabel}
        ss.attrs["stable_subsample"] = {"max": args.max_stable, "of": int((full.meta["state"] == "stable").sum()),
                                        "seed": args.seed}
        path = ss.save(args.out / f"{name}{args.suffix}.npz", overwrite=True)
        print(f"{name}: {path} {ss.counts()}")


if __name__ == "__main__":
    main()
