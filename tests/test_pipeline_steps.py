"""Unit tests of the step functions that ``dynacell.pipeline.run_config`` chains (each in the package that owns it).

Small synthetic inputs only (``_helpers.synthetic_movie``: nucleus A static, B divides after frame 2; no real data).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _helpers import FixedClassifier, division_lineage, synthetic_movie

from dynacell import STATES
from dynacell.errors import FormatError, InvalidInputError, input_role
from dynacell.io.checks import missing_frames, movie_notes, nucleus_size_notes
from dynacell.io.movie import Movie, with_physical_sizes
from dynacell.io.scan import scan_labels
from dynacell.io.writers import replace_path_prefix
from dynacell.lineage.graph import Lineage
from dynacell.runconfig import RunConfig, describe_input, run_parameters
from dynacell.states.reconcile import ReconcileRules, reconciliation_record
from dynacell.states.relink import (
    DivisionCheck,
    check_linked_divisions,
    review_classifier,
)
from dynacell.states.tables import run_counts
from dynacell.track import assign_ctc_tracks

# ---------------------------------------------------------------------------------------------- errors, io


def test_input_role_prefixes_the_message_and_keeps_the_class():
    with (pytest.raises(FormatError, match=r"^labels \(--labels\): t000.tif: truncated$") as info,
          input_role("labels (--labels)")):
        raise FormatError("t000.tif: truncated")
    assert isinstance(info.value.__cause__, FormatError)
    with pytest.raises(KeyError), input_role("movie"):  # other errors pass unchanged
        raise KeyError("x")


def test_with_physical_sizes_replaces_only_what_is_given():
    images, _ = synthetic_movie(T=3, size=16)
    assert with_physical_sizes(images) is images
    m = with_physical_sizes(images, (0.5, 0.25))
    assert m.voxel_size_um == (0.5, 0.25) and m.frame_interval_s is None and m.data is images.data
    m2 = with_physical_sizes(m, frame_interval_s=60.0)
    assert m2.voxel_size_um == (0.5, 0.25) and m2.frame_interval_s == 60.0
    assert m2.frame_indices == images.frame_indices and m2.source == images.source
    with pytest.raises(InvalidInputError, match="voxel_size_um"):
        with_physical_sizes(images, (1.0, 0.5, 0.5))  # 3 sizes for a 2D movie


def test_movie_notes_physical_sizes(caplog):
    images, _ = synthetic_movie(T=3, size=16)
    with caplog.at_level(logging.WARNING):
        notes = movie_notes(images)
    assert len(notes) == 2 and "voxel size of synthetic is unknown" in notes[0] and "(Y X)" in notes[0]
    assert "frame interval is unknown" in notes[1]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][-2:] == notes
    assert movie_notes(with_physical_sizes(images, (0.5, 0.5), 60.0)) == []
    img3, _ = synthetic_movie(T=2, size=16, ndim=3)
    notes3 = movie_notes(with_physical_sizes(img3, (2.0, 0.5, 0.5), 60.0))
    assert len(notes3) == 1 and "2 frame(s)" in notes3[0]
    assert "(Z Y X)" in movie_notes(img3)[0] and "z-stack" not in notes3[0]
    one, _ = synthetic_movie(T=1, size=16, ndim=3)  # a 2D time-lapse saved as z-slices reads as one volume
    assert "one 3D volume of 8 z-planes" in movie_notes(with_physical_sizes(one, (2.0, 0.5, 0.5), 60.0))[0]


def test_nucleus_size_notes_catch_a_voxel_size_in_nm_or_mm():
    assert nucleus_size_notes([300, 320, 900], (0.645, 0.645)) == []  # HeLa-like nuclei, 12-21 µm
    assert nucleus_size_notes([300, 320], None) == [] and nucleus_size_notes([], (1.0, 1.0)) == []
    nm = nucleus_size_notes([300, 320, 900], (645.0, 645.0), "hela.tif")
    assert len(nm) == 1 and "hela.tif" in nm[0] and "given in nm instead of µm" in nm[0]
    mm = nucleus_size_notes([300, 320, 900], (0.000645, 0.000645))
    assert len(mm) == 1 and "given in mm instead of µm" in mm[0]
    # 3D: (6 V / pi)^(1/3) with the anisotropic voxel; 2000 voxels of 2 x 0.2 x 0.2 um -> 6.74 um
    assert nucleus_size_notes([2000] * 5, (2.0, 0.2, 0.2)) == []
    assert "0.00674 µm across" in nucleus_size_notes([2000] * 5, (0.002, 0.0002, 0.0002))[0]


def test_movie_notes_name_missing_frames(caplog):
    images, _ = synthetic_movie(T=4, size=16)
    holed = Movie(images.data, images.axes, (0.5, 0.5), 60.0, frame_indices=(0, 1, 3, 6), source="holed")
    with caplog.at_level(logging.WARNING):
        notes = movie_notes(holed)
    assert len(notes) == 1 and "3 frame(s) missing inside frames 0..6 of holed" in notes[0]
    assert "(frame number(s) 2, 4, 5)" in notes[0] and "end_reason 'gap'" in notes[0]
    assert any("frame(s) missing" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert missing_frames(range(5, 30)) == [] and missing_frames([]) == []
    assert missing_frames([2, 5]) == [3, 4]


def test_replace_path_prefix():
    obj = {"a": ["/tmp/.x/ctc/m.tif", "/other/tmp/.x", 3, None], "/tmp/.x": {"b": "/tmp/.x"}}
    got = replace_path_prefix(obj, "/tmp/.x", "/out")
    assert got == {"a": ["/out/ctc/m.tif", "/other/tmp/.x", 3, None], "/tmp/.x": {"b": "/out"}}
    assert obj["a"][0] == "/tmp/.x/ctc/m.tif"  # a copy: the input is unchanged


# ---------------------------------------------------------------------------------------------- runconfig


def test_describe_input_and_config_from_arguments(tmp_path):
    images, _ = synthetic_movie(T=3, size=16)
    assert describe_input(None) is None and describe_input(tmp_path) == str(tmp_path)
    assert describe_input(images) == "synthetic"
    assert describe_input(Movie(images.data, images.axes)) == "(in-memory movie)"
    assert describe_input(Lineage()) == "(Lineage object)" and describe_input(FixedClassifier()) == "fixed"
    assert describe_input(object()) == "object"
    cfg = RunConfig.from_arguments(images, out=tmp_path / "o", model=FixedClassifier(), gt=tmp_path / "gt")
    assert (cfg.movie, cfg.out, cfg.model, cfg.gt) == ("synthetic", str(tmp_path / "o"), "fixed", str(tmp_path / "gt"))
    with pytest.raises(InvalidInputError, match=r"^run parameters: seed: .*; no_such: Extra inputs"):
        RunConfig.from_arguments("m", out="o", no_such=1, seed="x")


def test_run_parameters_record_what_was_used():
    images, _ = synthetic_movie(T=4, size=16)
    images = with_physical_sizes(images, (0.5, 0.5), 30.0)
    cfg = RunConfig(movie="m", out="o", seed=3)
    rules = ReconcileRules(method="rules")
    p = run_parameters(cfg, images, segmenter="nuclei-seg-2d-fast", lineage_source="given: x", model_name="nuclei-2d",
                       model_card={"name": "fixed", "n": np.int64(2)}, device="cpu", reconcile=rules, linking=None)
    assert p["labels"] == "(nuclei-seg-2d-fast segmenter)" and p["segmenter"] == "nuclei-seg-2d-fast"
    assert p["model_source"] == "nuclei-2d" and p["model_card"] == {"name": "fixed", "n": 2}
    assert p["frames"] == [0, 3] and p["shape"] == [4, 16, 16] and p["voxel_size_um"] == [0.5, 0.5]
    assert p["frame_interval_s"] == 30.0 and p["seed"] == 3 and p["reconcile"]["method"] == "rules"
    cfg2 = RunConfig(movie="m", out="o", labels="lab", model="my-model")
    p2 = run_parameters(cfg2, images, segmenter="given", lineage_source="", model_name="x", model_card=None,
                        device="cpu", reconcile=rules, linking={"gate": {}})
    assert p2["labels"] == "lab" and p2["model_source"] == "my-model" and p2["model_card"] == {}


# ---------------------------------------------------------------------------------------------- labels, lineage


def test_labels_for_run_given_labels(tmp_path):
    from dynacell.segment.select import labels_for_run

    images, labels = synthetic_movie(T=3, size=32)
    got, name, notes = labels_for_run(with_physical_sizes(images, (0.5, 0.5)), labels, segmenter="auto", work=tmp_path)
    assert name == "given" and notes == [] and got.voxel_size_um == (0.5, 0.5) and got.data is labels.data
    own = with_physical_sizes(labels, (0.7, 0.7))  # the labels' own size is kept
    assert labels_for_run(with_physical_sizes(images, (0.5, 0.5)), own, segmenter="auto", work=tmp_path)[0] is own
    np.savez(tmp_path / "labels.npz", labels=np.asarray(labels.data))
    got, name, _ = labels_for_run(images, str(tmp_path / "labels.npz"), segmenter="auto", work=tmp_path)
    assert name == "given" and np.array_equal(np.asarray(got.data), np.asarray(labels.data))
    with pytest.raises(InvalidInputError, match=r"^labels \(--labels\): "):
        labels_for_run(images, tmp_path / "missing.npz", segmenter="auto", work=tmp_path)


def test_labels_for_run_segments_without_labels(tmp_path):
    from dynacell.segment.select import labels_for_run

    images, _ = synthetic_movie(T=2, size=64)
    got, name, notes = labels_for_run(images, None, segmenter="classical", work=tmp_path)
    assert name != "given" and "CLASSICAL" in notes[0] and got.shape == images.shape
    assert got.voxel_size_um is None
    with pytest.raises(InvalidInputError, match="--segmenter 'no-such-model' is unknown"):
        labels_for_run(images, None, segmenter="no-such-model", work=tmp_path)


def _scanned(T=6):
    images, labels = synthetic_movie(T=T, size=64)
    measured, objects = [], {}
    ids = scan_labels(images, labels, progress=False, measure=measured, objects=objects)
    return images, labels, ids, measured[0], objects


def test_lineage_for_run_links_with_the_motion_gate():
    from dynacell.track.select import lineage_for_run

    images, labels, ids, nuclei, objects = _scanned()
    lin, source, linking = lineage_for_run(images, labels, ids, nuclei, objects=objects)
    assert source.startswith("linked with dynacell.track.link_labels") and source.endswith(" px")
    assert linking["max_distance_unit"] == "px" and linking["max_distance_given"] is None
    assert linking["motion_prior"] == "flow" and linking["gate"]["max_distance"] >= linking["gate"]["default"]
    assert lin.n_frames == 6 and len(lin.divisions()) == 1  # B divides after frame 2
    assert all("track_id" in d for _, d in lin.graph.nodes(data=True))
    um = with_physical_sizes(images, (0.5, 0.5))
    _, source, linking = lineage_for_run(um, labels, ids, nuclei, max_distance=7.0)
    assert linking["max_distance_unit"] == "um" and linking["gate"]["max_distance"] == 7.0
    assert source.endswith("max distance 7 um")


def test_lineage_for_run_given_lineage_is_checked_and_copied(tmp_path):
    from dynacell.track.select import lineage_for_run

    images, labels, ids, nuclei, _ = _scanned()
    linked, _, _ = lineage_for_run(images, labels, ids, nuclei)
    given = linked.copy()
    for n in given.graph.nodes:
        given.graph.nodes[n].pop("track_id")
    lin, source, linking = lineage_for_run(images, labels, ids, nuclei, given=given)
    assert source == "given: (Lineage object)" and linking is None and lin is not given
    assert "track_id" not in next(iter(given.graph.nodes.values()))  # the given lineage is not changed
    assert sorted(lin.graph.nodes) == sorted(linked.graph.nodes)
    assert lineage_for_run(images, labels, ids, nuclei, given=given, path="my.geff")[1] == "given: my.geff"
    wrong = Lineage(n_frames=6)
    wrong.add_node((0, 99), centroid=(0, 1, 1))
    with pytest.raises(InvalidInputError, match="99"):
        lineage_for_run(images, labels, ids, nuclei, given=wrong)
    with pytest.raises(InvalidInputError, match=r"^lineage \(--lineage\): "):
        lineage_for_run(images, labels, ids, nuclei, path=str(tmp_path / "missing.txt"))


# ---------------------------------------------------------------------------------------------- states


def _division_table(p_mitotic: float, p_daughter: float):
    lin = division_lineage(n_frames=8, split=3, daughters=((30, 31), (30, 60)))
    assign_ctc_tracks(lin)
    rows = []
    for (t, lab), d in sorted(lin.graph.nodes(data=True)):
        p = np.array([0.99, 0.003, 0.003, 0.004])
        if lab == 1 and t == 3:
            p = np.array([1 - p_mitotic, p_mitotic, 0.0, 0.0])
        if lab in (2, 3) and t == 4:
            p = np.array([1 - p_daughter, 0.0, p_daughter, 0.0])
        rows.append({"t": t, "label": lab, "track_id": d["track_id"], **{f"p_{s}": v for s, v in zip(STATES, p)}})
    return lin, pd.DataFrame(rows)


def test_review_classifier_distrusts_a_classifier_blind_to_the_divisions():
    rules = ReconcileRules()
    check = DivisionCheck(min_divisions=1, persist_frames=2)
    lin, table = _division_table(0.9, 0.9)
    agreement, used, notes = review_classifier(table, lin, check, rules)
    assert agreement["trusted"] and used is rules and notes == []
    lin, table = _division_table(0.0, 0.0)
    agreement, used, notes = review_classifier(table, lin, check, rules)
    assert not agreement["trusted"] and used == rules.trusting_lineage() and used != rules
    assert len(notes) == 1 and "does not recognise this movie's divisions" in notes[0]
    with pytest.raises(InvalidInputError):
        review_classifier(table.drop(columns="p_mitotic"), lin, check, rules)


def test_check_linked_divisions_unlinks_a_contradicted_division():
    lin, table = _division_table(0.001, 0.001)
    _, new_lin, summary, notes = check_linked_divisions(table, lin)
    assert summary["n_linked"] == 1 and summary["n_unlinked"] == 1 and len(new_lin.divisions()) == 0
    assert len(notes) == 1 and notes[0].startswith("1 of 1 linked divisions were unlinked")
    assert len(lin.divisions()) == 1  # the input lineage is not changed
    _, kept_lin, summary, notes = check_linked_divisions(table, lin, trusted=False)  # not trusted: nothing unlinked
    assert summary["n_unlinked"] == 0 and notes == [] and len(kept_lin.divisions()) == 1


def test_reconciliation_record_and_run_counts():
    rules = ReconcileRules(method="rules")
    empty = pd.DataFrame(columns=["from", "to", "reason", "n"])
    assert reconciliation_record(rules, empty) == {"rule": rules.describe(), "n_changed": 0, "changes": []}
    changes = pd.DataFrame({"from": ["stable", "mitotic"], "to": ["mitotic", "stable"], "reason": ["a", "b"],
                            "n": [2, 3]})
    rec = reconciliation_record(rules, changes)
    assert rec["n_changed"] == 5 and isinstance(rec["n_changed"], int) and rec["changes"][1]["n"] == 3
    lin = division_lineage(n_frames=8, split=3)
    assign_ctc_tracks(lin)
    states = pd.DataFrame({"state": ["stable"] * 3 + ["mitotic"], "state_classifier": ["stable"] * 2 + ["death"] * 2})
    tracks = pd.DataFrame({"end_reason": ["divides", "movie_end", "movie_end"]})
    c = run_counts(states, tracks, lin, 8)
    assert c == {"frames": 8, "nuclei": 4, "tracks": 3, "divisions": 1, "states": {"stable": 3, "mitotic": 1},
                 "states_classifier": {"stable": 2, "death": 2}, "track_ends": {"movie_end": 2, "divides": 1}}


def test_dead_evidence_record_counts_death_calls_with_evidence():
    from dynacell.segment.dead import dead_evidence_record

    states = pd.DataFrame({"state": ["death", "death", "death", "stable"], "p_dead_seg": [0.9, 0.2, np.nan, 0.95]})
    assert dead_evidence_record(None, states) is None
    rec = dead_evidence_record({"model": "m"}, states)
    assert rec == {"model": "m", "death_calls": 3, "death_calls_with_evidence": 1}


def test_add_dead_evidence_merges_p_dead_seg_and_notes_when_unused(tmp_path):
    from _helpers import make_live_dead_model

    from dynacell.segment.dead import add_dead_evidence

    images, labels = synthetic_movie(T=2, size=64)
    model = make_live_dead_model(tmp_path / "ld")
    ids0, ids1 = (np.unique(labels.frame(t))[1:].tolist() for t in (0, 1))
    table = pd.DataFrame({"t": [0, 0, 1], "label": [*ids0, ids1[0]], "p_dead_seg": [5.0, 5.0, 5.0]})
    out, info, notes = add_dead_evidence(table, images, labels, model, reconcile=ReconcileRules(method="rules"))
    assert list(out.columns) == ["t", "label", "p_dead_seg"] and len(out) == 3
    assert out["p_dead_seg"].between(0, 1).all()  # the old column is replaced
    assert info["model"] == "tiny-live-dead" and info["n_rated"] == 3 and info["training_data"] == ["sim"]
    assert len(notes) == 2 and "recorded, not used" in notes[0] and "'rules'" in notes[0]
    _, _, notes = add_dead_evidence(table, images, labels, model, reconcile=ReconcileRules())
    assert len(notes) == 1 and notes[0].startswith("Dead evidence from the segmenter tiny-live-dead")
    with pytest.raises(InvalidInputError, match=r"^dead evidence \(--dead-evidence\): "):
        add_dead_evidence(table, images, labels, tmp_path / "missing")


# ---------------------------------------------------------------------------------------------- motion, provenance


def test_run_motion_summary_never_fails_the_run():
    from dynacell.motion.analysis import run_motion_summary

    rng = np.random.default_rng(0)
    rows = [{"t": t, "track_id": k, "z": 0.0, "y": 50 + y, "x": 50 + x}
            for k in range(20) for t, (y, x) in enumerate(np.cumsum(rng.normal(0, 1, (30, 2)), axis=0))]
    states = pd.DataFrame(rows)
    summary, notes = run_motion_summary(states, None, 60.0)
    assert summary is None and len(notes) == 1 and "need the voxel size and the frame interval" in notes[0]
    summary, notes = run_motion_summary(states, (0.5, 0.5), 60.0)
    assert notes == [] and summary["n_tracks"] == 20 and math.isfinite(summary["D_um2_per_s"])
    # steps of ~1 px = 0.5 µm per axis per minute: D = 0.5² / (2 · 60 s) ≈ 0.0021 µm²/s
    assert 0.001 < summary["D_um2_per_s"] < 0.004
    summary, notes = run_motion_summary(states.iloc[:1], (0.5, 0.5), 60.0)  # one position: too short
    assert summary is None and notes[0].startswith("Motion statistics are skipped: ")


def test_step_timer_record_and_progress():
    from dynacell.progress import progress_enabled
    from dynacell.provenance import StepTimer
    from dynacell.train.engine import progress_enabled as engine_progress

    timer = StepTimer()
    with timer.step("a"):
        pass
    rec = timer.record()
    assert list(rec) == ["timings_s", "timings_cpu_s", "peak_rss_mb", "peak_rss_mb_after_step"]
    assert list(rec["timings_s"]) == ["a"] and rec["peak_rss_mb"] > 0
    assert progress_enabled(True) and not progress_enabled(False)
    assert engine_progress is progress_enabled


def test_pipeline_reads_as_steps():
    """pipeline.py stays composition: short, no array or table computation of its own."""
    from dynacell import pipeline

    text = Path(pipeline.__file__).read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 280
    for pattern in ("import numpy", "np.", ".value_counts(", ".merge(", ".sum()", ".groupby("):
        assert pattern not in text, pattern
