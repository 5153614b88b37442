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

# Titles at the top of their axes (``set_title(y=...)``). Left to matplotlib (``y=None``), every draw measures
# the axes' decorations to lift a title over top-side tick labels or an offset text, which these figures do
# not have: 0.1–0.15 CPU-s of the report on GOWT1 01, the same pixels (tests/viz/test_report_speed.py).
_TITLE_Y = 1.0
# zlib level of the report's PNG figures: 1 instead of PIL's 6, the same pixels, ~20 % larger
# (GOWT1 01: 0.02–0.14 CPU-s less per figure).
_PNG_COMPRESS_LEVEL = 1

__all__ = [
    "figure_to_base64",
    "plot_state_counts",
    "plot_event_timeline",
    "plot_lineage_tree",
    "plot_confusion_matrix",
    "lineage_layout",
    "time_unit",
    "plot_lineage_statistics",
    "plot_measurements",
]

STATE_ORDER = ("stable", "mitotic", "new_daughter", "death", "unknown")


def _rgb(state: str) -> tuple[float, float, float]:
    r, g, b = STATE_COLORS.get(state, STATE_COLORS["unknown"])
    return (r / 255, g / 255, b / 255)


def time_unit(frame_interval_s: float | None, n_frames: int) -> tuple[float, str]:
    """The factor turning a frame number into a readable time, and the unit's name.

    Parameters
    ----------
    frame_interval_s : float or None
        Time between frames in s (None: stay in frames).
    n_frames : int
        Length of the movie in frames (chooses h, min or s).

    Returns
    -------
    tuple of (float, str)
        ``(factor, unit)``: time = frame × factor; unit ``"h"``, ``"min"``, ``"s"`` or ``"frame"``.

    Examples
    --------
    >>> time_unit(1800.0, 92)
    (0.5, 'h')
    >>> time_unit(None, 10)
    (1.0, 'frame')
    """
    if not frame_interval_s:
        return 1.0, "frame"
    total = float(frame_interval_s) * max(int(n_frames), 1)
    if total >= 3 * 3600:
        return float(frame_interval_s) / 3600.0, "h"
    if total >= 180:
        return float(frame_interval_s) / 60.0, "min"
    return float(frame_interval_s), "s"


def _time_label(unit: str) -> str:
    return "frame t" if unit == "frame" else f"time ({unit})"


def _legend_outside(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _margins(fig: Figure, left_in: float, right_in: float, top_in: float, bottom_in: float, **spacing) -> None:
    """Fixed subplot margins in inches (no layout engine, no tight bounding box: the figure is drawn once).

    ``spacing`` goes to :meth:`matplotlib.figure.Figure.subplots_adjust` (``wspace``, ``hspace``).
    """
    w, h = fig.get_size_inches()
    fig.subplots_adjust(left=left_in / w, right=1 - right_in / w, top=1 - top_in / h, bottom=bottom_in / h,
                        **spacing)


def figure_to_base64(fig: Figure, dpi: int = 100) -> str:
    """Render a figure to a base64-encoded PNG string (for ``<img src="data:image/png;base64,...">``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (its own size and margins: the report's figures set fixed margins, so the
        figure is drawn once — a tight bounding box or a layout engine draws it two or more times,
        which was most of the report's CPU time).
    dpi : int
        Resolution in dots per inch.

    Returns
    -------
    str
        ASCII base64 of the PNG bytes.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": _PNG_COMPRESS_LEVEL})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plot_state_counts(states: pd.DataFrame, frame_interval_s: float | None = None) -> Figure:
    """Number of nuclei in each state at every frame.

    Parameters
    ----------
    states : pandas.DataFrame
        Columns ``t`` (frame number) and ``state`` (one row per nucleus and frame).
    frame_interval_s : float, optional
        Time between frames in s: the time axis is then in h, min or s (see :func:`time_unit`).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels sharing the time axis: all nuclei and stable (top), the rare events
        mitotic / new_daughter / death (bottom).
    """
    fig = Figure(figsize=(8, 4.5))
    ax_top, ax_bot = fig.subplots(2, 1, sharex=True)
    _margins(fig, 0.75, 1.6, 0.4, 0.55, hspace=0.12)  # legends outside on the right
    counts = states.groupby(["t", "state"]).size().unstack(fill_value=0) if len(states) else pd.DataFrame()
    factor, unit = time_unit(frame_interval_s, int(states["t"].max()) + 1 if len(states) else 1)
    if not counts.empty:
        frames = counts.index.to_numpy() * factor
        ax_top.plot(frames, counts.sum(axis=1).to_numpy(), color="black", label="all nuclei")
        for state in STATE_ORDER:
            if state not in counts:
                continue
            ax = ax_top if state in ("stable", "unknown") else ax_bot
            ax.plot(frames, counts[state].to_numpy(), marker=".", color=_rgb(state), label=state)
    ax_top.set_ylabel("nuclei")
    ax_bot.set_ylabel("nuclei")
    ax_bot.set_xlabel(_time_label(unit))
    for ax in (ax_top, ax_bot):
        ax.grid(alpha=0.3)
        _legend_outside(ax)
    ax_top.set_title("State counts over time", y=_TITLE_Y)
    return fig


def plot_event_timeline(states: pd.DataFrame, frame_interval_s: float | None = None) -> Figure:
    """Every non-stable call as a point at (time, track).

    Parameters
    ----------
    states : pandas.DataFrame
        Columns ``t, track_id, state``.
    frame_interval_s : float, optional
        Time between frames in s (time axis in h/min/s instead of frames).

    Returns
    -------
    matplotlib.figure.Figure
        Scatter of mitotic, new_daughter and death calls; y = track id.
    """
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    _margins(fig, 0.75, 1.6, 0.4, 0.55)  # legend outside on the right
    n_events = int(states["state"].isin(["mitotic", "new_daughter", "death"]).sum())
    size = 18 if n_events < 300 else 6
    factor, unit = time_unit(frame_interval_s, int(states["t"].max()) + 1 if len(states) else 1)
    for state, marker in (("mitotic", "D"), ("new_daughter", "o"), ("death", "x")):
        sel = states[states["state"] == state]
        if len(sel):
            ax.scatter(sel["t"] * factor, sel["track_id"], s=size, marker=marker, color=_rgb(state), alpha=0.8,
                       label=f"{state} ({len(sel)})", linewidths=0.8 if marker == "x" else 0)
    ax.set_xlabel(_time_label(unit))
    ax.set_ylabel("track id")
    ax.set_title("Event timeline", y=_TITLE_Y)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        _legend_outside(ax)
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


def plot_lineage_tree(lineage: Lineage, states: Mapping[Node, str] | None = None, *, max_tracks: int = 2000,
                      frame_interval_s: float | None = None) -> Figure:
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
    frame_interval_s : float, optional
        Time between frames in s (time axis in h/min/s instead of frames).

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
    _margins(fig, 0.75, 1.45, 0.4, 0.55)  # legend outside on the right
    g = lineage.graph
    f, unit = time_unit(frame_interval_s, lineage.n_frames)
    segs, colors, links = [], [], []
    for u, v in g.edges:
        yu, yv = ypos.get(g.nodes[u]["track_id"]), ypos.get(g.nodes[v]["track_id"])
        if yu is None or yv is None or yu >= max_tracks or yv >= max_tracks:
            continue
        if g.nodes[u]["track_id"] == g.nodes[v]["track_id"]:
            segs.append([(u[0] * f, yu), (v[0] * f, yv)])
            colors.append(_rgb(states.get(u, "unknown")))
        else:
            links.append([(u[0] * f, yu), (u[0] * f, yv), (v[0] * f, yv)])
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=2))
    ax.add_collection(LineCollection(links, colors="0.4", linewidths=0.8))
    for state in ("mitotic", "new_daughter", "death"):
        pts = [(n[0] * f, ypos[d["track_id"]]) for n, d in g.nodes(data=True)
               if states.get(n) == state and ypos.get(d["track_id"], max_tracks) < max_tracks]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=14, color=_rgb(state), edgecolors="black", linewidths=0.3, zorder=3, label=state)
    if len(g):
        ax.set_xlim((min(t for t, _ in g.nodes) - 0.5) * f, (max(t for t, _ in g.nodes) + 0.5) * f)
        ax.set_ylim(-1, min(n_rows, max_tracks))
    ax.invert_yaxis()
    ax.set_xlabel(_time_label(unit))
    ax.set_ylabel("track (tree order)")
    title = f"Lineage tree: {n_tracks} tracks, {len(lineage.divisions())} divisions"
    if n_rows > max_tracks:
        title += f" (first {max_tracks} rows drawn)"
    ax.set_title(title, y=_TITLE_Y)
    _legend_outside(ax)
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
    _margins(fig, 1.3, 0.3, 0.4, 1.1)  # class names on both axes
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
    ax.set_title(title, y=_TITLE_Y)
    return fig


def _duration_unit(stats) -> tuple[float, str]:
    """Factor from frames to the unit used for durations in :func:`plot_lineage_statistics`."""
    if not stats.frame_interval_s:
        return 1.0, "frames"
    med = stats.summary.get("cycle_frames_median") or stats.summary.get("track_length_frames_median") or 1.0
    if med * stats.frame_interval_s >= 3 * 3600:
        return stats.frame_interval_s / 3600.0, "h"
    return stats.frame_interval_s / 60.0, "min"


def plot_lineage_statistics(stats) -> Figure:
    """Distributions of the lineage statistics: cycle durations per generation, division times,
    sister synchrony, track lengths by fate, and the count of each fate.

    Parameters
    ----------
    stats : dynacell.lineage.stats.LineageStats
        From :func:`dynacell.lineage.stats.lineage_statistics`.

    Returns
    -------
    matplotlib.figure.Figure
        Five panels; durations in h or min when the frame interval is known, else in frames.
        An empty panel says why (e.g. no complete cell cycle in the movie).
    """
    from dynacell.lineage.stats import FATES

    f, unit = _duration_unit(stats)
    tr = stats.tracks
    fig = Figure(figsize=(11, 6.5))
    axes = fig.subplots(2, 3)
    _margins(fig, 0.7, 0.2, 0.35, 0.65, wspace=0.32, hspace=0.5)
    ax = axes[0, 0]
    cyc = tr[tr["complete_cycle"]] if len(tr) else tr
    if len(cyc):
        gens = sorted(cyc["generation"].unique())
        data = [cyc.loc[cyc["generation"] == g, "cycle_frames"].to_numpy(float) * f for g in gens]
        ax.boxplot(data, positions=range(len(gens)), widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)
        for i, d in enumerate(data):
            ax.scatter(i + rng.uniform(-0.15, 0.15, d.size), d, s=10, alpha=0.6, color="tab:blue")
        ax.set_xticks(range(len(gens)), [f"{g}\n(n={len(d)})" for g, d in zip(gens, data)])
    else:
        ax.text(0.5, 0.5, "no complete cell cycle\n(born and divided inside the movie)", ha="center",
                va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xlabel("generation in the movie")
    ax.set_ylabel(f"cell-cycle duration ({unit})")
    ax.set_title("Birth to division, per generation", fontsize=10, y=_TITLE_Y)

    def hist(ax, values, xlabel, title, empty):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=min(30, max(5, int(np.sqrt(v.size)) + 1)), color="0.45")
            ax.axvline(np.median(v), color="tab:red", lw=1)
            title += f" (median {np.median(v):.3g})"
        else:
            ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        ax.set_title(title, fontsize=10, y=_TITLE_Y)

    tunit = "frame" if unit == "frames" else unit
    hist(axes[0, 1], tr["division_frame"].to_numpy(float) * f if len(tr) else [],
         f"division time ({tunit} from the start)", "Division times", "no division")
    hist(axes[0, 2], stats.sisters["delta_frames"].to_numpy(float) * f if len(stats.sisters) else [],
         f"|difference of sisters' division times| ({unit})", "Sister synchrony", "no pair of sisters\nthat both divide")
    ax = axes[1, 0]
    if len(tr):
        bins = np.histogram_bin_edges(tr["length_frames"].to_numpy(float) * f, bins=20)
        for fate, colour in zip(FATES, ("tab:orange", "tab:red", "tab:green", "0.6")):
            sel = tr.loc[tr["fate"] == fate, "length_frames"].to_numpy(float) * f
            if sel.size:
                ax.hist(sel, bins=bins, alpha=0.6, color=colour, label=f"{fate} ({sel.size})")
        handles, labels = ax.get_legend_handles_labels()  # in the empty sixth panel
        axes[1, 2].legend(handles, [f"track length: {lab}" for lab in labels], fontsize=8, frameon=False,
                          loc="upper left")
    ax.set_xlabel(f"track length ({unit})")
    ax.set_ylabel("tracks")
    ax.set_title("Track lengths by fate", fontsize=10, y=_TITLE_Y)
    ax = axes[1, 1]
    counts = [stats.summary.get("fates", {}).get(x, 0) for x in FATES]
    ax.bar(range(len(FATES)), counts, color=("tab:orange", "tab:red", "tab:green", "0.6"))
    ax.set_xticks(range(len(FATES)), FATES, fontsize=8)
    for i, c in enumerate(counts):
        ax.text(i, c, str(c), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("tracks")
    ax.set_title("Fates", fontsize=10, y=_TITLE_Y)
    axes[1, 2].axis("off")
    return fig


def plot_measurements(table: pd.DataFrame, columns: Sequence[str]) -> Figure:
    """Histograms of per-nucleus measurements (one panel per column).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per nucleus and frame.
    columns : sequence of str
        Numeric columns to draw (names carry their unit, e.g. ``area_um2``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(1, len(columns))
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = Figure(figsize=(3.6 * ncol, 2.6 * nrow))
    axes = np.atleast_1d(fig.subplots(nrow, ncol)).ravel()
    _margins(fig, 0.65, 0.15, 0.15, 0.55, wspace=0.4 * ncol / max(ncol, 1), hspace=0.5)
    for ax, col in zip(axes, columns):
        v = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size:
            ax.hist(v, bins=30, color="0.45")
        ax.set_xlabel(col)
        ax.set_ylabel("nuclei")
    for ax in axes[len(columns):]:
        ax.axis("off")
    return fig
