"""State-aware repair of the linked lineage: divisions the classifier contradicts are unlinked.

A LAP linker (:func:`dynacell.track.link_labels`) attaches a track start to a mother whenever a
new nucleus appears next to an existing one — an over-segmented nucleus, a nucleus entering from
out of focus, a mask dropped for a frame. Such a false division looks, to the state classifier,
like nothing at all: the "mother" is not mitotic in her last frames and at least one "daughter"
is a plain stable nucleus, not a newborn. A real division looks like one.

:func:`check_divisions` weighs every *linked* division by that appearance evidence:

* ``p_mitotic``: the classifier's largest ``p_mitotic`` over the mother's last ``frames`` nodes, or,
  when larger, the smaller ``p_mitotic`` of her daughters' first nodes (a segmentation that cuts the
  two chromatin masses of a dividing nucleus apart links the division one frame early, and the
  mitotic frame is then the daughters' first: both halves look mitotic; since 2026-12-02);
* ``p_new_daughter`` of each daughter: the largest ``p_new_daughter`` over its first ``frames``
  nodes.

A division is **contradicted** when ``p_mitotic < contradict_p`` *and* at least one daughter has
``p_new_daughter < contradict_p`` (by default 0.2: odds of 4 : 1 against at *both* ends of the
division, the mother and a daughter, each judged on its own frames). A contradicted division is unlinked: the mother continues into the daughter that
looks least like a newborn (lowest ``p_new_daughter``; ties: the nearest centroid), the other
daughter(s) become track starts. Nothing else is changed; every decision is returned in a table
(``run.json`` and the report count them).

The converse repair, a **missed division**: the linker continued a mother into one daughter
and left the other daughter as a new track, often because it appears only a few frames later (out
of focus, or under-segmented). Its signature is a node the classifier sees as mitotic
(``p_mitotic ≥ confirm_p``) whose own continuation looks newborn (``p_new_daughter ≥ confirm_p``
over its first ``frames`` nodes), and, after at most ``max_gap_frames`` missing frames and within
``max_distance_sizes`` median nucleus sizes (Y/X ``size_px``) of it, a track start without a
parent that looks newborn too. Such a track start is attached to that mother as her second daughter
(decision ``relinked``; the nearest mother when several qualify).

A **misattached daughter**: a newborn that the frame-to-frame assignment gave to the wrong
predecessor. When a nucleus vanishes (it dies, or leaves the focal volume) in the frame where a
neighbour divides, the linker may continue the vanishing nucleus into one of the daughters rather
than end its track and attach the daughter to the mother (LAP links frame to frame first; divisions
are only sought among the track starts that are left). Its signature: a continuation ``A → B`` whose
``B`` looks newborn (``p_new_daughter ≥ confirm_p`` over its first ``frames`` nodes), and in ``A``'s
frame a node ``M`` that looks mitotic (``p_mitotic ≥ confirm_p``) whose own single continuation looks
newborn too, nearer to ``B`` than ``A`` is and within ``max_distance_sizes`` nucleus sizes (Y/X
pixels, each position moved first by its local flow: the median step of its 8 nearest linked
neighbours, :func:`dynacell.track.local_flow`, so that a colony or embryo in motion is not mistaken).
``B`` is moved to ``M`` as her second daughter and ``A``'s track ends there (decision ``reattached``;
the nearest mother first). Found on the demo's held-out embryo (seed 202): the dying nucleus was
continued 17.8 px into a daughter whose mother lay 6.7 px from her.

Measured on HeLa 02 with the 02_ERR_SEG masks (``dynacell run`` with the shipped nuclei-2d, frames
0–19, all linked divisions whose mother has a reference mask): every reference division had
``p_mitotic ≥ 0.49`` and the three linked divisions that met the contradiction rule were all
false (docs/states.md has the table with bacteria-phc and GOWT1). The default threshold was 0.02
until these runs (``dynacell run``, shipped nuclei-2d, seed 0; chosen after seeing them, so not a
held-out figure) — 0.02 / 0.1 / 0.2 / 0.35: HeLa 02 without labels (nuclei-seg-2d masks) division F1
0.756 / 0.783 / 0.804 / 0.818 (recall 0.90 throughout, the unlinked ones were false); HeLa 02 with
02_ERR_SEG 0.922 / 0.922 / 0.920 / 0.920 (one correct division lost at 0.2); bacteria-phc with TRA masks
0.973 throughout; GOWT1 01 without labels unchanged (the classifier is not trusted there, see below).

A **short-lived daughter** is unlinked too: a daughter whose track ends inside the field (more than
``border_margin`` nucleus sizes from the edge) within ``persist_frames`` frames, without dividing
again or reaching the movie's end, when the mother is not confirmed mitotic (``p_mitotic <
confirm_p``). A newborn nucleus does not vanish after a frame or two; a nucleus split in two by the
segmentation for a frame or two does (decision ``unlinked_short_lived``). Measured with ``dynacell run``
without labels (``nuclei-seg-2d``, seed 0): GOWT1 01 16 → 9 linked divisions for 2 real (division F1
0.111 → 0.182), HeLa 02 69 → 67 for 50 (0.756 → 0.769, recall unchanged); with given masks (HeLa 02
ERR_SEG, bacteria-phc TRA, the demo embryo) no daughter was short-lived.

**Does the classifier know this movie?** Both repairs, and the joint decision's right to overturn a
linked division, assume a classifier that recognises mitosis in the movie at hand. A model that
has never seen this kind of movie may not: :func:`classifier_agreement` measures, over the linked
divisions, the share whose mother looks mitotic (``p_mitotic ≥ agree_p`` over her last ``frames``
nodes) and the share with a daughter that looks newborn. When a movie has at least
``min_divisions`` linked divisions, most of them look real by themselves (both daughters persist
— at least ``persist_frames`` frames, or until they divide again or the movie ends: a nucleus split
by the segmentation for a frame or two does not) and either share is below ``min_agreement``, the
classifier is *not trusted* with divisions in this movie: nothing is unlinked, and ``dynacell run`` lets the
joint decision follow the linked divisions (:meth:`dynacell.states.reconcile.ReconcileRules.trusting_lineage`).
Measured with correct masks (``dynacell run``, seed 0): state models that saw other trees of the
same movie agree on 78–99 % of the mothers and 99–100 % of the daughters (HeLa 02, bacteria-phc);
models trained without the movie's dataset (``benchmarks/states_lodo.py``) on 1–6 % of the
mothers, and there unlinking removed correct divisions (division F1 HeLa 02 0.795 instead of 0.869,
bacteria-phc 0.68 instead of 0.97) and the classifier overturned the lineage (HeLa 02 3-class
macro-F1 0.69 instead of 0.94 with the lineage trusted);
docs/states-generalisation.md has the table. The 0.5 threshold was chosen after seeing these runs.

Source: dynacell's, written for this module; the odds threshold is that of the joint decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dynacell.lineage.graph import Lineage, Node

if TYPE_CHECKING:
    from dynacell.states.reconcile import ReconcileRules

__all__ = ["DivisionCheck", "agreement_note", "check_divisions", "check_linked_divisions", "classifier_agreement",
           "division_check_report", "review_classifier"]

logger = logging.getLogger(__name__)

#: Linked neighbours whose median step gives a nucleus' expected motion (the linker's default).
_FLOW_NEIGHBOURS = 8

#: Columns of the table returned by :func:`check_divisions`.
DIVISION_COLUMNS: tuple[str, ...] = ("t", "label", "y", "x", "n_children", "p_mitotic", "p_new_daughter_min",
                                     "p_new_daughter_max", "decision", "kept_child_t", "kept_child_label")


@dataclass(frozen=True)
class DivisionCheck:
    """When a linked division is contradicted by the classifier (:func:`check_divisions`).

    Parameters
    ----------
    enabled : bool
        False keeps every linked division.
    contradict_p : float
        Probability (0..0.5) below which the mother's ``p_mitotic`` and a daughter's
        ``p_new_daughter`` contradict the division.
    frames : int
        Nodes (≥ 1) of the mother's track before the division and of each daughter's track after
        it over which the largest probability is taken (a division seen one frame early or late
        still counts).
    relink : bool
        Also attach a newborn-looking track start to a nearby mitotic node whose own continuation
        looks newborn (a missed division, see the module docstring).
    reattach : bool
        Also move a newborn-looking nucleus continued from a farther predecessor to such a
        mitotic node (a misattached daughter, see the module docstring).
    confirm_p : float
        Probability (0.5..1) at or above which ``p_mitotic`` / ``p_new_daughter`` confirm a missed
        division.
    max_gap_frames : int
        Largest number of frames (≥ 1) missing between the mother's frame and the late daughter's
        first frame (4: the daughter may first be seen 5 frames after the mother).
    max_distance_sizes : float
        Largest Y/X distance between the mother's and the late daughter's centroids, in units of
        the median nucleus size of the movie (``size_px``, the largest Y/X extent; a mitotic
        mother and a newborn are smaller than the typical nucleus).
    agree_p : float
        Probability (0..1) at or above which a mother's ``p_mitotic`` / a daughter's
        ``p_new_daughter`` agrees with a linked division (:func:`classifier_agreement`).
    min_agreement : float
        Share (0..1) of the linked divisions the classifier must agree with, for mothers and for
        daughters, to be trusted with divisions in this movie; 0 trusts it always.
    min_divisions : int
        Linked divisions (≥ 1) needed before the agreement is judged (fewer: trusted).
    short_lived : bool
        Unlink short-lived daughters (see the module docstring).
    border_margin : float
        A track ending within this many nucleus sizes (``size_px``) of the image edge (``edge_px``)
        left the field: its daughter is not short-lived (the joint decision's border margin).
    persist_frames : int
        Frames (≥ 1) a daughter's track must last (unless it divides or reaches the movie's last
        frame) for its division to look real by itself; the classifier is only distrusted when
        at least ``min_agreement`` of the linked divisions do (otherwise the divisions, not the
        classifier, are in doubt — e.g. an over-segmenting segmentation).
    """

    enabled: bool = True
    contradict_p: float = 0.2
    frames: int = 2
    relink: bool = True
    reattach: bool = True
    confirm_p: float = 0.5
    max_gap_frames: int = 4
    max_distance_sizes: float = 3.0
    agree_p: float = 0.5
    min_agreement: float = 0.5
    min_divisions: int = 5
    short_lived: bool = True
    border_margin: float = 0.5
    persist_frames: int = 3

    def __post_init__(self) -> None:
        from dynacell.errors import InvalidInputError

        if not 0 < self.contradict_p < 0.5:
            raise InvalidInputError(f"DivisionCheck.contradict_p must be in (0, 0.5), got {self.contradict_p!r}")
        if int(self.frames) < 1:
            raise InvalidInputError(f"DivisionCheck.frames must be >= 1, got {self.frames!r}")
        if not 0.5 <= self.confirm_p < 1:
            raise InvalidInputError(f"DivisionCheck.confirm_p must be in [0.5, 1), got {self.confirm_p!r}")
        if int(self.max_gap_frames) < 1 or not self.max_distance_sizes > 0:
            raise InvalidInputError("DivisionCheck.max_gap_frames must be >= 1 and max_distance_sizes > 0, got "
                                    f"{self.max_gap_frames!r}, {self.max_distance_sizes!r}")
        if (not 0 < self.agree_p < 1 or not 0 <= self.min_agreement <= 1 or int(self.min_divisions) < 1
                or int(self.persist_frames) < 1 or not self.border_margin >= 0):
            raise InvalidInputError("DivisionCheck needs 0 < agree_p < 1, 0 <= min_agreement <= 1 and min_divisions "
                                    f">= 1, got {self.agree_p!r}, {self.min_agreement!r}, {self.min_divisions!r}")

    def describe(self) -> str:
        """One sentence stating the rule with its parameters (for the report)."""
        if not self.enabled:
            return "Linked divisions are kept as linked."
        text = (f"A linked division is unlinked when the classifier's p_mitotic over the mother's last {self.frames} "
                f"frame(s) (or of both daughters' first frames) and p_new_daughter over one daughter's first "
                f"{self.frames} frame(s) are both below "
                f"{self.contradict_p}; the mother then continues into that daughter.")
        if self.relink:
            text += (f" A track start without a parent is attached as a second daughter to a node with p_mitotic >= "
                     f"{self.confirm_p} whose own continuation has p_new_daughter >= {self.confirm_p} (a missed "
                     f"division) when it looks newborn too, starts after at most {self.max_gap_frames} missing frame(s) and "
                     f"lies within {self.max_distance_sizes} nucleus sizes.")
        if self.reattach:
            text += (" A newborn-looking nucleus continued from a predecessor farther away (Y/X) than a node of the "
                     f"same frame with p_mitotic >= {self.confirm_p} and a single newborn-looking continuation is moved "
                     "to that node as her second daughter (a misattached daughter).")
        if self.short_lived:
            text += (f" A daughter whose track ends inside the field within {self.persist_frames} frames is unlinked "
                     f"unless the mother's p_mitotic >= {self.confirm_p}.")
        if self.min_agreement > 0:
            text += (f" Nothing is unlinked, and the joint decision follows the linked divisions, when the classifier "
                     f"agrees (p >= {self.agree_p}) with fewer than {self.min_agreement:.0%} of the mothers or of the "
                     f"daughters of at least {self.min_divisions} linked divisions, most of whose daughters persist "
                     f"(>= {self.persist_frames} frames).")
        return text


def classifier_agreement(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck | None = None) -> dict:
    """How often the state classifier agrees with the lineage's divisions (see the module docstring).

    Parameters
    ----------
    states : pandas.DataFrame
        The classifier's table: ``t, label, p_mitotic, p_new_daughter`` (one row per nucleus).
    lineage : Lineage
        Nodes ``(t, label)`` of the same label images.
    rules : DivisionCheck, optional
        ``frames``, ``agree_p``, ``min_agreement``, ``min_divisions`` (default ``DivisionCheck()``).

    Returns
    -------
    dict
        JSON-ready: ``n_divisions`` (nodes with ≥ 2 children), ``mitotic`` (share of mothers with
        ``p_mitotic ≥ agree_p`` over their last ``frames`` nodes, or both of whose daughters' first
        nodes have it; NaN without divisions),
        ``new_daughter`` (share of divisions with a daughter whose ``p_new_daughter ≥ agree_p``
        over its first ``frames`` nodes), ``persistent`` (share of divisions whose daughters all
        last ``persist_frames`` frames, divide again or reach ``lineage.n_frames - 1``), ``trusted``
        (False when ``n_divisions ≥ min_divisions``, ``persistent ≥ min_agreement`` and either
        agreement share is below ``min_agreement``) and ``rule`` (one sentence).

    Raises
    ------
    InvalidInputError
        If ``states`` lacks ``t``, ``label``, ``p_mitotic`` or ``p_new_daughter``.
    """
    rules = rules or DivisionCheck()
    _, p_mit, p_nd = _evidence(states, "classifier_agreement")
    g = lineage.graph
    mothers = [n for n in g.nodes if g.out_degree(n) >= 2]
    pm = np.array([_mitotic_evidence(g, m, p_mit, rules.frames) for m in mothers], dtype=float)
    pk = np.array([max((_largest(p_nd, _chain(g, k, True, rules.frames)) for k in g.successors(m)),
                       key=lambda v: -np.inf if np.isnan(v) else v) for m in mothers], dtype=float)
    last = lineage.n_frames - 1
    pers = np.array([all(_persists(g, k, rules.persist_frames, last) for k in g.successors(m)) for m in mothers],
                    dtype=bool)
    share_m = float(np.mean(np.nan_to_num(pm, nan=0.0) >= rules.agree_p)) if len(mothers) else float("nan")
    share_d = float(np.mean(np.nan_to_num(pk, nan=0.0) >= rules.agree_p)) if len(mothers) else float("nan")
    share_p = float(np.mean(pers)) if len(mothers) else float("nan")
    judged = len(mothers) >= int(rules.min_divisions) and share_p >= rules.min_agreement
    trusted = not (judged and min(share_m, share_d) < rules.min_agreement)
    return {"n_divisions": len(mothers), "mitotic": share_m, "new_daughter": share_d, "persistent": share_p,
            "trusted": bool(trusted),
            "rule": (f"the classifier is trusted with divisions unless, over at least {rules.min_divisions} linked "
                     f"divisions of which at least {rules.min_agreement:.0%} have daughters that persist "
                     f"(>= {rules.persist_frames} frames, another division or the movie's end), fewer than {rules.min_agreement:.0%} of the mothers have p_mitotic >= "
                     f"{rules.agree_p} (last {rules.frames} frames) or fewer than {rules.min_agreement:.0%} have a "
                     f"daughter with p_new_daughter >= {rules.agree_p} (first {rules.frames} frames)")}


def _evidence(states: pd.DataFrame, caller: str) -> tuple[list[Node], dict, dict]:
    """Node keys of ``states`` and its ``p_mitotic`` / ``p_new_daughter`` by node; InvalidInputError without them."""
    from dynacell.errors import InvalidInputError

    need = {"t", "label", "p_mitotic", "p_new_daughter"}
    if not need <= set(states.columns):
        raise InvalidInputError(f"{caller}: the states table lacks {sorted(need - set(states.columns))}")
    keys = list(zip(states["t"].astype(int), states["label"].astype(int)))
    return (keys, dict(zip(keys, states["p_mitotic"].to_numpy(float))),
            dict(zip(keys, states["p_new_daughter"].to_numpy(float))))


def agreement_note(agreement: dict) -> str | None:
    """The report note for a :func:`classifier_agreement` result: None when the classifier is trusted.

    Parameters
    ----------
    agreement : dict
        Output of :func:`classifier_agreement`.

    Returns
    -------
    str or None
        One sentence for the report and ``run.json`` notes.
    """
    if agreement["trusted"]:
        return None
    return (f"The state classifier agrees with only {agreement['mitotic']:.0%} of the mothers and "
            f"{agreement['new_daughter']:.0%} of the daughters of the {agreement['n_divisions']} linked "
            "divisions: it does not recognise this movie's divisions (a model trained on other kinds of "
            "movies?), so no division is unlinked and the states follow the linked divisions; "
            "run.json 'classifier_agreement'.")


def division_check_report(divisions: pd.DataFrame, rules: DivisionCheck) -> tuple[str | None, dict]:
    """The report note and the ``run.json`` ``division_check`` entry of a :func:`check_divisions` table.

    Parameters
    ----------
    divisions : pandas.DataFrame
        The third output of :func:`check_divisions` (columns :data:`DIVISION_COLUMNS`).
    rules : DivisionCheck
        The rules it was made with.

    Returns
    -------
    note : str or None
        One sentence counting the changes; None when nothing changed.
    summary : dict
        JSON-ready: ``rule``, ``n_linked``, ``n_unlinked``, ``n_unlinked_short_lived``, ``n_relinked``,
        ``n_reattached`` and ``changed`` (the rows whose decision is not ``kept``).
    """
    decision = divisions["decision"]
    n_un, n_sh, n_re, n_ra = (int((decision == d).sum())
                              for d in ("unlinked", "unlinked_short_lived", "relinked", "reattached"))
    note = None
    if n_un or n_sh or n_re or n_ra:
        note = (f"{n_un} of {len(divisions) - n_re - n_ra} linked divisions were unlinked because the state "
                f"classifier contradicts them, {n_sh} because a daughter vanished inside the field within "
                f"{rules.persist_frames} frames, {n_re} missed division(s) were relinked and {n_ra} daughter(s) "
                f"linked to the wrong predecessor were moved to their mother ({rules.describe()}); run.json "
                "'division_check' lists them")
    summary = {"rule": rules.describe(), "n_linked": int((~decision.isin(["relinked", "reattached"])).sum()),
               "n_unlinked": n_un, "n_unlinked_short_lived": n_sh, "n_relinked": n_re, "n_reattached": n_ra,
               "changed": divisions[decision != "kept"].to_dict(orient="records")}
    return note, summary


def review_classifier(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck | None,
                      reconcile: ReconcileRules) -> tuple[dict, ReconcileRules, list[str]]:
    """Whether the classifier recognises the lineage's divisions, and the reconciliation rules that follow.

    :func:`classifier_agreement` measures it; when the classifier is not trusted the joint decision
    follows every linked division (:meth:`dynacell.states.reconcile.ReconcileRules.trusting_lineage`).

    Parameters
    ----------
    states : pandas.DataFrame
        The classifier's table (``t, label, p_mitotic, p_new_daughter``).
    lineage : Lineage
        The lineage (given or linked) of the same labels.
    rules : DivisionCheck or None
        Agreement thresholds (default ``DivisionCheck()``).
    reconcile : ReconcileRules
        The requested reconciliation rules.

    Returns
    -------
    agreement : dict
        :func:`classifier_agreement`'s result (``run.json`` ``classifier_agreement``).
    reconcile : ReconcileRules
        ``reconcile`` when the classifier is trusted, else ``reconcile.trusting_lineage()``.
    notes : list of str
        :func:`agreement_note` when the classifier is not trusted, else empty.

    Raises
    ------
    InvalidInputError
        If ``states`` lacks a needed column.
    """
    agreement = classifier_agreement(states, lineage, rules)
    rules_used = reconcile if agreement["trusted"] else reconcile.trusting_lineage()
    note = agreement_note(agreement)
    return agreement, rules_used, [note] if note else []


def check_linked_divisions(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck | None = None, *,
                           trusted: bool = True) -> tuple[pd.DataFrame, Lineage, dict, list[str]]:
    """:func:`check_divisions` on a linked lineage, with its report (:func:`division_check_report`).

    Parameters
    ----------
    states, lineage, rules, trusted
        As :func:`check_divisions` (``rules`` None = ``DivisionCheck()``).

    Returns
    -------
    states : pandas.DataFrame
        The classifier's table, ``track_id`` renumbered when the lineage changed.
    lineage : Lineage
        The repaired lineage (``lineage`` itself when nothing changed).
    summary : dict
        The ``run.json`` ``division_check`` entry.
    notes : list of str
        One sentence counting the changes, or empty when nothing changed.

    Raises
    ------
    InvalidInputError
        If ``states`` lacks a needed column.
    """
    rules = rules or DivisionCheck()
    states, lineage, divisions = check_divisions(states, lineage, rules, trusted=trusted)
    note, summary = division_check_report(divisions, rules)
    return states, lineage, summary, [note] if note else []


def _persists(g, kid: Node, n: int, last: int) -> bool:
    """Whether ``kid``'s track lasts ``n`` nodes, divides again or reaches frame ``last``."""
    chain = _chain(g, kid, True, int(n))
    end = chain[-1]
    return len(chain) >= int(n) or g.out_degree(end) >= 2 or end[0] >= last


def _chain(g, node: Node, forward: bool, n: int) -> list[Node]:
    """``node`` and up to ``n - 1`` further nodes along single links (backwards or forwards)."""
    out = [node]
    while len(out) < n:
        cur = out[-1]
        nxt = list(g.successors(cur)) if forward else list(g.predecessors(cur))
        if len(nxt) != 1:
            break
        if forward and g.in_degree(nxt[0]) != 1:
            break
        if not forward and g.out_degree(nxt[0]) != 1:
            break
        out.append(nxt[0])
    return out


def _largest(p: dict, nodes: list[Node]) -> float:
    """Largest probability in ``p`` over ``nodes`` (NaN when none of them has one)."""
    return max((p[n] for n in nodes if n in p), default=np.nan)


def _mitotic_evidence(g, mother: Node, p_mit: dict, frames: int) -> float:
    """The classifier's mitotic evidence for a linked division (NaN without any).

    The larger of ``p_mitotic`` over the mother's last ``frames`` nodes and the smaller ``p_mitotic``
    of her daughters' first nodes: a segmentation that cuts a dividing nucleus's two chromatin masses
    apart links the division one frame early, and its mitotic frame is then the daughters' first
    (docs/states-generalisation.md, "A case the rule judges wrongly").
    """
    own = _largest(p_mit, _chain(g, mother, False, frames))
    kids = list(g.successors(mother))
    if len(kids) < 2:
        return own
    halves = min(p_mit.get(k, np.nan) for k in kids)
    if not np.isfinite(halves):
        return own
    return float(np.nanmax([own, halves]))


def check_divisions(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck | None = None, *,
                    trusted: bool = True) -> tuple[pd.DataFrame, Lineage, pd.DataFrame]:
    """Unlink the linked divisions that the state classifier contradicts (see the module docstring).

    Parameters
    ----------
    states : pandas.DataFrame
        The classifier's table (:func:`dynacell.states.classify.classify_movie`): ``t, label,
        track_id, p_mitotic, p_new_daughter`` (one row per nucleus); ``y, x, size_px`` (pixels)
        for the missed-division repair (without them it finds none).
    lineage : Lineage
        The linked lineage, nodes ``(t, label)`` of the same label images.
    rules : DivisionCheck, optional
        Thresholds (default ``DivisionCheck()``).
    trusted : bool
        False (:func:`classifier_agreement` says the classifier does not recognise this movie's
        divisions): nothing is unlinked; missed divisions are still relinked (they need confident
        calls at both ends).

    Returns
    -------
    states : pandas.DataFrame
        A copy with ``track_id`` renumbered for the repaired lineage (unchanged when nothing was
        unlinked).
    lineage : Lineage
        A repaired copy (CTC track ids reassigned, :func:`dynacell.track.assign_ctc_tracks`), or
        ``lineage`` itself when nothing was changed.
    divisions : pandas.DataFrame
        One row per linked division and per relinked missed division or reattached daughter,
        columns :data:`DIVISION_COLUMNS`: the mother's node and centroid (pixels), the evidence,
        ``decision`` (``kept`` / ``unlinked`` / ``unlinked_short_lived`` / ``relinked`` /
        ``reattached``) and the child the mother continues into when unlinked (the late daughter
        attached when relinked, the daughter moved to her when reattached).

    Raises
    ------
    InvalidInputError
        If ``states`` lacks ``t``, ``label``, ``p_mitotic`` or ``p_new_daughter``.
    """
    rules = rules or DivisionCheck()
    keys, p_mit, p_nd = _evidence(states, "check_divisions")
    g = lineage.graph
    last = lineage.n_frames - 1
    inside: dict = {}
    if rules.enabled and rules.short_lived and {"edge_px", "size_px"} <= set(states.columns):
        inside = dict(zip(keys, states["edge_px"].to_numpy(float)
                          > rules.border_margin * states["size_px"].to_numpy(float)))

    def short_lived(kid: Node) -> bool:
        end = _chain(g, kid, True, rules.persist_frames)[-1]
        return not _persists(g, kid, rules.persist_frames, last) and bool(inside.get(end, False))

    rows, drop = [], []
    for mother in sorted(n for n in g.nodes if g.out_degree(n) >= 2):
        pm = _mitotic_evidence(g, mother, p_mit, rules.frames)
        kids = sorted(g.successors(mother))
        pd_kids = np.array([_largest(p_nd, _chain(g, k, True, rules.frames)) for k in kids], dtype=float)
        known = np.isfinite(pm) and np.isfinite(pd_kids).any()
        contradicted = (rules.enabled and trusted and known and pm < rules.contradict_p
                        and np.nanmin(pd_kids) < rules.contradict_p)
        kept: Node | None = None
        if contradicted:
            pos = lineage.centroid(mother) if "y" in g.nodes[mother] else None
            dist = [float(np.linalg.norm(lineage.centroid(k) - pos)) if pos is not None and "y" in g.nodes[k]
                    else 0.0 for k in kids]
            order = sorted(range(len(kids)), key=lambda i: (np.nan_to_num(pd_kids[i], nan=1.0), dist[i]))
            kept = kids[order[0]]
            drop.extend((mother, kids[i]) for i in order[1:])
        short = [] if contradicted or not inside or pm >= rules.confirm_p else [k for k in kids if short_lived(k)]
        if short:
            if len(short) == len(kids):  # keep the longest-lived one
                short = sorted(short, key=lambda k: -len(_chain(g, k, True, rules.persist_frames)))[1:]
            drop.extend((mother, k) for k in short)
            rest = [k for k in kids if k not in short]
            kept = rest[0] if len(rest) == 1 else None
        d = g.nodes[mother]
        rows.append({"t": mother[0], "label": mother[1], "y": d.get("y", np.nan), "x": d.get("x", np.nan),
                     "n_children": len(kids), "p_mitotic": pm,
                     "p_new_daughter_min": float(np.nanmin(pd_kids)) if np.isfinite(pd_kids).any() else np.nan,
                     "p_new_daughter_max": float(np.nanmax(pd_kids)) if np.isfinite(pd_kids).any() else np.nan,
                     "decision": "unlinked" if contradicted else "unlinked_short_lived" if short else "kept",
                     "kept_child_t": kept[0] if kept else -1, "kept_child_label": kept[1] if kept else -1})
    new = lineage
    if drop:  # copy only when the lineage changes (the input is never modified)
        new = lineage.copy()
        new.graph.remove_edges_from(drop)
    moved = _misattached_daughters(states, new, rules, p_mit, p_nd) if rules.enabled and rules.reattach else []
    if moved and new is lineage:
        new = lineage.copy()
    for mother, child, former in moved:
        new.graph.remove_edge(former, child)
        rows.append(_attach(new, mother, child, "reattached", rules, p_mit, p_nd))
    add = _missed_divisions(states, new, rules, p_mit, p_nd) if rules.enabled and rules.relink else []
    if add and new is lineage:
        new = lineage.copy()
    for mother, child in add:
        rows.append(_attach(new, mother, child, "relinked", rules, p_mit, p_nd))
    table = pd.DataFrame(rows, columns=list(DIVISION_COLUMNS))
    if not drop and not add and not moved:
        return states, lineage, table
    from dynacell.track import assign_ctc_tracks

    relabel = assign_ctc_tracks(new)
    out = states.copy()
    out["track_id"] = np.array([int(relabel.track_ids.get(k, 0)) for k in keys], dtype=np.int64)
    logger.info("division check: %d of %d linked divisions contradicted by the classifier and unlinked, %d with a "
                "short-lived daughter unlinked; %d missed division(s) relinked, %d misattached daughter(s) reattached",
                int((table["decision"] == "unlinked").sum()),
                int((~table["decision"].isin(["relinked", "reattached"])).sum()),
                int((table["decision"] == "unlinked_short_lived").sum()), len(add), len(moved))
    return out, new, table


def _attach(lineage: Lineage, mother: Node, child: Node, decision: str, rules: DivisionCheck, p_mit: dict,
            p_nd: dict) -> dict:
    """Add the edge ``mother → child`` to ``lineage`` (in place) and return its :data:`DIVISION_COLUMNS` row."""
    g = lineage.graph
    d = g.nodes[mother]
    kids = sorted(g.successors(mother))
    pd_kids = [max(p_nd.get(n, 0.0) for n in _chain(g, k, True, rules.frames)) for k in (*kids, child)]
    g.add_edge(mother, child)
    return {"t": mother[0], "label": mother[1], "y": d.get("y", np.nan), "x": d.get("x", np.nan),
            "n_children": len(kids) + 1, "p_mitotic": p_mit.get(mother, np.nan),
            "p_new_daughter_min": float(min(pd_kids)), "p_new_daughter_max": float(max(pd_kids)),
            "decision": decision, "kept_child_t": child[0], "kept_child_label": child[1]}


def _positions_and_gate(states: pd.DataFrame, rules: DivisionCheck
                        ) -> tuple[list[Node], np.ndarray, float] | None:
    """Nodes of ``states``' rows, their ``(N, 2)`` Y/X centroids (pixels) and the distance gate
    (``max_distance_sizes`` × the median ``size_px``), or None without positions or sizes."""
    if not {"y", "x", "size_px"} <= set(states.columns) or not len(states):
        return None
    size = float(np.nanmedian(states["size_px"].to_numpy(float)))
    if not np.isfinite(size):
        return None
    keys = list(zip(states["t"].astype(int).tolist(), states["label"].astype(int).tolist()))
    return keys, states[["y", "x"]].to_numpy(float), rules.max_distance_sizes * size


def _missed_divisions(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck, p_mit: dict, p_nd: dict
                      ) -> list[tuple[Node, Node]]:
    """``(mother, late daughter)`` pairs of missed divisions (module docstring), at most one per mother."""
    found = _positions_and_gate(states, rules)
    if found is None:
        return []
    keys, yx, gate = found
    g = lineage.graph
    first = lineage.first_frame
    pos = dict(zip(keys, yx))
    mothers = []
    for m in g.nodes:
        succ = list(g.successors(m))
        if len(succ) != 1 or p_mit.get(m, 0.0) < rules.confirm_p or m not in pos:
            continue
        if max(p_nd.get(n, 0.0) for n in _chain(g, succ[0], True, rules.frames)) >= rules.confirm_p:
            mothers.append(m)
    if not mothers:
        return []
    starts = [n for n in g.nodes if g.in_degree(n) == 0 and n[0] > first and n in pos
              and max(p_nd.get(k, 0.0) for k in _chain(g, n, True, rules.frames)) >= rules.confirm_p]
    pairs = []
    for s in starts:
        ys, xs = pos[s]
        best = None
        for m in mothers:
            ym, xm = pos[m]
            if not 0 <= s[0] - m[0] - 1 <= rules.max_gap_frames:
                continue
            dist = float(np.hypot(ys - ym, xs - xm))
            if dist <= gate and (best is None or dist < best[0]):
                best = (dist, m)
        if best is not None:
            pairs.append((best[1], s, best[0]))
    out, used = [], set()
    for m, s, _ in sorted(pairs, key=lambda p: p[2]):
        if m not in used:
            used.add(m)
            out.append((m, s))
    return out


def _misattached_daughters(states: pd.DataFrame, lineage: Lineage, rules: DivisionCheck, p_mit: dict, p_nd: dict
                           ) -> list[tuple[Node, Node, Node]]:
    """``(mother, daughter, former predecessor)`` of misattached daughters (module docstring).

    At most one daughter per mother and one mother per daughter, the nearest pairs first.
    """
    found = _positions_and_gate(states, rules)
    if found is None:
        return []
    keys, yx, gate = found
    g = lineage.graph
    pos = dict(zip(keys, yx))

    def newborn(node: Node) -> bool:
        return max(p_nd.get(n, 0.0) for n in _chain(g, node, True, rules.frames)) >= rules.confirm_p

    mothers: dict[int, list[Node]] = {}
    for m in g.nodes:
        succ = list(g.successors(m))
        if (len(succ) == 1 and g.in_degree(succ[0]) == 1 and p_mit.get(m, 0.0) >= rules.confirm_p and m in pos
                and newborn(succ[0])):
            mothers.setdefault(m[0], []).append(m)
    if not mothers:
        return []
    from dynacell.track import local_flow

    # where each nucleus is expected one frame later: its neighbours' median step (the linker's local flow)
    row = {k: i for i, k in enumerate(keys)}
    edges = [(row[a], row[b]) for a, b in g.edges if a in row and b in row]
    ahead = dict(zip(keys, yx + local_flow(states["t"].to_numpy(np.int64), yx, edges, _FLOW_NEIGHBOURS,
                                           np.zeros_like(yx))))
    pairs = []
    for a in g.nodes:
        if a[0] not in mothers or g.out_degree(a) != 1 or a not in pos:
            continue
        b = next(iter(g.successors(a)))
        if g.in_degree(b) != 1 or b not in pos or not newborn(b):
            continue
        d_ab = float(np.hypot(*(pos[b] - ahead[a])))
        for m in mothers[a[0]]:
            if m == a:
                continue
            d_mb = float(np.hypot(*(pos[b] - ahead[m])))
            if d_mb <= gate and d_mb < d_ab:
                pairs.append((d_mb, m, b, a))
    out, used = [], set()
    for _, m, b, a in sorted(pairs, key=lambda p: (p[0], p[1], p[2])):
        if m not in used and b not in used and a not in used:
            used.update((m, b, a))
            out.append((m, b, a))
    return out
