"""``dynacell forecast evaluate|evaluate-tracks|predict`` on synthetic inputs with the shipped models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from _helpers import run_main

from dynacell.forecast import available_models

needs_models = pytest.mark.skipif(not {"frames-unet", "positions-2d"} <= set(available_models()),
                                  reason="shipped forecast models not present")


@needs_models
@pytest.mark.slow
def test_evaluate_prints_model_and_every_baseline(tmp_path, monkeypatch, capsys, make_blob):
    np.savez(tmp_path / "m.npz", images=(make_blob(n_frames=10, size=32) * 100).astype(np.uint16))
    code, out, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "m.npz", "--model", "frames-unet",
                              "--voxel-size-um", "0.5", "0.5")
    assert code == 0, err
    res = json.loads(out)
    for key in ("mse", "mse_persistence", "mse_smoothed_persistence", "mse_linear", "mse_flow", "com_error_px",
                "com_error_px_ci"):
        assert key in res
    assert res["persistence"]["com_error_um"] == pytest.approx(0.5 * res["persistence"]["com_error_px"])


@needs_models
@pytest.mark.slow
def test_evaluate_tracks_and_predict_positions(tmp_path, monkeypatch, capsys, make_tracks):
    csv = tmp_path / "tracks.csv"
    make_tracks(n_tracks=20, n_frames=15, noise=0.2).to_csv(csv, index=False)
    code, out, err = run_main(monkeypatch, capsys, "forecast", "evaluate-tracks", csv, "--model", "positions-2d",
                              "--horizon", "2", "--test-fraction", "0.3")
    assert code == 0, err
    res = json.loads(out)
    for key in ("ade_um", "fde_um", "ade_um_constant_velocity", "ade_um_kalman", "ade_um_kalman_prw",
                "ade_um_constant_position"):
        assert key in res
    # noise-free steps plus small noise: constant velocity is far better than standing still
    assert res["ade_um_constant_velocity"] < res["ade_um_constant_position"]
    code, out, err = run_main(monkeypatch, capsys, "forecast", "predict", csv, "-o", tmp_path / "pred", "--model",
                              "positions-2d", "--steps", "2")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "pred" / "positions.csv")
    assert len(table) == 40 and {"track_id", "t", "y", "x", "y_um", "x_um"} <= set(table.columns)
    code, _, err = run_main(monkeypatch, capsys, "forecast", "predict", csv, "-o", tmp_path / "pred", "--method",
                            "kalman")
    assert code == 2 and "not empty" in err


@pytest.mark.slow
def test_bad_inputs_exit_with_one_line(tmp_path, monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "none.npz", "--model", "nope")
    assert code == 2 and "nope" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("t,y\n0,1\n")
    code, _, err = run_main(monkeypatch, capsys, "forecast", "predict", bad, "-o", tmp_path / "o", "--method",
                            "constant_velocity")
    assert code == 2 and "track_id" in err and not (tmp_path / "o").exists()


@pytest.mark.slow
def test_missing_frames_never_make_a_window_and_predictions_keep_frame_numbers(tmp_path, monkeypatch, capsys,
                                                                               make_blob):
    """A file absent from a movie must not be bridged as one time step; NaN pixels are named."""
    movie = (make_blob(n_frames=14, size=32) * 100).astype(np.float32)
    numbers = [*range(6), *range(7, 15)]  # frame 6 missing
    keep = [t for t in range(15) if t != 6]
    np.savez(tmp_path / "m.npz", images=np.stack([make_blob(n_frames=15, size=32)[t] * 100 for t in keep]),
             frame_indices=np.asarray(numbers))
    code, out, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "m.npz", "--model",
                              "frames-mc-linear", "--test-fraction", "0.5")
    assert code == 0, err
    res = json.loads(out)
    k = res["k"]
    assert all(numbers[t] - numbers[t - k] == k for t in res["targets"])
    assert res["windows_left_out_across_missing_frames"] == sum(
        numbers[t] - numbers[t - k] != k for t in range(max(k, len(numbers) - 7), len(numbers)))
    assert all(numbers[t] - numbers[t - k] == k for t in res["fitted_on_targets"])
    code, out, err = run_main(monkeypatch, capsys, "forecast", "predict", tmp_path / "m.npz", "-o", tmp_path / "p",
                              "--model", "frames-mc-linear", "--steps", "2")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "p").glob("pred*.tif")) == ["pred015.tif", "pred016.tif"]
    assert json.loads((tmp_path / "p" / "forecast.json").read_text())["last_frame"] == 14
    np.savez(tmp_path / "late.npz", images=movie[:8], frame_indices=np.asarray([0, 1, 2, 3, 4, 5, 6, 8]))
    code, _, err = run_main(monkeypatch, capsys, "forecast", "predict", tmp_path / "late.npz", "-o", tmp_path / "p2",
                            "--model", "frames-mc-linear")
    assert code == 2 and "not consecutive" in err and not (tmp_path / "p2").exists()
    movie[3, 4, 5] = np.nan
    np.savez(tmp_path / "nan.npz", images=movie)
    code, _, err = run_main(monkeypatch, capsys, "forecast", "evaluate", tmp_path / "nan.npz", "--model",
                            "frames-mc-linear")
    assert code == 2 and "frame 3: 1 NaN" in err and "(4, 5)" in err
