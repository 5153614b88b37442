"""Figures of a run: state counts over time, event timeline, lineage tree, confusion matrix.

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot, no global backend
change) and embedded in ``report.html`` as base64 PNG with :func:`figure_to_base64`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dynacell.lineage.graph import Lineage, Node
from dynacell.viz.overlay import STATE_COLORS

__all__ = [
    "figure_to_base64",
    "plot_state_counts",
    "plot_event_timeline",
    "plot_lineage_tree",
    "plot_confusion_matrix",
    "lineage_layout",
]

STATE_ORDER = ("stable", "mitotic", "new_daughter", "death", "unknown")


def _rgb(state: str) -> tuple[float, float, float]:
    r, g, b = STATE_COLORS.get(state, STATE_COLORS["unknown"])
    return (r / 255, g / 255, b / 255)


def figure_to_base64(fig: Figure, dpi: int = 100) -> str:
    """Render a figure to a base64-encoded PNG string (for ``<img src="data:image/png;base64,...">``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    str
        ASCII base64 of the PNG bytes.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_state_counts(states: pd.DataFrame) -> Figure:
    """Number of nuclei in each state at every frame.

    Parameters
    ----------
    states : pandas.DataFrame
        Columns ``t`` (frame number) and ``state`` (one row per nucleus and frame).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the time axis: all nuclei and stable (top), the rare events
        mitotic / new_daughter / death (bottom).
    """
    fig = Figure(figsize=(8, 4.5))
    ax_top, ax_bot = fig.subplots(2, 1, sharex=True)
    counts = states.groupby(["t", "state"]).size().unstack(fill_value=0) if len(states) else pd.DataFrame()
    if not counts.empty:
        frames = counts.index.to_numpy()
        ax_top.plot(frames, counts.sum(axis=1).to_numpy(), color="black", label="all nuclei")
        for state in STATE_ORDER:
            if state not in counts:
                continue
            ax = ax_top if state in ("stable", "unknown") else ax_bot
            ax.plot(frames, counts[state].to_numpy(), marker=".", color=_rgb(state), label=state)
    ax_top.set_ylabel("nuclei")
    ax_bot.set_ylabel("nuclei")
    ax_bot.set_xlabel("frame t")
    for ax in (ax_top, ax_bot):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", fontsize=8)
    ax_top.set_title("State counts over time")
    return fig


def plot_event_timeline(states: pd.DataFrame) -> Figure:
    """Every non-stable call as a point at (frame, track).

    Parameters
    ----------
    states : pandas.DataFrame
        Columns ``t, track_id, state``.

    Returns
    -------
    matplotlib.figure.Figure
        Scatter of mitotic, new_daughter and death calls; y = track id.
    """
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    n_events = int(states["state"].isin(["mitotic", "new_daughter", "death"]).sum())
    size = 18 if n_events < 300 else 6
    for state, marker in (("mitotic", "D"), ("new_daughter", "o"), ("death", "x")):
        sel = states[states["state"] == state]
        if len(sel):
            ax.scatter(sel["t"], sel["track_id"], s=size, marker=marker, color=_rgb(state), alpha=0.8,
                       label=f"{state} ({len(sel)})", linewidths=0.8 if marker == "x" else 0)
    ax.set_xlabel("frame t")
    ax.set_ylabel("track id")
    ax.set_title("Event timeline")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no mitotic, new_daughter or death calls", ha="center", va="center", transform=ax.transAxes)
    return fig


def lineage_layout(lineage: Lineage) -> dict[int, float]:
    """Vertical position of each track in a lineage-tree drawing.

    Leaves of each tree get consecutive integer positions in depth-first order; a mother
    track sits at the mean of its daughters.

    Parameters
    ----------
    lineage : Lineage
        The lineage (``track_id`` assigned if missing).

    Returns
    -------
    dict of int to float
        ``track_id -> y``.
    """
    tracks = lineage.tracks()
    children: dict[int, list[int]] = {}
    for tid, ptid in zip(tracks["track_id"], tracks["parent_track_id"]):
        children.setdefault(int(ptid), []).append(int(tid))
    ypos: dict[int, float] = {}
    next_leaf = [0.0]

    def place(tid: int) -> float:
        stack = [(tid, False)]
        while stack:
            cur, done = stack.pop()
            kids = children.get(cur, [])
            if done or not kids:
                if kids:
                    ypos[cur] = float(np.mean([ypos[k] for k in kids]))
                else:
                    ypos[cur] = next_leaf[0]
                    next_leaf[0] += 1.0
                continue
            stack.append((cur, True))
            stack.extend((k, False) for k in reversed(kids))
        return ypos[tid]

    for root in children.get(0, []):
        place(root)
    return ypos


def plot_lineage_tree(lineage: Lineage, states: Mapping[Node, str] | None = None, *, max_tracks: int = 2000) -> Figure:
    """Draw the lineage as a tree: time to the right, one row per track, coloured by state.

    Parameters
    ----------
    lineage : Lineage
        The lineage.
    states : mapping of (t, label) to str, optional
        State of each node; segments are coloured by the state of their start node
        (grey when absent).
    max_tracks : int
        Trees beyond this number of tracks are not drawn (a note says so), to keep the
        figure readable.

    Returns
    -------
    matplotlib.figure.Figure
        The tree.
    """
    from matplotlib.collections import LineCollection

    states = states or {}
    lineage.assign_tracks()
    ypos = lineage_layout(lineage)
    n_tracks = len(ypos)
    n_rows = int(max(ypos.values(), default=0)) + 1
    height = float(np.clip(0.12 * min(n_rows, max_tracks), 3, 30))
    fig = Figure(figsize=(9, height))
    ax = fig.subplots()
    g = lineage.graph
    segs, colors, links = [], [], []
    for u, v in g.edges:
        yu, yv = ypos.get(g.nodes[u]["track_id"]), ypos.get(g.nodes[v]["track_id"])
        if yu is None or yv is None or yu >= max_tracks or yv >= max_tracks:
            continue
        if g.nodes[u]["track_id"] == g.nodes[v]["track_id"]:
            segs.append([(u[0], yu), (v[0], yv)])
            colors.append(_rgb(states.get(u, "unknown")))
        else:
            links.append([(u[0], yu), (u[0], yv), (v[0], yv)])
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=2))
    ax.add_collection(LineCollection(links, colors="0.4", linewidths=0.8))
    for state in ("mitotic", "new_daughter", "death"):
        pts = [(n[0], ypos[d["track_id"]]) for n, d in g.nodes(data=True)
               if states.get(n) == state and ypos.get(d["track_id"], max_tracks) < max_tracks]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=14, color=_rgb(state), edgecolors="black", linewidths=0.3, zorder=3, label=state)
    if len(g):
        ax.set_xlim(min(t for t, _ in g.nodes) - 0.5, max(t for t, _ in g.nodes) + 0.5)
        ax.set_ylim(-1, min(n_rows, max_tracks))
    ax.invert_yaxis()
    ax.set_xlabel("frame t")
    ax.set_ylabel("track (tree order)")
    title = f"Lineage tree: {n_tracks} tracks, {len(lineage.divisions())} divisions"
    if n_rows > max_tracks:
        title += f" (first {max_tracks} rows drawn)"
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_confusion_matrix(matrix: np.ndarray, classes: Sequence[str], title: str = "Confusion matrix") -> Figure:
    """Confusion matrix with counts in the cells (rows = true class, columns = predicted).

    Parameters
    ----------
    matrix : numpy.ndarray
        Shape ``(n_classes, n_classes)``, integer counts.
    classes : sequence of str
        Class names in matrix order.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The matrix, colour = row-normalised fraction.
    """
    matrix = np.asarray(matrix)
    fig = Figure(figsize=(5, 4.2))
    ax = fig.subplots()
    rows = matrix.sum(axis=1, keepdims=True)
    frac = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center",
                    color="white" if frac[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    return fig
