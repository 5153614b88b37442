"""Tests of the main job :func:`dynacell.pipeline.run` on tiny synthetic movies (no real data).

The synthetic movie (ASCII, time to the right)::

    nucleus A  ────────────────────────────  (stays, frames 0..5)
    nucleus B  ──────── ┬─ daughter B1 ─────  (divides after frame 2)
                        └─ daughter B2 ─────

Label ids are shuffled at every frame (as in the real mouse-8cell labels).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
from _helpers import FixedClassifier, synthetic_movie

from dynacell import STATES
from dynacell.errors import InvalidInputError, OutputExistsError
from dynacell.io.movie import Movie, select_frames
from dynacell.lineage.graph import Lineage
from dynacell.io.scan import leave_out_empty_frames, scan_labels
from dynacell.lineage.checks import check_lineage
from dynacell.metrics.states import match_labels
from dynacell.pipeline import OUTPUT_FILES, run
from dynacell.states.reconcile import ReconcileRules, reconcile_states


RULES = ReconcileRules(method="rules")  # the rule-by-rule reconciliation (the default is the joint decision)


def _no_partial(parent, name):
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}")]


def test_run_writes_every_output(tmp_path):
    images, labels = synthetic_movie()
    out = tmp_path / "out"
    res = run(images, labels=labels, model=FixedClassifier(), out=out, progress=False)
    for name in OUTPUT_FILES:
        assert (out / name).exists(), name
    states = pd.read_csv(out / "states.csv")
    assert list(states.columns[:8]) == ["t", "label", "track_id", "state", *(f"p_{s}" for s in STATES)]
    assert len(states) == 2 * 3 + 3 * 3  # 2 nuclei in frames 0-2, 3 in frames 3-5
    # every nucleus of every frame is in the table with the label it has in that frame
    for t in range(6):
        u = np.unique(labels.frame(t))
        assert sorted(states.loc[states.t == t, "label"]) == sorted(u[u > 0].tolist())
    info = json.loads((out / "run.json").read_text())
    assert info["parameters"]["segmenter"] == "given"
    assert set(info["timings_s"]) >= {"classify", "lineage", "reconcile", "video", "report"}
    assert info["counts"]["divisions"] == 1 == len(res.lineage.divisions())
    agreement = info["classifier_agreement"]  # one division: too few to judge the classifier, trusted
    assert agreement["n_divisions"] == 1 and agreement["trusted"] is True and agreement["mitotic"] == 0.0
    tracks = pd.read_csv(out / "tracks.csv")
    assert info["counts"]["track_ends"] == tracks["end_reason"].value_counts().to_dict()
    assert info["dead_evidence"] is None and "dead_evidence" not in info["timings_s"]  # off by default
    assert "p_dead_seg" not in states
    # CTC result: mask values are the track ids of states.csv
    ctc_tracks = pd.read_csv(out / "ctc" / "res_track.txt", sep=" ", header=None, names=list("LBEP"))
    assert sorted(ctc_tracks["L"]) == sorted(states["track_id"].unique())
    assert (ctc_tracks["P"] > 0).sum() == 2
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 and "Reconciliation" in html
    assert not _no_partial(tmp_path, "out")


def test_reconciliation_promotes_division_frames(tmp_path):
    images, labels = synthetic_movie()
    res = run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False)
    s = res.states
    assert (s["state_classifier"] == "stable").all()
    mother = res.lineage.divisions()[0]
    row = s[(s.t == mother[0]) & (s.label == mother[1])]
    assert row["state"].item() == "mitotic"
    daughters = res.lineage.children(mother)
    got = {s[(s.t == d[0]) & (s.label == d[1])]["state"].item() for d in daughters}
    assert got == {"new_daughter"}
    assert int(res.reconciliation["n"].sum()) == 3


def test_reconciliation_floor_blocks_promotion(tmp_path):
    images, labels = synthetic_movie()
    clf = FixedClassifier(proba=(0.9, 0.05, 0.03, 0.02))
    res = run(images, labels=labels, model=clf, out=tmp_path / "o", progress=False, video=False,
              reconcile=ReconcileRules(promote_floor=0.1, method="rules"))
    assert (res.states["state"] == "stable").all()
    assert res.reconciliation.empty


def _one_track(n=5, n_frames=8):
    """One track at frames 0..n-1 of an n_frames movie: ``(0,1) ─ (1,1) ─ ... ─ (n-1,1)`` (ends early)."""
    lin = Lineage(n_frames=n_frames)
    for t in range(n):
        lin.add_node((t, 1), centroid=(0, 10, 10))
        if t:
            lin.add_edge((t - 1, 1), (t, 1))
    return lin


def test_reconcile_demotes_unsupported_events_and_promotes_track_end():
    lin = _one_track()
    states = pd.DataFrame({"t": range(5), "label": [1] * 5, "track_id": [1] * 5,
                           "state": ["new_daughter", "mitotic", "stable", "mitotic", "stable"]})
    p = np.tile([0.6, 0.2, 0.1, 0.1], (5, 1))
    p[0] = [0.3, 0.1, 0.6, 0.0]  # new_daughter with no division before: -> stable
    p[1] = [0.2, 0.5, 0.05, 0.25]  # mitotic, death second best but the track goes on 3 frames: -> stable
    p[3] = [0.2, 0.5, 0.05, 0.25]  # mitotic one frame before the track end: -> death (supported)
    p[4] = [0.8, 0.0, 0.05, 0.15]  # stable at the track end with p_death >= floor: -> death (promoted)
    for i, s in enumerate(STATES):
        states[f"p_{s}"] = p[:, i]
    out, changes = reconcile_states(states, lin, RULES)
    assert out["state"].tolist() == ["stable", "stable", "stable", "death", "death"]
    assert out["state_classifier"].tolist() == states["state"].tolist()
    assert int(changes["n"].sum()) == 4
    assert "track end before the last frame in lineage" in set(changes["reason"])
    # the same track reaching the movie's last frame: no death is supported anywhere
    out_end, _ = reconcile_states(states, _one_track(n_frames=5), RULES)
    assert "death" not in set(out_end["state"])
    kept, none = reconcile_states(states, lin, ReconcileRules(enabled=False, method="rules"))
    assert (kept["state"] == states["state"]).all() and none.empty


def test_gap_closed_link_supports_but_does_not_promote_death():
    """A death call before a gap-closed link is kept; a stable call there is not promoted::

        (0,1) ── (1,1) ── (2,1) ·····gap····· (5,7) ── (6,7) ── (7,7)     (movie of 8 frames)
    """
    lin = Lineage(n_frames=8)
    nodes = [(0, 1), (1, 1), (2, 1), (5, 7), (6, 7), (7, 7)]
    for n in nodes:
        lin.add_node(n, centroid=(0, 10, 10))
    for a, b in zip(nodes[:-1], nodes[1:]):
        lin.add_edge(a, b)
    states = pd.DataFrame({"t": [n[0] for n in nodes], "label": [n[1] for n in nodes], "track_id": 1,
                           "state": ["stable", "stable", "death", "stable", "stable", "stable"]})
    p = np.tile([0.8, 0.0, 0.05, 0.15], (6, 1))
    p[2] = [0.2, 0.0, 0.0, 0.8]  # a confident death call just before the gap: supported, kept
    for i, st in enumerate(STATES):
        states[f"p_{st}"] = p[:, i]
    out, changes = reconcile_states(states, lin, RULES)
    assert out["state"].tolist() == ["stable", "stable", "death", "stable", "stable", "stable"]
    assert changes.empty or int(changes["n"].sum()) == 0
    # without the gap (a continuous track to the last frame) the same call is demoted
    cont = _one_track(n=8, n_frames=8)
    st2 = pd.DataFrame({"t": range(8), "label": 1, "track_id": 1, "state": ["stable"] * 2 + ["death"] + ["stable"] * 5})
    p2 = np.tile([0.8, 0.0, 0.05, 0.15], (8, 1))
    p2[2] = [0.2, 0.0, 0.0, 0.8]
    for i, st in enumerate(STATES):
        st2[f"p_{st}"] = p2[:, i]
    out2, _ = reconcile_states(st2, cont, RULES)
    assert out2["state"].tolist()[2] == "stable"


def test_link_into_confident_daughter_supports_death():
    """A death call whose track continues into a confident new-daughter call (no division) is kept::

        (0,1) ── (1,1) ── (2,1) ── (3,9) ── (4,9)      (5 frames; (3,9) is called new_daughter, p 0.95)
    """
    lin = Lineage(n_frames=6)
    nodes = [(0, 1), (1, 1), (2, 1), (3, 9), (4, 9)]
    for n in nodes:
        lin.add_node(n, centroid=(0, 10, 10))
    for a, b in zip(nodes[:-1], nodes[1:]):
        lin.add_edge(a, b)
    states = pd.DataFrame({"t": [n[0] for n in nodes], "label": [n[1] for n in nodes], "track_id": 1,
                           "state": ["stable", "stable", "death", "new_daughter", "stable"]})
    p = np.tile([0.8, 0.0, 0.05, 0.15], (5, 1))
    p[2] = [0.1, 0.0, 0.0, 0.9]
    p[3] = [0.05, 0.0, 0.95, 0.0]
    for i, st in enumerate(STATES):
        states[f"p_{st}"] = p[:, i]
    out, _ = reconcile_states(states, lin, RULES)
    assert out["state"].tolist()[2] == "death"  # supported by the suspect link (rule 5)
    assert out["state"].tolist()[3] == "new_daughter"  # the classifier decides at a suspect link
    strict, _ = reconcile_states(states, lin, ReconcileRules(suspect_daughter_p=1.01, method="rules"))
    assert strict["state"].tolist()[2] == "stable"  # rule 5 off: the death is demoted
    # no mitotic/death evidence at the source: an isolated new-daughter call on a plain track is demoted
    # (the real mouse embryo: large motion between frames made the classifier call new daughters)
    plain = states.copy()
    plain["state"] = ["stable", "stable", "stable", "new_daughter", "stable"]
    plain.loc[2, [f"p_{st}" for st in STATES]] = [0.8, 0.0, 0.05, 0.15]
    out3, _ = reconcile_states(plain, lin, RULES)
    assert out3["state"].tolist()[:4] == ["stable"] * 4  # (4, 9) ends the track before the last frame: death


def test_match_labels_ctc_rule():
    gt = np.zeros((10, 10), int)
    gt[0:4, 0:4] = 1
    gt[6:10, 6:10] = 2
    pred = np.zeros_like(gt)
    pred[0:4, 0:3] = 7  # covers 12/16 of GT 1
    pred[6:8, 6:10] = 8  # covers 8/16 of GT 2: not more than half
    assert match_labels(pred, gt) == {7: 1}
    with pytest.raises(InvalidInputError):
        match_labels(pred[:5], gt)


# ---------------------------------------------------------------- bad input: one error each, nothing left
def test_existing_output_needs_overwrite(tmp_path):
    images, labels = synthetic_movie(T=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run(images, labels=labels, model=FixedClassifier(), out=out, progress=False)
    assert (out / "keep.txt").read_text() == "old"
    run(images, labels=labels, model=FixedClassifier(), out=out, overwrite=True, progress=False, video=False)
    assert not (out / "keep.txt").exists() and (out / "states.csv").exists()
    assert not _no_partial(tmp_path, "out")


def test_failed_overwrite_keeps_old_output(tmp_path):
    images, labels = synthetic_movie(T=3)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    bad = Movie(labels.data[:, :32], "TYX", source="cut-labels")
    with pytest.raises(InvalidInputError):
        run(images, labels=bad, model=FixedClassifier(), out=out, overwrite=True, progress=False)
    assert (out / "keep.txt").read_text() == "old"
    assert not _no_partial(tmp_path, "out")


def test_mismatched_label_shape(tmp_path):
    images, labels = synthetic_movie(T=3)
    bad = Movie(labels.data[:, :32], "TYX", source="cut-labels")
    with pytest.raises(InvalidInputError, match="does not match"):
        run(images, labels=bad, model=FixedClassifier(), out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists() and not _no_partial(tmp_path, "o")


def test_missing_label_frames(tmp_path):
    images, labels = synthetic_movie(T=4)
    fewer = Movie(labels.data[:3], "TYX", source="three-frames")
    with pytest.raises(InvalidInputError, match="no label image for frame"):
        scan_labels(images, fewer, progress=False)


def test_empty_label_frame_is_left_out_as_a_missing_frame(tmp_path):
    """A blank frame (nothing segmented) no longer stops the run: it is bridged as a missing frame, and said."""
    images, labels = synthetic_movie(T=5)
    data = np.array(labels.data)
    data[2] = 0
    holey = Movie(data, "TYX", source="holey")
    with pytest.raises(InvalidInputError, match="frame 2 holds no nucleus"):
        scan_labels(images, holey, progress=False)  # the scan alone still refuses it unless asked to collect
    res = run(images, labels=holey, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False)
    states = pd.read_csv(tmp_path / "o" / "states.csv")
    assert sorted(states["t"].unique()) == [0, 1, 3, 4]
    note = [n for n in res.info["notes"] if "hold no nucleus" in n]
    assert len(note) == 1 and "1 frame(s) of 5 hold no nucleus in the labels given (frame number(s) 2)" in note[0]
    assert res.info["counts"]["frames"] == 5
    tracks = pd.read_csv(tmp_path / "o" / "tracks.csv")
    crossing = tracks[tracks["end"] == 1]  # tracks reaching the hole are split there (or divide across it)
    assert len(crossing) and set(crossing["end_reason"]) <= {"gap", "divides"} and "gap" in set(crossing["end_reason"])
    assert (tracks["start"] == 3).sum() >= len(crossing)
    ctc = sorted(p.name for p in (tmp_path / "o" / "ctc").glob("mask*.tif"))
    assert ctc == [f"mask{t:03d}.tif" for t in range(5)]
    assert tifffile.imread(tmp_path / "o" / "ctc" / "mask002.tif").max() == 0
    assert "hold no nucleus" in (tmp_path / "o" / "report.html").read_text()
    data[:] = 0
    with pytest.raises(InvalidInputError, match="no frame holds a nucleus"):
        run(images, labels=Movie(data, "TYX", source="blank"), model=FixedClassifier(), out=tmp_path / "o2",
            progress=False)
    assert not (tmp_path / "o2").exists() and not _no_partial(tmp_path, "o2")


def test_scan_collects_empty_frames_and_select_frames_keeps_numbers():
    images, labels = synthetic_movie(T=4)
    data = np.array(labels.data)
    data[0] = data[3] = 0
    holey = Movie(data, "TYX", source="holey")
    empty, objects = [], {}
    ids = scan_labels(images, holey, progress=False, empty=empty, objects=objects)
    assert empty == [0, 3] and sorted(ids) == sorted(objects) == [1, 2]
    im2, lab2, notes = leave_out_empty_frames(images, holey, empty)
    assert im2.frame_indices == lab2.frame_indices == (1, 2) and len(notes) == 1
    np.testing.assert_array_equal(im2.frame(2), images.frame(2))
    assert leave_out_empty_frames(images, holey, []) == (images, holey, [])
    with pytest.raises(InvalidInputError, match=r"frame\(s\) \[0, 3\] hold no nucleus.*a lineage was given"):
        leave_out_empty_frames(images, holey, empty, lineage_given=True)
    with pytest.raises(InvalidInputError, match="increasing"):
        select_frames(images, [2, 1])
    with pytest.raises(InvalidInputError, match="frame 9 is not present"):
        select_frames(images, [9])


def test_lineage_naming_absent_labels(tmp_path):
    images, labels = synthetic_movie(T=3)
    lin = Lineage(n_frames=3)
    lin.add_node((1, 99), centroid=(0, 5, 5))
    with pytest.raises(InvalidInputError, match="frame 1 label 99"):
        run(images, labels=labels, lineage=lin, model=FixedClassifier(), out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_given_lineage_is_used_and_completed(tmp_path):
    images, labels = synthetic_movie(T=3)
    ids = scan_labels(images, labels, progress=False)
    lin = Lineage(n_frames=3, source="partial")
    a0 = int(ids[0][0])
    lin.add_node((0, a0), centroid=(0, 1, 1))
    lin.add_node((7, 1), centroid=(0, 1, 1))  # a frame the movie does not have
    lin2 = check_lineage(lin, ids, "partial", labels)
    assert len(lin2) == sum(len(v) for v in ids.values())
    assert len(lin) == 2  # the caller's lineage is not modified
    n_added = sum(len(v) for v in ids.values()) - 1
    assert lin2.graph.graph["check"] == {"nodes_outside_movie_ignored": 1,
                                         "nuclei_added_as_single_node_tracks": n_added,
                                         "spots_matched_to_mask_ids": 0, "spots_matched_to_nearest_nucleus": 0}
    res = run(images, labels=labels, lineage=lin, model=FixedClassifier(), out=tmp_path / "o", progress=False,
              video=False)
    assert res.info["inputs"]["lineage"] == (f"given: partial (1 node(s) at frames outside the movie ignored; "
                                             f"{n_added} nucleus/nuclei of the masks absent from it added as one-node "
                                             f"tracks)")


def test_unknown_model_lists_available(tmp_path):
    images, labels = synthetic_movie(T=3)
    with pytest.raises(InvalidInputError, match="no shipped state model"):
        run(images, labels=labels, model="no-such-model", out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_2d_model_on_3d_data(tmp_path):
    images, labels = synthetic_movie(T=3, ndim=3, size=48)
    with pytest.raises(InvalidInputError, match="2D model but the movie is 3D"):
        run(images, labels=labels, model=FixedClassifier(ndim=2), out=tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_3d_run_and_bad_device(tmp_path):
    images, labels = synthetic_movie(T=4, ndim=3, size=48)
    res = run(images, labels=labels, model=FixedClassifier(ndim=3), out=tmp_path / "o3", progress=False,
              voxel_size_um=(2.0, 0.5, 0.5))
    assert res.states["z"].between(3, 5).all()
    assert json.loads((tmp_path / "o3" / "run.json").read_text())["parameters"]["voxel_size_um"] == [2.0, 0.5, 0.5]
    with pytest.raises(InvalidInputError, match="device"):
        run(images, labels=labels, model=FixedClassifier(ndim=3), out=tmp_path / "o4", device="tpu")


def test_classical_segmentation_when_no_labels(tmp_path):
    images, labels = synthetic_movie(T=3)
    res = run(images, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False,
              segmenter="classical")
    info = json.loads((tmp_path / "o" / "run.json").read_text())
    assert info["parameters"]["segmenter"] == "classical"
    assert "CLASSICAL" in (tmp_path / "o" / "report.html").read_text()
    assert res.states.groupby("t").size().tolist() == [2, 2, 2]
    assert not (tmp_path / "o" / "_work").exists()


def test_given_lineage_files_geff_and_ctc(tmp_path):
    images, labels = synthetic_movie(T=4)
    first = run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "a", progress=False, video=False)
    again = run(images, labels=labels, lineage=tmp_path / "a" / "lineage.geff", model=FixedClassifier(),
                out=tmp_path / "b", progress=False, video=False)
    assert sorted(again.lineage.graph.edges) == sorted(first.lineage.graph.edges)
    assert "given" in again.info["parameters"]["lineage"]
    ctc = run(images, labels=tmp_path / "a" / "ctc", lineage=tmp_path / "a" / "ctc", model=FixedClassifier(),
              out=tmp_path / "c", progress=False, video=False)
    assert len(ctc.lineage.divisions()) == 1
    def per_frame(df):
        return df.groupby("t")["state"].apply(sorted).to_dict()

    assert per_frame(ctc.states) == per_frame(first.states)


def test_default_segmenter_is_the_learned_2d_model(tmp_path):
    """Without labels a 2D movie is segmented by the shipped nuclei-seg-2d-fast (recorded in run.json and the notes)."""
    images, _ = synthetic_movie(T=3)
    res = run(images, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False)
    info = json.loads((tmp_path / "o" / "run.json").read_text())
    assert info["config"]["segmenter"] == "auto"
    assert info["parameters"]["segmenter"] == "nuclei-seg-2d-fast"
    assert any("learned segmenter nuclei-seg-2d-fast" in n for n in info["notes"])
    assert res.states.groupby("t").size().tolist() == [2, 2, 2]
