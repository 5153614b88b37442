"""Make classifier states and lineage events agree: :class:`ReconcileRules`, :func:`reconcile_states`.

The lineage says where an event *can* happen (a division: the mother's last frame and each
daughter's first frame; a track end before the movie's last frame); the classifier says what each
nucleus looks like. By default (``method="joint"``) both are combined in one probabilistic
decision per track, :func:`dynacell.states.joint.joint_states` (a hidden Markov model per track,
posterior probabilities after the decision). ``method="rules"`` keeps the earlier rule-by-rule
reconciliation documented in :class:`ReconcileRules`. Either way every change is counted with its
reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from dynacell import STATES
from dynacell.lineage.graph import Lineage, Node
from dynacell.states.joint import JointModel, joint_states

__all__ = ["ReconcileRules", "lineage_events", "reconcile_states", "reconciliation_record"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReconcileRules:
    """How classifier states and the lineage are made to agree.

    ``method="joint"`` (default): one hidden Markov model per track decides the states from the
    classifier's probabilities and the lineage's divisions and track ends, with the parameters
    ``joint`` (:class:`dynacell.states.joint.JointModel`); the fields below except ``enabled``
    are then unused. ``method="rules"``: the rule-by-rule reconciliation below.

    The lineage defines where each event can happen (the seed's event definitions; docs/data-formats.md):
    ``mitotic`` at a node with ≥ 2 children (the mother's last frame), ``new_daughter`` at a
    daughter's first node, ``death`` at a node without children before the movie's last frame
    (a track end). The rule, for every nucleus:

    1. **Promotion.** At such a lineage event the state becomes that event when the
       classifier's probability for it is at least ``promote_floor`` (checked in the order
       mitotic, new_daughter, death).
    2. **Demotion.** An event call with no matching lineage event on its own track within
       ``window`` frames (after a mitotic or death call, before a new_daughter call; the node
       itself counts) is unsupported: the nucleus gets the most probable class among
       ``stable`` and the events the lineage supports there.
    3. ``stable`` calls are kept unless promoted.
    4. A **gap-closed link** (a node whose only child is more than one frame later) may hide a
       death followed by a new nucleus linked across the gap, so it *supports* a death call
       (no demotion) without *promoting* one: gaps are common where masks drop out.
    5. A **suspect link**: a nucleus whose only child is called ``new_daughter`` with probability
       ≥ ``suspect_daughter_p`` although the lineage has no division there, *and* whose source (or
       one of the ``window`` nodes before it) is called ``mitotic`` or ``death`` with probability
       ≥ ``suspect_daughter_p``. Either the linker missed a division (the source is a mother) or it
       joined a dying nucleus to a neighbour's newborn daughter; the lineage cannot tell which, so
       the classifier decides: the link supports a mitotic or a death call at its source (and the
       ``window`` nodes before it) and the new-daughter call at the child (and the ``window`` nodes
       after it), without promoting any. Evidence at both ends is required, so that isolated
       new-daughter calls on a plain track (e.g. a real embryo imaged with large motion between
       frames) are still demoted by rule 2.

    Parameters
    ----------
    promote_floor : float
        Smallest classifier probability (0..1) for which a lineage event promotes a state.
    window : int
        Frames of tolerance between an event call and the lineage event (≥ 0).
    suspect_daughter_p : float
        Probability of a ``new_daughter`` call (0..1) above which a non-division link into it is
        suspect (rule 5).
    enabled : bool
        False keeps the classifier's states unchanged (the changes table is then empty).
    method : {"joint", "rules"}
        The joint per-track decision (default) or the rules 1–5 above.
    joint : JointModel
        Parameters of the joint decision.

    Notes
    -----
    The lineage can be wrong (a track end may be a cell leaving the field or a lost mask, as in
    the seed's death labels); the floor keeps the classifier's say, and ``run.json`` /
    ``report.html`` count every change with its reason.
    """

    promote_floor: float = 0.1
    window: int = 1
    suspect_daughter_p: float = 0.5
    enabled: bool = True
    method: Literal["joint", "rules"] = "joint"
    joint: JointModel = field(default_factory=JointModel)

    def __post_init__(self) -> None:
        from dynacell.errors import InvalidInputError

        if self.method not in ("joint", "rules"):
            raise InvalidInputError(f"ReconcileRules.method must be 'joint' or 'rules', got {self.method!r}")
        if isinstance(self.joint, dict):
            object.__setattr__(self, "joint", JointModel(**self.joint))

    def trusting_lineage(self) -> ReconcileRules:
        """These rules with the joint decision following every linked division.

        Used by ``dynacell run`` when the classifier does not recognise the movie's divisions
        (:func:`dynacell.states.relink.classifier_agreement`): ``joint.lineage_confidence`` becomes
        ``1 − joint.emission_floor / 2``, odds the floored classifier probabilities can never
        reach, so a linked division always makes the mother's last frame ``mitotic`` and each
        daughter's first frame ``new_daughter``. The rule-by-rule method is returned unchanged.

        Returns
        -------
        ReconcileRules
            A copy (``self`` when ``method`` is ``"rules"`` or reconciliation is disabled).
        """
        from dataclasses import replace

        if self.method != "joint" or not self.enabled:
            return self
        return replace(self, joint=replace(self.joint, lineage_confidence=1.0 - self.joint.emission_floor / 2))

    def describe(self) -> str:
        """One paragraph stating the rule with its parameters (for the report)."""
        if not self.enabled:
            return "Reconciliation disabled: states are the classifier's argmax."
        if self.method == "joint":
            return self.joint.describe()
        return (
            f"Lineage events (a division: the mother's last frame and each daughter's first frame; a track end "
            f"before the movie's last frame) promote the state to mitotic / new_daughter / death when the "
            f"classifier's probability for it is >= {self.promote_floor}. A mitotic, new_daughter or death call "
            f"with no such lineage event on its track within {self.window} frame(s) is demoted to its most "
            f"probable class among stable and the events the lineage supports there. A gap-closed link (next "
            f"node more than one frame later) supports a death call without promoting one. A non-division link "
            f"into a new-daughter call with probability >= {self.suspect_daughter_p} whose source (or the "
            f"{self.window} frame(s) before it) has a mitotic or death call with probability >= "
            f"{self.suspect_daughter_p} (a missed division or a dying nucleus linked to a newborn) supports "
            f"mitotic or death calls at its source and the new-daughter call at its child, without promoting "
            f"any. "
            f"Stable calls are kept."
        )


def lineage_events(lineage: Lineage, window: int) -> dict[str, tuple[set[Node], set[Node]]]:
    """Where the lineage allows each event state: anchor nodes and supported nodes.

    Parameters
    ----------
    lineage : Lineage
        The lineage (``n_frames`` = the movie's frames).
    window : int
        Frames of tolerance along a track (≥ 0).

    Returns
    -------
    dict
        ``state -> (anchors, support)`` for ``mitotic`` (anchors: nodes with ≥ 2 children;
        support: anchors and the ``window`` nodes before them on their track), ``new_daughter``
        (anchors: first node of each daughter; support: anchors and the ``window`` nodes after
        them) and ``death`` (anchors: nodes without children before the last frame; support:
        anchors and the ``window`` nodes before them; gap-closed links — a single child more than one
        frame later — are added to the support, not the anchors). Anchors follow the seed's event
        definitions (:func:`dynacell.lineage.label_events`).
    """
    g = lineage.graph
    last = lineage.n_frames - 1

    def back(node: Node, out: set[Node]) -> None:
        cur = node
        while True:
            preds = list(g.predecessors(cur))
            if len(preds) != 1 or g.out_degree(preds[0]) != 1 or node[0] - preds[0][0] > window:
                return
            cur = preds[0]
            out.add(cur)

    def forward(node: Node, out: set[Node]) -> None:
        cur = node
        while True:
            succ = list(g.successors(cur))
            if len(succ) != 1 or succ[0][0] - node[0] > window:
                return
            cur = succ[0]
            out.add(cur)

    mitotic = {n for n in g.nodes if g.out_degree(n) >= 2}
    daughters = {c for m in mitotic for c in g.successors(m)}
    ends = {n for n in g.nodes if g.out_degree(n) == 0 and n[0] < last}
    support = {"mitotic": set(mitotic), "new_daughter": set(daughters), "death": set(ends)}
    for m in mitotic:
        back(m, support["mitotic"])
    for d in daughters:
        forward(d, support["new_daughter"])
    for e in ends:
        back(e, support["death"])
    gaps = {n for n in g.nodes if g.out_degree(n) == 1 and next(iter(g.successors(n)))[0] - n[0] > 1}
    for n in gaps:
        support["death"].add(n)
        back(n, support["death"])
    return {"mitotic": (mitotic, support["mitotic"]), "new_daughter": (daughters, support["new_daughter"]),
            "death": (ends, support["death"])}


def _support_suspect_links(events: dict[str, tuple[set[Node], set[Node]]], lineage: Lineage,
                           nodes: list[Node], proba: np.ndarray, rules: ReconcileRules) -> None:
    """Rule 5 of :class:`ReconcileRules`: extend the event support around suspect links (in place)."""
    g = lineage.graph
    p_daughter = dict(zip(nodes, proba[:, STATES.index("new_daughter")]))
    p_end = dict(zip(nodes, np.maximum(proba[:, STATES.index("mitotic")], proba[:, STATES.index("death")])))
    for child, p in p_daughter.items():
        if p < rules.suspect_daughter_p or child not in g:
            continue
        preds = list(g.predecessors(child))
        if len(preds) != 1 or g.out_degree(preds[0]) != 1:
            continue  # a root, or a real division in the lineage
        source = [preds[0]]
        for _ in range(rules.window):
            up = list(g.predecessors(source[-1]))
            if len(up) != 1 or g.out_degree(up[0]) != 1:
                break
            source.append(up[0])
        if max(p_end.get(n, 0.0) for n in source) < rules.suspect_daughter_p:
            continue  # no mitotic / death evidence at the source: an isolated new-daughter call
        after = [child]
        for _ in range(rules.window):
            down = list(g.successors(after[-1]))
            if len(down) != 1:
                break
            after.append(down[0])
        events["mitotic"][1].update(source)
        events["death"][1].update(source)
        events["new_daughter"][1].update(after)


def reconcile_states(
    states: pd.DataFrame, lineage: Lineage, rules: ReconcileRules | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make classifier states and lineage events agree (rule: :class:`ReconcileRules`).

    Parameters
    ----------
    states : pandas.DataFrame
        From :func:`dynacell.states.classify.classify_movie`: ``t, label, state, p_<state>``.
    lineage : Lineage
        Nodes ``(t, label)`` of the same label images; ``n_frames`` = the movie's frames.
    rules : ReconcileRules, optional
        Parameters (defaults: ``ReconcileRules()``).

    Returns
    -------
    states : pandas.DataFrame
        A copy with ``state`` reconciled and ``state_classifier`` (the input state) added; with
        ``method="joint"`` also ``p_<state>_joint``, ``end_reason`` and ``missed_division``
        (:func:`dynacell.states.joint.joint_states`).
    changes : pandas.DataFrame
        One row per kind of change: ``from, to, reason, n`` (count of nuclei).
    """
    rules = rules or ReconcileRules()
    if rules.enabled and rules.method == "joint" and not states.empty:
        return joint_states(states, lineage, rules.joint)
    out = states.copy()
    out["state_classifier"] = out["state"].astype(object)
    if not rules.enabled or out.empty:
        return out, pd.DataFrame(columns=["from", "to", "reason", "n"])
    nodes = list(zip(out["t"].astype(int), out["label"].astype(int)))
    proba = out[[f"p_{s}" for s in STATES]].to_numpy(dtype=float)
    state = out["state"].to_numpy(dtype=object).copy()
    reason = np.full(len(out), "", dtype=object)
    events = lineage_events(lineage, rules.window)
    _support_suspect_links(events, lineage, nodes, proba, rules)
    reasons = {"mitotic": "division", "new_daughter": "division", "death": "track end before the last frame"}
    for i, n in enumerate(nodes):
        promoted = False
        for ev, (anchors, _) in events.items():
            if n in anchors and state[i] != ev and proba[i, STATES.index(ev)] >= rules.promote_floor:
                state[i], reason[i] = ev, f"{reasons[ev]} in lineage"
                promoted = True
                break
        if promoted:
            continue
        bad = [ev for ev, (_, ok) in events.items() if n not in ok]
        if state[i] in bad:
            p = proba[i].copy()
            for ev in bad:
                p[STATES.index(ev)] = -1.0
            reason[i] = f"{state[i]} without {reasons[state[i]]} within {rules.window} frame(s)"
            state[i] = STATES[int(np.argmax(p))]
    out["state"] = state
    changed = out["state"] != out["state_classifier"]
    changes = (
        pd.DataFrame({"from": out.loc[changed, "state_classifier"], "to": out.loc[changed, "state"],
                      "reason": reason[changed.to_numpy()]})
        .groupby(["from", "to", "reason"]).size().rename("n").reset_index()
    )
    logger.info("reconciliation changed %d of %d states", int(changed.sum()), len(out))
    return out, changes


def reconciliation_record(rules: ReconcileRules, changes: pd.DataFrame) -> dict:
    """The ``run.json`` ``reconciliation`` entry: the rule in words and what it changed.

    Parameters
    ----------
    rules : ReconcileRules
        The rules used.
    changes : pandas.DataFrame
        The second output of :func:`reconcile_states` (``from, to, reason, n``).

    Returns
    -------
    dict
        ``rule`` (:meth:`ReconcileRules.describe`), ``n_changed`` (sum of ``n``, 0 for no change)
        and ``changes`` (the table as a list of records).
    """
    return {"rule": rules.describe(), "n_changed": int(changes["n"].sum()) if len(changes) else 0,
            "changes": changes.to_dict(orient="records")}
