"""benchmarks/track_field.py: the ground truth of a window over a CTC movie follows the CTC conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from _helpers import load_benchmark


def _load():
    return load_benchmark("track_field")


def _write_gt(folder: Path, frames: list[np.ndarray], table: list[tuple[int, int, int, int]]) -> None:
    (folder / "TRA").mkdir(parents=True)
    for t, m in enumerate(frames):
        tifffile.imwrite(folder / "TRA" / f"man_track{t:03d}.tif", m.astype(np.uint16))
    pd.DataFrame(table).to_csv(folder / "TRA" / "man_track.txt", sep=" ", header=False, index=False)


def test_window_splits_reentries_and_keeps_visible_mothers(tmp_path):
    bench = _load()
    frames = [np.zeros((10, 10), np.uint16) for _ in range(4)]
    frames[0][1:3, 1:3] = 1            # cell 1 inside the window (rows/cols < 5) at t 0, outside at t 1, back at t 2
    frames[1][7:9, 7:9] = 1
    frames[2][1:3, 1:3] = 1
    frames[3][1:3, 1:3] = 1
    frames[0][3:5, 3:5] = 2            # cell 2 divides after t 1 into 3 (inside) and 4 (outside)
    frames[1][3:5, 3:5] = 2
    frames[2][0:2, 3:5] = 3
    frames[3][0:2, 3:5] = 3
    frames[2][8:10, 8:10] = 4
    frames[3][8:10, 8:10] = 4
    _write_gt(tmp_path / "GT", frames, [(1, 0, 3, 0), (2, 0, 1, 0), (3, 2, 3, 2), (4, 2, 3, 2)])
    info = bench.window_ground_truth(tmp_path / "GT", tmp_path / "W", 0.5, drifting=False)
    tab = pd.read_csv(tmp_path / "W" / "TRA" / "man_track.txt", sep=" ", header=None, names=["l", "b", "e", "p"])
    rows = {tuple(r) for r in tab.to_numpy().tolist()}
    assert (1, 0, 0, 0) in rows and (2, 0, 1, 0) in rows and (3, 2, 3, 2) in rows
    reentry = [r for r in rows if r[0] not in (1, 2, 3)]
    assert reentry == [(reentry[0][0], 2, 3, 0)]  # cell 1 back in view: a new track without a parent
    m2 = tifffile.imread(tmp_path / "W" / "TRA" / "man_track002.tif")
    assert m2.shape == (5, 5) and set(np.unique(m2)) == {0, 3, reentry[0][0]}
    assert info["divisions"] == 0 and info["tracks"] == 4  # one daughter visible: no division in the window


def test_drifting_window_moves_from_corner_to_corner(tmp_path):
    bench = _load()
    frames = [np.zeros((8, 8), np.uint16) for _ in range(3)]
    frames[0][0, 0] = 1
    frames[1][3:5, 3:5] = 1
    frames[2][7, 7] = 1
    _write_gt(tmp_path / "GT", frames, [(1, 0, 2, 0)])
    info = bench.window_ground_truth(tmp_path / "GT", tmp_path / "W", 0.5, drifting=True)
    assert info["drift_px_per_frame"] == (2.0, 2.0) and info["shape"] == (4, 4)
    for t in range(3):
        assert tifffile.imread(tmp_path / "W" / "TRA" / f"man_track{t:03d}.tif").any()  # the window follows the cell
