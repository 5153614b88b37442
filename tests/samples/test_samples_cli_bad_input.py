"""``dynacell extract`` on bad input: one line ``dynacell: error: ...``, exit 2, no partial output.

Most cases call :func:`dynacell.cli.main.main` in-process (the function the console script runs);
one test runs the installed console script itself in a subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from _helpers import _ctc_folder, run_main

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.samples import SampleSet, iter_frame_crops


def _ctc(root: Path, T: int = 6) -> tuple[Path, Path]:
    """A tiny CTC sequence ``01/tTTT.tif`` + ``01_GT/TRA`` (48×64 px)::

        track 1: t0 ── t2 ─┬─ track 2: t3 ── t5      (1, 2) mitotic
                           └─ track 3: t3 ── t5      (3, 2), (3, 3) new_daughter
        track 4: t0 ──────────────────────── t5
    """
    return _ctc_folder(root, T=T, split_at=2)


def _set_label(tra: Path, t: int, edit) -> None:
    """Rewrite ``man_trackTTT.tif`` of frame ``t`` with ``edit(array) -> array``."""
    f = tra / f"man_track{t:03d}.tif"
    tifffile.imwrite(f, edit(tifffile.imread(f)))




def extract(monkeypatch, capsys, img, tra, out, *extra, lineage=True):
    args = ["extract", img, "--labels", tra, "-o", out, "--size", "16", "--no-progress", *extra]
    if lineage:
        args += ["--lineage", tra, "--states", "stable,mitotic,new_daughter,death,unknown"]
    return run_main(monkeypatch, capsys, *args)


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("dynacell: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def assert_nothing_written(folder: Path) -> None:
    left = sorted(p.name for p in folder.iterdir())
    assert left == [], left


def _truncate(f: Path) -> None:
    b = f.read_bytes()
    f.write_bytes(b[: len(b) // 2])


@pytest.mark.parametrize(
    "case, needles",
    [
        ("truncated image", ["t003.tif", "frame 3", "truncated"]),
        ("truncated labels", ["man_track003.tif", "frame 3", "truncated"]),
        ("not a tiff", ["man_track004.tif", "not a TIFF"]),
        ("shapes differ", ["(40, 64)", "(48, 64)", "01_GT"]),
        ("one label frame of another shape", ["man_track004.tif", "frame 4", "(40, 64)"]),
        ("negative label", ["man_track002.tif", "frame 2", "-4"]),
        ("malformed track file", ["man_track.txt", "line 2", "'2 3 x 1'"]),
        ("track file line cut short", ["man_track.txt", "line 3", "'3 3'"]),
    ],
)
def test_bad_input_is_one_line_error_and_writes_nothing(tmp_path, monkeypatch, capsys, case, needles):
    img, tra = _ctc(tmp_path / "data")
    if case == "truncated image":
        _truncate(img / "t003.tif")
    elif case == "truncated labels":
        _truncate(tra / "man_track003.tif")
    elif case == "not a tiff":
        (tra / "man_track004.tif").write_bytes(b"not a tiff at all")
    elif case == "shapes differ":
        for t in range(6):
            _set_label(tra, t, lambda a: a[:40])
    elif case == "one label frame of another shape":
        _set_label(tra, 4, lambda a: a[:40])
    elif case == "negative label":
        for t in range(6):  # one int16 file with a negative id among uint16 files
            _set_label(tra, t, lambda a, t=t: np.where(a == 4, -4 if t == 2 else 4, a).astype(np.int16))
    elif case == "malformed track file":
        (tra / "man_track.txt").write_text("1 0 2 0\n2 3 x 1\n")
    else:
        (tra / "man_track.txt").write_text("1 0 2 0\n2 3 5 1\n3 3")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = extract(monkeypatch, capsys, img, tra, out_dir / "s.npz")
    assert_one_line_error(code, err, *needles)
    assert_nothing_written(out_dir)


@pytest.mark.filterwarnings("ignore:.*label images are float32:UserWarning")
def test_fractional_float_labels_name_file_and_frame(tmp_path, monkeypatch, capsys):
    """Float labels: whole numbers are cast (with a warning); a fractional value in a frame that is
    read fails naming that frame's file — also when it is not the first frame."""
    img, tra = _ctc(tmp_path / "data")
    for t in range(6):
        _set_label(tra, t, lambda a, t=t: np.where(a == 4, 4.5 if t == 2 else 4.0, a).astype(np.float32))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for lineage in (True, False):
        code, _, err = extract(monkeypatch, capsys, img, tra, out_dir / "s.npz", lineage=lineage)
        assert_one_line_error(code, err, "man_track002.tif", "frame 2", "4.5", "whole numbers")
        assert_nothing_written(out_dir)


def test_label_ids_absent_from_the_lineage_are_named(tmp_path, monkeypatch, capsys, caplog):
    img, tra = _ctc(tmp_path / "data")

    def add_nine(a):
        a = a.copy()
        a[40:44, 2:6] = 9
        return a

    _set_label(tra, 2, add_nine)  # id 9 at frame 2: no track 9 in man_track.txt
    out = tmp_path / "s.npz"
    with caplog.at_level(logging.WARNING):
        code, stdout, err = extract(monkeypatch, capsys, img, tra, out)
    assert code == 0, err
    msg = [r.getMessage() for r in caplog.records if "not nodes of lineage" in r.getMessage()]
    assert len(msg) == 1 and "man_track002.tif (frame 2)" in msg[0] and "[9]" in msg[0]
    s = SampleSet.load(out)
    assert s.attrs["label_ids_not_in_lineage"] == 1
    assert 9 not in set(s.meta["label"]) and "label ids not in the lineage: 1" in stdout


def test_empty_label_frame_and_nodes_absent_from_labels_are_named(tmp_path, monkeypatch, capsys, caplog):
    img, tra = _ctc(tmp_path / "data")
    _set_label(tra, 3, np.zeros_like)  # the new daughters (3, 2), (3, 3) and (3, 4) lose their pixels
    out = tmp_path / "s.npz"
    with caplog.at_level(logging.WARNING):
        code, stdout, err = extract(monkeypatch, capsys, img, tra, out)
    assert code == 0, err
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "man_track003.tif (frame 3): empty label image" in text
    assert "man_track003.tif (frame 3): no nucleus with id(s) [2, 3, 4]" in text
    s = SampleSet.load(out)
    assert s.attrs["skipped"]["absent_from_mask"] == 3 and 3 not in set(s.meta["t"])
    assert "absent from mask 3" in stdout


def test_missing_image_frame_is_a_warning_and_neighbours_use_frame_t(tmp_path, monkeypatch, capsys, caplog):
    img, tra = _ctc(tmp_path / "data")
    (img / "t003.tif").unlink()
    out = tmp_path / "s.npz"
    with caplog.at_level(logging.WARNING):
        code, stdout, err = extract(monkeypatch, capsys, img, tra, out)
    assert code == 0, err
    assert "first missing: [3]" in caplog.text and "no image skipped (frames 3)" in caplog.text
    s = SampleSet.load(out)
    assert 3 not in set(s.meta["t"]) and s.attrs["skipped"]["no_image"] == 3
    assert "no image 3" in stdout


def test_frames_option_edge_cases(tmp_path, monkeypatch, capsys):
    img, tra = _ctc(tmp_path / "data")
    # an open range 'a:' is intersected with the movie's frames (it used to expand to 2**30 frames)
    code, _, err = extract(monkeypatch, capsys, img, tra, tmp_path / "a.npz", "--frames", "2:", lineage=False)
    assert code == 0, err
    assert sorted(set(SampleSet.load(tmp_path / "a.npz").meta["t"])) == [2, 3, 4, 5]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, _, err = extract(monkeypatch, capsys, img, tra, out_dir / "b.npz", "--frames", "8:9")
    assert_one_line_error(code, err, "--frames '8:9'", "0..5")
    # frames that exist but hold no node of the chosen states: an error, not an empty file
    code, _, err = run_main(monkeypatch, capsys, "extract", img, "--labels", tra, "--lineage", tra,
                            "-o", out_dir / "c.npz", "--frames", "4:5", "--states", "mitotic", "--no-progress")
    assert_one_line_error(code, err, "no sample to write", "nothing written")
    assert_nothing_written(out_dir)


def test_outputs_checked_before_any_work(tmp_path, monkeypatch, capsys):
    img, tra = _ctc(tmp_path / "data")
    taken = tmp_path / "seed"
    taken.mkdir()
    (taken / "keep.txt").write_text("x")
    code, _, err = extract(monkeypatch, capsys, img, tra, tmp_path / "s.npz", "--seed-layout", taken)
    assert_one_line_error(code, err, "--seed-layout", "exists")
    assert not (tmp_path / "s.npz").exists() and (taken / "keep.txt").read_text() == "x"
    code, _, err = extract(monkeypatch, capsys, img, tra, tmp_path / "s.npz", "--rules", "nonsense")
    assert_one_line_error(code, err, "nonsense")
    assert not (tmp_path / "s.npz").exists()


def test_usage_errors_exit_2_without_traceback(tmp_path, monkeypatch, capsys):
    img, _ = _ctc(tmp_path / "data")
    code, _, err = run_main(monkeypatch, capsys, "extract", img)
    assert code == 2 and "Traceback" not in err and "Missing option '--labels'" in err


def test_failed_save_leaves_no_file(tmp_path, monkeypatch):
    """SampleSet.save writes a temporary file and renames it: a failure mid-write leaves nothing."""
    x = np.zeros((2, 4, 8, 8), np.float32)
    meta = {"dataset": ["d", "d"], "t": [0, 1], "label": [1, 1], "track_id": [1, 1], "tree_id": [1, 1],
            "state": ["stable", "stable"], "z": [0.0, 0.0], "y": [4.0, 4.0], "x": [4.0, 4.0]}
    import pandas as pd

    s = SampleSet(x, pd.DataFrame(meta))

    def broken_savez(fh, **arrays):
        fh.write(b"PK\x03\x04partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        s.save(tmp_path / "s.npz")
    assert_nothing_written(tmp_path)


def test_frame_crops_report_every_id_and_reject_negative_ids():
    """FrameCrops.frame_label_ids lists every id of the label image, before label_ids selection."""
    images = Movie(np.ones((3, 20, 20), np.uint16), "TYX", source="img")
    lab = np.zeros((3, 20, 20), np.int32)
    lab[:, 2:6, 2:6] = 1
    lab[:, 10:14, 10:14] = 7
    out = list(iter_frame_crops(images, Movie(lab, "TYX", source="lab"), size=8, label_ids={0: [7], 1: [], 2: [1]}))
    assert [fc.label_ids.tolist() for fc in out] == [[7], [], [1]]
    assert all(fc.frame_label_ids.tolist() == [1, 7] for fc in out)
    lab[1, 10:14, 10:14] = -7
    with pytest.raises(InvalidInputError, match=r"lab \(frame 1\): negative label id -7"):
        list(iter_frame_crops(images, Movie(lab, "TYX", source="lab"), size=8))


def test_console_script_prints_one_line(tmp_path):
    """The installed ``dynacell`` console script itself: exit 2, one stderr line, no output file."""
    script = Path(sys.executable).with_name("dynacell")
    if not script.exists():
        pytest.skip(f"console script not installed at {script} (pip install -e . first)")
    img, tra = _ctc(tmp_path / "data")
    _truncate(img / "t002.tif")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    p = subprocess.run([str(script), "-q", "extract", str(img), "--labels", str(tra), "--lineage", str(tra),
                        "-o", str(out_dir / "s.npz"), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert_one_line_error(p.returncode, p.stderr, "t002.tif (frame 2)", "truncated")
    assert_nothing_written(out_dir)
