"""Linking across missing frames: real ground-truth masks with every k-th frame removed.

Run from the checkout: ``python benchmarks/track_missing.py [--data ../shared/data] [--every 4]``.

A frame file lost from a folder, or a frame without any nucleus, is a hole in a movie: ``dynacell run`` links the
frames on either side of it as if they were consecutive (``docs/data-formats.md``). This benchmark measures
what that costs. It removes frames ``every − 1, 2 × every − 1, ...`` from the ground-truth ``TRA`` masks of a
movie, links the rest with :func:`dynacell.track.link_labels` (the linking of ``dynacell run`` before the state
classifier's division check) and compares the links with the reference links on the kept frames
(:func:`reference_links`): a cell's consecutive kept frames, and a mother's last kept frame to her daughter's first.
Links are compared by the reference ids of the masks (the linker never reads the ids: it links regions), split
into links between consecutive frames and links across a hole. The row ``every 0`` removes nothing.

``--keep 2 3`` also keeps only every 2nd / 3rd frame (a lower frame rate: every link spans the removed frames,
so all are "across a hole"); ``--without-mask-flow`` links every setting a second time without the first pass's
mask flow (``mask_flow=False``), the linking before it, for comparison in the same run.

Prints, per movie and setting: reference and predicted links, recall and precision, for both kinds of links.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from dynacell.io import open_labels, read_ctc_tracks
from dynacell.io.movie import load_in_memory, select_frames
from dynacell.track import link_labels

from track import DATA  # the tracking benchmark's data folder (same folder)

#: Movies: name → (CTC folder, ground-truth folder) under ``ctc/``.
MOVIES = {"bacteria-phc 01": ("bacteria-phc", "01_GT"), "GOWT1 01": ("Fluo-N2DH-GOWT1", "01_GT")}


def reference_links(tracks: pd.DataFrame, kept: list[int]) -> set:
    """The reference links of a CTC track table on the kept frames.

    Parameters
    ----------
    tracks : pandas.DataFrame
        CTC table ``label, begin, end, parent`` (a track is present at every frame from ``begin`` to ``end``).
    kept : list of int
        The frame numbers kept, increasing.

    Returns
    -------
    set of ((int, int), (int, int))
        ``((t, label), (t', label'))``: a track at two consecutive kept frames, and a mother's last kept frame to
        each daughter's first kept frame (a division whose frame was removed still links mother and daughters).
    """
    keep = set(int(t) for t in kept)
    frames = {int(r.label): [t for t in range(int(r.begin), int(r.end) + 1) if t in keep]
              for r in tracks.itertuples(index=False)}
    links = set()
    for r in tracks.itertuples(index=False):
        ts = frames[int(r.label)]
        links.update(((a, int(r.label)), (b, int(r.label))) for a, b in zip(ts, ts[1:]))
        mother = frames.get(int(r.parent), []) if int(r.parent) > 0 else []
        if ts and mother:
            links.add(((mother[-1], int(r.parent)), (ts[0], int(r.label))))
    return links


def score(reference: set, predicted: set) -> dict:
    """Recall and precision of the links between consecutive kept frames and across a hole.

    Parameters
    ----------
    reference, predicted : set of ((int, int), (int, int))
        Links ``((t, label), (t', label'))``.

    Returns
    -------
    dict
        ``{kind: (n_reference, n_predicted, recall, precision)}`` for ``"consecutive"`` and ``"across a hole"`` (a
        link whose frames are more than one apart).
    """
    out = {}
    kinds = (("consecutive", lambda e: e[1][0] - e[0][0] == 1), ("across a hole", lambda e: e[1][0] - e[0][0] > 1))
    for kind, keep in kinds:
        ref = {e for e in reference if keep(e)}
        pred = {e for e in predicted if keep(e)}
        tp = len(ref & pred)
        out[kind] = (len(ref), len(pred), tp / len(ref) if ref else float("nan"),
                     tp / len(pred) if pred else float("nan"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--every", type=int, nargs="+", default=[0, 4], help="remove every k-th frame (0: none)")
    parser.add_argument("--keep", type=int, nargs="*", default=[], help="keep only every s-th frame")
    parser.add_argument("--without-mask-flow", action="store_true", help="also link without the mask flow")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    flows = [True, False] if args.without_mask_flow else [True]
    for name, (movie, gt) in MOVIES.items():
        folder = args.data / "ctc" / movie / gt / "TRA"
        labels = load_in_memory(open_labels(folder))
        tracks = read_ctc_tracks(folder / "man_track.txt")
        settings = [(f"every {every}th" if every else "none",
                     [t for t in labels.frame_indices if every == 0 or t % every != every - 1]) for every in args.every]
        settings += [(f"only every {step}{ {2: 'nd', 3: 'rd'}.get(step, 'th')} frame kept",
                      [t for t in labels.frame_indices if t % step == 0])
                     for step in args.keep]
        for removed, kept in settings:
            for on in flows:
                lineage, _ = link_labels(select_frames(labels, kept), progress=False, mask_flow=on)
                for kind, (n_ref, n_pred, recall, precision) in score(reference_links(tracks, kept),
                                                                      set(lineage.graph.edges)).items():
                    if n_ref == 0:
                        continue
                    rows.append({"movie": name, "frames removed": removed, "mask flow": "on" if on else "off",
                                 "links": kind, "reference": n_ref, "predicted": n_pred,
                                 "recall": f"{recall:.3f}", "precision": f"{precision:.3f}"})
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
