"""Tests of the state-aware division check (dynacell.states.relink)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _helpers import division_lineage

from dynacell import STATES
from dynacell.errors import InvalidInputError
from dynacell.lineage.graph import Lineage
from dynacell.states.relink import DivisionCheck, check_divisions
from dynacell.track import assign_ctc_tracks


def _division(split=3, n_frames=8, near=(30, 31), far=(30, 60)):
    """Mother 1 (frames 0..split) -> daughters 2 (near the mother) and 3 (far), with CTC track ids."""
    lin = division_lineage(n_frames, split, daughters=(near, far))
    assign_ctc_tracks(lin)
    return lin


def _table(lin, mitotic=0.001, daughter=(0.001, 0.001)):
    rows = []
    split = max(t for t, lab in lin.graph.nodes if lab == 1)
    for (t, lab), d in sorted(lin.graph.nodes(data=True)):
        p = np.array([0.99, 0.003, 0.003, 0.004])
        if lab == 1 and t == split:
            p = np.array([1 - mitotic, mitotic, 0.0, 0.0])
        if lab in (2, 3) and t == split + 1:
            q = daughter[lab - 2]
            p = np.array([1 - q, 0.0, q, 0.0])
        rows.append({"t": t, "label": lab, "track_id": d["track_id"], **{f"p_{s}": v for s, v in zip(STATES, p)}})
    return pd.DataFrame(rows)


def test_a_division_the_classifier_contradicts_is_unlinked_into_the_stable_daughter():
    lin = _division()
    st = _table(lin, mitotic=0.001, daughter=(0.6, 0.001))  # daughter 3 looks stable: the mother continues there
    out, new, table = check_divisions(st, lin)
    assert table["decision"].tolist() == ["unlinked"]
    assert (table[["kept_child_t", "kept_child_label"]].to_numpy() == [[4, 3]]).all()
    assert new.divisions() == [] and lin.divisions() == [(3, 1)]  # the input is not modified
    assert list(new.graph.successors((3, 1))) == [(4, 3)]
    tid = dict(zip(zip(out.t, out.label), out.track_id))
    assert tid[(0, 1)] == tid[(7, 3)] != tid[(4, 2)]
    assert new.tracks().set_index("track_id").loc[tid[(4, 2)], "parent_track_id"] == 0


def test_ties_go_to_the_nearest_daughter():
    lin = _division()
    _, new, _ = check_divisions(_table(lin, 0.001, (0.001, 0.001)), lin)
    assert list(new.graph.successors((3, 1))) == [(4, 2)]  # daughter 2 sits next to the mother


@pytest.mark.parametrize("mitotic, daughter", [(0.6, (0.001, 0.001)), (0.001, (0.9, 0.9)), (0.25, (0.001, 0.5))])
def test_a_division_with_appearance_evidence_is_kept(mitotic, daughter):
    lin = _division()
    st = _table(lin, mitotic, daughter)
    out, new, table = check_divisions(st, lin)
    assert table["decision"].tolist() == ["kept"]
    assert new is lin and out is st


def test_the_default_contradiction_is_four_to_one_against_at_both_ends():
    lin = _division()
    assert DivisionCheck().contradict_p == 0.2
    assert check_divisions(_table(lin, 0.15, (0.6, 0.15)), lin)[2]["decision"].tolist() == ["unlinked"]
    assert check_divisions(_table(lin, 0.15, (0.6, 0.15)), lin, DivisionCheck(contradict_p=0.1))[2][
        "decision"].tolist() == ["kept"]


def test_evidence_is_taken_over_the_frames_around_the_division():
    lin = _division()
    st = _table(lin, 0.001, (0.001, 0.001))
    st.loc[(st.t == 2) & (st.label == 1), ["p_stable", "p_mitotic"]] = [0.4, 0.6]  # mitotic one frame early
    assert check_divisions(st, lin)[2]["decision"].tolist() == ["kept"]
    assert check_divisions(st, lin, DivisionCheck(frames=1))[2]["decision"].tolist() == ["unlinked"]


def test_disabled_keeps_every_division_and_bad_input_is_refused():
    lin = _division()
    st = _table(lin)
    assert check_divisions(st, lin, DivisionCheck(enabled=False))[2]["decision"].tolist() == ["kept"]
    with pytest.raises(InvalidInputError, match="p_new_daughter"):
        check_divisions(st.drop(columns="p_new_daughter"), lin)
    with pytest.raises(InvalidInputError, match="contradict_p"):
        DivisionCheck(contradict_p=0.7)


def test_tracks_table_states_why_a_dividing_track_has_no_mitotic_frame():
    from dynacell.states.reconcile import reconcile_states
    from dynacell.states.tables import tracks_table

    lin = _division()
    st = _table(lin, 0.0005, (0.9, 0.9))  # the classifier sees no mitosis, the daughters look newborn
    st["state"] = np.asarray(STATES, dtype=object)[st[[f"p_{s}" for s in STATES]].to_numpy().argmax(axis=1)]
    out, _ = reconcile_states(st, lin)
    tt = tracks_table(lin, out).set_index("track_id")
    mother = int(out.loc[(out.t == 0) & (out.label == 1), "track_id"].item())
    assert tt.loc[mother, "fate"] == "divides" and tt.loc[mother, "n_mitotic"] == 0
    assert "not confirmed" in tt.loc[mother, "division_note"] and "0.003" in tt.loc[mother, "division_note"]
    assert (tt.drop(index=mother)["division_note"] == "").all()


def _with_tracks(lin, rows):
    """``lin`` with CTC track ids and its state table: ``rows`` (dicts with ``p`` = the 4 probabilities)."""
    assign_ctc_tracks(lin)
    st = pd.DataFrame([{k: v for k, v in r.items() if k != "p"} | {f"p_{s}": v for s, v in zip(STATES, r["p"])}
                       for r in rows])
    st["track_id"] = [lin.graph.nodes[(t, lab)]["track_id"] for t, lab in zip(st.t, st.label)]
    return lin, st


def _missed(gap=3, late_pos=(30, 40), late_daughter=0.9, mother_mitotic=0.9):
    """Track 1 over frames 0..9 at (30, 30), mitotic at frame 3 and newborn-looking at frame 4; a second
    track starts at frame 4 + gap at ``late_pos`` (no parent), newborn-looking at its first frame."""
    lin = Lineage(n_frames=10)
    rows = []
    for t in range(10):
        lin.add_node((t, 1), centroid=(0, 30, 30))
        if t:
            lin.add_edge((t - 1, 1), (t, 1))
        p = {3: [1 - mother_mitotic, mother_mitotic, 0, 0], 4: [0.1, 0, 0.9, 0]}.get(t, [0.99, 0.005, 0.005, 0])
        rows.append({"t": t, "label": 1, "y": 30.0, "x": 30.0, "size_px": 10.0, "p": p})
    for t in range(4 + gap, 10):
        lin.add_node((t, 2), centroid=(0, *late_pos))
        if t > 4 + gap:
            lin.add_edge((t - 1, 2), (t, 2))
        p = [1 - late_daughter, 0, late_daughter, 0] if t == 4 + gap else [0.99, 0.005, 0.005, 0]
        rows.append({"t": t, "label": 2, "y": float(late_pos[0]), "x": float(late_pos[1]), "size_px": 10.0, "p": p})
    return _with_tracks(lin, rows)


def test_a_missed_division_across_a_gap_is_relinked():
    lin, st = _missed(gap=3)
    out, new, table = check_divisions(st, lin)
    assert table["decision"].tolist() == ["relinked"]
    assert sorted(new.graph.successors((3, 1))) == [(4, 1), (7, 2)] and lin.divisions() == []
    tid = dict(zip(zip(out.t, out.label), out.track_id))
    tracks = new.tracks().set_index("track_id")
    assert tracks.loc[tid[(7, 2)], "parent_track_id"] == tid[(0, 1)] == tracks.loc[tid[(4, 1)], "parent_track_id"]


@pytest.mark.parametrize("kw", [{"gap": 5}, {"late_pos": (30, 70)}, {"late_daughter": 0.2}, {"mother_mitotic": 0.3}])
def test_no_relink_without_the_whole_signature(kw):
    lin, st = _missed(**kw)
    _, new, table = check_divisions(st, lin)
    assert len(table) == 0 and new is lin
    assert check_divisions(*_missed()[::-1], DivisionCheck(relink=False))[2].empty


def _many_divisions(n: int, agreeing: int):
    """``n`` separate divisions (mothers 10i+1 over frames 0..3, daughters 10i+2, 10i+3 over 4..7); the
    classifier sees the first ``agreeing`` (p_mitotic and p_new_daughter 0.9) and contradicts the others (0.001)."""
    lin = Lineage(n_frames=8)
    for i in range(n):
        m, a, b = 10 * i + 1, 10 * i + 2, 10 * i + 3
        for t in range(4):
            lin.add_node((t, m), centroid=(0, 30, 100 * i))
            if t:
                lin.add_edge((t - 1, m), (t, m))
        for t in range(4, 8):
            for lab in (a, b):
                lin.add_node((t, lab), centroid=(0, 30, 100 * i + (lab - m)))
                lin.add_edge((t - 1, m if t == 4 else lab), (t, lab))
    assign_ctc_tracks(lin)
    rows = []
    for (t, lab), d in sorted(lin.graph.nodes(data=True)):
        i, role = divmod(lab, 10)
        q = 0.9 if i < agreeing else 0.001
        p = [0.99, 0.003, 0.003, 0.004]
        if role == 1 and t == 3:
            p = [1 - q, q, 0.0, 0.0]
        if role in (2, 3) and t == 4:
            p = [1 - q, 0.0, q, 0.0]
        rows.append({"t": t, "label": lab, "track_id": d["track_id"], **{f"p_{s}": v for s, v in zip(STATES, p)}})
    return lin, pd.DataFrame(rows)


def test_classifier_agreement_decides_whether_the_classifier_is_trusted_with_divisions():
    from dynacell.states.relink import classifier_agreement

    lin, st = _many_divisions(6, agreeing=1)
    ag = classifier_agreement(st, lin)
    assert ag["n_divisions"] == 6 and ag["mitotic"] == pytest.approx(1 / 6) and ag["new_daughter"] == pytest.approx(1 / 6)
    assert ag["trusted"] is False and "50%" in ag["rule"] and ag["persistent"] == 1.0  # daughters reach the end
    assert classifier_agreement(st, lin, DivisionCheck(min_divisions=7))["trusted"] is True  # too few to judge
    assert classifier_agreement(st, lin, DivisionCheck(min_agreement=0.0))["trusted"] is True
    lin4, st4 = _many_divisions(6, agreeing=4)
    assert classifier_agreement(st4, lin4)["trusted"] is True
    empty = classifier_agreement(st.iloc[:0], Lineage(n_frames=8))
    assert empty["n_divisions"] == 0 and np.isnan(empty["mitotic"]) and empty["trusted"] is True
    with pytest.raises(InvalidInputError, match="min_agreement"):
        DivisionCheck(min_agreement=1.5)


def test_an_untrusted_classifier_unlinks_nothing_and_the_joint_decision_follows_the_lineage():
    from dynacell.states.reconcile import ReconcileRules, reconcile_states

    lin, st = _many_divisions(6, agreeing=1)
    _, _, table = check_divisions(st, lin)
    assert (table["decision"] == "unlinked").sum() == 5
    out, new, table = check_divisions(st, lin, trusted=False)
    assert (table["decision"] == "kept").all() and new is lin and out is st
    rules = ReconcileRules()
    trusting = rules.trusting_lineage()
    assert trusting.joint.lineage_confidence == pytest.approx(1 - rules.joint.emission_floor / 2)
    assert ReconcileRules(method="rules").trusting_lineage() == ReconcileRules(method="rules")
    st["state"] = np.array(STATES)[st[[f"p_{s}" for s in STATES]].to_numpy().argmax(axis=1)]
    def mothers(states):  # the 5 contradicted mothers' last frames
        return states.loc[(states.t == 3) & (states.label % 10 == 1) & (states.label > 10), "state"].tolist()

    assert mothers(reconcile_states(st, lin, rules)[0]) == ["stable"] * 5
    assert mothers(reconcile_states(st, lin, trusting)[0]) == ["mitotic"] * 5


def test_the_classifier_keeps_its_veto_when_the_daughters_do_not_persist():
    """Daughters that vanish after 2 frames, well before the movie's end, look like a segmentation that
    splits nuclei for a frame or two: the divisions are in doubt, not the classifier."""
    from dynacell.states.relink import classifier_agreement

    lin, st = _many_divisions(6, agreeing=1)
    lin.graph.remove_nodes_from([n for n in list(lin.graph.nodes) if n[0] >= 6])
    lin.n_frames = 20
    st = st[st.t < 6]
    ag = classifier_agreement(st, lin)
    assert ag["persistent"] == 0.0 and ag["trusted"] is True
    assert classifier_agreement(st, lin, DivisionCheck(persist_frames=2))["trusted"] is False
    assert (check_divisions(st, lin)[2]["decision"] == "unlinked").sum() == 5


def test_a_daughter_that_vanishes_inside_the_field_is_unlinked_unless_the_mother_is_confirmed():
    lin = _division(split=3, n_frames=12)
    lin.graph.remove_nodes_from([(t, 3) for t in range(5, 12)])  # daughter 3 lasts one frame (t=4)
    lin.n_frames = 12
    assign_ctc_tracks(lin)
    st = _table(lin, mitotic=0.3, daughter=(0.6, 0.6))  # not contradicted, not confirmed
    st["edge_px"], st["size_px"] = 20.0, 10.0  # far from the edge
    out, new, table = check_divisions(st, lin)
    assert table["decision"].tolist() == ["unlinked_short_lived"]
    assert list(new.graph.successors((3, 1))) == [(4, 2)] and lin.divisions() == [(3, 1)]
    assert (table[["kept_child_t", "kept_child_label"]].to_numpy() == [[4, 2]]).all()
    confirmed = _table(lin, mitotic=0.9, daughter=(0.6, 0.6))
    confirmed["edge_px"], confirmed["size_px"] = 20.0, 10.0
    assert check_divisions(confirmed, lin)[2]["decision"].tolist() == ["kept"]
    st["edge_px"] = 2.0  # it left the field: not short-lived
    assert check_divisions(st, lin)[2]["decision"].tolist() == ["kept"]
    st["edge_px"] = 20.0
    assert check_divisions(st, lin, DivisionCheck(short_lived=False))[2]["decision"].tolist() == ["kept"]
    assert check_divisions(st.drop(columns="edge_px"), lin)[2]["decision"].tolist() == ["kept"]  # no positions


def _misattached(far=(30, 60), mother_mitotic=0.9, b_daughter=0.95, drift=None):
    """Mother M (label 1, frames 0..3 at (30, 30)) continues into C (label 2, frames 4..7 at (30, 26)); a
    vanishing nucleus A (label 3, frames 0..3 at ``far``) was continued into B (label 4, frames 4..7 at
    (30, 34), 4 px from M): B looks newborn, M mitotic, C newborn. ``drift``: six bystander nuclei
    (labels 10..15) that move by ``drift`` px in x from frame 3 to frame 4 (the local flow)."""
    lin = Lineage(n_frames=8)
    rows = []
    if drift is not None:
        for i in range(6):
            lab = 10 + i
            for t in range(8):
                x = 30.0 + (drift if t >= 4 else 0.0)
                lin.add_node((t, lab), centroid=(0, 60 + 10 * i, x))
                rows.append({"t": t, "label": lab, "y": 60.0 + 10 * i, "x": x, "size_px": 10.0,
                             "p": [0.99, 0.005, 0.005, 0]})
                if t:
                    lin.add_edge((t - 1, lab), (t, lab))

    def add(lab, frames, yx, p_at):
        for t in frames:
            lin.add_node((t, lab), centroid=(0, *yx))
            rows.append({"t": t, "label": lab, "y": float(yx[0]), "x": float(yx[1]), "size_px": 10.0,
                         "p": p_at.get(t, [0.99, 0.005, 0.005, 0])})

    add(1, range(4), (30, 30), {3: [1 - mother_mitotic, mother_mitotic, 0, 0]})
    add(2, range(4, 8), (30, 26), {4: [0.1, 0, 0.9, 0]})
    add(3, range(4), far, {3: [0.3, 0, 0, 0.7]})
    add(4, range(4, 8), (30, 34), {4: [1 - b_daughter, 0, b_daughter, 0]})
    for a, b in ((1, 1), (1, 2), (3, 3), (3, 4), (2, 2), (4, 4)):
        for t in range(7):
            if (t, a) in lin.graph and (t + 1, b) in lin.graph and (a == b or t == 3):
                lin.add_edge((t, a), (t + 1, b))
    return _with_tracks(lin, rows)


def test_a_daughter_continued_from_a_farther_vanishing_nucleus_is_moved_to_her_mother():
    lin, st = _misattached()
    assert lin.divisions() == [] and list(lin.graph.successors((3, 3))) == [(4, 4)]
    out, new, table = check_divisions(st, lin)
    assert table["decision"].tolist() == ["reattached"]
    assert table.loc[0, ["t", "label", "kept_child_t", "kept_child_label"]].tolist() == [3, 1, 4, 4]
    assert sorted(new.graph.successors((3, 1))) == [(4, 2), (4, 4)]
    assert list(new.graph.successors((3, 3))) == []  # the vanishing nucleus' track ends there
    assert list(lin.graph.successors((3, 3))) == [(4, 4)]  # the input lineage is not changed
    tid = dict(zip(zip(out.t, out.label), out.track_id))
    assert tid[(4, 4)] != tid[(3, 3)] and tid[(4, 4)] != tid[(3, 1)]


@pytest.mark.parametrize("kw", [{"far": (30, 36)}, {"mother_mitotic": 0.3}, {"b_daughter": 0.2}])
def test_no_reattachment_without_the_whole_signature(kw):
    lin, st = _misattached(**kw)  # A nearer to B than M is / M not mitotic / B not newborn
    _, new, table = check_divisions(st, lin)
    assert "reattached" not in table["decision"].tolist()
    assert list(new.graph.successors((3, 3))) == [(4, 4)]
    assert check_divisions(*_misattached()[::-1], DivisionCheck(reattach=False))[2].empty


def test_reattachment_compares_positions_moved_by_the_local_flow():
    lin, st = _misattached(drift=0.0)  # bystanders at rest: B is nearer to M, reattached
    assert check_divisions(st, lin)[2]["decision"].tolist() == ["reattached"]
    lin, st = _misattached(drift=-26.0)  # everything moves 26 px to the left: A lands on B, kept
    _, new, table = check_divisions(st, lin)
    assert table.empty and list(new.graph.successors((3, 3))) == [(4, 4)]


def test_a_division_linked_one_frame_early_keeps_its_mitotic_evidence_in_the_daughters():
    """A segmentation that cuts the two chromatin masses apart at the mother's last frame links the division one
    frame early: the mother still looks stable, both daughters' first nodes look mitotic, their second newborn."""
    from dynacell.states.relink import classifier_agreement

    lin = _division()
    st = _table(lin, mitotic=0.001, daughter=(0.001, 0.001))
    early = st.set_index(["t", "label"])
    for lab in (2, 3):
        early.loc[(4, lab), [f"p_{s}" for s in STATES]] = [0.05, 0.9, 0.05, 0.0]
        early.loc[(5, lab), [f"p_{s}" for s in STATES]] = [0.05, 0.0, 0.95, 0.0]
    early = early.reset_index()
    assert check_divisions(st, lin)[2]["decision"].tolist() == ["unlinked"]  # no evidence at all: contradicted
    _, new, table = check_divisions(early, lin)
    assert table["decision"].tolist() == ["kept"] and table["p_mitotic"].iloc[0] == pytest.approx(0.9) and new is lin
    one_half = early.copy()
    one_half.loc[(one_half.t == 4) & (one_half.label == 3), [f"p_{s}" for s in STATES]] = [0.99, 0.003, 0.003, 0.004]
    one_half.loc[(one_half.t == 5) & (one_half.label == 3), [f"p_{s}" for s in STATES]] = [0.99, 0.003, 0.003, 0.004]
    assert check_divisions(one_half, lin)[2]["decision"].tolist() == ["unlinked"]  # one mitotic half is not enough
    lin6, st6 = _many_divisions(6, agreeing=1)
    st6 = st6.set_index(["t", "label"])
    for i in range(1, 3):  # two more divisions linked one frame early: mitotic share 3 of 6
        for lab in (10 * i + 2, 10 * i + 3):
            st6.loc[(4, lab), [f"p_{s}" for s in STATES]] = [0.05, 0.9, 0.05, 0.0]
            st6.loc[(5, lab), [f"p_{s}" for s in STATES]] = [0.05, 0.0, 0.95, 0.0]
    ag = classifier_agreement(st6.reset_index(), lin6)
    assert ag["mitotic"] == pytest.approx(3 / 6) and ag["new_daughter"] == pytest.approx(3 / 6)
