"""Per-track tables of a run: fate of each track and its state counts (``tracks.csv``)."""

from __future__ import annotations

import pandas as pd

from dynacell import STATES
from dynacell.lineage.graph import Lineage

__all__ = ["FATES", "run_counts", "tracks_table"]

#: Fates of a track in ``tracks.csv``.
FATES = ("divides", "continues", "reaches_end", "ends")


def tracks_table(lineage: Lineage, states: pd.DataFrame, border_margin: float = 0.5) -> pd.DataFrame:
    """One row per track: its extent, parent, fate and how many of its nuclei are in each state.

    Parameters
    ----------
    lineage : Lineage
        With ``track_id`` on every node and ``n_frames`` = the movie's frames.
    states : pandas.DataFrame
        ``states.csv`` (``track_id, state``).
    border_margin : float
        A track ends at the border when its last nucleus's bounding box lies within
        ``border_margin`` times its own size of the Y/X image edge (``edge_px <= border_margin ·
        size_px``; the joint decision's :attr:`dynacell.states.joint.JointModel.border_margin`).

    Returns
    -------
    pandas.DataFrame
        :meth:`Lineage.tracks` columns (``track_id, start, end, parent_track_id, n_nodes``) plus
        ``fate`` — ``divides`` (last node has ≥ 2 children), ``continues`` (a single child after a
        gap or a track-id change), ``reaches_end`` (last node at the movie's last frame), ``ends``
        (disappears before the last frame) — ``end_reason`` (why the track ends:
        :data:`dynacell.states.joint.END_REASONS`; ``ends`` splits into ``border`` — the nucleus
        leaves the field — and ``inside_field``, using ``edge_px`` / ``size_px`` of ``states`` when
        present), ``n_<state>`` for each state and ``division_note``: for a ``divides`` track without
        a ``mitotic`` nucleus, why (the joint decision let the classifier overturn the linked
        division, with the classifier's largest ``p_mitotic`` on the track), else empty.
    """
    from dynacell.lineage.stats import track_fates
    from dynacell.states.joint import end_reasons

    why = end_reasons(lineage, states if len(states) else None, border_margin)
    tracks = lineage.tracks()
    fate_of, last = track_fates(lineage)
    tracks["fate"] = [fate_of[int(tid)] for tid in tracks["track_id"]]
    tracks["end_reason"] = [why.get(last[int(tid)], "continues") for tid in tracks["track_id"]]
    if len(states):
        counts = states.groupby(["track_id", "state"]).size().unstack(fill_value=0)
        for s in STATES:
            col = counts[s] if s in counts else pd.Series(dtype=int)
            tracks[f"n_{s}"] = tracks["track_id"].map(col).fillna(0).astype(int)
    tracks["division_note"] = ""
    if len(states) and "p_mitotic" in states and "n_mitotic" in tracks:
        pmax = states.groupby("track_id")["p_mitotic"].max()
        odd = (tracks["fate"] == "divides") & (tracks["n_mitotic"] == 0)
        tracks.loc[odd, "division_note"] = [
            f"linked division not confirmed: the classifier's p_mitotic on this track is at most {pmax.get(tid, 0.0):.3f}"
            " (the joint decision let it overturn the lineage; the division may be false)"
            for tid in tracks.loc[odd, "track_id"]]
    return tracks


def run_counts(states: pd.DataFrame, tracks: pd.DataFrame, lineage: Lineage, n_frames: int) -> dict:
    """The ``counts`` of a run (``run.json``, the command's summary line).

    Parameters
    ----------
    states : pandas.DataFrame
        ``states.csv`` (``state``, ``state_classifier``): one row per nucleus and frame.
    tracks : pandas.DataFrame
        ``tracks.csv`` (``end_reason``; :func:`tracks_table`).
    lineage : Lineage
        The run's lineage.
    n_frames : int
        Frames of the image movie.

    Returns
    -------
    dict
        ``frames``, ``nuclei`` (rows of ``states``), ``tracks``, ``divisions`` (mothers with ≥ 2
        children), and by value: ``states`` (final), ``states_classifier`` (the classifier's
        argmax), ``track_ends`` (``end_reason``), each most frequent first.
    """
    return {
        "frames": n_frames,
        "nuclei": len(states),
        "tracks": int(lineage.tracks().shape[0]),
        "divisions": len(lineage.divisions()),
        "states": states["state"].value_counts().to_dict(),
        "states_classifier": states["state_classifier"].value_counts().to_dict(),
        "track_ends": tracks["end_reason"].value_counts().to_dict(),
    }
