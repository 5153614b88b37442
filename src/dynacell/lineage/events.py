"""Event labels from a lineage: the state of every nucleus at every frame.

States (``dynacell.STATES`` order aside): ``mitotic``, ``new_daughter``, ``death``,
``stable`` and ``unknown``. The rules generalise those of the seed system (seed 004,
``3d-cnn-classification``), applied in this order, the
first that matches wins:

1. ``mitotic``: the last ``mitotic_frames`` frames of a track that ends in a division (a
   node with ≥ 2 children). Seed: 1 — the division node itself, "the last frame before the
   split".
2. ``new_daughter``: the first ``daughter_frames`` frames of a track whose first node's
   parent has ≥ 2 children. Seed: 1 — "the first frame after the split".
3. ``death``: with ``deaths="track_end"`` (seed) and ``track_end="death"`` (seed), a node
   without children before the last frame of the movie — in the seed this also catches
   tracking losses and cells leaving the field; ``track_end="unknown"`` labels such track
   ends ``unknown`` instead. With ``deaths="annotated"``, only nodes explicitly annotated
   ``death=True`` (e.g. from WormGUIDES ``CellDeaths.csv``) and every other track end is
   ``unknown``. The two sources are not mixed: the seed preset ignores annotations, so it
   stays exact.
4. ``stable``: a node that is *directly stable* — exactly one child and not labelled by
   rules 1–3 — and that has, within ±``stable_window`` frames on its own track (itself
   included), at least ``floor(1.5 · stable_window)`` directly stable nodes. Seed: W = 8,
   so 12 of at most 17.
5. ``unknown``: everything else (e.g. a track's node at the last frame, short tracks).

Source: rules 1–3 and their order are the seed's ``classify_node``
(``preperation/python/nucleus_lineage_to_classification.py`` of
github.com/dineshchhantyal/3d-cnn-classification), whose "final frame" is the last frame
holding a node (here ``lineage.n_frames - 1``, the same unless ``n_frames`` is given); the
stability window of rule 4 is the one the seed records.

A *track* here is a chain of single-child links, as in the seed's ``track_ancestor``: it
starts at a root or at a daughter of a division and continues while a node has exactly one
child. Windows are counted in frames (``t`` differences), so gaps in a track shorten them.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

from dynacell.errors import InvalidInputError
from dynacell.lineage._tracks import track_index
from dynacell.lineage.graph import Lineage, Node

__all__ = ["EventRules", "label_events", "count_states", "EVENT_STATES"]

#: Every state :func:`label_events` can return.
EVENT_STATES = ("stable", "mitotic", "new_daughter", "death", "unknown")


@dataclass(frozen=True)
class EventRules:
    """Parameters of the event-labelling rules (see the module docstring for the rules).

    Parameters
    ----------
    mitotic_frames : int
        Frames counted as ``mitotic`` at the end of a dividing track (≥ 0). Seed: 1.
    daughter_frames : int
        Frames counted as ``new_daughter`` at the start of a daughter track (≥ 0). Seed: 1.
    stable_window : int
        Half-width W (frames) of the stability window (≥ 0); a node is ``stable`` if at
        least ``floor(stable_fraction · W)`` directly stable nodes of its track lie in
        ``[t − W, t + W]``. Seed: 8.
    stable_fraction : float
        The 1.5 of the seed's ``floor(1.5 · W)`` (> 0).
    track_end : {"death", "unknown"}
        State of a node without children before the last frame (with ``deaths="track_end"``).
        Seed: ``"death"``.
    deaths : {"track_end", "annotated"}
        ``"track_end"``: track ends before the last frame count by ``track_end``; explicit
        annotations are ignored (seed). ``"annotated"``: deaths only from explicit
        annotations (``death=True`` node attribute, e.g. WormGUIDES ``CellDeaths.csv``),
        wherever the annotated node lies; other track ends are ``unknown``.

    Raises
    ------
    InvalidInputError
        For a negative window, a non-positive fraction or an unknown option value.
    """

    mitotic_frames: int = 1
    daughter_frames: int = 1
    stable_window: int = 8
    stable_fraction: float = 1.5
    track_end: Literal["death", "unknown"] = "death"
    deaths: Literal["track_end", "annotated"] = "track_end"

    def __post_init__(self) -> None:
        for name in ("mitotic_frames", "daughter_frames", "stable_window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InvalidInputError(f"EventRules.{name} must be an integer >= 0, got {v!r}")
        if not (isinstance(self.stable_fraction, (int, float)) and self.stable_fraction > 0):
            raise InvalidInputError(f"EventRules.stable_fraction must be > 0, got {self.stable_fraction!r}")
        if self.track_end not in ("death", "unknown"):
            raise InvalidInputError(f"EventRules.track_end must be 'death' or 'unknown', got {self.track_end!r}")
        if self.deaths not in ("track_end", "annotated"):
            raise InvalidInputError(f"EventRules.deaths must be 'track_end' or 'annotated', got {self.deaths!r}")

    @property
    def min_stable(self) -> int:
        """Directly stable nodes needed in the window: ``floor(stable_fraction · stable_window)``."""
        return math.floor(self.stable_fraction * self.stable_window)

    @classmethod
    def seed(cls) -> EventRules:
        """The seed's rules exactly (the seed state classifier, repository dineshchhantyal/3d-cnn-classification).

        Returns
        -------
        EventRules
            1 mitotic frame, 1 daughter frame, W = 8 with ``floor(1.5 · W) = 12`` directly stable
            nodes needed, track ends before the last frame are deaths, annotations ignored.
        """
        return cls()

    @classmethod
    def annotated_deaths(cls) -> EventRules:
        """Seed rules, but deaths only from explicit annotations (e.g. WormGUIDES ``CellDeaths.csv``).

        Returns
        -------
        EventRules
            ``track_end="unknown"``, ``deaths="annotated"``; other fields as :meth:`seed`.
        """
        return cls(track_end="unknown", deaths="annotated")

    @classmethod
    def preset(cls, name: str) -> EventRules:
        """A preset by name: ``"seed"`` or ``"annotated-deaths"`` (also ``"annotated_deaths"``).

        Parameters
        ----------
        name : str
            Preset name, case-insensitive; ``_`` and ``-`` are the same.

        Returns
        -------
        EventRules
            :meth:`seed` or :meth:`annotated_deaths`.

        Raises
        ------
        InvalidInputError
            For another name.
        """
        key = name.replace("_", "-").lower()
        if key == "seed":
            return cls.seed()
        if key == "annotated-deaths":
            return cls.annotated_deaths()
        raise InvalidInputError(f"unknown event-rule preset {name!r}; expected 'seed' or 'annotated-deaths'")


def label_events(lineage: Lineage, rules: EventRules | None = None) -> dict[Node, str]:
    """The state of every node of ``lineage`` under ``rules``.

    Parameters
    ----------
    lineage : Lineage
        A forest (each node has at most one parent) going forward in time. Its ``n_frames``
        defines the last frame (``n_frames - 1``).
    rules : EventRules, optional
        Default :meth:`EventRules.seed`.

    Returns
    -------
    dict
        ``(t, label) -> state``, one of :data:`EVENT_STATES`, for every node.

    Raises
    ------
    InvalidInputError
        If a node has more than one parent or an edge does not go forward in time.

    Notes
    -----
    O(N log N) in the number of nodes (one sort by time; window counts by
    :func:`numpy.searchsorted`); ~1 s for the 106k nodes of WormGUIDES.

    Examples
    --------
    A division at frame 1 of a 3-frame movie::

        (0,1) ── (1,1) ─┬─ (2,2)
                        └─ (2,3)

    >>> lin = Lineage(n_frames=3)
    >>> for n in [(0, 1), (1, 1), (2, 2), (2, 3)]:
    ...     lin.add_node(n)
    >>> lin.add_edge((0, 1), (1, 1)); lin.add_edge((1, 1), (2, 2)); lin.add_edge((1, 1), (2, 3))
    >>> label_events(lin, EventRules.seed())[(1, 1)], label_events(lin)[(2, 2)], label_events(lin)[(0, 1)]
    ('mitotic', 'new_daughter', 'unknown')
    """
    rules = rules or EventRules.seed()
    g = lineage.graph
    lineage.validate()
    ti = track_index(lineage)
    nodes, t, parent, n_children, track = ti.nodes, ti.t, ti.parent, ti.n_children, ti.track
    n, n_tracks = len(nodes), ti.n_tracks
    if n == 0:
        return {}
    attrs = g.nodes
    annotated = np.fromiter((bool(attrs[v].get("death", False)) for v in nodes), dtype=bool, count=n)
    track_start = np.full(n_tracks, np.iinfo(np.int64).max)
    track_end = np.full(n_tracks, -1)
    np.minimum.at(track_start, track, t)
    np.maximum.at(track_end, track, t)
    first_of_track = t == track_start[track]
    last_of_track = t == track_end[track]
    ends_in_division = np.zeros(n_tracks, dtype=bool)
    ends_in_division[track[last_of_track & (n_children >= 2)]] = True
    born_of_division = np.zeros(n_tracks, dtype=bool)
    has_parent = first_of_track & (parent >= 0)
    born_of_division[track[has_parent][n_children[parent[has_parent]] >= 2]] = True

    state = np.full(n, "", dtype=object)
    free = np.ones(n, dtype=bool)

    def claim(mask: np.ndarray, name: str) -> None:
        m = mask & free
        state[m] = name
        free[m] = False

    claim(ends_in_division[track] & (track_end[track] - t < rules.mitotic_frames), "mitotic")
    claim(born_of_division[track] & (t - track_start[track] < rules.daughter_frames), "new_daughter")
    track_ends = (n_children == 0) & (t < lineage.n_frames - 1)
    if rules.deaths == "track_end":
        claim(track_ends, "death" if rules.track_end == "death" else "unknown")
    else:
        claim(annotated, "death")
        claim(track_ends, "unknown")

    direct = free & (n_children == 1)
    stable = np.zeros(n, dtype=bool)
    if direct.any():
        w, need = rules.stable_window, rules.min_stable
        order = np.lexsort((t, track))
        key_track, key_t = track[order], t[order]
        is_direct = direct[order]
        d_track, d_t = key_track[is_direct], key_t[is_direct]
        # Count directly stable nodes of the same track in [t - W, t + W] with one searchsorted
        # on (track, t) pairs encoded as a single sortable number.
        span = int(t.max() - t.min()) + 2 * w + 2
        code = d_track * span + (d_t - t.min() + w)
        q_track, q_t = track[direct], t[direct]
        lo = np.searchsorted(code, q_track * span + (q_t - w - t.min() + w), side="left")
        hi = np.searchsorted(code, q_track * span + (q_t + w - t.min() + w), side="right")
        stable[np.flatnonzero(direct)] = (hi - lo) >= need
    claim(stable, "stable")
    claim(np.ones(n, dtype=bool), "unknown")
    return dict(zip(nodes, state.tolist()))


def count_states(states: dict[Node, str]) -> dict[str, int]:
    """Number of nodes in each state.

    Parameters
    ----------
    states : dict
        ``(t, label) -> state`` as returned by :func:`label_events`.

    Returns
    -------
    dict of str to int
        Every state of :data:`EVENT_STATES`, in that order, with its count (0 if none).
    """
    c = Counter(states.values())
    return {s: int(c.get(s, 0)) for s in EVENT_STATES}
