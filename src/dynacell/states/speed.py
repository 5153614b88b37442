"""Classification speed: nuclei per second from crops (dcnet beside the seed's 4ncnn), and of reading and
cropping a movie as the classify step does (the model left out); the allocator setting of the classify step."""

from __future__ import annotations

import os
import sys
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

__all__ = ["crop_speed", "reuse_freed_memory", "speed_table", "MALLOC_TUNE_ENV"]

#: Environment variable that, set to ``0``, leaves the C allocator as it is (:func:`reuse_freed_memory`).
MALLOC_TUNE_ENV: str = "DYNACELL_MALLOC_TUNE"

#: ``mallopt`` parameter numbers of glibc (``malloc.h``).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

_tuned: bool = False


def reuse_freed_memory(mmap_threshold_bytes: int = 32 << 20, trim_threshold_bytes: int = 256 << 20) -> bool:
    """Let the C allocator (glibc) reuse freed memory instead of mapping fresh pages for every large array.

    The classify step makes arrays of a few MB per frame (image frames, crops, the state model's feature
    maps: 16 MB for 18 crops of 24³ in the first layer of the 24³ ``nuclei-3d`` of 30 Nov) and frees them
    at once. By default glibc serves blocks above a (dynamic) threshold from fresh ``mmap`` pages and returns
    a freed heap top above
    another threshold to the system, so many of them fault in new, zeroed pages each time. This sets
    both thresholds once for the process (``mallopt``: ``M_MMAP_THRESHOLD``, ``M_TRIM_THRESHOLD``; the
    same as the environment variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``), so that
    blocks up to ``mmap_threshold_bytes`` come from the heap and up to ``trim_threshold_bytes`` of freed
    heap top stay mapped for the next frame. Measured on CHO 02 + 02_ERR_SEG (195 nuclei, first
    ``classify_movie`` of a ``dynacell run``, one thread): 24,600–72,800 minor page faults → 18,600–19,000,
    1.17–1.24 → 0.95–1.14 CPU-s. Nothing changes in the results.

    Parameters
    ----------
    mmap_threshold_bytes : int
        Blocks at least this large still get their own mapping (default 32 MiB, glibc's largest dynamic
        value on 64-bit systems).
    trim_threshold_bytes : int
        Freed memory at the top of the heap kept for reuse (default 256 MiB; the process's resident memory
        may stay up to this much above what it uses).

    Returns
    -------
    bool
        True when the setting is in force (set now or by an earlier call); False where it does not apply
        (not Linux/glibc, ``mallopt`` refused a value) or when the environment variable
        :data:`MALLOC_TUNE_ENV` is ``0``.
    """
    global _tuned
    if _tuned:
        return True
    if os.environ.get(MALLOC_TUNE_ENV, "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")  # glibc; other C libraries (musl) have no mallopt of these parameters
        ok = (libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_bytes)) == 1
              and libc.mallopt(_M_TRIM_THRESHOLD, int(trim_threshold_bytes)) == 1)
    except (OSError, AttributeError):
        return False
    _tuned = bool(ok)
    return _tuned


def speed_table(n: int = 2048, threads: int = 2, batch_size: int = 256, repeats: int = 3,
                sizes: dict[int, int] | None = None, seed: int = 0) -> pd.DataFrame:
    """Measure nuclei classified per second end to end from crops (``predict_proba``).

    Each model is wrapped in a :class:`~dynacell.states.StateClassifier` (channel selection,
    batching, temperature, softmax) and run on ``n`` random crops ``(n, 4 or 6, *size)``; the best of
    ``repeats`` timings is kept (after one warm-up batch). The default models
    (:func:`dynacell.states.registry.default_model`) are measured too when present, at their own crop size
    (last rows).

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
    from dynacell.states.registry import StateClassifier, available_models, default_model, load_model

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
        shipped = default_model(ndim)
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


def crop_speed(images, labels, model, *, frames=None, repeats: int = 1) -> dict:
    """Nuclei per CPU-second of reading and cropping a movie exactly as the classify step does, without the model.

    The crops are cut by :func:`dynacell.samples.crops.iter_frame_crops` with the crop size, nucleus-size
    rule, voxel size and context channels that :func:`dynacell.states.classify.classify_movie` derives
    from ``model`` (no lineage: boxes at each nucleus's position at ``t``, the 2D default).

    Parameters
    ----------
    images, labels : dynacell.io.Movie
        The movie ``(T, (Z), Y, X)`` and its label images (read frame by frame, as in the run).
    model : StateClassifier
        Gives the crop parameters (:func:`dynacell.states.classify.crop_parameters`); it is not run.
    frames : sequence of int, optional
        Frames to crop (default every frame with labels).
    repeats : int
        Passes over the frames; the fastest is kept.

    Returns
    -------
    dict
        ``nuclei`` (crops per pass), ``frames``, ``cpu_s`` (CPU-seconds of this process for the best
        pass, all threads: the comparable figure on a shared machine), ``nuclei_per_cpu_s``, ``crop``
        (shape of one crop, channels first).
    """
    from dynacell.samples.crops import iter_frame_crops
    from dynacell.states.classify import crop_kwargs_for_movie, crop_parameters

    crop = crop_parameters(model, images.ndim_spatial)
    kw = crop_kwargs_for_movie(crop, images, labels)
    todo = [int(t) for t in (frames if frames is not None else images.frame_indices) if labels.has_frame(int(t))]
    best, n, shape = np.inf, 0, None
    for _ in range(max(1, int(repeats))):
        c0, n = time.process_time(), 0
        for fc in iter_frame_crops(images, labels, todo, size=crop["size"], voxel_size_um=kw["voxel_size_um"],
                                   target_voxel_um=kw["target_voxel_um"], context=getattr(model, "context", False)):
            n += len(fc.label_ids)
            shape = fc.x.shape[1:] if len(fc.x) else shape
        best = min(best, time.process_time() - c0)
    return {"nuclei": n, "frames": len(todo), "cpu_s": round(best, 3),
            "nuclei_per_cpu_s": round(n / best, 1) if best > 0 else None,
            "crop": "×".join(map(str, shape)) if shape is not None else "-"}
