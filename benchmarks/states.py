"""Benchmark of the state classifiers: every model on the same samples, split and seed.

Thin wrapper of ``dynacell benchmark states`` (see :func:`dynacell.train.benchmark.benchmark_states`):
trains the seed's baselines (cnn-only, 3ncnn, 4ncnn, ConvLSTM) and dcnet with the config's
data, split, seed and optimisation, then writes ``results.csv``, ``results.md``,
``confusion.png``, ``reliability.png`` and ``f1_per_class.png`` to ``--out``. With
``--ablation`` it runs dcnet with each component switched off instead.

Usage::

    python benchmarks/build_state_sets.py --out /tmp/dynacell_state_sets
    python benchmarks/states.py configs/nuclei-2d.yaml --out /tmp/bench-2d [--ablation] [--models 4ncnn,dcnet]
"""

from __future__ import annotations

import sys


def main() -> None:
    """Run ``dynacell benchmark states`` with this script's arguments."""
    from dynacell.cli.main import main as cli

    sys.argv = ["dynacell", "benchmark", "states", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
