"""dynacell diffusion simulate | predict | benchmark end to end (tiny model, tiny data)."""

import json

import pandas as pd
import pytest
import tifffile


def test_simulate_then_predict(tmp_path, tiny_model, run_cli):
    sim = tmp_path / "sim"
    code, out, err = run_cli("diffusion", "simulate", "-o", sim, "--n", 4, "--seed", 3, "--pixel-size-um", 0.12, 0.12)
    assert code == 0, err
    stacks = tifffile.imread(sim / "stacks.tif")
    truth = pd.read_csv(sim / "truth.csv")
    assert stacks.shape == (4, 16, 32, 32) and len(truth) == 4 and (truth["seed"] == 3).all()
    assert len(pd.read_csv(sim / "positions.csv")) == 4 * 16
    code, out, err = run_cli("diffusion", "predict", sim / "stacks.tif", "-o", tmp_path / "pred", "--voxel-size-um",
                             "0.12", "0.12", "--frame-interval-s", "0.005", "--model", tiny_model)
    assert code == 0, err
    df = pd.read_csv(tmp_path / "pred" / "predictions.csv")
    assert len(df) == 4
    assert {"D_um2_per_s", "D_lo68_um2_per_s", "D_hi68_um2_per_s", "D_cve_um2_per_s", "D_seed_msd_um2_per_s",
            "D_msd_optimal_um2_per_s"} <= set(df.columns)


def test_predict_bad_input_is_one_line_exit_2(tmp_path, tiny_model, run_cli):
    code, out, err = run_cli("diffusion", "predict", tmp_path / "missing.tif", "-o", tmp_path / "p",
                             "--voxel-size-um", "0.12", "0.12", "--frame-interval-s", "0.005", "--model", tiny_model)
    assert code == 2 and "not found" in err
    tifffile.imwrite(tmp_path / "s.tif", __import__("numpy").zeros((16, 32, 32), "uint16"))
    code, out, err = run_cli("diffusion", "predict", tmp_path / "s.tif", "-o", tmp_path / "p",
                             "--frame-interval-s", "0.005", "--model", tiny_model)
    assert code == 2 and "--voxel-size-um" in err
    assert not (tmp_path / "p").exists()
    stacks = __import__("numpy").ones((2, 16, 32, 32), "float32")
    stacks[1, 3, 4, 5] = float("nan")
    __import__("numpy").save(tmp_path / "nan.npy", stacks)
    code, out, err = run_cli("diffusion", "predict", tmp_path / "nan.npy", "-o", tmp_path / "p", "--voxel-size-um",
                             "0.12", "0.12", "--frame-interval-s", "0.005", "--model", tiny_model)
    assert code == 2 and "1 NaN or infinite pixel value(s), the first in stack 1, frame 3 at (y, x) = (4, 5)" in err
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_benchmark_writes_table_and_figures(tmp_path, tiny_model, run_cli):
    code, out, err = run_cli("diffusion", "benchmark", "-o", tmp_path / "b", "--n", 24, "--seed", 5,
                             "--model", tiny_model)
    assert code == 0, err
    res = json.loads(out)
    methods = [r["method"] for r in res["table"]]
    assert any("tiny" in m for m in methods) and "CVE" in methods and "seed MSD of centroids" in methods
    for f in ("results.csv", "table.csv", "table.md", "bins.csv", "pred_vs_true.png", "rel_error_vs_D.png",
              "rel_error_vs_snr.png", "settings.json"):
        assert (tmp_path / "b" / f).is_file(), f
    assert json.loads((tmp_path / "b" / "settings.json").read_text())["settings"]["seed"] == 5
