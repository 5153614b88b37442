"""Reliability of the ``dynacell`` command line: the output contract (checked before any work, no silent
replacement by a concurrent run), Ctrl-C / SIGTERM (one line, exit 130 / 143, temporary files removed, also
when a library swallows the interrupt) and scoring that counts what a result lacks."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from _helpers import _ctc_folder, run_main

#: A ``dynacell`` with two extra test commands, run in a child process (the real ``main()``, real signals).
_CLI = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import typer
    from dynacell.cli.main import app, main

    @app.command("slow-write")
    def slow_write(out: Path = typer.Option(..., "-o", "--out"), tag: str = "x", seconds: float = 30.0,
                   until: Path = typer.Option(None, "--until")):
        from dynacell.io.writers import atomic_folder
        with atomic_folder(out) as tmp:
            (tmp / "who.txt").write_text(tag)
            (tmp / "started").touch()
            t0 = time.monotonic()
            while time.monotonic() - t0 < seconds and not (until is not None and until.exists()):
                time.sleep(0.05)

    @app.command("swallow")
    def swallow(out: Path = typer.Option(..., "-o", "--out")):
        out.mkdir()
        (out / "started").touch()
        try:
            time.sleep(30)
        except KeyboardInterrupt:  # a library that catches Ctrl-C and carries on
            pass

    sys.argv = ["dynacell", *sys.argv[1:]]
    main()
""")


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def _wait_for(predicate, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the child process")
        time.sleep(0.05)


def _tmp_started(parent: Path) -> bool:
    return any((p / "started").exists() for p in parent.glob(".out.tmp-*"))


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- output checked before any work
@pytest.mark.parametrize("args", [
    ("run", "{movie}", "-o", "{file}/out"),
    ("extract", "{movie}", "--labels", "{movie}", "-o", "{file}/set.npz"),
    ("lineage", "{movie}", "--geff", "{file}/x.geff"),
    ("simulate", "-o", "{file}/sim"),
])
def test_output_under_a_file_is_one_line_before_any_work(monkeypatch, capsys, tmp_path, args):
    (tmp_path / "afile").write_text("x")
    fmt = {"movie": str(tmp_path / "missing-movie"), "file": str(tmp_path / "afile")}
    code, _, err = run_main(monkeypatch, capsys, *(a.format(**fmt) for a in args))
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert "afile is a file, not a folder" in lines[0]  # checked first, before the missing input is noticed


def _truncated_stack(folder: Path) -> Path:
    import tifffile

    f = folder / "stack.tif"
    tifffile.imwrite(f, np.zeros((12, 32, 32), np.uint16) + np.arange(12, dtype=np.uint16)[:, None, None],
                     compression="zlib")
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) // 2])
    return f


@pytest.mark.parametrize("case", ["truncated-run", "truncated-labels", "nan-pixels", "track-overflow", "huge-track"])
def test_bad_input_is_exactly_one_line(monkeypatch, capsys, tmp_path, case):
    """No traceback and no second line (tifffile's own log lines are folded into dynacell's message)."""
    if case.startswith("truncated"):
        f = _truncated_stack(tmp_path)
        np.savez(tmp_path / "labels.npz", labels=np.ones((12, 32, 32), np.uint16))
        args = ["run", str(f), "-o", str(tmp_path / "out")]
        if case == "truncated-labels":  # the truncated movie is named, not the (good) labels given with it
            args += ["--labels", str(tmp_path / "labels.npz")]
        want = "stack.tif: the TIFF is truncated"
    elif case == "nan-pixels":  # with labels given nothing else reads the pixels: the states would be silently wrong
        import tifffile

        movie = np.full((6, 32, 32), 100.0, np.float32)
        movie[:, 8:16, 8:16] = 1000.0
        movie[4, 9, 10] = np.nan
        tifffile.imwrite(tmp_path / "movie.tif", movie)
        labels = np.zeros((6, 32, 32), np.uint16)
        labels[:, 8:16, 8:16] = 1
        np.savez(tmp_path / "labels.npz", labels=labels)
        args = ["run", str(tmp_path / "movie.tif"), "--labels", str(tmp_path / "labels.npz"), "-o", str(tmp_path / "out"),
                "--no-video"]
        want = "movie.tif frame 4: 1 NaN or infinite pixel value(s), the first at (y, x) = (9, 10)"
    else:
        (tmp_path / "man_track.txt").write_text("1 0 4 0\n" + ("1 0 99999999999999999999 0\n"
                                                               if case == "track-overflow" else "2 0 2000000000 0\n"))
        args, want = ["lineage", str(tmp_path / "man_track.txt")], "line 2"
    code, _, err = run_main(monkeypatch, capsys, *args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and want in lines[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "option"), [(["--frames", "0"], "--frames"), (["--n-start", "0"], "--n-start"),
                                              (["--scale", "0"], "--scale"), (["--start", "-1"], "--start")])
def test_simulate_errors_name_the_cli_option(monkeypatch, capsys, tmp_path, args, option):
    """Errors used to name library parameters (n_frames) instead of the options (--frames)."""
    code, _, err = run_main(monkeypatch, capsys, "simulate", "-o", str(tmp_path / "sim"), *args)
    assert code == 2 and option in err and "n_frames" not in err and "Traceback" not in err
    assert not (tmp_path / "sim").exists()


def test_extract_with_a_crop_larger_than_any_frame_is_refused(monkeypatch, capsys, tmp_path):
    """``extract --size 20000`` used to try to allocate 13 GiB."""
    _ctc_folder(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, "extract", str(tmp_path / "01"), "--labels",
                            str(tmp_path / "01_GT" / "TRA"), "-o", str(tmp_path / "set.npz"), "--size", "20000",
                            "--no-progress")
    assert code == 2 and "--size 20000" in err and "largest side" in err
    assert not (tmp_path / "set.npz").exists()


# --------------------------------------------------------------------------- Ctrl-C and SIGTERM
@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"),
                                                    (signal.SIGTERM, 143, "terminated")])
def test_interrupt_exits_non_zero_and_removes_temporary_files(tmp_path, sig, code, word):
    proc = _start("slow-write", "-o", str(tmp_path / "out"))
    _wait_for(lambda: _tmp_started(tmp_path) or proc.poll() is not None)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and word in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_interrupt_swallowed_by_a_library_still_exits_130(tmp_path):
    """``dynacell run ... && next`` must not carry on after Ctrl-C, even if the interrupt was caught inside."""
    proc = _start("swallow", "-o", str(tmp_path / "out"))
    _wait_for(lambda: (tmp_path / "out" / "started").exists() or proc.poll() is not None)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err


def test_two_concurrent_runs_on_one_output(tmp_path):
    """The second run on the same -o stops at once (exit 2, one line); the first's output is kept."""
    release = tmp_path / "release"
    first = _start("slow-write", "-o", str(tmp_path / "out"), "--tag", "first", "--seconds", "60",
                   "--until", str(release))
    _wait_for(lambda: _tmp_started(tmp_path) or first.poll() is not None)
    second = _start("slow-write", "-o", str(tmp_path / "out"), "--tag", "second", "--seconds", "0")
    _, err2 = second.communicate(timeout=60)
    release.touch()
    _, err1 = first.communicate(timeout=60)
    release.unlink()
    assert first.returncode == 0, err1
    assert second.returncode == 2 and "another dynacell process is writing" in err2
    assert (tmp_path / "out" / "who.txt").read_text() == "first"
    third = _start("slow-write", "-o", str(tmp_path / "out"), "--seconds", "0")  # after: exists, no --overwrite
    _, err3 = third.communicate(timeout=60)
    assert third.returncode == 2 and "exists" in err3 and (tmp_path / "out" / "who.txt").read_text() == "first"
    assert _leftovers(tmp_path) == []


@pytest.mark.slow
def test_ctrl_c_during_a_real_run(tmp_path):
    """SIGINT to ``dynacell run`` while it works: exit 130, one line, no output and no temporary folder."""
    rng = np.random.default_rng(0)
    lab = np.zeros((120, 64, 64), np.uint16)  # long enough that the signal lands while the run works
    yy, xx = np.mgrid[:64, :64]
    for t in range(120):
        for i, (cy, cx) in enumerate([(16, 16), (40, 44), (20, 48)]):
            lab[t][(yy - cy - t * 0.2) ** 2 + (xx - cx) ** 2 < 20] = i + 1
    np.savez(tmp_path / "mov.npz", images=((lab > 0) * 100 + rng.integers(0, 10, lab.shape)).astype(np.uint16))
    np.savez(tmp_path / "lab.npz", labels=lab)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dynacell.cli.main", "run", str(tmp_path / "mov.npz"), "--labels",
                             str(tmp_path / "lab.npz"), "-o", str(tmp_path / "out"), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for(lambda: any(tmp_path.glob(".out.tmp-*")) or proc.poll() is not None, timeout_s=120)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    last = err.splitlines()[-1]
    assert "interrupted" in last and "Traceback" not in err
    if (tmp_path / "out").exists():  # on a fast machine the signal may come after the final rename: then it is whole
        assert "after the output was complete" in last and str(tmp_path / "out") in last
        assert (tmp_path / "out" / "run.json").is_file()
    else:
        assert "no output written" in last
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------- scoring counts what is missing
@pytest.mark.slow
def test_result_missing_its_last_frames_is_not_scored_perfect(monkeypatch, capsys, tmp_path):
    """A result whose track file spans frames 0-11 but whose masks stop at frame 8 (used to score TRA = 1.0)."""
    _ctc_folder(tmp_path)
    res = tmp_path / "01_RES"
    shutil.copytree(tmp_path / "01_GT" / "TRA", res)
    (res / "man_track.txt").rename(res / "res_track.txt")
    for f in res.glob("man_track*.tif"):
        f.rename(res / f.name.replace("man_track", "mask"))
    code, out, _ = run_main(monkeypatch, capsys, "evaluate-tracks", str(res), "--gt", str(tmp_path / "01_GT"),
                            "--all", "--no-progress")
    assert code == 0 and json.loads(out)["TRA"] == pytest.approx(1.0)  # the complete result is perfect
    for t in (9, 10, 11):
        (res / f"mask{t:03d}.tif").unlink()
    code, out, _ = run_main(monkeypatch, capsys, "evaluate-tracks", str(res), "--gt", str(tmp_path / "01_GT"),
                            "--all", "--no-progress")
    got = json.loads(out)
    assert code == 0
    assert got["pred_frames_missing"] == [9, 10, 11] and got["frames_evaluated"] == list(range(12))
    assert got["TRA"] < 0.9 and got["DET"] < 0.9 and got["fn_nodes"] == 9


def test_interrupt_after_the_output_is_complete_says_it_is_kept(tmp_path, capsys):
    """An interrupt that arrives after the final rename must not claim "no output written"."""
    from dynacell.cli.main import _interrupted, _Signals
    from dynacell.io.writers import atomic_folder, clear_committed_outputs

    clear_committed_outputs()
    sig = _Signals()
    sig.received = 2
    with pytest.raises(SystemExit) as exc:
        _interrupted(sig)
    assert exc.value.code == 130 and "no output written" in capsys.readouterr().err
    with atomic_folder(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
    with pytest.raises(SystemExit) as exc:
        _interrupted(sig)
    err = capsys.readouterr().err
    assert exc.value.code == 130 and "after the output was complete" in err and str(tmp_path / "out") in err
    clear_committed_outputs()
