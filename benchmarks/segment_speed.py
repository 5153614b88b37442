"""Seconds per frame of the shipped segmenters (speed table of docs/segmentation.md, "Speed").

A thin script over :func:`dynacell.segment.benchmark.speed`: the first test frame of GOWT1
(1024×1024, nuclei ≈ 60 px), the same frame given a 24-px nucleus size (the network then runs on
all 1024² pixels: the worst case of a 1024² frame) and HeLa 02 (700×1100, nuclei ≈ 25 px) with
``nuclei-seg-2d`` at each number of test-time flips; the mouse 8-cell volume (71×180×247) with
``nuclei-seg-3d`` (its card's flips); the classical segmenter beside. Labels only, nucleus size
estimated beforehand (once per movie, as ``dynacell segment`` does), best of ``--repeats``;
CPU seconds (``time.process_time``) are the figure to compare on a shared machine.

``--rounds N`` (A/B comparison): every 2D model is timed in turn, N rounds (model A, model B,
model A, model B, ...), so that a change of machine load hits both alike; the ``round`` column
tells them apart.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/segment_speed.py --threads 1 --flips 1,4 \\
        --out docs/figures/segmentation/segment_speed_inference.csv
    OMP_NUM_THREADS=1 python benchmarks/segment_speed.py --threads 1 --flips 1,2,4 --rounds 2 \\
        --models-2d nuclei-seg-2d,nuclei-seg-2d-fast --datasets-2d gowt1 --models-3d "" --repeats 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    import torch

    from dynacell.segment.benchmark import load_models, markdown, speed

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models-2d", default="nuclei-seg-2d,classical", help="timed on the 2D frames")
    p.add_argument("--models-3d", default="nuclei-seg-3d,classical", help="timed on the 3D volume (card's flips)")
    p.add_argument("--datasets-2d", default="gowt1,hela02")
    p.add_argument("--datasets-3d", default="mouse8")
    p.add_argument("--worst-case-diameter-px", type=float, default=24.0,
                   help="also time the GOWT1 frame given this nucleus size (0: skip)")
    p.add_argument("--flips", default="1,4", help="test-time flips of the learned models, comma-separated")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=0,
                   help="A/B: time the 2D models in turn, this many rounds (0: each model once, all frames)")
    p.add_argument("--out", type=Path, default=None, help="CSV path")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    flips = tuple(int(f) for f in a.flips.split(","))
    m2 = load_models(a.models_2d.split(","))
    m3 = load_models(a.models_3d.split(",")) if a.models_3d.strip() else []
    tables = []
    for r in range(max(1, a.rounds)):
        for group in ([[m] for m in m2] if a.rounds else [m2]):
            part = [speed(group, a.threads, datasets=a.datasets_2d.split(","), repeats=a.repeats, flips=flips)]
            learned = [m for m in group if not isinstance(m, str)]  # classical does not use the nucleus size
            if a.worst_case_diameter_px > 0 and learned:
                part.append(speed(learned, a.threads, datasets=["gowt1"], repeats=a.repeats, flips=flips,
                                  diameter_px={"gowt1": a.worst_case_diameter_px}))
            tables.extend(t.assign(round=r + 1) for t in part)
    if m3:
        tables.append(speed(m3, a.threads, datasets=a.datasets_3d.split(","), repeats=a.repeats))
    table = pd.concat(tables, ignore_index=True)
    print(markdown(table, 2))
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
