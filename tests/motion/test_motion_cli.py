"""``dynacell motion`` and ``dynacell particles`` end to end on small simulated inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dynacell.motion.analysis import motion_summary
from dynacell.motion.simulate import brownian_tracks


def _csv(tmp_path, D=0.4, dt=0.05, px=0.1, n=60, T=40, sigma=0.02):
    x = brownian_tracks(n, T, D, dt, sigma_um=sigma, seed=11) / px + 200
    df = pd.DataFrame({"frame": np.tile(np.arange(T), n), "particle": np.repeat(np.arange(n), T),
                       "y": x[:, :, 0].ravel(), "x": x[:, :, 1].ravel()})
    p = tmp_path / "tracks.csv"
    df.to_csv(p, index=False)
    return p, df


@pytest.mark.slow
def test_motion_command_writes_outputs_and_summary(tmp_path, run_cli):
    p, _ = _csv(tmp_path)
    out = tmp_path / "out"
    code, stdout, err = run_cli("motion", p, "-o", out, "--pixel-size-um", "0.1", "--frame-interval-s", "0.05")
    assert code == 0, err
    s = json.loads(stdout)
    for k in ("n_tracks", "D_um2_per_s", "D_method", "alpha", "D_by_method"):
        assert k in s
    assert s["n_tracks"] == 60
    assert abs(s["D_um2_per_s"] - 0.4) < 4 * s["D_se_um2_per_s"]
    assert set(s["D_by_method"]) == {"msd_fit_optimal", "cve", "mle", "msd_slope_seed"}
    assert abs(s["alpha"] - 1) < 0.1
    for f in ("msd.csv", "diffusion.json", "correlations.csv", "moments.csv", "scaling.csv", "msd.png",
              "lambda.png", "velocity_correlation.png", "report.html", "tracks_diffusion.csv"):
        assert (out / f).stat().st_size > 0, f
    per = pd.read_csv(out / "tracks_diffusion.csv")
    assert len(per) == 60 and abs(per["D_cve_um2_per_s"].mean() - 0.4) < 0.1
    assert json.loads((out / "diffusion.json").read_text())["parameters"]["frame_interval_s"] == 0.05
    # an existing output is refused, then replaced with --overwrite
    code, _, err = run_cli("motion", p, "-o", out, "--pixel-size-um", "0.1", "--frame-interval-s", "0.05")
    assert code != 0 and "exists" in err
    code, _, _ = run_cli("motion", p, "-o", out, "--pixel-size-um", "0.1", "--frame-interval-s", "0.05",
                         "--overwrite")
    assert code == 0


@pytest.mark.slow
def test_motion_command_missing_units_is_one_line_error(tmp_path, run_cli):
    p, _ = _csv(tmp_path)
    code, _, err = run_cli("motion", p, "-o", tmp_path / "o", "--frame-interval-s", "0.05")
    assert code == 2 and "pixel size is unknown" in err
    assert not (tmp_path / "o").exists()


def test_motion_summary_is_json_safe(tmp_path):
    _, df = _csv(tmp_path, n=20, T=20)
    s = motion_summary(df, 0.1, 0.05)
    json.dumps(s, allow_nan=False)
    assert s["n_tracks"] == 20 and s["lambda_q"]["2"] == pytest.approx(1.0, abs=0.2)


def _spot_movie(folder, T=12, size=48, seed=0):
    import imageio.v3 as iio

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    pos = np.array([[12.0, 12.0], [30.0, 20.0], [20.0, 36.0]])
    folder.mkdir()
    truth = []
    for t in range(T):
        img = np.full((size, size), 10.0)
        for k, (y, x) in enumerate(pos):
            img += 200 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.5 ** 2))
            truth.append((t, k, y, x))
        img += rng.normal(0, 2, img.shape)
        iio.imwrite(folder / f"frame_{t:03d}.png", np.clip(img, 0, 255).astype(np.uint8))
        pos += rng.normal(0, 0.7, pos.shape)
    return pd.DataFrame(truth, columns=["t", "k", "y", "x"])


@pytest.mark.slow
def test_particles_then_motion(tmp_path, run_cli):
    truth = _spot_movie(tmp_path / "movie")
    out = tmp_path / "parts"
    code, stdout, err = run_cli("particles", tmp_path / "movie", "-o", out, "--pixel-size-um", "0.2",
                                "--frame-interval-s", "0.1", "--diameter-px", "7", "--minmass", "100",
                                "--min-length", "10")
    assert code == 0, err
    s = json.loads(stdout)
    assert s["n_tracks"] == 3 and s["n_localisations"] == 36
    tab = pd.read_csv(out / "tracks.csv")
    # every detection within 0.5 px of a true spot
    for _, r in tab.iterrows():
        tt = truth[truth["t"] == r["t"]]
        assert np.min(np.hypot(tt["y"] - r["y"], tt["x"] - r["x"])) < 0.5
    code, stdout, err = run_cli("motion", out, "-o", tmp_path / "mot")
    assert code == 0, err
    assert json.loads(stdout)["frame_interval_s"] == 0.1


@pytest.mark.slow
def test_particles_bad_diameter(tmp_path, run_cli):
    _spot_movie(tmp_path / "movie", T=2)
    code, _, err = run_cli("particles", tmp_path / "movie", "-o", tmp_path / "p", "--pixel-size-um", "0.2",
                           "--frame-interval-s", "0.1", "--diameter-px", "8")
    assert code == 2 and "odd" in err


@pytest.mark.slow
@pytest.mark.parametrize("cmd", ["motion", "particles"])
def test_help_follows_the_cli_convention(cmd):
    import re

    from typer.testing import CliRunner

    from dynacell.cli.main import app

    res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.output)
    assert "--out" in text and "-o" in text and "<bool>" not in text and "--overwrite" in text


def test_tracks_that_do_not_move():
    df = pd.DataFrame({"t": np.tile(np.arange(10), 3), "track_id": np.repeat([1, 2, 3], 10),
                       "y": np.repeat([5.0, 9.0, 20.0], 10), "x": np.repeat([1.0, 2.0, 3.0], 10)})
    s = motion_summary(df, 0.5, 1.0)
    json.dumps(s, allow_nan=False)
    assert s["D_um2_per_s"] == 0.0 and s["D_method"] == "cve" and s["alpha"] is None
    assert any("alpha" in n for n in s["notes"])
