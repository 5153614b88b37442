"""Classification speed: nuclei per second from crops, dcnet beside the seed's 4ncnn."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

__all__ = ["speed_table"]


def speed_table(n: int = 2048, threads: int = 2, batch_size: int = 256, repeats: int = 3,
                sizes: dict[int, int] | None = None, seed: int = 0) -> pd.DataFrame:
    """Measure nuclei classified per second end to end from crops (``predict_proba``).

    Each model is wrapped in a :class:`~dynacell.states.StateClassifier` (channel selection,
    batching, temperature, softmax) and run on ``n`` random crops ``(n, 4 or 6, *size)``; the best of
    ``repeats`` timings is kept (after one warm-up batch). Shipped models (``nuclei-2d``,
    ``nuclei-3d``) are measured too when present, at their own crop size (last rows).

    Parameters
    ----------
    n : int
        Crops per timing.
    threads : int
        ``torch.set_num_threads``.
    batch_size : int
        Crops per forward pass.
    repeats : int
        Timings per model (best kept).
    sizes : dict, optional
        ``{ndim: crop edge px}``; default ``{2: 32, 3: 32}``.
    seed : int
        Seed of the random crops and weights.

    Returns
    -------
    pandas.DataFrame
        ``model, ndim, crop, n_parameters, nuclei_per_s, nuclei_per_cpu_s`` (CPU-seconds of this process, all
        threads: the comparable figure on a shared machine), ``ms_per_batch, threads``.
    """
    import torch

    from dynacell.models import build_model, count_parameters, model_channels
    from dynacell.states.registry import StateClassifier, available_models, load_model

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    sizes = sizes or {2: 32, 3: 32}
    rng = np.random.default_rng(seed)
    rows = []
    for ndim, edge in sizes.items():
        crop = (edge,) * ndim
        x = rng.random((n, 4, *crop), dtype=np.float32)
        clfs = []
        for arch in ("4ncnn", "dcnet"):
            m = build_model(arch, ndim, n_classes=4)
            # the fields of a StateModelCard that StateClassifier reads (an untrained model has no card)
            card = SimpleNamespace(name=f"{arch} (untrained)", architecture=arch, temperature=1.0,
                                   classes=["stable", "mitotic", "new_daughter", "death"], ndim=ndim,
                                   crop_size_px=list(crop), model_channels=list(model_channels(arch)),
                                   target_voxel_um=None)
            clfs.append((arch, StateClassifier(m, card, path=None)))  # type: ignore[arg-type]
        shipped = f"nuclei-{ndim}d"
        if shipped in available_models():
            clfs.append((shipped, load_model(shipped)))
        for name, clf in clfs:
            if tuple(clf.crop_size) != crop or x.shape[1] != clf.n_input_channels:
                x = rng.random((n, clf.n_input_channels, *clf.crop_size), dtype=np.float32)
                crop = tuple(clf.crop_size)
            clf.predict_proba(x[:batch_size], batch_size)
            best, best_cpu = np.inf, np.inf
            for _ in range(repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                clf.predict_proba(x, batch_size)
                best = min(best, time.perf_counter() - t0)
                best_cpu = min(best_cpu, time.process_time() - c0)
            rows.append({"model": name, "ndim": ndim, "crop": "×".join(map(str, crop)),
                         "n_parameters": count_parameters(clf.model), "nuclei_per_s": round(n / best, 1),
                         "nuclei_per_cpu_s": round(n / best_cpu, 1),
                         "ms_per_batch": round(1000 * best / (n / batch_size), 2), "threads": threads})
    return pd.DataFrame(rows)
