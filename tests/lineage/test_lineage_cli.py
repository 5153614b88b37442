"""``dynacell lineage``: JSON summary on tiny files and on the real data; user errors exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from _helpers import run_main
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


@pytest.mark.parametrize(
    "case, needles",
    [
        ("malformed track line", ["man_track.txt, line 2", "'2 3 x 1'"]),
        ("child before parent ends", ["man_track.txt, line 2", "parent 1 ends at 3"]),
        ("truncated graph json", ["LineageGraph.json", "truncated JSON at line 1"]),
        ("edge to unknown node", ["g_Graph.json", "'008_002'"]),
        ("bad acetree file", ["t001-nuclei", "time point 1"]),
        ("unknown format", ["unknown lineage format 'bogus'"]),
        ("nothing recognisable", ["cannot tell the lineage format"]),
    ],
)
def test_bad_lineage_input_is_one_line_error(tmp_path, monkeypatch, capsys, case, needles):
    folder = tmp_path / "in"
    folder.mkdir()
    extra = []
    if case == "malformed track line":
        (folder / "man_track.txt").write_text("1 0 2 0\n2 3 x 1\n")
    elif case == "child before parent ends":
        (folder / "man_track.txt").write_text("1 0 3 0\n2 2 5 1\n")
    elif case == "truncated graph json":
        (folder / "LineageGraph.json").write_text('{"G": {"Nodes": [{"Name": "006_001"}], "Edges": [')
    elif case == "edge to unknown node":
        (folder / "g_Graph.json").write_text(json.dumps(
            {"Nodes": [{"Name": "006_001"}, {"Name": "007_001"}], "Edges": [{"EndNodes": ["006_001", "008_002"]}]}))
    elif case == "bad acetree file":
        (folder / "nuclei_files").mkdir()
        (folder / "nuclei_files" / "t001-nuclei").write_text("1, 1, -1, x, -1, 10, 10, 1.0, 5, ABa\n")
    elif case == "unknown format":
        (folder / "man_track.txt").write_text("1 0 2 0\n")
        extra = ["--format", "bogus"]
    else:
        (folder / "notes.txt").write_text("nothing")
    code, out, err = run_main(monkeypatch, capsys, "lineage", folder, *extra, "--geff", tmp_path / "out.geff")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == ""
    assert len(lines) == 1 and lines[0].startswith("dynacell: error: "), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    assert not (tmp_path / "out.geff").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no temporary store left behind


def test_geff_output_checked_before_reading_and_usage_errors(track_folder, tmp_path, monkeypatch, capsys):
    taken = tmp_path / "taken.geff"
    taken.mkdir()
    code, _, err = run_main(monkeypatch, capsys, "lineage", track_folder, "--geff", taken)
    assert code == 2 and err.startswith("dynacell: error: --geff") and "--overwrite" in err
    code, _, err = run_main(monkeypatch, capsys, "lineage", track_folder, "--frames", "0")
    assert code == 2 and "Traceback" not in err and "--frames" in err
    code, _, err = run_main(monkeypatch, capsys, "lineage")
    assert code == 2 and "Traceback" not in err and "Missing argument" in err


def test_console_script_lineage_error(tmp_path):
    """The installed ``dynacell`` console script: a malformed track file → exit 2, one stderr line."""
    from pathlib import Path

    script = Path(sys.executable).with_name("dynacell")
    if not script.exists():
        pytest.skip(f"console script not installed at {script} (pip install -e . first)")
    (tmp_path / "man_track.txt").write_text("1 0 2 0\n2 3\n")
    p = subprocess.run([str(script), "lineage", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip().splitlines() == [p.stderr.strip()]
    assert p.stderr.startswith("dynacell: error: ") and "man_track.txt, line 2" in p.stderr


def _direct_ctc_divisions(track_file) -> int:
    """Parents with >= 2 children, counted straight from the 'L B E P' lines of a CTC track file."""
    children: dict[int, int] = {}
    for line in track_file.read_text().splitlines():
        if line.strip():
            parent = int(line.split()[3])
            if parent:
                children[parent] = children.get(parent, 0) + 1
    return sum(1 for n in children.values() if n >= 2)


@pytest.mark.data
@pytest.mark.parametrize(
    "folder, divisions, tracks",
    [
        ("bacteria-phc/01_GT/TRA", 356, 714),
        ("bacteria-phc/01_RES", 360, 723),
        ("Fluo-N2DL-HeLa/02_GT/TRA", 209, 674),
        ("Fluo-N2DH-GOWT1/01_GT/TRA", 2, 27),
    ],
)
def test_cli_json_on_ctc_data(ctc, folder, divisions, tracks):
    """The JSON of ``dynacell lineage`` on each shared CTC folder matches a direct count of its track file."""
    path = ctc / folder
    if not path.exists():
        pytest.skip(f"{path} not found")
    out = run_json([path])
    track_file = next(path.glob("*_track.txt"))
    assert out["divisions"] == _direct_ctc_divisions(track_file) == divisions
    assert out["tracks"] == tracks
    assert sum(out["states"].values()) == out["nodes"]
    assert out["states"]["mitotic"] == divisions  # seed rules: one mitotic frame per division
    assert out["deaths"] == out["states"]["death"]  # no explicit annotations: track ends before the end


@pytest.mark.data
def test_cli_json_on_wormguides(shared_data):
    """WormGUIDES: 663 divisions in the lineage (664 valid nuclei with two successors in the files, one of
    them in the last file), all 113 programmed deaths of CellDeaths.csv counted and labelled death."""
    root = shared_data / "lineages" / "wormguides-celegans"
    if not root.exists():
        pytest.skip(f"{root} not found")
    out = run_json([root, "--rules", "annotated-deaths"])
    names = {s.strip() for s in (root / "CellDeaths.csv").read_text().splitlines() if s.strip()}
    assert out["format"] == "acetree" and out["frames"] == 360
    assert out["divisions"] == 663
    assert out["deaths"] == len(names) == 113 and out["states"]["death"] == 113
