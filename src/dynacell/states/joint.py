"""States decided jointly with the lineage: one hidden Markov model per track.

The classifier looks at one nucleus at a time; the lineage knows where divisions were linked and
where tracks end. :func:`joint_states` combines both in one probabilistic decision per *track
segment* — a chain of nodes joined by single links (a node with exactly one child, that child with
exactly one parent, less than ``max_gap`` frames apart):

* **Hidden states** per frame: ``stable``, ``mitotic``, ``new_daughter``, ``death``.
* **Transitions** (left to right): a segment starts in ``new_daughter`` or ``stable``, may enter
  ``mitotic`` or ``death``; ``mitotic → new_daughter`` is a division the linker missed (the track
  went on into one daughter) and ``death → new_daughter`` a dying nucleus linked to a neighbour's
  newborn: both are allowed with a small probability and flagged (``missed_division``).
* **Start and end evidence from the lineage**: a segment whose parent divides starts in
  ``new_daughter`` with probability ``lineage_confidence``; a segment that ends in a linked
  division ends in ``mitotic`` with the same weight — unless the division was linked one frame early
  (every daughter called mitotic at her first node and newborn at her second, ``early_split_p``): then
  the daughters' first nodes are ``mitotic`` with that weight and the mother's last frame is free. A
  segment that ends *inside the field* before the movie's last frame may end in ``death``; one that
  ends at the image border (the nucleus leaves the field) or at the movie's last frame may not: a
  track end alone is never a death.
* **Emissions**: the classifier's probabilities of each state at each frame (a class the model
  does not predict — e.g. ``death`` for a 3-class model — has emission 0 and is never decided).
  When the states table has a ``p_dead_seg`` column (the dead-class share of a 3-class
  background/live/dead segmenter under the nucleus, :func:`dynacell.segment.dead.dead_evidence`),
  it is a second, independent piece of appearance evidence (:func:`combine_dead_evidence`): the
  ``death`` emission becomes ``p_dead_seg`` (times the classifier's ``p_death`` when the classifier
  has a death class) and the living states are weighed by ``1 − p_dead_seg``. A death is still
  only possible where the track ends inside the field (or before a gap); a track end alone never
  decides one, and neither does dead evidence on a track that goes on.

The forward–backward algorithm gives the posterior probability of each state at each frame
(``p_<state>_joint``); the decided state is its argmax. With ``lineage_confidence = 0.98`` the
classifier overturns a linked division only when it favours ``stable`` over ``mitotic`` (or
``new_daughter``) by more than 49 : 1.

Source: hidden Markov models and forward–backward smoothing (Rabiner 1989, *Proc. IEEE* 77:257);
the lineage-as-observation structure is dynacell's, written for this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dynacell import STATES
from dynacell.lineage.graph import Lineage, Node

__all__ = ["END_REASONS", "JointModel", "combine_dead_evidence", "end_reasons", "joint_states", "track_segments"]

logger = logging.getLogger(__name__)

S, M, D, X = (STATES.index(s) for s in ("stable", "mitotic", "new_daughter", "death"))

#: Why a track segment ends (``end_reason`` in ``tracks.csv``).
END_REASONS: tuple[str, ...] = ("divides", "continues", "movie_end", "border", "inside_field", "gap")


@dataclass(frozen=True)
class JointModel:
    """Parameters of the per-track hidden Markov model of :func:`joint_states`.

    Parameters
    ----------
    lineage_confidence : float
        Probability (0.5..1) that a linked division is real: the mother's last frame is
        ``mitotic`` and each daughter's first frame ``new_daughter`` a priori with this
        probability; the classifier overturns it only with odds beyond
        ``lineage_confidence / (1 - lineage_confidence)``.
    event_rate : float
        Prior probability (0..1) per frame of an event the lineage does not show (a mitotic,
        new-daughter or death call inside a plain track).
    missed_division : float
        Prior probability (0..1) of ``mitotic → new_daughter`` inside one segment (a division the
        linker missed); each such step is flagged.
    stay_mitotic, stay_daughter : float
        Probability (0..1) that a ``mitotic`` / ``new_daughter`` frame is followed by another one
        (the event states last one frame in the event rules of :mod:`dynacell.lineage.events`;
        0.1 lets a classifier that is confident over 10:1 extend them).
    death_at_end : float
        Prior probability (0..1) of ``death`` at a track end inside the field: 0.5 lets the
        classifier's appearance evidence decide.
    border_margin : float
        A segment ends at the border when its last nucleus lies within ``border_margin`` times its
        own size (bounding-box extent, pixels) of the image edge in Y or X (``edge_px`` ≤
        ``border_margin · size_px`` in the states table). 0.5 (half a nucleus): on held-out simulated
        colonies cropped so that nuclei leave the field (``benchmarks/death.py``, 4 seeds) it put
        every nucleus that left at a track end (3 of 3) at the border, as 1.0 did, and 7 of 41 dying
        nuclei there instead of 10 (docs/states.md).
    max_gap : int
        Links spanning more frames than this split a segment (the node before the gap ends with
        reason ``gap``, where a death is allowed with appearance evidence).
    emission_floor : float
        Classifier probabilities below this (0..0.1) count as this: odds beyond ``1 / emission_floor``
        are not trusted (a probability printed as 0.0000 is not an impossibility). A class the
        model does not predict at all (its column is 0 everywhere) keeps emission 0.
    early_split_p : float
        ``p_mitotic`` at or above which the first nodes of *all* of a linked division's daughters mark
        a division linked one frame early (the segmentation cut the dividing nucleus's two chromatin
        masses apart at her mitotic frame): each daughter's first node is then ``mitotic`` with prior
        ``lineage_confidence`` and its second ``new_daughter``, and the mother's last frame is not
        forced to ``mitotic``. Above 1 no division is read that way. 0.5 since 2026-12-02 (dense
        rendered C. elegans embryo, docs/states-generalisation.md, "A case the rule judges wrongly").
    """

    lineage_confidence: float = 0.98
    event_rate: float = 0.01
    missed_division: float = 0.01
    stay_mitotic: float = 0.1
    stay_daughter: float = 0.1
    death_at_end: float = 0.5
    border_margin: float = 0.5
    max_gap: int = 1
    emission_floor: float = 1e-3
    early_split_p: float = 0.5

    def __post_init__(self) -> None:
        from dynacell.errors import InvalidInputError

        if not 0.5 <= self.lineage_confidence < 1:
            raise InvalidInputError(f"lineage_confidence must be in [0.5, 1), got {self.lineage_confidence!r}")
        for name in ("event_rate", "missed_division", "stay_mitotic", "stay_daughter", "death_at_end"):
            v = getattr(self, name)
            if not 0 < v < 1:
                raise InvalidInputError(f"{name} must be in (0, 1), got {v!r}")
        if not 0 < self.emission_floor <= 0.1:
            raise InvalidInputError(f"emission_floor must be in (0, 0.1], got {self.emission_floor!r}")
        if not self.early_split_p >= 0.5:
            raise InvalidInputError(f"early_split_p must be >= 0.5, got {self.early_split_p!r}")
        if self.border_margin < 0 or self.max_gap < 1:
            raise InvalidInputError(f"border_margin must be >= 0 and max_gap >= 1, got "
                                    f"{self.border_margin!r}, {self.max_gap!r}")

    def transitions(self) -> np.ndarray:
        """Transition matrix ``A[from, to]`` inside a segment (4 × 4, rows sum to 1, :data:`dynacell.STATES` order).

        ``stable → stable | mitotic | death`` (events at ``event_rate``; ``stable → new_daughter``
        is impossible: a newborn inside a track needs a mitotic frame before it),
        ``mitotic → stable | mitotic | new_daughter (missed division) | death``,
        ``new_daughter → stable | mitotic | new_daughter | death``, ``death → death | new_daughter``
        (a dying nucleus linked to a neighbour's newborn, at ``missed_division``; flagged).
        """
        e, md = self.event_rate, self.missed_division
        a = np.zeros((4, 4))
        a[S] = [1 - 2 * e, e, 0.0, e]
        a[M] = [1 - self.stay_mitotic - md - e, self.stay_mitotic, md, e]
        a[D] = [1 - self.stay_daughter - 2 * e, e, self.stay_daughter, e]
        a[X] = [0.0, 0.0, md, 1 - md]
        return a

    def start(self, daughter: bool, confidence: float | None = None) -> np.ndarray:
        """Prior of the first frame of a segment (daughter of a linked division or not).

        ``confidence`` replaces ``lineage_confidence`` for this division.
        """
        c, e = self.lineage_confidence if confidence is None else confidence, self.event_rate
        p = np.array([1 - c, e, c, e]) if daughter else np.array([1.0, e, 0.0, e])
        return p / p.sum()

    def last_step(self, reason: str, confidence: float | None = None) -> np.ndarray:
        """Transition matrix into the last frame of a segment, given why it ends (:data:`END_REASONS`).

        ``divides``: from any living state the last frame is ``mitotic`` with probability
        ``lineage_confidence``, else ``stable``. ``inside_field`` / ``gap``: ``death`` with
        probability ``death_at_end`` (the classifier must favour ``death`` over ``stable`` to decide
        it). Otherwise :meth:`transitions` without entering ``death``.
        ``confidence`` replaces ``lineage_confidence`` for this division.
        """
        c = self.lineage_confidence if confidence is None else confidence
        e, d = self.event_rate, self.death_at_end
        a = self.transitions()
        if reason == "divides":
            a[[S, M, D]] = [1 - c, c, 0.0, 0.0]
        elif reason in ("inside_field", "gap"):
            a[[S, D]] = [1 - d - e, e, 0.0, d]
        else:
            a[[S, M, D], X] = 0.0
        return a / a.sum(axis=1, keepdims=True)

    def end(self, reason: str) -> np.ndarray:
        """Weight of each state at the last frame: 0 for ``death`` where the track end is not one."""
        return np.array([1.0, 1.0, 1.0, 1.0 if reason in ("inside_field", "gap") else 0.0])

    def describe(self) -> str:
        """One paragraph stating the decision with its parameters (for the report)."""
        c = self.lineage_confidence
        return (
            "Joint decision (one hidden Markov model per track segment, forward-backward posteriors): the "
            "classifier's probabilities are the emissions; a linked division makes the mother's last frame "
            f"mitotic and each daughter's first frame new_daughter with prior {c} (the classifier overturns it "
            f"only with odds beyond {c / (1 - c):.0f}:1); events the lineage does not show have prior "
            f"{self.event_rate} per frame; mitotic followed by new_daughter inside one track (a division the "
            f"linker missed) has prior {self.missed_division} and is flagged. A track end inside the field "
            "allows a death if the classifier sees one; a track end at the image border (within "
            f"{self.border_margin} nucleus size of the edge) or at the movie's last frame never does."
        )


def _segments(lineage: Lineage, max_gap: int) -> list[list[Node]]:
    g = lineage.graph

    def linked(a: Node) -> Node | None:
        succ = list(g.successors(a))
        if len(succ) != 1 or g.in_degree(succ[0]) != 1 or succ[0][0] - a[0] > max_gap:
            return None
        return succ[0]

    nxt = {n: linked(n) for n in g.nodes}
    has_prev = {c for c in nxt.values() if c is not None}
    out = []
    for n in sorted(g.nodes):
        if n in has_prev:
            continue
        seg = [n]
        while nxt[seg[-1]] is not None:
            seg.append(nxt[seg[-1]])
        out.append(seg)
    return out


def track_segments(lineage: Lineage, max_gap: int = 1) -> list[list[Node]]:
    """Chains of single links: the units of :func:`joint_states`.

    Parameters
    ----------
    lineage : Lineage
        Nodes ``(t, label)``.
    max_gap : int
        A link spanning more frames than this ends a segment.

    Returns
    -------
    list of list of Node
        Every node in exactly one segment, each segment in time order; sorted by first node.
    """
    return _segments(lineage, max_gap)


def end_reasons(lineage: Lineage, states: pd.DataFrame | None = None, border_margin: float = 0.5,
                max_gap: int = 1) -> dict[Node, str]:
    """Why each segment ends, keyed by its last node (:data:`END_REASONS`).

    Parameters
    ----------
    lineage : Lineage
        With ``n_frames`` = the movie's frames.
    states : pandas.DataFrame, optional
        With ``t, label, edge_px, size_px`` (from :func:`dynacell.states.classify.classify_movie`):
        distance of the nucleus's bounding box to the nearest image edge in Y/X and its largest
        Y/X extent, pixels. Without them no end is classified ``border``.
    border_margin : float
        ``border`` when ``edge_px <= border_margin * size_px``.
    max_gap : int
        As in :func:`track_segments`.

    Returns
    -------
    dict
        ``last node -> reason``: ``divides`` (≥ 2 children), ``continues`` (one child, but a
        merge or a track-id change), ``gap`` (one child more than ``max_gap`` frames later),
        ``movie_end`` (last frame of the movie), ``border`` (leaves the field), ``inside_field``
        (disappears inside the field before the last frame).
    """
    g = lineage.graph
    last = lineage.n_frames - 1
    edge = {}
    if states is not None and {"edge_px", "size_px"} <= set(states.columns):
        near = states["edge_px"].to_numpy(float) <= border_margin * states["size_px"].to_numpy(float)
        edge = dict(zip(zip(states["t"].astype(int), states["label"].astype(int)), near))
    out = {}
    for seg in _segments(lineage, max_gap):
        n = seg[-1]
        succ = list(g.successors(n))
        if len(succ) >= 2:
            out[n] = "divides"
        elif len(succ) == 1:
            out[n] = "gap" if succ[0][0] - n[0] > max_gap else "continues"
        elif n[0] >= last:
            out[n] = "movie_end"
        elif edge.get(n, False):
            out[n] = "border"
        else:
            out[n] = "inside_field"
    return out


def combine_dead_evidence(proba: np.ndarray, p_dead_seg: np.ndarray) -> np.ndarray:
    """Classifier probabilities combined with a segmenter's per-nucleus dead probability.

    Parameters
    ----------
    proba : numpy.ndarray
        ``(n, 4)`` float, the classifier's ``p_<state>`` in :data:`dynacell.STATES` order.
    p_dead_seg : numpy.ndarray
        ``(n,)`` float in 0..1, the segmenter's dead share under each nucleus
        (:func:`dynacell.segment.dead.dead_evidence`); NaN = no evidence (row kept as is).

    Returns
    -------
    numpy.ndarray
        ``(n, 4)`` float64, rows summing to 1 where evidence was given. A classifier without a
        death class (its ``p_death`` column is 0 everywhere): ``death = q``, each living state
        ``p · (1 − q)``. With a death class: the product of the two (``p_death · q`` against
        ``p_living · (1 − q)``, uniform prior over dead/alive), renormalised.

    Raises
    ------
    InvalidInputError
        If the shapes differ or a probability is outside 0..1.
    """
    from dynacell.errors import InvalidInputError

    p = np.asarray(proba, dtype=np.float64)
    q = np.asarray(p_dead_seg, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(STATES) or q.shape != (p.shape[0],):
        raise InvalidInputError(f"dead evidence: proba {p.shape} and p_dead_seg {q.shape} do not match "
                                f"(n, {len(STATES)}) and (n,)")
    has = np.isfinite(q)
    if np.any((q[has] < 0) | (q[has] > 1)):
        raise InvalidInputError("dead evidence: p_dead_seg must lie in 0..1 (or be NaN)")
    out = p.copy()
    if not has.any():
        return out
    qh = q[has]
    sub = p[has].copy()
    death_class = p.shape[0] > 0 and p[:, X].max() > 0
    sub[:, X] = sub[:, X] * qh if death_class else qh
    living = [S, M, D]
    sub[:, living] *= (1.0 - qh)[:, None]
    tot = sub.sum(axis=1, keepdims=True)
    out[has] = np.divide(sub, tot, out=np.full_like(sub, 0.25), where=tot > 0)
    return out


def _forward_backward(pi: np.ndarray, a: np.ndarray, a_last: np.ndarray, em: np.ndarray,
                      end: np.ndarray) -> np.ndarray:
    """Posterior marginals ``(n, 4)`` of a chain (scaled forward-backward, Rabiner 1989).

    ``a`` is used between frames, ``a_last`` into the last frame; ``end`` weighs the last frame.
    """
    n = len(em)
    if n == 1:  # one frame: the start prior, or the division's prior when it divides at once
        divides = a_last[S, M] > a[S, M]
        if divides and pi[D] > pi[S]:  # a daughter that divides again at once: mitotic or new_daughter
            pi = np.array([a_last[S, S] ** 2, a_last[S, M], pi[D], 0.0])
        elif divides:
            pi = a_last[S]
        pi = pi * end
    mats = [a] * (n - 2) + [a_last] if n >= 2 else []
    alpha = np.zeros((n, 4))
    scale = np.zeros(n)
    v = pi * em[0]
    scale[0] = v.sum() or 1.0
    alpha[0] = v / scale[0]
    for t in range(1, n):
        v = (alpha[t - 1] @ mats[t - 1]) * em[t]
        scale[t] = v.sum() or 1.0
        alpha[t] = v / scale[t]
    beta = np.zeros((n, 4))
    beta[-1] = end
    for t in range(n - 2, -1, -1):
        v = mats[t] @ (em[t + 1] * beta[t + 1])
        beta[t] = v / (v.sum() or 1.0)
    post = alpha * beta
    tot = post.sum(axis=1, keepdims=True)
    post = np.divide(post, tot, out=np.zeros_like(post), where=tot > 0)
    return post


def _early_splits(lineage: Lineage, index: dict, proba: np.ndarray, p_min: float) -> set:
    """Mothers of divisions linked one frame early: every daughter's first node has ``p_mitotic >= p_min`` and
    its second ``p_new_daughter >= p_min``.

    A segmentation that cuts the two chromatin masses of a dividing nucleus apart at her last (mitotic) frame
    links the division one frame early; both halves then look mitotic (docs/states-generalisation.md, "A case the
    rule judges wrongly"). ``p_min`` > 1 finds none.
    """
    g = lineage.graph

    def halves_then_newborn(k: Node) -> bool:  # the first node mitotic, the second (its single successor) newborn
        nxt = list(g.successors(k))
        return (k in index and proba[index[k], M] >= p_min and len(nxt) == 1 and nxt[0] in index
                and proba[index[nxt[0]], D] >= p_min)

    out = set()
    for m in g.nodes:
        kids = list(g.successors(m))
        if len(kids) >= 2 and all(halves_then_newborn(k) for k in kids):
            out.add(m)
    return out


def joint_states(states: pd.DataFrame, lineage: Lineage, model: JointModel | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Decide every nucleus's state jointly with the lineage (see the module docstring).

    Parameters
    ----------
    states : pandas.DataFrame
        From :func:`dynacell.states.classify.classify_movie`: ``t, label, state, p_<state>`` for
        every state of :data:`dynacell.STATES` (and optionally ``edge_px, size_px``, and
        ``p_dead_seg``: a segmenter's dead evidence, see :func:`combine_dead_evidence`).
    lineage : Lineage
        Nodes ``(t, label)`` of the same label images; ``n_frames`` = the movie's frames.
    model : JointModel, optional
        Parameters (default ``JointModel()``).

    Returns
    -------
    states : pandas.DataFrame
        A copy with ``state`` decided, ``state_classifier`` (the input state), ``p_<state>_joint``
        (posterior probability of each state after the decision; the classifier's for nuclei not
        in the lineage), ``end_reason`` (on a segment's last node, else empty) and
        ``missed_division`` (True on a node decided ``mitotic`` or ``death`` followed on its own
        segment by a ``new_daughter``: a division the linker probably missed, or a wrong link).
    changes : pandas.DataFrame
        One row per kind of change: ``from, to, reason, n`` (reason: the lineage context of the
        node, e.g. ``mother's last frame before a linked division``).
    """
    model = model or JointModel()
    out = states.copy()
    out["state_classifier"] = out["state"].astype(object)
    pcols = [f"p_{s}" for s in STATES]
    proba = out[pcols].to_numpy(dtype=float)
    post = proba.copy()
    evidence = out["p_dead_seg"].to_numpy(dtype=float) if "p_dead_seg" in out else None
    em = proba if evidence is None else combine_dead_evidence(proba, evidence)
    predicted = em.max(axis=0) > 0 if len(out) else np.ones(4, bool)
    em_all = np.where(predicted, np.clip(em, model.emission_floor, None), 0.0)
    index = {n: i for i, n in enumerate(zip(out["t"].astype(int), out["label"].astype(int)))}
    reason = np.full(len(out), "not in the lineage", dtype=object)
    end_reason = np.full(len(out), "", dtype=object)
    flag = np.zeros(len(out), dtype=bool)
    ends = end_reasons(lineage, out, model.border_margin, model.max_gap)
    g = lineage.graph
    a = model.transitions()
    texts = {"divides": "mother's last frame before a linked division", "movie_end": "track end at the movie's end",
             "border": "track end at the image border", "inside_field": "track end inside the field",
             "gap": "last frame before a gap-closed link", "continues": "last frame before a merge"}
    early = _early_splits(lineage, index, proba, model.early_split_p)
    for seg in _segments(lineage, model.max_gap):
        rows = np.array([index.get(n, -1) for n in seg])
        ok = rows >= 0
        if not ok.any():
            continue
        preds = list(g.predecessors(seg[0]))
        daughter = len(preds) == 1 and g.out_degree(preds[0]) >= 2
        halves = daughter and preds[0] in early and ok[0]  # the first node is half of the dividing mother
        rows = rows[ok]
        why = ends[seg[-1]] if ok[-1] else "continues"
        # a division linked one frame early: the mother's last frame is not its mitotic frame
        why_model = "continues" if why == "divides" and seg[-1] in early else why
        if halves:
            c = model.lineage_confidence
            v = np.array([1 - c, c, 0.0, model.event_rate]) * em_all[rows[0]]  # one node: prior times emission
            post[rows[0]] = v / (v.sum() or 1.0)
        if len(rows) > int(halves):
            body = rows[int(halves):]
            post[body] = _forward_backward(model.start(daughter), a, model.last_step(why_model), em_all[body],
                                           model.end(why_model))
        p = post[rows]
        reason[rows] = "within a track (no lineage event)"
        if ok[-1]:
            end_reason[rows[-1]] = why
            reason[rows[-1]] = (texts[why] if why_model == why
                                else "mother's last frame before a division linked one frame early")
        if daughter and ok[0]:
            reason[rows[0]] = "daughter's first frame after a linked division"
        if halves:
            reason[rows[0]] = "half of the dividing mother (a division linked one frame early)"
            if len(rows) > 1:
                reason[rows[1]] = "daughter's first frame after a division linked one frame early"
        dec = p.argmax(axis=1)
        for k in np.flatnonzero((dec[:-1] == M) & (dec[1:] == D)):
            if halves and k == 0:  # the mitotic half of an early-linked division, then its newborn: expected
                continue
            flag[rows[k]] = True
            reason[rows[k]] = reason[rows[k + 1]] = "suspected missed division (mitotic then new_daughter)"
        for k in np.flatnonzero((dec[:-1] == X) & (dec[1:] == D)):
            flag[rows[k]] = True
            reason[rows[k]] = reason[rows[k + 1]] = "suspected wrong link (death then new_daughter)"
    states_arr = np.asarray(STATES, dtype=object)
    in_lin = reason != "not in the lineage"
    if evidence is not None:  # say which death calls the segmenter's dead evidence carried
        seen = in_lin & (post.argmax(axis=1) == X) & (np.nan_to_num(evidence) >= 0.5)
        reason[seen] = [f"{r}, segmenter's dead evidence" for r in reason[seen]]
    new_state = out["state"].to_numpy(dtype=object).copy()
    new_state[in_lin] = states_arr[post[in_lin].argmax(axis=1)]
    out["state"] = new_state
    for i, s in enumerate(STATES):
        out[f"p_{s}_joint"] = post[:, i]
    out["end_reason"] = end_reason
    out["missed_division"] = flag
    changed = (out["state"] != out["state_classifier"]).to_numpy()
    changes = (
        pd.DataFrame({"from": out.loc[changed, "state_classifier"], "to": out.loc[changed, "state"],
                      "reason": reason[changed]})
        .groupby(["from", "to", "reason"]).size().rename("n").reset_index()
    )
    if flag.any():
        logger.info("joint decision: %d suspected missed division(s)", int(flag.sum()))
    logger.info("joint decision changed %d of %d states", int(changed.sum()), len(out))
    return out, changes
