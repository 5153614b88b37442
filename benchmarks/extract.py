"""Crop-extraction throughput and peak memory on the shared real data.

Usage::

    python benchmarks/extract.py [--data ../shared/data] [--size 32]

For each dataset, a fresh subprocess streams :func:`dynacell.samples.iter_frame_crops` over
the first N and the first 2N frames (every nucleus of every frame, crops discarded as an
inference loop would) and reports samples per second and the peak resident memory
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) above the memory after imports and opening
the movie and a warm-up read of one label frame. Streaming keeps three frames in memory, so the peak must not grow with the frames.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    # name: (images, labels, N, ndim)
    "bacteria-phc 01 (2D)": ("ctc/bacteria-phc/01", "ctc/bacteria-phc/01_GT/TRA", 20),
    "HeLa 02 (2D, sparse TRA)": ("ctc/Fluo-N2DL-HeLa/02", "ctc/Fluo-N2DL-HeLa/02_ERR_SEG", 10),
    "mouse-8cell (3D)": ("embryo3d/mouse-8cell/images", "embryo3d/mouse-8cell/labels", 5),
    "CHO 02 (3D, ERR_SEG)": ("ctc/Fluo-N3DH-CHO/02", "ctc/Fluo-N3DH-CHO/02_ERR_SEG", 10),
}


def _child(images: str, labels: str, n_frames: int, size: int) -> dict:
    """Run in the subprocess: stream crops over the first ``n_frames`` frames."""
    import resource

    import numpy as np

    from dynacell.io import open_labels, open_movie
    from dynacell.samples import iter_frame_crops

    mov = open_movie(images)
    lab = open_labels(labels)
    frames = [t for t in mov.frame_indices if lab.has_frame(t)][:n_frames]
    lab.frame(frames[0])  # warm-up: first dask compute imports its scheduler modules (~0.7 s)
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    n, checksum = 0, 0.0
    for fc in iter_frame_crops(mov, lab, frames, size=size):
        n += len(fc.label_ids)
        checksum += float(np.sum(fc.x[:, 3]))
    dt = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"frames": len(frames), "samples": n, "seconds": dt, "base_mb": base_kb / 1024,
            "peak_mb": peak_kb / 1024, "frame_shape": list(mov.frame_shape), "mask_voxels": checksum}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2, help="BLAS/OMP threads in the subprocess")
    ap.add_argument("--child", nargs=3, metavar=("IMAGES", "LABELS", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], int(args.child[2]), args.size)))
        return
    data = Path(args.data)
    if not data.exists():
        sys.exit(f"shared data not found at {data}; pass --data")
    import os

    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads))
    header = f"{'dataset':26s} {'frame shape':>16s} {'frames':>6s} {'samples':>7s} {'s':>6s} {'samples/s':>9s} " \
             f"{'base MB':>8s} {'peak MB':>8s} {'peak-base':>9s}"
    print(f"crop size {args.size} px per axis; fresh subprocess per row; peak = ru_maxrss")
    print(header)
    print("-" * len(header))
    for name, (img, lab, n) in CASES.items():
        for k in (n, 2 * n):
            cmd = [sys.executable, __file__, "--size", str(args.size), "--child", str(data / img), str(data / lab), str(k)]
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            shape = "x".join(map(str, r["frame_shape"]))
            print(f"{name:26s} {shape:>16s} {r['frames']:6d} {r['samples']:7d} {r['seconds']:6.2f} "
                  f"{r['samples'] / r['seconds']:9.0f} {r['base_mb']:8.0f} {r['peak_mb']:8.0f} "
                  f"{r['peak_mb'] - r['base_mb']:9.0f}")


if __name__ == "__main__":
    main()
