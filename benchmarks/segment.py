"""Benchmark of the nucleus segmenters on the held-out side of every dataset, and their speed.

A thin script over :mod:`dynacell.segment.benchmark` (the same as ``dynacell benchmark
segmentation``; see that module for what is measured and how).

Usage::

    python benchmarks/segment.py --models nuclei-seg-2d,/tmp/D/models/seed-unet,/tmp/D/models/seed-attention-unet,classical \
        --out docs/figures/segmentation

Prints markdown tables; writes ``segment_benchmark.csv``, ``segment_live_dead.csv``,
``segment_speed.csv`` and example overlays to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from dynacell.segment.benchmark import DATASETS, run_benchmark


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="nuclei-seg-2d,classical")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--diameter-from-card", action="store_true",
                   help="give the models the training-side nucleus diameter from their card")
    p.add_argument("--suffix", default="", help="suffix of the CSV names (runs split over processes)")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run_benchmark(a.models.split(","), a.datasets.split(","), a.out, threads=a.threads, with_speed=not a.no_speed,
                  diameter_from_card=a.diameter_from_card, suffix=a.suffix)


if __name__ == "__main__":
    main()
