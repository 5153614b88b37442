"""The ``dynacell`` process leaves without the interpreter's module teardown, with the same outputs, codes and
exit work (atexit handlers, flushed streams); ``main()`` called from other code returns as before."""

from __future__ import annotations

import subprocess
import sys

import pytest
from _helpers import _ctc_folder

from dynacell.cli import main as cli_main


def test_main_called_in_process_is_not_the_process_entry() -> None:
    assert cli_main._is_process_entry() is False


@pytest.mark.parametrize("code,rc,out,err", [(None, 0, "atexit ran", ""), (3, 3, "atexit ran", ""),
                                             ("bad thing", 1, "atexit ran", "bad thing")])
def test_exit_now_runs_the_exit_work_and_keeps_the_code(code, rc, out, err) -> None:
    prog = ("import atexit, sys; from dynacell.cli.main import _exit_now; atexit.register(print, 'atexit ran'); "
            f"sys.stdout.write('buffered '); _exit_now({code!r})")
    res = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True)
    assert res.returncode == rc
    assert res.stdout.strip() == f"buffered {out}"
    assert res.stderr.strip() == err


@pytest.mark.slow
def test_python_m_run_writes_everything_and_reports_errors(tmp_path) -> None:
    img, tra = _ctc_folder(tmp_path, T=6, split_at=2)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "dynacell.cli.main", "-q", "run", str(img), "--labels", str(tra),
                          "-o", str(out), "--no-video", "--no-progress"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "report:" in res.stdout
    for name in ("states.csv", "tracks.csv", "run.json", "report.html", "ctc/res_track.txt"):
        assert (out / name).is_file(), name
    again = subprocess.run([sys.executable, "-m", "dynacell.cli.main", "-q", "run", str(img), "--labels", str(tra),
                            "-o", str(out), "--no-video"], capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr and "Traceback" not in again.stderr
