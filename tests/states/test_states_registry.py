"""Tests of the state-classifier registry: load_model, StateClassifier, shipped models, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from _helpers import state_card

from dynacell import STATES
from dynacell.errors import FormatError, InvalidInputError
from dynacell.states import available_models, default_model, load_model


def _folder(tmp_path: Path, ndim: int = 2, temperature: float = 1.0) -> Path:
    from dynacell.models import build_model
    from dynacell.cards import sha256_file

    torch.manual_seed(0)
    model = build_model("dcnet", ndim, n_classes=3, width=4)
    folder = tmp_path / f"m{ndim}d"
    folder.mkdir()
    torch.save(model.state_dict(), folder / "weights.pt")
    card = state_card(name=folder.name, architecture="dcnet", model_kwargs={"width": 4},
                      classes=["stable", "mitotic", "new_daughter"], ndim=ndim, crop_size_px=[16] * ndim,
                      temperature=temperature, weights_sha256=sha256_file(folder / "weights.pt"))
    (folder / "model.yaml").write_text(yaml.safe_dump(card))
    return folder


def test_unknown_name_lists_the_shipped_models() -> None:
    with pytest.raises(InvalidInputError) as err:
        load_model("no-such-model")
    for name in available_models():
        assert name in str(err.value)


def test_folder_model_predicts_probabilities_with_temperature(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((7, 4, 16, 16), dtype=np.float32)
    cold = load_model(_folder(tmp_path, temperature=1.0))
    p = cold.predict_proba(x, batch_size=3)
    assert p.shape == (7, 3) and p.dtype == np.float32
    assert np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert cold.classes == ("stable", "mitotic", "new_daughter")
    (tmp_path / "b").mkdir()
    hot = load_model(_folder(tmp_path / "b", temperature=4.0))
    q = hot.predict_proba(x)
    # a higher temperature flattens the distribution, same arg-max
    assert (q.max(1) <= p.max(1) + 1e-6).all()
    assert (q.argmax(1) == p.argmax(1)).all()
    assert list(cold.predict(x)) == [cold.classes[i] for i in p.argmax(1)]


def test_dimension_and_size_mismatch_are_clear_errors(tmp_path: Path) -> None:
    clf = load_model(_folder(tmp_path, ndim=2))
    with pytest.raises(InvalidInputError, match="3D model"):
        clf.predict_proba(np.zeros((1, 4, 16, 16, 16), np.float32))
    with pytest.raises(InvalidInputError, match="16"):
        clf.predict_proba(np.zeros((1, 4, 32, 32), np.float32))


def test_tampered_weights_and_missing_files(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    with open(folder / "weights.pt", "ab") as fh:
        fh.write(b"0")
    with pytest.raises(FormatError, match="sha256"):
        load_model(folder)
    (folder / "model.yaml").unlink()
    with pytest.raises(FormatError, match="model.yaml"):
        load_model(folder)


@pytest.mark.parametrize("name", ["nuclei-2d", "nuclei-2d-general", "nuclei-3d"])
def test_shipped_model_loads_and_predicts(name: str) -> None:
    if name not in available_models():
        pytest.skip(f"{name} is not shipped in this checkout")
    clf = load_model(name)
    assert clf.ndim == (3 if "-3d" in name else 2)
    assert set(clf.classes) <= set(STATES) and clf.classes[0] == "stable"
    test = clf.card.metrics["test"]
    assert 0.0 <= test["macro_f1"] <= 1.0 and test["n"] > 0
    x = np.random.default_rng(0).random((3, clf.n_input_channels, *clf.crop_size), dtype=np.float32)
    p = clf.predict_proba(x)
    assert p.shape == (3, len(clf.classes)) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert (Path(clf.path) / "weights.pt").stat().st_size < 2_000_000


@pytest.mark.parametrize("name", ["nuclei-2d", "nuclei-2d-general", "nuclei-3d"])
def test_shipped_cards_give_the_leave_one_dataset_out_headline(name: str) -> None:
    """Issue 11: every shipped state model's card records its recipe's leave-one-dataset-out figures."""
    lodo = load_model(name).card.metrics["leave_one_dataset_out"]
    assert lodo["command"].startswith("python benchmarks/states_lodo.py") and lodo["measured"].startswith("2026-")
    held_out = {k: v for k, v in lodo.items() if isinstance(v, dict)}
    assert set(held_out) == ({"wormguides", "sim-embryo"} if name == "nuclei-3d" else {"bacteria-phc", "hela02", "gowt1"})
    for figures in held_out.values():
        scores = figures["macro_f1"].values() if isinstance(figures["macro_f1"], dict) else [figures["macro_f1"]]
        assert figures["n_test"] > 1000 and all(0.0 < f < 1.0 for f in scores)


@pytest.mark.parametrize("name", ["nuclei-2d", "nuclei-2d-general", "nuclei-3d"])
def test_inference_net_folds_batchnorm_and_keeps_the_logits(name: str) -> None:
    if name not in available_models():
        pytest.skip(f"{name} is not shipped in this checkout")
    clf = load_model(name)
    x = np.random.default_rng(1).random((5, clf.n_input_channels, *clf.crop_size), dtype=np.float32)
    fast = clf.predict_logits(x)
    net = clf._inference_net()
    assert net is not clf.model
    if clf.ndim == 2 and clf.card.architecture == "dcnet":  # PyTorch's optimised graph (runtime.inference_graph)
        assert type(net).__name__ == "InferenceGraph" and "mkldnn_convolution" in str(net.graph.graph)
        assert "batch_norm" not in str(net.graph.graph)  # every BatchNorm folded into its convolution
        assert load_model(name)._inference_net() is net  # made once per process for the same weights
    else:  # 3D: the eager copy
        assert isinstance(net, type(clf.model))
        if clf.card.architecture == "dcnet":  # every BatchNorm follows a convolution (4ncnn: after a pooling)
            assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in clf.model.modules())  # model as loaded
    with torch.inference_mode():
        ref = clf.model(torch.from_numpy(x[:, list(clf.channels)])).numpy()
    assert np.abs(fast - ref).max() < 1e-4 * max(1.0, float(np.abs(ref).max()))
    assert np.abs(clf.predict_proba(x) - load_model(name).predict_proba(x)).max() == 0


def test_cli_models_list_shows_shipped_models() -> None:
    from typer.testing import CliRunner

    from dynacell.cli.main import app

    res = CliRunner().invoke(app, ["models", "list"])
    assert res.exit_code == 0, res.output
    for name in available_models():
        assert name in res.output


def test_lodo_summary_reads_the_cards_headline() -> None:
    """``models list`` shows each card's leave-one-dataset-out figures (issue 11's headline), seed 0 first."""
    from dynacell.cli.models import _lodo_summary

    lodo = {"what": "x", "a": {"n_test": 3, "macro_f1": 0.5}, "b": {"macro_f1": {"seed_1": 0.2, "seed_0": 0.75}},
            "note": {"text": "no figure"}}
    assert _lodo_summary(lodo) == "a 0.500, b 0.750"
    assert _lodo_summary({}) == "–"
    assert "0.753" in _lodo_summary(load_model("nuclei-2d-general").card.metrics["leave_one_dataset_out"])


@pytest.mark.slow
@pytest.mark.data
def test_shipped_2d_model_scores_on_held_out_hela_trees(ctc: Path) -> None:
    """nuclei-2d on HeLa 02 lineage trees held out from its training (test side of its split)."""
    if "nuclei-2d" not in available_models():
        pytest.skip("nuclei-2d is not shipped in this checkout")
    from dynacell.io import open_labels, open_movie
    from dynacell.lineage import EventRules, read_lineage
    from dynacell.samples import build_sample_set
    from dynacell.states.evaluate import evaluate_samples

    clf = load_model("nuclei-2d")
    root = ctc / "Fluo-N2DL-HeLa"
    frames = [11, 13, 14, 16, 18]
    labels = open_labels(root / "02_GT" / "TRA")
    scale = clf.card.scale_normalization
    err_seg = open_labels(root / "02_ERR_SEG")
    if scale:  # trained on full masks (02_ERR_SEG relabelled with the TRA ids), nucleus-size rule
        from dynacell.samples import relabel_movie_by_markers

        labels, _ = relabel_movie_by_markers(err_seg, labels)
    # segmentation context (if the model reads it) from the automatic segmentation of every frame
    ss = build_sample_set(open_movie(root / "02"), labels,
                          read_lineage(root / "02_GT" / "TRA" / "man_track.txt"),
                          EventRules(stable_window=2, stable_fraction=2.0), size=tuple(clf.crop_size), dataset="hela02",
                          frames=frames, target_diameter_px=scale.target_diameter_px if scale else None,
                          context=clf.context, context_labels=err_seg if clf.context else None)
    meta = ss.meta
    test_trees = clf.card.held_out["hela02"]["test_tree_ids"]
    held = (meta["tree_id"].isin(test_trees) & meta["state"].isin(clf.classes)).to_numpy()
    rep = evaluate_samples(clf, ss.x[held], meta["state"].to_numpy()[held])
    assert rep["n"] > 50
    assert rep["balanced_accuracy"] > (0.85 if clf.context else 0.6)  # measured 0.983 (n 167) with context


@pytest.mark.parametrize("ndim", [2, 3])
def test_default_model_is_shipped_and_used_by_resolve_model(ndim):
    """The default has one home (``default_model``) and ``resolve_model(None, ...)`` loads it."""
    from dynacell.states.registry import resolve_model

    name = default_model(ndim)
    assert name in available_models()
    clf, resolved = resolve_model(None, ndim, "cpu")
    assert resolved == name and clf.ndim == ndim


def test_default_model_rejects_other_dimensionalities():
    with pytest.raises(InvalidInputError, match="no default state model for 4D"):
        default_model(4)
