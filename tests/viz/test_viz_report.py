"""Tests of :mod:`dynacell.viz`: overlays coloured by state, the video, figures and the HTML report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage
from dynacell.viz.overlay import (
    STATE_COLORS,
    max_projection,
    overlay_frame,
    project_labels,
    write_overlay_video,
)
from dynacell.viz.plots import lineage_layout, plot_confusion_matrix, plot_lineage_tree
from dynacell.viz.report import write_report


def _two_nuclei(shape=(40, 60)):
    labels = np.zeros(shape, np.int32)
    labels[5:15, 5:15] = 3
    labels[20:35, 30:50] = 8
    image = (labels > 0).astype(np.float32) * 100
    return image, labels


def test_overlay_outlines_coloured_by_state():
    image, labels = _two_nuclei()
    rgb = overlay_frame(image, labels, {3: "mitotic", 8: "death"})
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[5, 10]) == STATE_COLORS["mitotic"]  # top edge of nucleus 3
    assert tuple(rgb[20, 40]) == STATE_COLORS["death"]
    assert tuple(rgb[10, 10]) == (255, 255, 255)  # inside: grey image, not an outline
    unknown = overlay_frame(image, labels, {}, scale=2)
    assert unknown.shape == (80, 120, 3) and tuple(unknown[10, 20]) == STATE_COLORS["unknown"]
    with pytest.raises(InvalidInputError):
        overlay_frame(image, labels[:10], {})


def test_projections_3d():
    vol = np.zeros((4, 10, 10), np.uint16)
    lab = np.zeros((4, 10, 10), np.int32)
    vol[1, 2:5, 2:5] = 50
    lab[1, 2:5, 2:5] = 2
    vol[3, 2:5, 2:5] = 90  # a brighter nucleus behind nucleus 2
    lab[3, 2:5, 2:5] = 5
    assert max_projection(vol).max() == 90 and max_projection(vol).shape == (10, 10)
    assert project_labels(lab, vol)[3, 3] == 5  # the label of the brightest plane
    assert project_labels(lab)[3, 3] == 2  # first along Z without intensities


def test_overlay_video_has_one_frame_per_time_point(tmp_path):
    import imageio.v3 as iio

    image, labels = _two_nuclei()
    images = Movie(np.stack([image] * 3), "TYX", source="x")
    labs = Movie(np.stack([labels] * 3), "TYX", source="y")
    states = pd.DataFrame({"t": [0, 0, 1, 1, 2, 2], "label": [3, 8] * 3, "state": ["stable", "mitotic"] * 3})
    path = write_overlay_video(tmp_path / "overlay.mp4", images, labs, states, progress=False, min_width=100)
    props = iio.improps(path, plugin="pyav")
    assert props.n_images == 3
    frame = iio.imread(path, index=1, plugin="pyav")
    assert frame.shape[1] == 120  # upscaled x2 to reach min_width
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def _lineage():
    """(0,1) ─ (1,1) ─┬─ (2,2) ─ (3,2)
                      └─ (2,3)"""
    lin = Lineage(n_frames=4)
    for n in [(0, 1), (1, 1), (2, 2), (2, 3), (3, 2)]:
        lin.add_node(n, centroid=(0, 1, 1))
    for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 3)), ((2, 2), (3, 2))]:
        lin.add_edge(*e)
    return lin


def test_lineage_layout_mother_between_daughters():
    lin = _lineage()
    y = lineage_layout(lin)
    tid = {n: d["track_id"] for n, d in lin.graph.nodes(data=True)}
    assert y[tid[(0, 1)]] == pytest.approx((y[tid[(2, 2)]] + y[tid[(2, 3)]]) / 2)
    fig = plot_lineage_tree(lin, {(1, 1): "mitotic"})
    assert "1 divisions" in fig.axes[0].get_title()


def test_confusion_matrix_counts_drawn():
    fig = plot_confusion_matrix(np.array([[5, 1], [0, 2]]), ["stable", "mitotic"])
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["0", "1", "2", "5"]


def test_report_sections(tmp_path):
    lin = _lineage()
    states = pd.DataFrame({"t": [0, 1, 2, 2, 3], "label": [1, 1, 2, 3, 2], "track_id": [1, 1, 2, 3, 2],
                           "state": ["stable", "mitotic", "new_daughter", "new_daughter", "death"]})
    ev = {"matched": "5 matched", "metrics": pd.DataFrame([{"states": "after", "macro_F1": 0.5}]),
          "confusion": np.eye(4, dtype=int), "classes": ["stable", "mitotic", "new_daughter", "death"],
          "tracking": {"TRA": 0.9}}
    path = write_report(tmp_path / "report.html", states=states, lineage=lin, parameters={"model": "m"},
                        timings_s={"classify": 1.5}, reconciliation={"rule": "R", "changes": pd.DataFrame()},
                        evaluation=ev, notes=["classical <segmenter>"])
    html = path.read_text()
    for section in ("State counts over time", "Event timeline", "Lineage tree", "Comparison with ground truth",
                    "Tracking measures", "Run parameters", "Timings"):
        assert section in html
    assert html.count("data:image/png;base64,") == 5  # + the lineage-statistics figure
    assert "classical &lt;segmenter&gt;" in html  # escaped
    assert "<td>death calls</td>" not in html and "death calls" in html


def test_report_with_ground_truth_but_no_state_measures(tmp_path):
    """A comparison that scored no nucleus (empty metrics table, no confusion) still writes the report.

    Found on bacteria-phc 01 without labels with ``--gt``: the template read a key the evaluation lacked.
    """
    states = pd.DataFrame({"t": [0, 1], "label": [1, 1], "track_id": [1, 1], "state": ["stable", "stable"]})
    ev = {"matched": "0 predicted nuclei matched a reference nucleus", "metrics": pd.DataFrame(),
          "tracking": {"TRA": 0.5}}
    html = write_report(tmp_path / "report.html", states=states, lineage=_lineage(), parameters={"model": "m"},
                        timings_s={"classify": 1.0}, evaluation=ev).read_text()
    assert "Comparison with ground truth" in html and "Tracking measures" in html and "State measures" not in html
