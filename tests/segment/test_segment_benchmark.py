"""``dynacell benchmark segmentation`` / :mod:`dynacell.segment.benchmark` on tiny synthetic frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dynacell.errors import InvalidInputError
from dynacell.segment.benchmark import (
    aspect_from_reference,
    evaluate,
    load_models,
    markdown,
    run_benchmark,
)
from dynacell.train.segment import AnnotatedFrame


def _toy_loader(make_discs):
    """``loader(dataset, side)``: 'toy' = two 2D disc frames (full reference), 'toy3d' = one 3D stack."""
    def load(ds, side):
        assert side == "test"
        if ds == "toy":
            return [AnnotatedFrame("toy", t, *make_discs(seed=t), voxel_size_um=(0.5, 0.5)) for t in (0, 1)]
        if ds == "toy3d":
            img, lab = make_discs()
            # nuclei 4 planes deep, 21 px across: aspect 5.25:1:1
            return [AnnotatedFrame("toy3d", 0, np.stack([img * 0.1] + [img] * 4 + [img * 0.1]),
                                   np.stack([lab * 0] + [lab] * 4 + [lab * 0]))]
        raise AssertionError(ds)
    return load


def test_run_benchmark_table_csvs_and_speed(tmp_path, make_discs, tiny_model):
    out = tmp_path / "bench"
    lines = []
    res = run_benchmark(["classical", str(tiny_model)], ["toy", "toy3d"], out, threads=1,
                        speed_datasets=["toy"], loader=_toy_loader(make_discs), echo=lines.append)
    table = res["table"]
    # the folder label, not the card name; the 2D instance model also runs plane by plane on 3D
    assert list(zip(table.dataset, table.model)) == [("toy", "classical"), ("toy", "tiny-model"),
                                                     ("toy3d", "classical"), ("toy3d", "tiny-model")]
    classical = table.iloc[0]
    assert classical.n_ref == 6 and classical.SEG > 0.8 and classical["F1@0.5"] > 0.9
    assert str(table.n_pred.dtype) == "Int64" and "| 6 |" in lines[0].splitlines()[2]
    assert np.isnan(classical.ROC_AUC) and 0 <= table.iloc[1].ROC_AUC <= 1
    assert (table.cpu_s_per_frame >= 0).all()
    csv = pd.read_csv(out / "segment_benchmark.csv")
    assert len(csv) == 4 and (out / "toy_classical.png").stat().st_size > 0
    sp = pd.read_csv(out / "segment_speed.csv")
    assert list(sp.frame) == ["2D 96x96 toy"] * 2 and (sp.cpu_s >= 0).all()
    assert lines[0].startswith("| dataset | model |") and res["live_dead"].empty


def test_aspect_and_model_rules(make_discs, tiny_model):
    frames = _toy_loader(make_discs)("toy3d", "test")
    assert aspect_from_reference(frames) == (5.25, 1.0, 1.0)
    with pytest.raises(InvalidInputError, match="3D labels"):
        aspect_from_reference(_toy_loader(make_discs)("toy", "test"))
    (model,) = load_models([str(tiny_model)])
    model.card.architecture = "seed-unet"  # a 2D semantic model is not run on 3D frames
    t = evaluate([model], ["toy3d"], loader=_toy_loader(make_discs), verbose=False)
    assert t.empty


def test_bad_input_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="unknown dataset"):
        run_benchmark(["classical"], ["nope"])
    with pytest.raises(InvalidInputError, match="no model"):
        load_models([" "])
    with pytest.raises(InvalidInputError, match="threads"):
        run_benchmark(["classical"], ["gowt1"], threads=0)


def test_markdown_dash_for_missing():
    md = markdown(pd.DataFrame({"a": ["x"], "b": [np.nan], "c": [0.12345], "n": pd.array([None], dtype="Int64")}))
    assert md.splitlines()[2] == "| x | – | 0.123 | – |"


def test_cli_benchmark_segmentation(tmp_path, make_discs, monkeypatch, run_cli):
    import dynacell.train.segment as train_segment

    monkeypatch.setattr(train_segment, "load_frames", _toy_loader(make_discs))
    monkeypatch.setattr(train_segment, "SPLITS", {**train_segment.SPLITS, "toy": {}})
    code, out, err = run_cli("benchmark", "segmentation", "--models", "classical", "--datasets", "toy",
                             "--no-speed", "--threads", "1", "-o", tmp_path / "b")
    assert code == 0, err
    assert "| toy | classical | 2 | 6 |" in out
    assert (tmp_path / "b" / "segment_benchmark.csv").is_file() and not (tmp_path / "b" / "segment_speed.csv").exists()
    code, _, err = run_cli("benchmark", "segmentation", "--datasets", "nope", "--no-speed")
    assert code != 0 and "unknown dataset" in err


def test_speed_per_flips_and_given_diameter(make_discs, tiny_model, monkeypatch):
    """One row per number of flips of a learned model (one for classical); a given diameter reaches segment_frame."""
    from dynacell.segment import benchmark, predict

    seen = []
    real = predict.segment_frame
    monkeypatch.setattr(predict, "segment_frame",
                        lambda img, m, **k: seen.append((m.card.test_time_flips, k["nucleus_diameter_px"]))
                        or real(img, m, **k))
    models = load_models(["classical", str(tiny_model)])
    sp = benchmark.speed(models, 1, datasets=["toy"], repeats=1, loader=_toy_loader(make_discs), verbose=False,
                         flips=(1, 4), diameter_px={"toy": 30.0})
    assert list(sp.model) == ["classical", "tiny-model", "tiny-model"]
    assert sp.flips.isna().tolist() == [True, False, False] and sp.flips.tolist()[1:] == [1, 4]
    assert set(sp.frame) == {"2D 96x96 toy d=30px"} and seen == [(1, 30.0), (4, 30.0)]


def test_each_rendered_colony_gets_its_own_size_estimate(make_discs, capsys):
    # "rods": frames of colonies 0 and 1 (t // 100), nuclei of different sizes; one estimate per colony
    def load(ds, side):
        small = make_discs(shape=(128, 128), centres=((30, 30), (90, 90)), radius=8, seed=0)
        big = make_discs(shape=(128, 128), centres=((35, 35), (90, 90)), radius=18, seed=1)
        return [AnnotatedFrame("rods", 0, *small), AnnotatedFrame("rods", 1, *small), AnnotatedFrame("rods", 100, *big)]
    table = evaluate(["classical"], ["rods"], loader=load, verbose=True)
    first = json.loads(capsys.readouterr().out.splitlines()[0])
    d_small, d_big = first["estimated_nucleus_diameter_px"]
    assert d_big > 1.3 * d_small and table.iloc[0].frames == 3
