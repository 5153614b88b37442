"""Summaries of a lineage (the ``dynacell lineage`` JSON) and frame-range restriction."""

from __future__ import annotations

from typing import Any

from dynacell.errors import InvalidInputError
from dynacell.lineage.events import EventRules, count_states, label_events
from dynacell.lineage.graph import Lineage

__all__ = ["summarize", "first_frames"]


def first_frames(lineage: Lineage, n: int) -> Lineage:
    """The lineage restricted to its first ``n`` frames.

    Parameters
    ----------
    lineage : Lineage
        Input lineage (not modified).
    n : int
        Number of frames to keep, counted from ``lineage.first_frame``: nodes with
        ``t < first_frame + n`` remain and ``n_frames`` becomes ``first_frame + n``, so that
        tracks running past the cut end at the (new) last frame.

    Returns
    -------
    Lineage
        A new lineage; node attributes and graph attributes are copied.

    Raises
    ------
    InvalidInputError
        If ``n < 1``.
    """
    if n < 1:
        raise InvalidInputError(f"frames must be >= 1, got {n}")
    stop = lineage.first_frame + int(n)
    out = Lineage(n_frames=stop, ndim=lineage.ndim, source=lineage.source)
    out.graph = lineage.graph.subgraph([v for v in lineage.graph.nodes if v[0] < stop]).copy()
    return out


def summarize(lineage: Lineage, rules: EventRules | None = None) -> dict[str, Any]:
    """Counts that describe a lineage: the payload of ``dynacell lineage``.

    Parameters
    ----------
    lineage : Lineage
        The lineage (``track_id`` is assigned where missing).
    rules : EventRules, optional
        Event rules for ``states`` (default :meth:`EventRules.seed`).

    Returns
    -------
    dict
        ``frames`` (frames spanned: ``n_frames - first_frame``), ``first_frame``, ``nodes``,
        ``tracks`` (distinct ``track_id``), ``divisions`` (nodes with ≥ 2 children),
        ``deaths`` (explicit death annotations when the source has them, i.e.
        ``lineage.graph.graph["death_annotations"]`` is set — WormGUIDES ``CellDeaths.csv``;
        else the nodes labelled ``death`` by ``rules``: track ends before the last frame),
        ``states`` (count of every state of :func:`label_events`).
    """
    rules = rules or EventRules.seed()
    states = label_events(lineage, rules)
    counts = count_states(states)
    lineage.assign_tracks()
    tracks = len({d["track_id"] for _, d in lineage.graph.nodes(data=True)})
    if lineage.graph.graph.get("death_annotations"):
        deaths = len(lineage.explicit_deaths())
    else:
        deaths = counts["death"]
    return {
        "frames": int(lineage.n_frames - lineage.first_frame) if len(lineage) else int(lineage.n_frames),
        "first_frame": int(lineage.first_frame),
        "nodes": len(lineage),
        "tracks": tracks,
        "divisions": len(lineage.divisions()),
        "deaths": int(deaths),
        "states": counts,
    }
