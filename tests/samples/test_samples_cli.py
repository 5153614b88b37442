"""Tests of ``dynacell extract`` (Typer CliRunner on dynacell.cli.main.app)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import _ctc_folder
from typer.testing import CliRunner

from dynacell.cli.extract import default_dataset_name, parse_floats, parse_frames
from dynacell.cli.main import app
from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.samples import SampleSet

runner = CliRunner()




def _run(*args):
    return runner.invoke(app, ["-q", "extract", *map(str, args), "--no-progress"])


def test_extract_on_a_ctc_folder(tmp_path):
    img, tra = _ctc_folder(tmp_path)
    out = tmp_path / "set.npz"
    res = _run(img, "--labels", tra, "--lineage", tra, "-o", out, "--size", "16")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(out)
    assert s.x.shape[1:] == (4, 16, 16)
    assert s.meta.loc[s.meta.state == "mitotic", ["t", "label"]].values.tolist() == [[5, 1]]
    assert sorted(s.meta.loc[s.meta.state == "new_daughter", "label"]) == [2, 3]
    assert f"{len(s)} samples" in res.output and "mitotic 1" in res.output
    assert s.attrs["sources"]["images"].endswith("01") and s.meta["dataset"].iloc[0] == default_dataset_name(img)


def test_extract_without_lineage_frames_and_seed_layout(tmp_path):
    img, tra = _ctc_folder(tmp_path)
    out = tmp_path / "nolin"
    res = _run(img, "--labels", tra, "-o", out, "--frames", "2:5", "--assume-state", "stable",
               "--seed-layout", tmp_path / "seed", "--dataset", "toy")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "nolin.npz")
    assert sorted(set(s.meta.t)) == [2, 3, 4] and s.counts() == {"stable": 6}
    assert len(list((tmp_path / "seed" / "stable").iterdir())) == 6


def test_extract_user_errors(tmp_path):
    img, tra = _ctc_folder(tmp_path, T=4)
    out = tmp_path / "x.npz"
    assert _run(img, "--labels", tra, "-o", out).exit_code == 0
    res = _run(img, "--labels", tra, "-o", out)
    assert isinstance(res.exception, OutputExistsError)
    res = _run(img, "--labels", tra, "-o", tmp_path / "y", "--states", "mitosis")
    assert isinstance(res.exception, InvalidInputError) and "mitosis" in str(res.exception)
    with pytest.raises(InvalidInputError, match="--frames"):
        parse_frames("5:2")
    assert parse_frames("3:6") == range(3, 6) and parse_frames("4") == range(4, 5) and parse_frames(None) is None
    with pytest.raises(InvalidInputError, match="--size"):
        parse_floats("a,b", "--size")


def test_main_prints_one_line_for_user_errors(tmp_path):
    import subprocess
    import sys

    img, tra = _ctc_folder(tmp_path, T=3)
    cmd = [sys.executable, "-c", "from dynacell.cli.main import main; main()", "extract", str(img),
           "--labels", str(tra), "-o", str(tmp_path / "z"), "--frames", "x:y", "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.strip().startswith("dynacell: error: --frames")


@pytest.mark.data
def test_extract_bacteria_every_division_is_a_sample(ctc, tmp_path):
    d = ctc / "bacteria-phc"
    res = _run(d / "01", "--labels", d / "01_GT" / "TRA", "--lineage", d / "01_GT" / "TRA", "-o", tmp_path / "b")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "b.npz")
    c = s.counts()
    assert c["mitotic"] == 356 and c["new_daughter"] == 2 * 356  # 356 divisions in man_track.txt
    assert s.attrs["skipped"] == {"no_image": 0, "no_label_image": 0, "absent_from_mask": 0}
    assert s.attrs["label_ids_not_in_lineage"] == 0  # TRA masks and man_track.txt agree


@pytest.mark.data
def test_extract_hela_uses_sparse_tra_masks(ctc, tmp_path):
    d = ctc / "Fluo-N2DL-HeLa"
    res = _run(d / "02", "--labels", d / "02_GT" / "TRA", "--lineage", d / "02_GT" / "TRA" / "man_track.txt",
               "-o", tmp_path / "h", "--frames", "0:8")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "h.npz")
    assert set(s.meta["t"]) <= {1, 2, 4, 6, 7}  # the frames 0-7 that have TRA masks
    assert s.attrs["skipped"]["no_label_image"] > 0 and s.attrs["skipped"]["absent_from_mask"] == 0
    assert "no label image" in res.output


@pytest.mark.data
@pytest.mark.parametrize("case", ["mouse", "cho"])
def test_extract_3d_without_lineage(shared_data, tmp_path, case):
    if case == "mouse":
        d = shared_data / "embryo3d" / "mouse-8cell"
        args = [d / "images", "--labels", d / "labels", "--frames", "0:2", "--size", "16,32,32"]
        shape, n = (16, 32, 32), 16  # 8 nuclei per frame
    else:
        d = shared_data / "ctc" / "Fluo-N3DH-CHO"
        args = [d / "02", "--labels", d / "02_ERR_SEG", "--frames", "0:2", "--size", "16",
                "--voxel-size-um", "1.0,0.202,0.202", "--target-voxel-um", "0.6"]
        shape, n = (16, 16, 16), None
    res = _run(*args, "-o", tmp_path / "s")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "s.npz")
    assert s.x.shape[2:] == shape and set(s.meta["state"]) == {"unknown"}
    if n is not None:
        assert len(s) == n
    assert (s.x[:, 3].reshape(len(s), -1).sum(axis=1) > 0).all()


@pytest.mark.data
def test_extract_gowt1_first_frames(ctc, tmp_path):
    """GOWT1 01, frames 0-19: one sample per labelled lineage node of those frames, ids all consistent."""
    from dynacell.lineage import label_events, read_lineage

    d = ctc / "Fluo-N2DH-GOWT1"
    if not d.exists():
        pytest.skip(f"{d} not found")
    res = _run(d / "01", "--labels", d / "01_GT" / "TRA", "--lineage", d / "01_GT" / "TRA", "-o", tmp_path / "g",
               "--frames", "0:20")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "g.npz")
    events = label_events(read_lineage(d / "01_GT" / "TRA", masks=False))
    expected = sum(1 for (t, _), st in events.items() if t < 20 and st != "unknown")
    assert len(s) == expected > 0
    assert s.attrs["label_ids_not_in_lineage"] == 0 and not any(s.attrs["skipped"].values())
    assert (s.x[:, 3].reshape(len(s), -1).sum(axis=1) > 0).all()


@pytest.mark.data
def test_extract_scale_normalised_gowt1(ctc, tmp_path):
    """--target-diameter zooms GOWT1 (large nuclei at 0.24 µm/px) so nuclei span ~18 crop pixels."""
    d = ctc / "Fluo-N2DH-GOWT1"
    if not d.exists():
        pytest.skip(f"{d} not found")
    res = _run(d / "01", "--labels", d / "01_GT" / "TRA", "--lineage", d / "01_GT" / "TRA", "-o", tmp_path / "g",
               "--frames", "20:23", "--target-diameter", "18")
    assert res.exit_code == 0, res.output
    s = SampleSet.load(tmp_path / "g.npz")
    scale = s.attrs["scale_normalization"]
    assert scale["target_diameter_px"] == 18
    # the mask channel of a crop holds about one nucleus of ~18 px diameter: area ≈ π·9² px
    areas = s.x[:, 3].reshape(len(s), -1).sum(axis=1)
    assert 0.4 * np.pi * 81 < np.median(areas) < 2.0 * np.pi * 81
