"""Tests of the joint per-track decision of states and lineage (dynacell.states.joint)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from _helpers import division_lineage

from dynacell import STATES
from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage
from dynacell.states.joint import JointModel, end_reasons, joint_states, track_segments
from dynacell.states.reconcile import ReconcileRules, reconcile_states
from dynacell.states.tables import tracks_table

_division = division_lineage


def _chain(nodes, n_frames):
    lin = Lineage(n_frames=n_frames)
    for n in nodes:
        lin.add_node(n, centroid=(0, 30, 30))
    for a, b in pairwise(nodes):
        lin.add_edge(a, b)
    return lin


def _table(lin, proba=(0.7, 0.15, 0.1, 0.05), edge=50.0, size=10.0):
    nodes = sorted(lin.graph.nodes)
    p = np.tile(np.asarray(proba, float), (len(nodes), 1))
    st = pd.DataFrame({"t": [n[0] for n in nodes], "label": [n[1] for n in nodes], "track_id": 1})
    for i, s in enumerate(STATES):
        st[f"p_{s}"] = p[:, i]
    st["state"] = np.asarray(STATES, dtype=object)[p.argmax(axis=1)]
    st["edge_px"], st["size_px"] = edge, size
    return st


def _set(st, node, proba):
    i = st.index[(st.t == node[0]) & (st.label == node[1])][0]
    st.loc[i, [f"p_{s}" for s in STATES]] = proba
    st.loc[i, "state"] = STATES[int(np.argmax(proba))]


def _state(out, node):
    return out.loc[(out.t == node[0]) & (out.label == node[1]), "state"].item()


def test_linked_division_decides_mother_and_daughters_with_posteriors():
    lin = _division()
    st = _table(lin)
    out, changes = joint_states(st, lin)
    assert _state(out, (3, 1)) == "mitotic"
    assert _state(out, (4, 2)) == _state(out, (4, 3)) == "new_daughter"
    others = out[~out.set_index(["t", "label"]).index.isin([(3, 1), (4, 2), (4, 3)])]
    assert (others["state"] == "stable").all()
    post = out[[f"p_{s}_joint" for s in STATES]].to_numpy()
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    assert (post.argmax(axis=1) == [STATES.index(s) for s in out["state"]]).all()
    assert int(changes["n"].sum()) == 3
    assert set(changes["reason"]) == {"mother's last frame before a linked division",
                                      "daughter's first frame after a linked division"}
    # the classifier's own probabilities are kept beside the posteriors
    np.testing.assert_allclose(out["p_mitotic"], st["p_mitotic"])


def test_classifier_confidently_contradicting_a_division_wins():
    lin = _division()
    st = _table(lin)
    _set(st, (3, 1), [0.995, 0.004, 0.001, 0.0])  # 249:1 against mitotic, beyond the 49:1 prior
    out, _ = joint_states(st, lin)
    assert _state(out, (3, 1)) == "stable"
    _set(st, (3, 1), [0.9, 0.1, 0.0, 0.0])  # 9:1 only: the lineage wins
    out, _ = joint_states(st, lin)
    assert _state(out, (3, 1)) == "mitotic"


def test_event_calls_without_lineage_support_are_demoted_unless_certain():
    lin = _chain([(t, 1) for t in range(8)], n_frames=8)
    st = _table(lin)
    _set(st, (3, 1), [0.2, 0.8, 0.0, 0.0])  # mitotic inside a plain track
    _set(st, (5, 1), [0.3, 0.0, 0.7, 0.0])  # new daughter inside a plain track
    out, changes = joint_states(st, lin)
    assert (out["state"] == "stable").all()
    assert set(changes["reason"]) == {"within a track (no lineage event)"}
    _set(st, (3, 1), [0.0005, 0.9995, 0.0, 0.0])  # a near-certain call is kept
    out, _ = joint_states(st, lin)
    assert _state(out, (3, 1)) == "mitotic"


def test_confident_mitotic_then_new_daughter_flags_a_missed_division():
    lin = _chain([(t, 1) for t in range(8)], n_frames=8)
    st = _table(lin)
    _set(st, (3, 1), [0.001, 0.999, 0.0, 0.0])
    _set(st, (4, 1), [0.001, 0.0, 0.999, 0.0])
    out, _ = joint_states(st, lin)
    assert _state(out, (3, 1)) == "mitotic" and _state(out, (4, 1)) == "new_daughter"
    assert out["missed_division"].sum() == 1
    assert bool(out.loc[(out.t == 3), "missed_division"].item())


def test_death_needs_appearance_evidence_and_a_track_end_inside_the_field():
    nodes = [(t, 1) for t in range(5)]
    dying = [0.2, 0.0, 0.0, 0.8]
    # inside the field, the classifier sees a death at the last frame: death
    lin = _chain(nodes, n_frames=8)
    st = _table(lin, proba=(0.8, 0.05, 0.05, 0.1))
    _set(st, (4, 1), dying)
    out, _ = joint_states(st, lin)
    assert _state(out, (4, 1)) == "death" and out.loc[out.t == 4, "end_reason"].item() == "inside_field"
    # the same end without appearance evidence: never a death from the track end alone
    out, _ = joint_states(_table(lin, proba=(0.8, 0.05, 0.05, 0.1)), lin)
    assert "death" not in set(out["state"])
    # at the image border (the nucleus leaves the field): not a death, whatever the classifier says
    st_b = st.copy()
    st_b.loc[st_b.t == 4, "edge_px"] = 3.0
    out, _ = joint_states(st_b, lin)
    assert out.loc[out.t == 4, "end_reason"].item() == "border" and _state(out, (4, 1)) == "stable"
    # at the movie's last frame: not a death either
    lin_end = _chain(nodes, n_frames=5)
    out, _ = joint_states(st, lin_end)
    assert out.loc[out.t == 4, "end_reason"].item() == "movie_end" and "death" not in set(out["state"])


def test_a_model_without_a_death_class_never_decides_death():
    lin = _chain([(t, 1) for t in range(5)], n_frames=8)
    st = _table(lin, proba=(0.9, 0.05, 0.05, 0.0))
    out, _ = joint_states(st, lin)
    assert (out["p_death_joint"] == 0).all() and "death" not in set(out["state"])


def test_segments_and_end_reasons():
    lin = _chain([(0, 1), (1, 1), (2, 1), (5, 7), (6, 7)], n_frames=10)
    segs = track_segments(lin)
    assert segs == [[(0, 1), (1, 1), (2, 1)], [(5, 7), (6, 7)]]
    why = end_reasons(lin)
    assert why == {(2, 1): "gap", (6, 7): "inside_field"}
    assert end_reasons(_division()) == {(3, 1): "divides", (7, 2): "movie_end", (7, 3): "movie_end"}


def test_tracks_table_reports_why_tracks_end():
    lin = _chain([(t, 1) for t in range(5)], n_frames=8)
    lin.add_node((0, 2), centroid=(0, 2, 2))
    lin.add_node((1, 2), centroid=(0, 1, 1))
    lin.add_edge((0, 2), (1, 2))
    lin.assign_tracks()
    st = _table(lin)
    st.loc[st.label == 2, "edge_px"] = 0.0
    track_of = {n: d["track_id"] for n, d in lin.graph.nodes(data=True)}
    st["track_id"] = [track_of[(t, lab)] for t, lab in zip(st.t, st.label)]
    tab = tracks_table(lin, st).set_index("track_id")
    assert tab.loc[track_of[(4, 1)], "end_reason"] == "inside_field"
    assert tab.loc[track_of[(1, 2)], "end_reason"] == "border"
    assert set(tab["fate"]) == {"ends"}


def test_reconcile_dispatches_to_the_joint_decision_by_default():
    lin = _division()
    st = _table(lin, proba=(0.9, 0.05, 0.03, 0.02))
    joint, _ = reconcile_states(st, lin)
    assert "p_mitotic_joint" in joint and _state(joint, (3, 1)) == "mitotic"
    rules, _ = reconcile_states(st, lin, ReconcileRules(method="rules", promote_floor=0.1))
    assert "p_mitotic_joint" not in rules and _state(rules, (3, 1)) == "stable"  # the rules' floor blocks it
    assert "hidden Markov" in ReconcileRules().describe()
    with pytest.raises(InvalidInputError):
        ReconcileRules(method="vote")
    with pytest.raises(InvalidInputError):
        JointModel(lineage_confidence=1.0)


def test_combine_dead_evidence():
    from dynacell.states.joint import combine_dead_evidence

    p = np.array([[0.8, 0.1, 0.1, 0.0], [0.8, 0.1, 0.1, 0.0]])
    out = combine_dead_evidence(p, np.array([0.9, np.nan]))
    assert out[0] == pytest.approx([0.08, 0.01, 0.01, 0.9])
    assert out[1] == pytest.approx(p[1])  # no evidence: unchanged
    # a classifier with a death class: product of the two, renormalised
    q = combine_dead_evidence(np.array([[0.5, 0.0, 0.0, 0.5]]), np.array([0.8]))
    assert q[0] == pytest.approx([0.2, 0.0, 0.0, 0.8])
    with pytest.raises(InvalidInputError, match="0..1"):
        combine_dead_evidence(p, np.array([1.5, 0.2]))
    with pytest.raises(InvalidInputError, match="do not match"):
        combine_dead_evidence(p, np.array([0.5]))


def test_dead_evidence_decides_a_death_only_at_a_track_end_inside_the_field():
    nodes = [(t, 1) for t in range(5)]
    lin = _chain(nodes, n_frames=8)
    st = _table(lin, proba=(0.9, 0.05, 0.05, 0.0))  # a 2D model: no death class
    st["p_dead_seg"] = 0.02
    st.loc[st.t == 4, "p_dead_seg"] = 0.9
    out, changes = joint_states(st, lin)
    assert _state(out, (4, 1)) == "death" and out.loc[out.t == 4, "p_death_joint"].item() > 0.5
    assert (out.loc[out.t < 4, "state"] == "stable").all()
    assert changes["reason"].str.contains("segmenter's dead evidence").any()
    # without the evidence column: no death (the track end alone never decides one)
    out, _ = joint_states(st.drop(columns="p_dead_seg"), lin)
    assert "death" not in set(out["state"])
    # the same evidence where the nucleus leaves the field, at the movie's end or on a continuing track: no death
    st_b = st.copy()
    st_b.loc[st_b.t == 4, "edge_px"] = 3.0
    assert "death" not in set(joint_states(st_b, lin)[0]["state"])
    assert "death" not in set(joint_states(st, _chain(nodes, n_frames=5))[0]["state"])
    st_mid = st.copy()
    st_mid["p_dead_seg"] = 0.02
    st_mid.loc[st_mid.t == 2, "p_dead_seg"] = 0.95
    assert "death" not in set(joint_states(st_mid, lin)[0]["state"])


def test_tracks_table_border_margin():
    lin = _chain([(t, 1) for t in range(5)], n_frames=8)
    lin.assign_tracks()
    st = _table(lin, edge=7.0, size=10.0)
    assert tracks_table(lin, st)["end_reason"].item() == "inside_field"  # default: within half a nucleus
    assert tracks_table(lin, st, border_margin=1.0)["end_reason"].item() == "border"
    st["edge_px"] = 4.0
    assert tracks_table(lin, st)["end_reason"].item() == "border"


def test_a_division_linked_one_frame_early_puts_the_mitotic_frame_in_the_daughters():
    """Both daughters' first nodes mitotic, their second newborn (the dividing nucleus's masses cut apart at her
    mitotic frame): those first nodes are decided mitotic, the second new_daughter, and the mother's last frame is
    not forced to mitotic; off (early_split_p > 1) the lineage forces the usual pattern."""
    lin = _division()  # mother 1 frames 0-3, daughters 2 and 3 from frame 4
    st = _table(lin, proba=(0.97, 0.01, 0.01, 0.01))
    for lab in (2, 3):
        _set(st, (4, lab), [0.05, 0.9, 0.04, 0.01])
        _set(st, (5, lab), [0.03, 0.01, 0.95, 0.01])
    _set(st, (3, 1), [0.6, 0.35, 0.04, 0.01])  # the mother's last frame, before the cut, looks mostly stable
    out, changes = joint_states(st, lin)
    assert _state(out, (3, 1)) == "stable"
    assert _state(out, (4, 2)) == _state(out, (4, 3)) == "mitotic"
    assert _state(out, (5, 2)) == _state(out, (5, 3)) == "new_daughter"
    assert not out["missed_division"].any()
    assert changes.empty  # the decision now agrees with the classifier everywhere
    off, off_changes = joint_states(st, lin, JointModel(early_split_p=1.01))
    assert _state(off, (3, 1)) == "mitotic" and _state(off, (4, 2)) == "new_daughter"
    assert int(off_changes["n"].sum()) >= 3
    one = st.copy()
    _set(one, (5, 3), [0.95, 0.01, 0.03, 0.01])  # one daughter does not become a newborn: not an early split
    assert _state(joint_states(one, lin)[0], (3, 1)) == "mitotic"
    with pytest.raises(InvalidInputError, match="early_split_p"):
        JointModel(early_split_p=0.3)
