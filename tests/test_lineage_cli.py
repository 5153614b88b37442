"""``dynacell lineage``: JSON summary on tiny files and on the real data; user errors exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dynacell.cli.main import app
from dynacell.errors import InvalidInputError

KEYS = {"frames", "nodes", "tracks", "divisions", "deaths", "states"}


@pytest.fixture
def track_folder(tmp_path):
    """man_track.txt only (no masks), 6 frames::

        1: (0,1) ─ (1,1) ─┬─ (2,2) ─ ... ─ (5,2)
                          └─ (2,3) ─ (3,3)╳        track 3 ends at frame 3 < 5
    """
    folder = tmp_path / "TRA"
    folder.mkdir()
    (folder / "man_track.txt").write_text("1 0 1 0\n2 2 5 1\n3 2 3 1\n")
    return folder


def run_json(args):
    result = CliRunner().invoke(app, ["lineage", *map(str, args)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_summary_keys_and_counts(track_folder):
    out = run_json([track_folder])
    assert KEYS <= set(out)
    assert out["format"] == "ctc"
    assert (out["frames"], out["nodes"], out["tracks"], out["divisions"]) == (6, 2 + 4 + 2, 3, 1)
    assert out["deaths"] == 1  # track 3 ends before the last frame (seed rules)
    assert out["states"]["mitotic"] == 1 and out["states"]["new_daughter"] == 2
    assert sum(out["states"].values()) == out["nodes"]
    ann = run_json([track_folder / "man_track.txt", "--rules", "annotated-deaths", "--format", "ctc"])
    assert ann["deaths"] == 0 and ann["states"]["death"] == 0


def test_frames_option_cuts_the_lineage(track_folder):
    out = run_json([track_folder, "--frames", "3"])
    assert out["frames"] == 3
    assert out["nodes"] == 2 + 1 + 1
    assert out["deaths"] == 0  # both daughters reach the (new) last frame


def test_geff_output(track_folder, tmp_path):
    out = run_json([track_folder, "--geff", tmp_path / "l.geff"])
    again = run_json([tmp_path / "l.geff"])
    assert again["format"] == "geff"
    assert {k: again[k] for k in KEYS} == {k: out[k] for k in KEYS}


def test_user_errors(track_folder, tmp_path):
    result = CliRunner().invoke(app, ["lineage", str(track_folder), "--rules", "nonsense"])
    assert isinstance(result.exception, InvalidInputError)
    proc = subprocess.run(
        [sys.executable, "-c", "from dynacell.cli.main import main; main()", "lineage", str(tmp_path / "missing")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("dynacell: error: lineage path")


@pytest.mark.data
def test_real_data_summaries(shared_data):
    blasto = run_json([shared_data / "lineages" / "blastospim-8cell"])
    assert blasto["divisions"] == 0 and blasto["nodes"] == 8 * blasto["frames"] == 120
    gowt1 = shared_data / "ctc" / "Fluo-N2DH-GOWT1" / "01_GT" / "TRA"
    if gowt1.exists():
        out = run_json([gowt1])
        assert out["divisions"] == 2 and out["tracks"] == 27 and out["frames"] == 92
