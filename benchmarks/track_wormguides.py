"""3D linking at low frame rates: the real C. elegans lineage (WormGUIDES) drawn as label volumes.

Run from the checkout: ``python benchmarks/track_wormguides.py [--data ../shared/data] [--frames 150 270]
[--keep 1 4 8]``.

No 3D movie in ``../shared/data`` has link-level ground truth with many nuclei (the mouse 8-cell embryo has 8). The
WormGUIDES AceTree lineage holds the real 3D positions and diameters of every nucleus of a C. elegans embryo, one
frame a minute (4 → 580 nuclei), with its divisions. This benchmark draws every nucleus of the lineage frames
``--frames`` as a ball of its diameter (the lineage's grid sub-sampled by ``--bin``, ids permuted per frame, seeded),
keeps every ``k``-th frame (``--keep``: 1 = a frame a minute; 4 and 8 = a light-sheet movie at a lower rate, where
nuclei move by much of their spacing between frames), links the label volumes with
:func:`dynacell.track.link_labels` and scores the links against the lineage (links of a cell between two kept
frames, and of a mother to each daughter, :func:`reference_links`). The masks are perfect balls: this measures
linking under real motion and divisions, not segmentation. (The 2D linker's mask flow was tried here in 3D, session
20: every 4 / 8 minutes 0.976 → 0.977 and 0.926 → 0.927 link recall for 6–14 times the linking time; not used in
3D, docs/tracking.md.)

Prints, per setting: reference and predicted links, recall and precision, linking time.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from dynacell.io.movie import Movie
from dynacell.lineage import read_lineage
from dynacell.track import link_labels

from track import DATA  # the tracking benchmark's data folder (same folder)
from track_missing import score  # recall and precision of links (same folder)


def draw_balls(lineage, frames: list[int], bin_px: int, seed: int) -> tuple[np.ndarray, dict]:
    """Label volumes ``(T, Z, Y, X)`` int32 of the lineage's nuclei at ``frames``, and ``{(i, id): node}``.

    Each node ``(t, label)`` with ``z, y, x`` and ``diameter_px`` (lineage pixels) becomes a ball of that diameter
    in the grid sub-sampled by ``bin_px``; overlapping balls: the later node wins. Ids are a per-frame permutation
    (seeded by ``seed`` and the frame), so the linker cannot read the lineage from them.
    """
    nodes = {t: [] for t in frames}
    for node, attrs in lineage.graph.nodes(data=True):
        if node[0] in nodes:
            nodes[node[0]].append((node, np.array([attrs["z"], attrs["y"], attrs["x"]]) / bin_px,
                                   attrs.get("diameter_px", 10.0) / bin_px))
    pos = np.concatenate([[p for _, p, _ in v] for v in nodes.values() if v])
    rad = max(r for v in nodes.values() for _, _, r in v) / 2
    lo = np.floor(pos.min(axis=0) - rad - 2)
    shape = tuple(int(s) for s in np.ceil(pos.max(axis=0) - lo + rad + 3))
    volumes = np.zeros((len(frames), *shape), np.int32)
    ids = {}
    grid = np.indices((int(2 * rad + 3),) * 3).reshape(3, -1).T
    for i, t in enumerate(frames):
        perm = np.random.default_rng([seed, t]).permutation(len(nodes[t])) + 1
        for (node, p, d), lab in zip(nodes[t], perm, strict=True):
            c = p - lo
            corner = np.floor(c - rad - 1).astype(int)
            vox = grid + corner
            inside = np.sum((vox + 0.5 - c) ** 2, axis=1) <= (d / 2) ** 2
            vox = vox[inside]
            ok = np.all((vox >= 0) & (vox < np.array(shape)), axis=1)
            vox = vox[ok]
            volumes[i, vox[:, 0], vox[:, 1], vox[:, 2]] = lab
            ids[(i, int(lab))] = node
    return volumes, ids


def reference_links(lineage, frames: list[int]) -> set:
    """Links ``((t, node label), (t', node label'))`` between consecutive kept ``frames`` along the lineage.

    A node at a kept frame is linked to its descendants at the next kept frame (one, or two and more when it or
    a descendant divided in between); a lineage that ends before the next kept frame gives no link.
    """
    g = lineage.graph
    kept = sorted(frames)
    links = set()
    for a, b in zip(kept, kept[1:], strict=False):
        for node in (n for n in g.nodes if n[0] == a):
            front = [node]
            while front and front[0][0] < b:
                front = [c for n in front for c in g.successors(n)]
            links.update((node, c) for c in front if c[0] == b)
    return links


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--frames", type=int, nargs=2, default=[150, 270], help="first and last lineage frame")
    parser.add_argument("--keep", type=int, nargs="+", default=[1, 4, 8], help="keep every k-th frame")
    parser.add_argument("--bin", type=int, default=2, help="sub-sampling of the lineage's pixel grid")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the AceTree reader's notes on the lineage
        lineage = read_lineage(args.data / "lineages" / "wormguides-celegans")
    rows = []
    for k in args.keep:
        frames = list(range(args.frames[0], args.frames[1] + 1, k))
        volumes, ids = draw_balls(lineage, frames, args.bin, args.seed)
        reference = reference_links(lineage, frames)
        t0 = time.perf_counter()
        lin, _ = link_labels(Movie(volumes, "TZYX"), progress=False)
        link_s = time.perf_counter() - t0
        predicted = {(ids[(a[0], a[1])], ids[(b[0], b[1])]) for a, b in lin.graph.edges}
        n_ref, n_pred, recall, precision = score(reference, predicted)["across a hole" if k > 1 else "consecutive"]
        rows.append({"frames kept": f"every {k} min" if k > 1 else "every minute", "nuclei": len(ids),
                     "reference links": n_ref, "linked": n_pred, "recall": f"{recall:.3f}",
                     "precision": f"{precision:.3f}", "link s": f"{link_s:.1f}"})
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"\nWormGUIDES lineage frames {args.frames[0]}-{args.frames[1]}, grid binned by {args.bin}, ids permuted "
          f"per frame (seed {args.seed}); masks are balls of each nucleus' diameter.")


if __name__ == "__main__":
    main()
