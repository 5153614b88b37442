"""Event labels on tiny hand-built lineages: one test per rule and edge case.

Pictures: time runs to the right; ``(t,L)`` are nodes; ``─`` a link; ``┬ └`` a division;
``╳`` the end of a track. The movie's last frame is given in each test.
"""

from __future__ import annotations

import math
import random

import pytest

from dynacell.errors import InvalidInputError
from dynacell.lineage import (
    EVENT_STATES,
    EventRules,
    Lineage,
    count_states,
    label_events,
)


def chain(lin: Lineage, label: int, t0: int, t1: int, parent=None, step: int = 1) -> list:
    """Add nodes (t, label) for t in t0..t1 (every ``step`` frames), linked; link the first to ``parent``."""
    nodes = [(t, label) for t in range(t0, t1 + 1, step)]
    for n in nodes:
        lin.add_node(n, (0.0, 0.0))
    for a, b in zip(nodes, nodes[1:]):
        lin.add_edge(a, b)
    if parent is not None:
        lin.add_edge(parent, nodes[0])
    return nodes


def reference_labels(lin: Lineage, rules: EventRules) -> dict:
    """Straightforward per-node implementation of the documented rules, for cross-checking."""
    g = lin.graph
    last = lin.n_frames - 1

    def track_of(n):
        while True:
            p = list(g.predecessors(n))
            if not p or g.out_degree(p[0]) != 1:
                return n
            n = p[0]

    members: dict = {}
    for n in g.nodes:
        members.setdefault(track_of(n), []).append(n)
    track = {n: r for r, ms in members.items() for n in ms}
    out = {}
    for n in g.nodes:
        ms = members[track[n]]
        end = max(ms)
        start = min(ms)
        p = list(g.predecessors(start))
        if g.out_degree(end) >= 2 and end[0] - n[0] < rules.mitotic_frames:
            out[n] = "mitotic"
        elif p and g.out_degree(p[0]) >= 2 and n[0] - start[0] < rules.daughter_frames:
            out[n] = "new_daughter"
        elif rules.deaths == "annotated" and g.nodes[n].get("death"):
            out[n] = "death"
        elif g.out_degree(n) == 0 and n[0] < last:
            out[n] = "death" if rules.deaths == "track_end" and rules.track_end == "death" else "unknown"
        else:
            out[n] = None
    direct = {n for n, s in out.items() if s is None and g.out_degree(n) == 1}
    for n, s in out.items():
        if s is None:
            w = rules.stable_window
            k = sum(1 for m in members[track[n]] if m in direct and abs(m[0] - n[0]) <= w)
            out[n] = "stable" if n in direct and k >= math.floor(rules.stable_fraction * w) else "unknown"
    return out


def test_seed_division_mitotic_then_daughters():
    """Division in the middle of a 4-frame movie (last frame 3)::

        (0,1) ─ (1,1) ─┬─ (2,2) ─ (3,2)
                       └─ (2,3) ─ (3,3)
    """
    lin = Lineage(n_frames=4)
    a = chain(lin, 1, 0, 1)
    chain(lin, 2, 2, 3, parent=a[-1])
    chain(lin, 3, 2, 3, parent=a[-1])
    s = label_events(lin, EventRules.seed())
    assert s[(1, 1)] == "mitotic"
    assert s[(2, 2)] == s[(2, 3)] == "new_daughter"
    # one child but a 2-node track: never 12 directly stable nodes within ±8 frames
    assert s[(0, 1)] == "unknown"
    # track ends at the last frame: not a death
    assert s[(3, 2)] == s[(3, 3)] == "unknown"


def test_division_at_first_frame():
    """The mother exists only at frame 0 (last frame 2)::

        (0,1) ─┬─ (1,2) ─ (2,2)
               └─ (1,3) ─ (2,3)
    """
    lin = Lineage(n_frames=3)
    lin.add_node((0, 1))
    chain(lin, 2, 1, 2, parent=(0, 1))
    chain(lin, 3, 1, 2, parent=(0, 1))
    s = label_events(lin)
    assert s[(0, 1)] == "mitotic"
    assert s[(1, 2)] == s[(1, 3)] == "new_daughter"


def test_division_into_last_frame():
    """Daughters are born in the last frame (2) and end there::

        (0,1) ─ (1,1) ─┬─ (2,2)╳
                       └─ (2,3)╳
    new_daughter (rule 2) wins over the track-end rule; a track end AT the last frame is
    never a death anyway.
    """
    lin = Lineage(n_frames=3)
    a = chain(lin, 1, 0, 1)
    lin.add_node((2, 2)); lin.add_node((2, 3))
    lin.add_edge(a[-1], (2, 2)); lin.add_edge(a[-1], (2, 3))
    s = label_events(lin)
    assert s[(1, 1)] == "mitotic"
    assert s[(2, 2)] == s[(2, 3)] == "new_daughter"


def test_daughter_that_divides_at_once_is_mitotic():
    """Rule order: mitotic (1) before new_daughter (2). Last frame 3::

        (0,1) ─┬─ (1,2) ─┬─ (2,4) ─ (3,4)
               │         └─ (2,5) ─ (3,5)
               └─ (1,3) ─ (2,3) ─ (3,3)
    """
    lin = Lineage(n_frames=4)
    lin.add_node((0, 1))
    lin.add_node((1, 2))
    lin.add_edge((0, 1), (1, 2))
    chain(lin, 3, 1, 3, parent=(0, 1))
    chain(lin, 4, 2, 3, parent=(1, 2))
    chain(lin, 5, 2, 3, parent=(1, 2))
    s = label_events(lin)
    assert s[(1, 2)] == "mitotic"
    assert s[(1, 3)] == "new_daughter"
    assert s[(2, 4)] == "new_daughter"


def test_three_children():
    """A node with three children is a division; all three are new daughters. Last frame 2::

        (0,1) ─ (1,1) ─┬─ (2,2)
                       ├─ (2,3)
                       └─ (2,4)
    """
    lin = Lineage(n_frames=3)
    a = chain(lin, 1, 0, 1)
    for label in (2, 3, 4):
        lin.add_node((2, label))
        lin.add_edge(a[-1], (2, label))
    s = label_events(lin)
    assert lin.divisions() == [(1, 1)]
    assert s[(1, 1)] == "mitotic"
    assert [s[(2, k)] for k in (2, 3, 4)] == ["new_daughter"] * 3


def test_track_end_before_last_frame():
    """Track 1 ends at frame 1 of a 4-frame movie; track 2 reaches the last frame (3)::

        (0,1) ─ (1,1)╳
        (0,2) ─ (1,2) ─ (2,2) ─ (3,2)╳
    seed: death; track_end="unknown": unknown; annotated deaths without annotation: unknown.
    """
    lin = Lineage(n_frames=4)
    chain(lin, 1, 0, 1)
    chain(lin, 2, 0, 3)
    assert label_events(lin, EventRules.seed())[(1, 1)] == "death"
    assert label_events(lin, EventRules(track_end="unknown"))[(1, 1)] == "unknown"
    assert label_events(lin, EventRules.annotated_deaths())[(1, 1)] == "unknown"
    for rules in (EventRules.seed(), EventRules.annotated_deaths()):
        assert label_events(lin, rules)[(3, 2)] == "unknown"


def test_annotated_death():
    """Track 1 ends at frame 1 with death=True; track 2 ends at frame 2 unannotated; track 3
    reaches the last frame (3) and is annotated (a dying cell still visible when the movie ends)::

        (0,1) ─ (1,1)†
        (0,2) ─ (1,2) ─ (2,2)╳
        (0,3) ─ (1,3) ─ (2,3) ─ (3,3)†
    annotated: deaths exactly where annotated; seed: track ends before the last frame, annotations ignored.
    """
    lin = Lineage(n_frames=4)
    chain(lin, 1, 0, 1)
    chain(lin, 2, 0, 2)
    chain(lin, 3, 0, 3)
    lin.graph.nodes[(1, 1)]["death"] = True
    lin.graph.nodes[(3, 3)]["death"] = True
    ann = label_events(lin, EventRules.annotated_deaths())
    assert (ann[(1, 1)], ann[(2, 2)], ann[(3, 3)]) == ("death", "unknown", "death")
    assert count_states(ann)["death"] == 2
    seed = label_events(lin, EventRules.seed())
    assert (seed[(1, 1)], seed[(2, 2)], seed[(3, 3)]) == ("death", "death", "unknown")


def test_stable_window_at_movie_border():
    """One track over frames 0..20 (last frame 20), W = 8, need floor(1.5·8) = 12::

        (0,1) ─ (1,1) ─ ... ─ (19,1) ─ (20,1)╳
    Directly stable: frames 0..19 (20 has no child). Window [t−8, t+8] clipped at the
    borders holds ≥ 12 of them for t = 3 .. 16 only.
    """
    lin = Lineage(n_frames=21)
    chain(lin, 1, 0, 20)
    s = label_events(lin)
    stable = sorted(t for (t, _), st in s.items() if st == "stable")
    assert stable == list(range(3, 17))
    assert s[(20, 1)] == "unknown"
    assert s[(2, 1)] == s[(17, 1)] == "unknown"


def test_gap_shortens_window_and_keeps_daughter():
    """A track sampled every 2nd frame; a daughter born after a 2-frame gap. Last frame 30::

        (0,1) ─ (2,1) ─ ... ─ (20,1) ─┬─ ··· (22,2) ─ ... ─ (30,2)
                                      └─ ··· (22,3) ─ ... ─ (30,3)
    With W = 4 (need 6) a node sees at most 5 nodes (t−4, t−2, t, t+2, t+4): never stable;
    with W = 6 (need 9) at most 7: never stable; the first node after the gap is still new_daughter.
    """
    lin = Lineage(n_frames=31)
    a = chain(lin, 1, 0, 20, step=2)
    chain(lin, 2, 22, 30, parent=a[-1], step=2)
    chain(lin, 3, 22, 30, parent=a[-1], step=2)
    for w in (4, 6):
        s = label_events(lin, EventRules(stable_window=w))
        assert "stable" not in s.values()
        assert s[(22, 2)] == s[(22, 3)] == "new_daughter"
        assert s[(20, 1)] == "mitotic"
    s = label_events(lin, EventRules(stable_window=4, stable_fraction=1.0))
    assert s[(10, 1)] == "stable"


@pytest.mark.parametrize("k", [1, 2, 3])
def test_mitotic_and_daughter_frames(k):
    """Windows of k frames around a division at frame 5. Last frame 10::

        (0,1) ─ ... ─ (5,1) ─┬─ (6,2) ─ ... ─ (10,2)
                             └─ (6,3) ─ ... ─ (10,3)
    """
    lin = Lineage(n_frames=11)
    a = chain(lin, 1, 0, 5)
    chain(lin, 2, 6, 10, parent=a[-1])
    chain(lin, 3, 6, 10, parent=a[-1])
    s = label_events(lin, EventRules(mitotic_frames=k, daughter_frames=k))
    assert sorted(t for (t, lab), st in s.items() if st == "mitotic") == list(range(6 - k, 6))
    assert sorted(t for (t, lab), st in s.items() if st == "new_daughter" and lab == 2) == list(range(6, 6 + k))
    s0 = label_events(lin, EventRules(mitotic_frames=0, daughter_frames=0))
    assert "mitotic" not in s0.values() and "new_daughter" not in s0.values()


def test_window_zero_makes_every_single_child_node_stable():
    """W = 0 needs floor(0) = 0 nodes: every directly stable node is stable. Last frame 3::

        (0,1) ─ (1,1) ─ (2,1) ─ (3,1)╳
    """
    lin = Lineage(n_frames=4)
    chain(lin, 1, 0, 3)
    s = label_events(lin, EventRules(stable_window=0))
    assert [s[(t, 1)] for t in range(4)] == ["stable", "stable", "stable", "unknown"]


def test_vectorised_rules_match_reference_on_random_forests():
    """Random forests (divisions into 2 or 3, gaps, deaths, annotations) against the per-node reference."""
    rng = random.Random(4)
    seen: set = set()
    for trial in range(6):
        lin = Lineage(n_frames=40)
        next_label = [1]

        def grow(t, parent):
            label = next_label[0]
            next_label[0] += 1
            prev = parent
            while t < 40:
                lin.add_node((t, label))
                if prev is not None:
                    lin.add_edge(prev, (t, label))
                prev = (t, label)
                r = rng.random()
                if r < 0.06:
                    for _ in range(rng.choice([2, 2, 3])):
                        grow(t + rng.choice([1, 1, 2]), prev)
                    return
                if r < 0.09:
                    if rng.random() < 0.5:
                        lin.graph.nodes[prev]["death"] = True
                    return
                t += rng.choice([1, 1, 1, 2])

        for _ in range(4):
            grow(rng.randrange(0, 5), None)
        for rules in (EventRules.seed(), EventRules.annotated_deaths(),
                      EventRules(mitotic_frames=2, daughter_frames=3, stable_window=3)):
            got = label_events(lin, rules)
            assert got == reference_labels(lin, rules), (trial, rules)
            assert set(got.values()) <= set(EVENT_STATES)
            seen |= set(got.values())
    assert seen == set(EVENT_STATES)  # the random forests exercise every rule


def test_rules_validation_and_presets():
    assert EventRules.seed() == EventRules(mitotic_frames=1, daughter_frames=1, stable_window=8)
    assert EventRules.seed().min_stable == 12
    assert EventRules.preset("annotated-deaths") == EventRules.annotated_deaths()
    assert EventRules.preset("annotated_deaths").deaths == "annotated"
    with pytest.raises(InvalidInputError, match="stable_window"):
        EventRules(stable_window=-1)
    with pytest.raises(InvalidInputError, match="track_end"):
        EventRules(track_end="vanish")
    with pytest.raises(InvalidInputError, match="deaths"):
        EventRules(deaths="guess")
    with pytest.raises(InvalidInputError, match="preset"):
        EventRules.preset("best")


def test_two_parents_rejected():
    """A node with two parents is not a lineage::

        (0,1) ─┐
               ├─ (1,3)
        (0,2) ─┘
    """
    lin = Lineage(n_frames=2)
    for n in [(0, 1), (0, 2), (1, 3)]:
        lin.add_node(n)
    lin.add_edge((0, 1), (1, 3)); lin.add_edge((0, 2), (1, 3))
    with pytest.raises(InvalidInputError, match="2 parents"):
        label_events(lin)


def test_empty_lineage():
    assert label_events(Lineage()) == {}
    assert count_states({}) == {s: 0 for s in EVENT_STATES}
