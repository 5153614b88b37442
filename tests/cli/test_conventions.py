"""One CLI convention: -o/--out, --voxel-size-um one number per axis, --progress/--no-progress,
one preset spelling, --version, no <bool> in help, evaluate --model chosen by dimensionality."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from dynacell.cli.main import app

WRITERS = [["extract"], ["simulate"], ["benchmark", "states"], ["benchmark", "segmentation"]]
PROGRESS = [["extract"], ["simulate"], ["evaluate-tracks"], ["train"], ["benchmark", "states"]]


def _help(cmd: list[str]) -> str:
    res = CliRunner().invoke(app, [*cmd, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    return re.sub(r"\x1b\[[0-9;]*m", "", res.output)


@pytest.mark.parametrize("cmd", WRITERS)
def test_out_option(cmd):
    text = _help(cmd)
    assert "--out" in text and "-o" in text and "--output" not in text


@pytest.mark.parametrize("cmd", PROGRESS)
def test_progress_option(cmd):
    text = _help(cmd)
    assert "--progress" in text and "--no-progress" in text and "<bool>" not in text


@pytest.mark.parametrize("cmd", [["extract"], ["evaluate"], ["lineage"]])
def test_one_preset_spelling(cmd):
    text = _help(cmd)
    assert "annotated_deaths" not in text and "annotated-deaths" in text.replace("\n", "").replace(" ", "")


def test_voxel_size_one_number_per_axis():
    from dynacell.cli.options import merge_multi_value_options, parse_voxel_size

    argv = merge_multi_value_options(["simulate", "-o", "x", "--voxel-size-um", "2", "0.5", "0.5",
                                      "--lineage-voxel-size-um", "1", "0.2", "0.2"])
    assert argv[argv.index("--voxel-size-um") + 1] == "2,0.5,0.5"
    assert argv[argv.index("--lineage-voxel-size-um") + 1] == "1,0.2,0.2"
    assert parse_voxel_size("2,0.5,0.5") == parse_voxel_size("2 0.5 0.5") == (2.0, 0.5, 0.5)
    assert "[Z] Y X" in _help(["extract"]) and "[Z] Y X" in _help(["simulate"])


def test_version():
    from dynacell import __version__

    res = CliRunner().invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.strip() == f"dynacell {__version__}"


def test_evaluate_model_follows_dimensionality(tmp_path, monkeypatch):
    """Without --model, a 3D movie is evaluated with nuclei-3d (the 2D model would refuse 3D crops)."""
    import numpy as np
    import tifffile

    import dynacell.states as states_pkg

    asked = []

    def fake_load(name):
        asked.append(name)
        raise SystemExit(0)

    monkeypatch.setattr(states_pkg, "load_model", fake_load)
    movie = tmp_path / "m.tif"
    tifffile.imwrite(movie, np.zeros((3, 4, 16, 16), np.uint8), metadata={"axes": "TZYX"})
    CliRunner().invoke(app, ["evaluate", str(movie), "--labels", str(movie)])
    assert asked == ["nuclei-3d"]


@pytest.mark.slow
def test_usage_error_is_fast():
    """A wrong option is reported without importing torch: well under a second of our own time."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['dynacell','extract','--no-such-option'];"
                          "from dynacell.cli.main import main; main()"], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    assert res.returncode == 2 and "no-such-option" in res.stderr.lower() + res.stdout.lower()
    probe = subprocess.run([sys.executable, "-c", "import sys; import dynacell.cli.main; "
                            "print(sorted(m for m in ('torch', 'dask', 'lightning', 'trackpy') if m in sys.modules))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr
    assert wall < 30  # generous: a shared, loaded test machine; the import probe above is the real check
