"""The report's figures are drawn with fixed title positions and a fast PNG zlib level: the same pixels as
matplotlib's automatic title placement at PIL's default level (speed pass of issue 11)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
from PIL import Image

from dynacell.lineage.graph import Lineage
from dynacell.viz import plots, report


def _run_tables():
    lin = Lineage(n_frames=9)
    for t in range(4):
        lin.add_node((t, 1), centroid=(0, 1, 1))
    for t in range(4, 9):
        lin.add_node((t, 2), centroid=(0, 1, 1))
        lin.add_node((t, 3), centroid=(0, 3, 3))
    for t in range(3):
        lin.add_edge((t, 1), (t + 1, 1))
    lin.add_edge((3, 1), (4, 2))
    lin.add_edge((3, 1), (4, 3))
    for t in range(4, 8):
        lin.add_edge((t, 2), (t + 1, 2))
        lin.add_edge((t, 3), (t + 1, 3))
    rows = [(t, 1, 1, "mitotic" if t == 3 else "stable") for t in range(4)]
    rows += [(t, k, k, "new_daughter" if t == 4 else "stable") for t in range(4, 9) for k in (2, 3)]
    states = pd.DataFrame(rows, columns=["t", "label", "track_id", "state"])
    states["area_um2"] = 50.0 + 123_456.0 * np.arange(len(states))  # large values: an offset text on the y axis
    return lin, states


def _figures(tmp_path, monkeypatch, title_y, level) -> list[np.ndarray]:
    monkeypatch.setattr(plots, "_TITLE_Y", title_y)
    monkeypatch.setattr(plots, "_PNG_COMPRESS_LEVEL", level)
    pngs: list[str] = []

    def keep(fig, dpi=100):
        pngs.append(plots.figure_to_base64(fig, dpi))
        return pngs[-1]

    monkeypatch.setattr(report, "figure_to_base64", keep)
    lin, states = _run_tables()
    ev = {"matched": "21 matched", "metrics": pd.DataFrame([{"states": "after", "macro_F1": 0.5}]),
          "confusion": np.eye(3, dtype=int), "classes": ["stable", "mitotic", "new_daughter"],
          "tracking": {"TRA": 0.9}}
    report.write_report(tmp_path / "report.html", states=states, lineage=lin, parameters={"model": "m"},
                        timings_s={"classify": 1.0}, evaluation=ev)
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(p)))) for p in pngs]


def test_fixed_titles_and_fast_png_give_the_same_pixels(tmp_path, monkeypatch):
    title_y, level = plots._TITLE_Y, plots._PNG_COMPRESS_LEVEL
    assert title_y is not None and level < 6
    auto = _figures(tmp_path, monkeypatch, None, 6)  # matplotlib places the titles; PIL's default level
    fast = _figures(tmp_path, monkeypatch, title_y, level)
    assert len(auto) == len(fast) >= 5
    for a, b in zip(auto, fast):
        assert a.shape == b.shape and np.array_equal(a, b)
