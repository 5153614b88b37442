"""Tests of the ``dynacell run`` and ``dynacell demo`` commands (Typer app, in process).

The classifier is a tiny *untrained* model folder made here (``4ncnn`` with random weights):
these tests check the plumbing, not the accuracy of the shipped models.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest
import tifffile
from _helpers import make_tiny_model, synthetic_movie


@pytest.fixture(scope="module")
def tiny_2d(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny2d", 2)


@pytest.fixture(scope="module")
def ctc_movie(tmp_path_factory):
    """The synthetic movie of test_pipeline_run written as CTC folders ``01/tTTT.tif``, ``01_SEG/maskTTT.tif``."""
    root = tmp_path_factory.mktemp("ctcdata")
    images, labels = synthetic_movie(T=5)
    (root / "01").mkdir()
    (root / "01_SEG").mkdir()
    for t in range(5):
        tifffile.imwrite(root / "01" / f"t{t:03d}.tif", np.asarray(images.frame(t)).clip(0).astype(np.uint16))
        tifffile.imwrite(root / "01_SEG" / f"mask{t:03d}.tif", np.asarray(labels.frame(t)))
    return root


def _main(monkeypatch, capsys, *args):
    """Run the console entry point; returns (exit code, stdout, stderr)."""
    from dynacell.cli.main import main

    monkeypatch.setattr(sys, "argv", ["dynacell", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_run_end_to_end(tmp_path, tiny_2d, ctc_movie, monkeypatch, capsys):
    out = tmp_path / "res"
    code, stdout, _ = _main(monkeypatch, capsys, "run", ctc_movie / "01", "--labels", ctc_movie / "01_SEG",
                            "--model", tiny_2d, "-o", out, "--voxel-size-um", 0.5, 0.5,
                            "--frame-interval-s", 60, "--no-progress", "--no-video")
    assert code == 0, stdout
    assert "dynacell run: 5 frames" in stdout
    info = json.loads((out / "run.json").read_text())
    assert info["parameters"]["voxel_size_um"] == [0.5, 0.5]
    assert info["parameters"]["frame_interval_s"] == 60
    assert info["parameters"]["model"] == "tiny-untrained-2d"
    states = pd.read_csv(out / "states.csv")
    assert len(states) == 2 * 3 + 3 * 2
    assert not (out / "overlay.mp4").exists()


def test_cli_run_reads_the_chosen_channel(tmp_path, tiny_2d, ctc_movie, monkeypatch, capsys):
    """A 2-channel stack: --channel 1 (the nuclei) runs and is recorded; no --channel is refused."""
    images, _ = synthetic_movie(T=5)
    nuclei = np.asarray(images.data).clip(0).astype(np.uint16)
    stack = np.stack([np.zeros_like(nuclei), nuclei], axis=1)  # (T, C, Y, X): channel 0 empty
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "TCYX"})
    base = ["run", path, "--labels", ctc_movie / "01_SEG", "--model", tiny_2d, "--no-progress", "--no-video"]
    code, _, err = _main(monkeypatch, capsys, *base, "-o", tmp_path / "refused")
    assert code == 2 and "2 channels" in err and "--channel" in err
    assert not (tmp_path / "refused").exists()
    code, stdout, _ = _main(monkeypatch, capsys, *base, "-o", tmp_path / "res", "--channel", 1)
    assert code == 0, stdout
    assert json.loads((tmp_path / "res" / "run.json").read_text())["parameters"]["channel"] == 1


@pytest.mark.parametrize("case", ["exists", "unknown_model", "missing_labels", "bad_voxel"])
def test_cli_run_errors_are_one_line(case, tmp_path, tiny_2d, ctc_movie, monkeypatch, capsys):
    out = tmp_path / "res"
    args = ["run", ctc_movie / "01", "--labels", ctc_movie / "01_SEG", "--model", tiny_2d, "-o", out,
            "--no-progress"]
    expect = {"exists": "exists", "unknown_model": "no shipped state model", "missing_labels": "labels",
              "bad_voxel": "voxel-size-um"}[case]
    if case == "exists":
        out.mkdir()
    elif case == "unknown_model":
        args[args.index("--model") + 1] = "nuclei-9d"
    elif case == "missing_labels":
        args[args.index("--labels") + 1] = tmp_path / "nowhere"
    else:
        args += ["--voxel-size-um", 0, -1, 1]
    code, _, err = _main(monkeypatch, capsys, *args)
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.startswith("dynacell: error:")]
    assert len(lines) == 1 and expect in lines[0], err
    assert "Traceback" not in err
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".res")]
    assert not leftovers
    if case != "exists":
        assert not out.exists()


@pytest.mark.slow
def test_demo_small(tmp_path, monkeypatch, capsys):
    from dynacell.cli.demo import demo_summary
    from dynacell.demo import run_demo

    model = make_tiny_model(tmp_path / "tiny3d", 3)
    res = run_demo(tmp_path / "demo", seed=1, n_start=4, n_frames=10, min_divisions=1, min_deaths=0, model=model,
                   progress=False)
    assert (tmp_path / "demo" / "simulation" / "labels" / "man_track.txt").is_file()
    assert (tmp_path / "demo" / "run" / "report.html").is_file()
    ev = res.evaluation
    assert ev["n_scored"] > 0 and 0.0 <= ev["states_after"]["macro_f1"] <= 1.0
    assert ev["tracking"]["TRA"] > 0.9  # simulated masks are exact: linking must be nearly perfect
    text = demo_summary(res)
    assert "macro-F1" in text and "TRA" in text
    code, _, err = _main(monkeypatch, capsys, "demo", "-o", tmp_path / "demo", "--model", model)
    assert code == 2 and "exists" in err


def test_demo_overwrite_keeps_the_old_output_when_the_demo_fails(tmp_path, monkeypatch):
    import dynacell.pipeline
    from dynacell.demo import run_demo

    model = make_tiny_model(tmp_path / "tiny3d", 3)
    out = tmp_path / "demo"
    out.mkdir()
    (out / "good.txt").write_text("an earlier result")

    def broken_run(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(dynacell.pipeline, "run", broken_run)
    with pytest.raises(KeyboardInterrupt):
        run_demo(out, seed=1, n_start=3, n_frames=4, min_divisions=0, min_deaths=0, model=model,
                 overwrite=True, progress=False)
    assert (out / "good.txt").read_text() == "an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "tiny3d"]
