"""Tests of dynacell.train: config, splits, augmentation, fit → model folder → load_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from _helpers import synthetic_set

from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.train import (
    AugmentConfig,
    SplitConfig,
    TrainConfig,
    assign_split,
    augment_batch,
    fit,
    load_config,
)


@pytest.fixture(scope="module")
def set_path(tmp_path_factory) -> Path:
    return synthetic_set().save(tmp_path_factory.mktemp("sets") / "synth.npz")


def _config(set_path: Path, out: Path, **kw) -> TrainConfig:
    base = dict(name="tiny", data=[str(set_path)], out=str(out), model="dcnet", model_kwargs={"width": 4},
                epochs=8, samples_per_epoch=256, batch_size=32, lr=3e-3, patience=3, num_threads=1,
                split=SplitConfig(by="tree", fractions=(0.6, 0.2, 0.2), seed=1))
    base.update(kw)
    return TrainConfig(**base)


def test_config_rejects_unknown_fields_and_models(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text(yaml.safe_dump({"name": "x", "data": ["a.npz"], "out": "o", "epochs": 1, "learning_rate": 1}))
    with pytest.raises(InvalidInputError, match="learning_rate"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"name": "x", "data": ["a.npz"], "out": "o", "model": "vgg"}))
    with pytest.raises(InvalidInputError, match="vgg"):
        load_config(bad)
    with pytest.raises(InvalidInputError, match="training config not found"):
        load_config(tmp_path / "missing.yaml")


def test_tree_split_never_cuts_a_tree() -> None:
    meta = pd.DataFrame({"dataset": ["a"] * 60, "t": np.arange(60) % 10, "tree_id": np.arange(60) // 3})
    side = assign_split(meta, SplitConfig(by="tree", seed=3))
    per_tree = pd.Series(side).groupby(meta["tree_id"]).nunique()
    assert (per_tree == 1).all()
    assert set(side) == {"train", "val", "test"}


def test_time_split_is_ordered_with_gaps_and_held_out_dataset() -> None:
    meta = pd.DataFrame({"dataset": ["a"] * 100 + ["b"] * 10, "t": list(range(100)) + list(range(10)),
                         "tree_id": 0})
    side = assign_split(meta, SplitConfig(by="time", gap_frames=2, test_datasets=["b"]))
    a = side[:100]
    assert (side[100:] == "test").all()
    t_train, t_val, t_test = (meta["t"][:100][a == s] for s in ("train", "val", "test"))
    assert t_train.max() + 2 < t_val.min() and t_val.max() + 2 < t_test.min()
    assert (a == "gap").sum() == 4
    with pytest.raises(InvalidInputError, match="zzz"):
        assign_split(meta, SplitConfig(test_datasets=["zzz"]))


def test_augmentation_keeps_shape_mask_and_temporal_consistency() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(8, 4, 12, 12)
    x[:, 3] = (x[:, 3] > 0.5).float()
    x[:, 0] = x[:, 1]
    x[:, 2] = x[:, 1]
    cfg = AugmentConfig(noise_std=0.0)
    y = augment_batch(x, cfg, gen)
    assert y.shape == x.shape
    assert set(torch.unique(y[:, 3]).tolist()) <= {0.0, 1.0}
    # same intensity change on t-1, t, t+1: no fake temporal difference
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 2], y[:, 1])
    assert not torch.allclose(y, x)
    assert torch.equal(augment_batch(x, AugmentConfig(enabled=False), gen), x)


def test_fit_writes_a_model_folder_that_loads_and_predicts(set_path: Path, tmp_path: Path) -> None:
    from dynacell.cards import sha256_file
    from dynacell.states import load_model

    cfg = _config(set_path, tmp_path)
    folder = fit(cfg, progress=False)
    for f in ("weights.pt", "model.yaml", "config.yaml", "history.csv", "test_predictions.csv"):
        assert (folder / f).is_file()
    card = yaml.safe_load((folder / "model.yaml").read_text())
    assert card["weights_sha256"] == sha256_file(folder / "weights.pt")
    assert card["classes"] == ["stable", "mitotic", "new_daughter"]
    assert card["crop_size_px"] == [16, 16] and card["crop_size_um"] == [8.0, 8.0]
    test = card["metrics"]["test"]
    assert {"macro_f1", "balanced_accuracy", "per_class", "confusion", "ece", "ece_before_temperature", "n"} <= set(test)
    assert test["macro_f1"] > 0.5  # separable synthetic classes: far above chance (0.33)
    assert len(pd.read_csv(folder / "history.csv")) >= 1
    # the saved config reproduces the run's settings
    assert TrainConfig.model_validate(yaml.safe_load((folder / "config.yaml").read_text())) == cfg
    clf = load_model(folder)
    p = clf.predict_proba(np.random.default_rng(0).random((5, 4, 16, 16), dtype=np.float32))
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    with pytest.raises(OutputExistsError):
        fit(cfg, progress=False)


def test_fit_with_weighted_loss_and_held_out_dataset(set_path: Path, tmp_path: Path) -> None:
    cfg = _config(set_path, tmp_path, model="4ncnn", model_kwargs={}, balance="loss", epochs=2,
                  split=SplitConfig(by="tree", fractions=(0.8, 0.2, 0.0), test_datasets=["synth-b"]))
    folder = fit(cfg, progress=False)
    preds = pd.read_csv(folder / "test_predictions.csv")
    assert set(preds["dataset"]) == {"synth-b"}
    card = yaml.safe_load((folder / "model.yaml").read_text())
    assert card["balance"] == "loss" and card["architecture"] == "4ncnn"


def test_cli_train_and_evaluate(set_path: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dynacell.cli.main import app

    cfg = _config(set_path, tmp_path, epochs=1)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    res = CliRunner().invoke(app, ["train", str(path), "--no-progress"])
    assert res.exit_code == 0, res.output
    folder = Path(json.loads(res.output.strip().splitlines()[-1])["model"])
    res = CliRunner().invoke(app, ["evaluate", "--samples", str(set_path), "--model", str(folder)])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert {"macro_f1", "balanced_accuracy", "per_class", "confusion", "ece", "n"} <= set(rep)
    assert rep["n"] == 120


def test_benchmark_states_runs_models_on_one_split_and_reuses(set_path: Path, tmp_path: Path) -> None:
    from dynacell.train.benchmark import benchmark_states

    cfg = _config(set_path, tmp_path / "unused", epochs=1, samples_per_epoch=64)
    runs = {"cnn-only": {"model": "cnn-only", "model_kwargs": {}}, "dcnet": {"model": "dcnet"}}
    table = benchmark_states(cfg, tmp_path / "bench", runs, progress=False)
    assert list(table["run"]) == ["cnn-only", "dcnet"]
    assert table["n_test"].nunique() == 1  # same test set for every model
    for f in ("results.csv", "results.md", "confusion.png", "reliability.png", "f1_per_class.png"):
        assert (tmp_path / "bench" / f).is_file()
    stamp = (tmp_path / "bench" / "dcnet" / "weights.pt").stat().st_mtime_ns
    again = benchmark_states(cfg, tmp_path / "bench", runs, progress=False)
    assert (tmp_path / "bench" / "dcnet" / "weights.pt").stat().st_mtime_ns == stamp  # reused, not retrained
    assert again["macro_f1"].tolist() == table["macro_f1"].tolist()
