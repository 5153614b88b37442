"""Speed of dynacell.simulate.render_lineage: frames per second in 2D and 3D.

Cases:
- 2D: 512×512 frames, 100 nuclei (radius 4 µm, 0.5 µm pixels) on a random walk;
- 3D: 64×256×256 frames, 50 nuclei (radius 4 µm, voxels 2.0×0.5×0.5 µm);
- WormGUIDES (when ../shared/data is present): 100 frames (200–299, 350–580 nuclei) of the
  real C. elegans lineage at 1.0×0.5×0.5 µm voxels and scale 0.5, including the one-off
  cost of event labels on the 106k-node lineage (reading the lineage is not timed).

Run: ``python benchmarks/simulate.py [--frames 10] [--seed 0] [--no-worm]``. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from dynacell.lineage import Lineage
from dynacell.simulate import ImagingParams, render_lineage

WORM = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lineages" / "wormguides-celegans"


def random_walk_lineage(n_nuclei: int, n_frames: int, shape: tuple[int, ...], seed: int) -> Lineage:
    """``n_nuclei`` tracks on a random walk (1 px per frame) inside ``shape`` (pixels)."""
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    lin = Lineage(n_frames=n_frames, ndim=ndim, source="benchmark")
    margin = np.array([2 if ndim == 3 and i == 0 else 10 for i in range(ndim)])
    pos = rng.uniform(margin, np.asarray(shape) - margin, size=(n_nuclei, ndim))
    for t in range(n_frames):
        for i in range(n_nuclei):
            lin.add_node((t, i + 1), pos[i])
            if t:
                lin.add_edge((t - 1, i + 1), (t, i + 1))
        pos = np.clip(pos + rng.normal(0, 1.0, pos.shape), margin, np.asarray(shape) - margin)
    return lin


def time_render(lin: Lineage, **kw) -> tuple[float, float, tuple[int, ...]]:
    """Wall-clock and CPU seconds (this process) of one ``render_lineage`` call, and the movie shape."""
    start, cpu = time.perf_counter(), time.process_time()
    res = render_lineage(lin, progress=False, **kw)
    return time.perf_counter() - start, time.process_time() - cpu, res.images.shape


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10, help="frames per synthetic case")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-worm", action="store_true", help="skip the WormGUIDES case")
    args = ap.parse_args()

    rows = []
    lin2 = random_walk_lineage(100, args.frames, (512, 512), args.seed)
    dt, cpu, shp = time_render(lin2, shape=(512, 512), imaging=ImagingParams(voxel_size_um=(0.5, 0.5)), seed=args.seed)
    rows.append(("2D, 100 nuclei", shp, dt, cpu))
    lin3 = random_walk_lineage(50, args.frames, (64, 256, 256), args.seed)
    dt, cpu, shp = time_render(lin3, shape=(64, 256, 256), imaging=ImagingParams(voxel_size_um=(2.0, 0.5, 0.5)),
                          seed=args.seed)
    rows.append(("3D, 50 nuclei", shp, dt, cpu))
    if not args.no_worm and WORM.exists():
        from dynacell.lineage import read_lineage

        worm = read_lineage(WORM)
        for scale in (0.5, 1.0):
            dt, cpu, shp = time_render(worm, frames=range(200, 300), scale=scale,
                                  imaging=ImagingParams(voxel_size_um=(1.0, 0.5, 0.5)), seed=args.seed)
            rows.append((f"WormGUIDES 200-299, scale {scale}", shp, dt, cpu))

    table = Table(title="dynacell.simulate.render_lineage speed (includes event labels and noise)")
    for col in ("case", "movie shape (T, [Z,] Y, X)", "wall s", "wall s / frame", "frames / s", "CPU s / frame"):
        table.add_column(col)
    for name, shp, dt, cpu in rows:
        table.add_row(name, str(tuple(shp)), f"{dt:.2f}", f"{dt / shp[0]:.3f}", f"{shp[0] / dt:.2f}",
                      f"{cpu / shp[0]:.3f}")
    Console().print(table)
    Console().print(f"CPU s = time.process_time() of this process; load average now {os.getloadavg()[0]:.1f} "
                    f"on {os.cpu_count()} cores (wall time grows when other jobs share them).")


if __name__ == "__main__":
    main()
