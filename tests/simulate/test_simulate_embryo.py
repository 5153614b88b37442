"""Tests of dynacell.simulate.simulate_embryo, SimulationResult.save and ``dynacell simulate``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from scipy.spatial.distance import pdist
from typer.testing import CliRunner

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.simulate import grow_embryo, simulate_embryo


@pytest.fixture(scope="module")
def demo():
    """The demo embryo: 8 cells, 30 frames, >= 4 divisions and >= 1 death."""
    return simulate_embryo(n_start=8, n_frames=30, min_divisions=4, min_deaths=1, seed=0, progress=False)


def test_demo_embryo_grows_divides_and_dies(demo):
    lin = demo.lineage
    assert demo.images.ndim == 4 and demo.images.shape[0] == 30
    assert len(lin.nodes_at(0)) == 8
    assert len(lin.nodes_at(29)) >= 16  # grows (expected ~40 with the default rates)
    assert len(lin.divisions()) >= 4
    states = pd.Series([d["state"] for _, d in lin.graph.nodes(data=True)]).value_counts()
    assert states.get("death", 0) >= 1
    assert states.get("mitotic", 0) == len(lin.divisions())
    assert demo.params["embryo"]["n_divisions"] == len(lin.divisions())
    for t in range(30):
        assert set(np.unique(demo.labels[t]).tolist()) - {0} == lin.labels_at(t), f"frame {t}"


def test_labels_are_track_ids(demo):
    """Simulated labels stay constant along a track; daughters get new ids (CTC)."""
    g = demo.lineage.graph
    for u, v in g.edges:
        if g.out_degree(u) == 1:
            assert u[1] == v[1]
        else:
            assert v[1] != u[1]


def test_cells_do_not_overlap():
    cells, container, _ = grow_embryo(n_start=8, n_frames=20, radius_um=4.0, seed=5)
    by_t: dict[int, list[np.ndarray]] = {}
    for c in cells:
        for k, p in enumerate(c["positions"]):
            by_t.setdefault(c["t0"] + k, []).append(p)
    for t, ps in by_t.items():
        ps = np.asarray(ps)
        if len(ps) > 1:
            assert pdist(ps).min() > 0.9 * 2 * 4.0, f"frame {t}"
        assert np.linalg.norm(ps, axis=1).max() <= container - 4.0 + 1e-6


def test_determinism_and_2d_colony():
    kw = dict(ndim=2, n_start=4, n_frames=8, min_cycle_frames=3, progress=False,
              voxel_size_um=(0.5, 0.5))
    a = simulate_embryo(seed=4, **kw)
    b = simulate_embryo(seed=4, **kw)
    c = simulate_embryo(seed=5, **kw)
    assert a.images.ndim == 3 and a.axes == "TYX"
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.images, c.images)


def test_guarantee_fails_loudly():
    with pytest.raises(InvalidInputError, match="divisions"):
        grow_embryo(n_start=1, n_frames=3, division_rate_per_frame=0.0, min_divisions=1)
    with pytest.raises(InvalidInputError, match="ndim"):
        simulate_embryo(ndim=4)


def test_save_roundtrip(demo, tmp_path):
    from dynacell.lineage import read_lineage

    out = demo.save(tmp_path / "sim")
    frames = sorted((out / "images").glob("t*.tif"))
    assert len(frames) == 30
    np.testing.assert_array_equal(tifffile.imread(frames[3]), demo.images[3])
    masks = sorted((out / "labels").glob("man_track*.tif"))
    assert len(masks) == 30
    np.testing.assert_array_equal(tifffile.imread(masks[5]), demo.labels[5])  # labels are track ids here
    lin = read_lineage(out / "labels")
    assert len(lin.divisions()) == len(demo.lineage.divisions())
    assert len(lin) == len(demo.lineage)
    params = json.loads((out / "params.json").read_text())
    assert params["seed"] == 0 and params["embryo"]["n_start"] == 8
    states = pd.read_csv(out / "states.csv")
    assert len(states) == len(demo.lineage)
    assert set(states["state"]) <= {"stable", "mitotic", "new_daughter", "death", "unknown"}
    with pytest.raises(OutputExistsError):
        demo.save(out)
    demo.save(out, overwrite=True)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_cli_simulate(tmp_path):
    from dynacell.cli.main import app

    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["simulate", "-o", str(out), "--ndim", "2", "--frames", "6", "--n-start", "3",
                              "--seed", "2", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert len(list((out / "images").glob("t*.tif"))) == 6
    assert json.loads((out / "params.json").read_text())["seed"] == 2
    res2 = runner.invoke(app, ["simulate", "-o", str(out), "--ndim", "2", "--frames", "6", "--no-progress"])
    assert isinstance(res2.exception, OutputExistsError)
    res3 = runner.invoke(app, ["simulate", "-o", str(tmp_path / "x"), "--preset", "nope", "--no-progress"])
    assert isinstance(res3.exception, InvalidInputError)
