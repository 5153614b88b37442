"""Nuclei classified per second, end to end from crops, 2D 32² and 3D 32³ (CPU).

dcnet (dynacell) beside the seed's 4ncnn forward pass, each wrapped in a
:class:`dynacell.states.StateClassifier` (channel selection, batching, temperature,
softmax), plus the shipped ``nuclei-2d`` / ``nuclei-3d`` at their own crop sizes.
Weights do not change the speed; untrained models are timed.

With ``--graph`` it times each shipped model's CPU inference copy as the eager network (BatchNorm folded,
channels-last) and as PyTorch's optimised TorchScript graph (:func:`dynacell.models.runtime.inference_graph`),
alternately in one process, with the graph's one-off preparation CPU-s and the largest probability difference
(:func:`graph_table`).

With ``--crops`` it also times the other half of the classify step on the real movies of
../shared/data: reading the frames and cutting the crops of every nucleus as ``dynacell run`` does
(:func:`dynacell.states.speed.crop_speed`, shipped models' crop parameters, no model run), in nuclei
per CPU-second of this process.

Usage::

    python benchmarks/classify.py [--n 2048] [--threads 2] [--crops] [--skip-models] [--graph [--rounds 6]]
"""

from __future__ import annotations

import argparse
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

#: (name, images, labels, voxel size µm or None) of the real movies of benchmarks/run.py
CROP_CASES = (
    ("HeLa 02 ERR_SEG", "ctc/Fluo-N2DL-HeLa/02", "ctc/Fluo-N2DL-HeLa/02_ERR_SEG", (0.645, 0.645)),
    ("bacteria-phc 01 TRA", "ctc/bacteria-phc/01", "ctc/bacteria-phc/01_GT/TRA", None),
    ("GOWT1 01 TRA", "ctc/Fluo-N2DH-GOWT1/01", "ctc/Fluo-N2DH-GOWT1/01_GT/TRA", None),
    ("CHO 02 3D ERR_SEG", "ctc/Fluo-N3DH-CHO/02", "ctc/Fluo-N3DH-CHO/02_ERR_SEG", (1.0, 0.202, 0.202)),
    ("mouse-8cell 3D", "embryo3d/mouse-8cell/images", "embryo3d/mouse-8cell/labels", None),
)


def crop_table(repeats: int = 2):
    """Reading + cropping speed on each real movie (labels held in memory, as in ``dynacell run``)."""
    import pandas as pd

    from dynacell.io import open_movie
    from dynacell.io.movie import load_in_memory
    from dynacell.states import load_model
    from dynacell.states.speed import crop_speed

    rows = []
    for name, img, lab, vs in CROP_CASES:
        if not (DATA / img).is_dir():
            continue
        images = open_movie(DATA / img, voxel_size_um=vs)
        labels = load_in_memory(open_movie(DATA / lab))
        model = load_model(f"nuclei-{images.ndim_spatial}d")
        rows.append({"movie": name, **crop_speed(images, labels, model, repeats=repeats)})
    return pd.DataFrame(rows)


def graph_table(names: list[str] | None = None, n: int = 2052, rounds: int = 6, seed: int = 0):
    """Eager inference copy against the TorchScript graph of each shipped model, alternately, ``rounds`` each.

    Both run ``n`` random crops through :func:`dynacell.models.runtime.forward_batched` in the passes
    :class:`~dynacell.states.StateClassifier` makes (``max_forward_crops``). Returns one row per model and
    variant: median crops per CPU-second and per wall second of this process, the CPU-s of making the graph
    (the first time in this process: tracing, freezing, optimising, checking), the rounds in which the graph
    took less CPU than the eager copy, and the largest difference of the calibrated probabilities.
    """
    import copy
    import time

    import numpy as np
    import pandas as pd
    import torch

    from dynacell.models import runtime
    from dynacell.states import available_models, load_model

    rows = []
    for name in names or available_models():
        clf = load_model(name)
        eager = runtime.fuse_conv_bn(copy.deepcopy(clf.model).eval())
        eager = eager.to(memory_format=torch.channels_last if clf.ndim == 2 else torch.channels_last_3d)
        runtime._GRAPHS.clear()
        c0 = time.process_time()
        graph = runtime.inference_graph(eager, (len(clf.channels), *clf.crop_size))
        prep = time.process_time() - c0
        x = np.random.default_rng(seed).random((n, len(clf.card.channels), *clf.crop_size), dtype=np.float32)
        x[:, 3] = x[:, 3] > 0.5

        def probs(net):
            z = runtime.forward_batched(net, x, batch_size=clf.max_forward_crops, channels=clf.channels)
            return runtime.softmax(z, clf.temperature)

        dp = float(np.abs(probs(graph) - probs(eager)).max())
        times = {"eager": [], "graph": []}
        for r in range(rounds):
            for k in (("eager", "graph") if r % 2 == 0 else ("graph", "eager")):
                c, w = time.process_time(), time.perf_counter()
                probs(eager if k == "eager" else graph)
                times[k].append((time.process_time() - c, time.perf_counter() - w))
        e, g = np.array(times["eager"]), np.array(times["graph"])
        for k, t in (("eager", e), ("graph", g)):
            rows.append({"model": name, "inference": k if graph is not eager or k == "eager" else "graph (not made)",
                         "crops_per_cpu_s": n / np.median(t[:, 0]), "crops_per_s": n / np.median(t[:, 1]),
                         "prep_cpu_s": prep if k == "graph" else 0.0,
                         "graph_lower_cpu": f"{int((g[:, 0] < e[:, 0]).sum())} of {rounds}" if k == "graph" else "",
                         "max_dp": dp if k == "graph" else 0.0})
    return pd.DataFrame(rows)


def main() -> None:
    """Print the speed table."""
    from dynacell.states.speed import speed_table

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048, help="crops per timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="torch CPU threads to try")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--crops", action="store_true", help="also time reading + cropping on the real movies")
    ap.add_argument("--skip-models", action="store_true", help="no model timing (with --crops)")
    ap.add_argument("--graph", action="store_true", help="eager inference copy vs TorchScript graph, shipped models")
    ap.add_argument("--rounds", type=int, default=6, help="alternating rounds of --graph")
    args = ap.parse_args()
    import pandas as pd

    if not args.skip_models:
        table = pd.concat([speed_table(n=args.n, threads=t, batch_size=args.batch_size) for t in args.threads])
        print(table.to_string(index=False))
    if args.graph:
        import torch

        torch.set_num_threads(min(args.threads))
        print(f"\nEager inference copy vs TorchScript graph ({min(args.threads)} threads, {args.rounds} alternating "
              "rounds, medians; prep = CPU-s to make the graph once):")
        print(graph_table(n=args.n, rounds=args.rounds).to_string(index=False))
    if args.crops:
        import torch

        torch.set_num_threads(min(args.threads))
        print("\nReading + cropping alone (the classify step without the model), best of 2 passes:")
        print(crop_table().to_string(index=False))


if __name__ == "__main__":
    main()
