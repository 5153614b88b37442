"""The report and the overlay for a biologist: real title, units, explained measures, lineage statistics,
thumbnails, track ids, scale bar, time stamp, 3D outlines at each nucleus's own z-slice."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage
from dynacell.viz.overlay import STATE_COLORS, annotate_frame, format_time, own_slice_outlines, render_frame
from dynacell.viz.plots import plot_state_counts, time_unit
from dynacell.viz.report import METRIC_HELP, write_report


def _movie():
    """4 frames 2D: nucleus 1 divides at frame 1 into 2 and 3."""
    lab = np.zeros((4, 48, 64), np.uint16)
    lab[0:2, 10:20, 10:20] = 1
    lab[2:4, 8:16, 8:16] = 2
    lab[2:4, 28:38, 30:40] = 3
    img = (lab > 0).astype(np.float32) * 200 + 10
    lin = Lineage(n_frames=4)
    for t, l, c in [(0, 1, (14.5, 14.5)), (1, 1, (14.5, 14.5)), (2, 2, (11.5, 11.5)), (2, 3, (32.5, 34.5)),
                    (3, 2, (11.5, 11.5)), (3, 3, (32.5, 34.5))]:
        lin.add_node((t, l), c)
    for e in [((0, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 1), (2, 3)), ((2, 2), (3, 2)), ((2, 3), (3, 3))]:
        lin.add_edge(*e)
    lin.assign_tracks()
    states = pd.DataFrame({"t": [0, 1, 2, 2, 3, 3], "label": [1, 1, 2, 3, 2, 3], "track_id": [1, 1, 2, 3, 2, 3],
                           "state": ["stable", "mitotic", "new_daughter", "new_daughter", "stable", "stable"],
                           "area_um2": [25.0, 25.0, 16.0, 25.0, 16.0, 25.0]})
    return (Movie(img, "TYX", voxel_size_um=(0.5, 0.5), frame_interval_s=1800.0, source="m"),
            Movie(lab, "TYX", source="l"), lin, states)


def _params(**kw):
    p = {"movie": "/data/hela/02", "axes": "TYX", "shape": [4, 48, 64], "voxel_size_um": [0.5, 0.5],
         "frame_interval_s": 1800.0, "seed": 0,
         "model_card": {"name": "nuclei-2d", "voxel_size_um": [0.645, 0.645],
                        "metrics": {"test": {"macro_f1": 0.925, "n": 300}}}}
    p.update(kw)
    return p


@pytest.mark.slow
def test_report_for_a_biologist(tmp_path):
    images, labels, lin, states = _movie()
    ev = {"matched": "6 matched", "metrics": pd.DataFrame([{"states": "after", "n": 6, "macro_F1": 0.5,
                                                             "F1 stable": 1.0}]),
          "confusion": np.eye(4, dtype=int), "classes": ["stable", "mitotic", "new_daughter", "death"],
          "tracking": {"TRA": 0.9, "DET": 0.95, "LNK": 0.8, "division_f1": 1.0}}
    html = write_report(tmp_path / "report.html", states=states, lineage=lin, parameters=_params(),
                        timings_s={"classify": 1.5}, evaluation=ev, images=images, labels=labels).read_text()
    # a real title (not the folder name alone), the dimensions and the units
    assert "<h1>Nuclei, lineage and states — hela/02</h1>" in html
    assert "2D+t, 4 time points" in html and "1800 s" in html and "0.5 × 0.5" in html
    # every measure explained in one line
    for key in ("TRA", "DET", "LNK", "division_f1", "macro_F1"):
        assert html.count(METRIC_HELP[key].replace("'", "&#39;")) >= 1, key
    # the model card as a table: no JSON dump, µ not escaped
    assert "\\u00b5" not in html and '{"' not in html and "macro_f1" in html
    # lineage statistics in real time units
    assert "Lineage statistics" in html and "Cell-cycle duration" not in html.split("Lineage statistics")[0][-10:]
    assert re.search(r"median track length.*?2 frames \(60 min\)", html, re.S)
    # thumbnails (4 frames) with time stamps; the measurement column is summarised
    assert html.count('<figure><img alt="t = ') == 4 and "t = 1 h 30 min (frame 3)" in html
    assert "Per-nucleus measurements" in html and "area_um2" in html
    assert "Pixel size unknown" not in html and "Frame interval unknown" not in html


@pytest.mark.slow
def test_unknown_sizes_are_said(tmp_path):
    _, _, lin, states = _movie()
    html = write_report(tmp_path / "r.html", states=states, lineage=lin,
                        parameters=_params(voxel_size_um=None, frame_interval_s=None, model_card=None),
                        timings_s={}).read_text()
    assert "Pixel size unknown" in html and "Frame interval unknown" in html
    assert "frames" in html and "time points" in html


def test_time_axis_units():
    assert time_unit(1800, 92) == (0.5, "h")
    assert time_unit(60, 10) == (1.0, "min")
    assert time_unit(0.5, 10) == (0.5, "s")
    _, _, _, states = _movie()
    fig = plot_state_counts(states, 1800.0)
    assert fig.axes[1].get_xlabel() == "time (min)"  # 2 h movie
    assert plot_state_counts(states).axes[1].get_xlabel() == "frame t"


def test_format_time():
    assert format_time(0, 300) == "t = 0 s (frame 0)"
    assert format_time(13, 300) == "t = 1 h 05 min (frame 13)"


def test_own_slice_outlines_are_cross_sections():
    lab = np.zeros((9, 30, 30), np.int32)
    zz, yy, xx = np.mgrid[:9, :30, :30]
    lab[(zz - 2) ** 2 + ((yy - 10) / 3) ** 2 + ((xx - 10) / 3) ** 2 <= 4] = 1  # ball centred at z=2
    lab[(zz - 6) ** 2 + ((yy - 18) / 3) ** 2 + ((xx - 18) / 3) ** 2 <= 4] = 2  # overlaps 1 in projection
    out = own_slice_outlines(lab)
    # the outline of 1 is the boundary of its own slice z=2: a ring of radius ~6 px around (10, 10)
    ring = np.argwhere(out == 1)
    r = np.hypot(ring[:, 0] - 10, ring[:, 1] - 10)
    assert r.min() >= 4.5 and r.max() <= 6.5
    assert (out == 2).sum() > 0 and out[10, 10] == 0  # centre not outlined


def test_render_frame_ids_scale_bar_legend():
    images, labels, _, states = _movie()
    rgb = render_frame(images.frame(2), labels.frame(2), states[states.t == 2], t=2, scale=4,
                       frame_interval_s=1800.0, voxel_size_um=(0.5, 0.5))
    band = rgb.shape[0] - 48 * 4
    assert band > 0 and rgb.shape[1] == 256  # legend band above the image, not over it
    frame = rgb[band:]
    assert tuple(frame[28 * 4, 35 * 4]) == STATE_COLORS["new_daughter"]  # top edge of nucleus 3
    # scale bar: a white bar in the bottom-right corner
    # 256 px of 0.125 µm: a 5 µm bar = 40 px ending 10 px from the right edge
    assert (frame[-15:-13, -48:-12] == 255).all()
    assert not (frame[-15:-13, -56:-52] == 255).all()
    plain = render_frame(images.frame(2), labels.frame(2), states[states.t == 2], t=2, scale=4,
                         show_track_ids=False)
    assert not np.array_equal(plain, rgb)  # ids and bar drawn


def test_annotate_without_sizes_draws_no_bar():
    rgb = np.zeros((60, 200, 3), np.uint8)
    assert np.array_equal(annotate_frame(rgb), rgb)


@pytest.mark.parametrize("n", [1, 4])
def test_video_with_annotations(tmp_path, n):
    import imageio.v3 as iio

    from dynacell.viz.overlay import write_overlay_video

    images, labels, _, states = _movie()
    p = write_overlay_video(tmp_path / "o.mp4", images, labels, states, progress=False, min_width=64 * n)
    assert iio.improps(p, plugin="pyav").n_images == 4


def test_a_frame_note_is_written_in_the_band_of_that_frame_only(tmp_path):
    import imageio.v3 as iio

    from dynacell.viz.overlay import write_overlay_video

    images, labels, _, states = _movie()
    plain = iio.imread(write_overlay_video(tmp_path / "a.mp4", images, labels, states, progress=False),
                       plugin="pyav")
    noted = iio.imread(write_overlay_video(tmp_path / "b.mp4", images, labels, states, progress=False,
                                           frame_notes={2: "links from frame 1 uncertain"}), plugin="pyav")
    band = plain.shape[1] - 48 * (plain.shape[2] // 64)
    differs = [not np.allclose(plain[i, :band].astype(int), noted[i, :band].astype(int), atol=40) for i in range(4)]
    assert differs == [False, False, True, False]


@pytest.mark.slow
def test_thumbnails_found_beside_the_report(tmp_path):
    """As in a run folder: the movie named in the parameters, the track masks in ctc/ beside report.html."""
    import tifffile

    images, labels, lin, states = _movie()
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, np.asarray(images.data), metadata={"axes": "TYX"})
    (tmp_path / "run" / "ctc").mkdir(parents=True)
    for t in range(4):
        tifffile.imwrite(tmp_path / "run" / "ctc" / f"mask{t:03d}.tif", np.asarray(labels.frame(t)))
    html = write_report(tmp_path / "run" / "report.html", states=states, lineage=lin,
                        parameters=_params(movie=str(movie), model_card=None), timings_s={},
                        n_thumbnails=2).read_text()
    assert html.count("<figure>") == 2
    gone = write_report(tmp_path / "r2.html", states=states, lineage=lin,
                        parameters=_params(movie=str(tmp_path / "missing.tif"), model_card=None),
                        timings_s={}).read_text()
    assert "<figure>" not in gone
