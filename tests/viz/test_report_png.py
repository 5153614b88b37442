"""The report's thumbnails are written by its own PNG writer (unfiltered rows, one zlib stream) and drawn in a
thread beside the figures: the same pixels as PIL's writer, errors raised in the caller."""

from __future__ import annotations

import base64
import io
import re
import threading

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dynacell.io.movie import Movie
from dynacell.lineage.graph import Lineage
from dynacell.viz import report as report_mod
from dynacell.viz.report import _InThread, _png_bytes


def _pil_png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 5, 3), (31, 64, 4), (660, 640, 3)])
def test_png_bytes_decode_to_the_same_pixels_as_pil_writes(shape) -> None:
    rgb = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    rgb[: shape[0] // 2] //= 16  # part smooth, part noise
    ours = Image.open(io.BytesIO(_png_bytes(rgb)))
    ours.load()
    assert ours.mode == ("RGB" if shape[2] == 3 else "RGBA") and ours.size == (shape[1], shape[0])
    assert np.array_equal(np.asarray(ours), rgb)
    assert np.array_equal(np.asarray(ours), np.asarray(Image.open(io.BytesIO(_pil_png(rgb)))))


def test_png_bytes_of_a_strided_view_are_its_pixels() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)[::2, ::3]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(_png_bytes(rgb)))), rgb)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((4, 4, 3), np.uint16), np.zeros((0, 4, 3), np.uint8)])
def test_png_bytes_refuses_what_it_cannot_write(bad) -> None:
    with pytest.raises(ValueError, match="8-bit"):
        _png_bytes(bad)


def test_in_thread_returns_the_value_and_raises_the_error_in_the_caller() -> None:
    seen = []
    job = _InThread(lambda a, b: seen.append(threading.current_thread().name) or a + b, 2, 3)
    assert job.result() == 5 and seen == ["dynacell-report-thumbnails"]

    def fail():
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        _InThread(fail).result()


def _small_run():
    """3 frames 2D: one nucleus (label 3) that moves."""
    lab = np.zeros((3, 40, 60), np.uint16)
    for t in range(3):
        lab[t, 5:15, 5 + 4 * t:20 + 4 * t] = 3
    img = (lab > 0).astype(np.uint16) * 900 + 50
    lin = Lineage(n_frames=3)
    for t in range(3):
        lin.add_node((t, 3), (9.5, 12.0 + 4 * t))
    lin.add_edge((0, 3), (1, 3))
    lin.add_edge((1, 3), (2, 3))
    lin.assign_tracks()
    states = pd.DataFrame({"t": [0, 1, 2], "label": [3, 3, 3], "track_id": [1, 1, 1], "state": ["stable"] * 3})
    return Movie(img, "TYX", source="m"), Movie(lab, "TYX", source="l"), lin, states


def _write(tmp_path, images, labels, lin, states, n=2):
    return report_mod.write_report(tmp_path / "report.html", states=states, lineage=lin, parameters={},
                                   timings_s={"report": 0.1}, images=images, labels=labels, n_thumbnails=n)


def test_the_report_holds_the_thumbnails_drawn_in_the_thread(tmp_path, monkeypatch) -> None:
    images, labels, lin, states = _small_run()
    expected = report_mod._thumbnails(images, labels, states, None, None, 2)
    threads = []
    real = report_mod._thumbnails

    def spy(*args):
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(report_mod, "_thumbnails", spy)
    text = _write(tmp_path, images, labels, lin, states).read_text()
    assert threads == ["dynacell-report-thumbnails"]
    pngs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', text)
    assert [t["png"] for t in expected] == [p for p in pngs if p in {t["png"] for t in expected}]
    assert len(expected) == 2 and all(t["caption"] in text for t in expected)
    first = np.asarray(Image.open(io.BytesIO(base64.b64decode(expected[0]["png"]))))
    assert first.shape[1] == 60 * 6  # a 60 px wide frame is drawn 6x (at least 320 px)
    assert '<a href="#frames">Frames</a>' in text


def test_an_error_in_the_thumbnails_is_raised_by_write_report(tmp_path, monkeypatch) -> None:
    images, labels, lin, states = _small_run()

    def broken(*args):
        raise RuntimeError("thumbnail failed")

    monkeypatch.setattr(report_mod, "_thumbnails", broken)
    with pytest.raises(RuntimeError, match="thumbnail failed"):
        _write(tmp_path, images, labels, lin, states)
    assert not (tmp_path / "report.html").exists()


def test_an_error_in_the_figures_waits_for_the_thumbnails(tmp_path, monkeypatch) -> None:
    images, labels, lin, states = _small_run()
    done = threading.Event()
    real = report_mod._thumbnails

    def slow(*args):
        out = real(*args)
        done.set()
        return out

    def broken_figure(*args, **kw):
        raise ValueError("figure failed")

    monkeypatch.setattr(report_mod, "_thumbnails", slow)
    monkeypatch.setattr(report_mod, "plot_state_counts", broken_figure)
    with pytest.raises(ValueError, match="figure failed"):
        _write(tmp_path, images, labels, lin, states)
    assert done.is_set()
    assert not any(t.name == "dynacell-report-thumbnails" for t in threading.enumerate())
