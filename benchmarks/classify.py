"""Nuclei classified per second, end to end from crops, 2D 32² and 3D 32³ (CPU).

dcnet (dynacell) beside the seed's 4ncnn forward pass, each wrapped in a
:class:`dynacell.states.StateClassifier` (channel selection, batching, temperature,
softmax), plus the shipped ``nuclei-2d`` / ``nuclei-3d`` at their own crop sizes.
Weights do not change the speed; untrained models are timed.

Usage::

    python benchmarks/classify.py [--n 2048] [--threads 2]
"""

from __future__ import annotations

import argparse


def main() -> None:
    """Print the speed table."""
    from dynacell.states.speed import speed_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048, help="crops per timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="torch CPU threads to try")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    import pandas as pd

    table = pd.concat([speed_table(n=args.n, threads=t, batch_size=args.batch_size) for t in args.threads])
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
