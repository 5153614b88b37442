"""``report.html``: one self-contained HTML page that explains a run to a biologist.

The page is rendered from the jinja2 template ``templates/report.html.j2``; figures and frame
thumbnails are embedded as base64 PNG, so the file can be mailed or archived alone. Sections:
at a glance (counts, duration, pixel size), frames with outlines, states over time, event
timeline, lineage tree, lineage statistics (cell-cycle durations per generation, division
times, sister synchrony, track lengths, fates), per-nucleus measurements when present, the
reconciliation of states with the lineage, the comparison with ground truth (every measure
explained in one line), run parameters and the state model's card as tables, timings.
Times are in hours / minutes when the frame interval is known, else in frames.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from dynacell.lineage.graph import Lineage
from dynacell.viz.plots import (
    figure_to_base64,
    plot_confusion_matrix,
    plot_event_timeline,
    plot_lineage_statistics,
    plot_lineage_tree,
    plot_measurements,
    plot_state_counts,
)

__all__ = ["write_report", "METRIC_HELP", "STATE_HELP"]

#: One line explaining each measure shown in the report (keys as they appear in tables).
METRIC_HELP: dict[str, str] = {
    "TRA": "Tracking accuracy (Cell Tracking Challenge): 1 minus the weighted cost of the edits that turn the "
           "result into the ground truth, divided by the cost of building the ground truth from nothing; 1 = perfect.",
    "DET": "Detection accuracy: the same measure counting only nucleus errors (missed, extra or merged nuclei); "
           "1 = every nucleus found once.",
    "LNK": "Linking accuracy: the same measure counting only link errors between time points; 1 = every link right.",
    "AOGM": "Acyclic Oriented Graph Matching cost: weighted count of the edits (add/delete/split nuclei, "
            "add/delete/relabel links) between result and ground truth; 0 = perfect, lower is better.",
    "division_precision": "Fraction of the divisions found that are real divisions (within the frame tolerance).",
    "division_recall": "Fraction of the real divisions that were found (within the frame tolerance).",
    "division_f1": "Division F1: harmonic mean of division precision and recall; 1 = every division found, none invented.",
    "fp_edges": "Links in the result that are not in the ground truth.",
    "fn_edges": "Ground-truth links missing from the result.",
    "ws_edges": "Links whose division semantics differ (a link to a daughter called a continuation or the reverse).",
    "fp_nodes": "Nuclei in the result that match no ground-truth nucleus.",
    "fn_nodes": "Ground-truth nuclei that no result nucleus matches.",
    "ns_nodes": "Result nuclei that cover several ground-truth nuclei (merges to be split).",
    "gt_divisions": "Divisions in the ground truth (on the scored frames).",
    "pred_divisions": "Divisions in the result (on the scored frames).",
    "tp_divisions": "Divisions found at the right place and time.",
    "fp_divisions": "Divisions in the result that did not happen.",
    "fn_divisions": "Real divisions that were missed.",
    "macro_F1": "Mean over the four states of the F1 score, so that rare states (death, mitotic) weigh as much as "
                "stable; 1 = perfect.",
    "balanced_accuracy": "Mean over the states of the fraction of nuclei of that state called correctly "
                         "(chance level = 1 / number of states).",
    "accuracy": "Fraction of all scored nuclei called correctly (dominated by the most frequent state).",
    "n": "Number of nuclei scored (those with a known ground-truth state).",
    "F1": "F1 of one state: harmonic mean of precision (calls of that state that are right) and recall (nuclei of "
          "that state that were called so).",
    "ece": "Expected calibration error: mean gap between the model's confidence and its actual accuracy; 0 = calibrated.",
    "frame_buffer": "Tolerance in frames when matching a division's time.",
}
METRIC_HELP["macro_f1"] = METRIC_HELP["macro_F1"]

#: What each state means (legend of the report).
STATE_HELP: dict[str, str] = {
    "stable": "an interphase nucleus",
    "mitotic": "a nucleus in the frames just before its division",
    "new_daughter": "a daughter nucleus in the frames just after a division",
    "death": "a nucleus whose track ends before the movie does (death or loss)",
    "unknown": "not scored",
}

_LINEAGE_HELP = {
    "n_tracks": "Tracks: one per cell between its birth (or first frame) and its division (or last frame).",
    "n_divisions": "Divisions seen in the movie.",
    "fates": "How tracks end: divides; ends (before the movie ends: death, leaving the field, or a lost track); "
             "reaches_end (still there at the last frame); continues (a link without division into a merged track).",
    "n_complete_cycles": "Cells both born and dividing inside the movie: only these have a measured cell-cycle duration.",
    "track_length": "Median track length, all tracks (censored by the start and end of the movie).",
    "cycle": "Median cell-cycle duration (birth to division) over complete cycles.",
    "n_sister_pairs_both_divide": "Pairs of sister cells that both divide inside the movie.",
    "sister_delta": "Median difference between the division times of two sisters (0 = perfectly synchronous).",
}

_CORE_STATE_COLUMNS = {"t", "label", "track_id", "parent_track_id", "state", "state_classifier", "z", "y", "x",
                       "tree_id", "generation", "edge_px"}


def _esc(v: Any) -> str:
    return html.escape(str(v))


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (float, np.floating)):
        if not math.isfinite(float(v)):
            return "—"
        return f"{float(v):.4g}"
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list, tuple)) for x in v):
            return ", ".join(_fmt(x) for x in v) if v else "—"
    return str(v)


def _kv_table(rows: Mapping[str, Any], help: Mapping[str, str] | None = None, *, depth: int = 0) -> str:  # noqa: A002
    """A two-column table (nested mappings become nested tables; lists of mappings become tables)."""
    body = []
    show_help = help is not None and any(k in help for k in rows)
    for k, v in rows.items():
        if isinstance(v, Mapping) and v and depth < 4:
            cell = _kv_table(v, help, depth=depth + 1)
        elif isinstance(v, (list, tuple)) and v and all(isinstance(x, Mapping) for x in v):
            cell = _df_table(pd.DataFrame(list(v)))
        elif isinstance(v, pd.DataFrame):
            cell = _df_table(v)
        else:
            text = _fmt(v)
            cls = " class='num'" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else ""
            cell = f"<span{cls}>{_esc(text)}</span>"
        extra = f"<td class='help'>{_esc(help.get(k, ''))}</td>" if show_help else ""
        body.append(f"<tr><th>{_esc(k)}</th><td>{cell}</td>{extra}</tr>")
    return f"<table>{''.join(body)}</table>"


def _df_table(df: pd.DataFrame, help: Mapping[str, str] | None = None) -> str:  # noqa: A002
    """An HTML table of a DataFrame (numbers right-aligned, 4 significant digits); an optional help row."""
    if df is None or df.empty:
        return "<p class='small'>(none)</p>"
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for v in rec:
            num = isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
            cells.append(f"<td{' class=num' if num else ''}>{_esc(_fmt(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _metric_help_for(columns: Sequence[str]) -> str:
    items = []
    for c in columns:
        key = "F1" if str(c).startswith("F1 ") else str(c)
        if key in METRIC_HELP and key not in {i[0] for i in items}:
            items.append((key, METRIC_HELP[key]))
    if not items:
        return ""
    return "<ul class='small'>" + "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in items) + "</ul>"


def _img(fig) -> str:
    return f'<img alt="figure" src="data:image/png;base64,{figure_to_base64(fig)}">'


def _duration_text(frames: float | None, frame_interval_s: float | None) -> str:
    """``"35 frames (17.5 h)"`` or ``"35 frames"``."""
    if frames is None or not math.isfinite(frames):
        return "—"
    txt = f"{frames:.3g} frames"
    if frame_interval_s:
        sec = frames * frame_interval_s
        txt += f" ({sec / 3600:.3g} h)" if sec >= 3 * 3600 else f" ({sec / 60:.3g} min)" if sec >= 120 else f" ({sec:.3g} s)"
    return txt


def _page_title(title: str, parameters: Mapping[str, Any]) -> tuple[str, str]:
    """A real title (what was analysed) and a subtitle (dimensions, frames, sizes)."""
    movie = parameters.get("movie")
    name = None
    if movie:
        p = Path(str(movie))
        generic = {"images", "image", "01", "02", "raw", "movie", "data", "frames"}
        name = p.name if p.name.lower() not in generic or not p.parent.name else f"{p.parent.name}/{p.name}"
    shape = parameters.get("shape") or []
    axes = str(parameters.get("axes") or "")
    dims = "3D+t" if "Z" in axes else "2D+t" if axes else ""
    head = f"Nuclei, lineage and states — {name}" if name else (title or "dynacell run")
    bits = [b for b in (dims, f"{shape[0]} time points" if shape else "",
                        f"{' × '.join(map(str, shape[1:]))} px per frame" if len(shape) > 1 else "") if b]
    return head, ", ".join(bits)


#: Width of the report's frame thumbnails in pixels (wider frames are shown at this width).
_THUMB_WIDTH = 640


def _at_thumbnail_size(image: np.ndarray, labels: np.ndarray, voxel_size_um) -> tuple[np.ndarray, np.ndarray, Any]:
    """A 2D frame and its labels at :data:`_THUMB_WIDTH` px wide (the height in proportion), and the pixel size there.

    The intensities are resampled with a Lanczos filter (as float32); each thumbnail pixel takes the label at the
    nearest source pixel (its centre), so outlines, track ids and the scale bar are drawn at the thumbnail's size.
    """
    from PIL import Image

    image, labels = np.asarray(image), np.asarray(labels)
    h, w = labels.shape
    tw = _THUMB_WIDTH
    th = max(1, int(round(h * tw / w)))
    small = np.asarray(Image.fromarray(image.astype(np.float32, copy=False)).resize((tw, th), Image.Resampling.LANCZOS))
    rows = ((np.arange(th) + 0.5) * h / th).astype(np.int64)
    cols = ((np.arange(tw) + 0.5) * w / tw).astype(np.int64)
    vs = None if voxel_size_um is None else (*voxel_size_um[:-2], voxel_size_um[-2] * h / th, voxel_size_um[-1] * w / tw)
    return small, labels[np.ix_(rows, cols)], vs


def _thumbnails(images, labels, states: pd.DataFrame, frame_interval_s, voxel_size_um, n: int) -> list[dict]:
    from PIL import Image

    from dynacell.viz.overlay import format_time, render_frame

    frames = list(images.frame_indices)
    if not frames or n <= 0:
        return []
    pick = sorted({frames[int(round(i))] for i in np.linspace(0, len(frames) - 1, min(n, len(frames)))})
    # only the picked frames' rows (the same rows, in the same order, as a groupby over every frame)
    by_t = {int(t): states[states["t"] == t] for t in pick} if len(states) else {}
    width = images.frame_shape[-1]
    scale = max(1, int(np.ceil(320 / width)))
    # 2D frames wider than the thumbnail are drawn at its size: the image resampled (Lanczos), the labels taken at
    # the nearest pixel, outlines and text drawn at 640 px (a 1024² GOWT1 frame: ~0.05 CPU-s less a thumbnail than
    # drawing at full size and resampling the drawing). 3D frames are drawn at full size, then resampled.
    direct = len(images.frame_shape) == 2 and width > _THUMB_WIDTH
    out = []
    for t in pick:
        image, lab, vs = images.frame(t), labels.frame(t), voxel_size_um
        if direct:
            image, lab, vs = _at_thumbnail_size(image, lab, voxel_size_um)
        rgb = render_frame(image, lab, by_t.get(int(t), states.iloc[0:0]), t=int(t),
                           scale=scale, frame_interval_s=frame_interval_s, voxel_size_um=vs)
        img = Image.fromarray(rgb)
        if img.width > _THUMB_WIDTH:
            img = img.resize((_THUMB_WIDTH, int(round(img.height * _THUMB_WIDTH / img.width))),
                             Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        # zlib level 3: on a GOWT1 01 thumbnail 0.054 CPU-s and 367 kB against 0.121 s and 392 kB at the default 6
        # (optimize=True tries every filter: 4x the CPU for ~15 % smaller); the pixels are the same
        img.save(buf, format="PNG", compress_level=3)
        n_nuc = int((states["t"] == t).sum()) if len(states) else 0
        out.append({"png": base64.b64encode(buf.getvalue()).decode("ascii"),
                    "caption": f"{format_time(int(t), frame_interval_s)}: {n_nuc} nuclei"})
    return out


def _find_movie_and_masks(params: Mapping[str, Any], folder: Path, vs, images, labels):
    """The run's movie (``parameters["movie"]``) and track masks (``folder/ctc``) when they can be opened."""
    import logging

    from dynacell.errors import DynacellError

    try:
        if images is None and isinstance(params.get("movie"), (str, Path)) and Path(params["movie"]).exists():
            from dynacell.io import open_movie

            images = open_movie(params["movie"], voxel_size_um=vs)
        if labels is None and (folder / "ctc").is_dir():
            from dynacell.io import open_labels

            labels = open_labels(folder / "ctc", voxel_size_um=vs)
        if images is not None and labels is not None and tuple(images.shape) != tuple(labels.shape):
            return None, None
    except (DynacellError, OSError) as exc:
        logging.getLogger(__name__).info("report: no thumbnails (%s)", exc)
        return None, None
    return images, labels


def _measurement_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in _CORE_STATE_COLUMNS and not str(c).startswith("p_")
            and pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c])]


def write_report(
    path: str | Path,
    *,
    states: pd.DataFrame,
    lineage: Lineage,
    parameters: Mapping[str, Any],
    timings_s: Mapping[str, float],
    reconciliation: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    notes: list[str] | None = None,
    title: str = "dynacell run",
    images=None,
    labels=None,
    frame_interval_s: float | None = None,
    voxel_size_um: Sequence[float] | None = None,
    measurements: pd.DataFrame | None = None,
    n_thumbnails: int = 4,
) -> Path:
    """Write a self-contained HTML report of a run.

    Parameters
    ----------
    path : str or Path
        Output ``report.html`` (written to a temporary name, then renamed).
    states : pandas.DataFrame
        ``states.csv`` table: columns ``t, label, track_id, state`` (+ ``p_*``, and
        ``state_classifier``, the state before reconciliation, when present). Other numeric
        columns (e.g. ``area_um2``) are shown as per-nucleus measurements.
    lineage : Lineage
        The lineage used (nodes ``(t, label)``).
    parameters : mapping
        Run parameters (inputs, model, segmenter, voxel size, ...), shown as a table;
        ``model_card`` (a mapping) is shown as its own table. ``movie``, ``axes``, ``shape``,
        ``frame_interval_s`` and ``voxel_size_um`` make the title and the units.
    timings_s : mapping of str to float
        Wall time of each step in seconds.
    reconciliation : mapping, optional
        Summary of the state/lineage reconciliation: ``rule`` (text), ``changes``
        (DataFrame ``from, to, reason, n``).
    evaluation : mapping, optional
        Ground-truth comparison: ``confusion`` (array), ``classes``, ``metrics`` (DataFrame
        with rows before/after reconciliation), ``tracking`` (mapping of tracking measures),
        ``matched`` (text).
    notes : list of str, optional
        Warnings shown at the top (e.g. "labels from the classical segmenter"). A note is
        added when the pixel size or the frame interval is unknown.
    title : str
        Fallback title when ``parameters`` names no movie.
    images, labels : dynacell.io.Movie, optional
        The movie and its labels: thumbnails of a few frames with outlines coloured by state,
        track ids, time stamp and scale bar. Default: the movie named by ``parameters["movie"]``
        and the track masks ``ctc/`` beside ``path``, when both can be opened.
    frame_interval_s : float, optional
        Time between frames in s (default ``parameters["frame_interval_s"]``): times in h/min.
    voxel_size_um : sequence of float, optional
        Pixel size (default ``parameters["voxel_size_um"]``): scale bars.
    measurements : pandas.DataFrame, optional
        Per-nucleus measurements (one row per nucleus and frame; units in column names).
        Default: the extra numeric columns of ``states``.
    n_thumbnails : int
        Number of frames shown as thumbnails.

    Returns
    -------
    Path
        The written report.
    """
    import jinja2

    from dynacell import __version__
    from dynacell.lineage.stats import lineage_statistics
    from dynacell.viz.overlay import STATE_COLORS

    path = Path(path)
    params = dict(parameters)
    dt = frame_interval_s if frame_interval_s is not None else params.get("frame_interval_s")
    dt = float(dt) if dt else None
    vs = voxel_size_um if voxel_size_um is not None else params.get("voxel_size_um")
    vs = tuple(float(v) for v in vs) if vs else None
    head, subtitle = _page_title(title, params)
    notes = list(notes or [])
    if vs is None and not any("pixel size" in n.lower() or "voxel size" in n.lower() for n in notes):
        notes.append("Pixel size unknown: distances are in pixels and the segmenter and linker worked in pixels. "
                     "Give it with --voxel-size-um (one number per axis in µm).")
    if dt is None and not any("frame interval" in n.lower() for n in notes):
        notes.append("Frame interval unknown: times are in frames. Give it with --frame-interval-s.")

    counts = states["state"].value_counts() if len(states) else pd.Series(dtype=int)
    n_frames = int(params["shape"][0]) if params.get("shape") else (int(states["t"].nunique()) if len(states) else 0)
    summary: dict[str, Any] = {
        "time points": n_frames,
        "duration": _duration_text(float(n_frames), dt) if n_frames else "—",
        "frame interval": f"{dt:g} s" if dt else "unknown",
        "pixel size (µm)": " × ".join(f"{v:g}" for v in vs) if vs else "unknown",
        "nuclei (one per cell per time point)": int(len(states)),
        "tracks": int(states["track_id"].nunique()) if len(states) and "track_id" in states else 0,
        "divisions": len(lineage.divisions()),
    }
    raw = states["state_classifier"].value_counts() if "state_classifier" in states else None
    for state in ("stable", "mitotic", "new_daughter", "death", "unknown"):
        if raw is not None:
            summary[f"{state} calls (classifier → after reconciliation)"] = (
                f"{int(raw.get(state, 0))} → {int(counts.get(state, 0))}")
        else:
            summary[f"{state} calls"] = int(counts.get(state, 0))

    stats = lineage_statistics(lineage, dt)
    s = stats.summary
    lin_rows: dict[str, Any] = {
        "tracks": s["n_tracks"], "divisions": s["n_divisions"],
        "fates": ", ".join(f"{k} {v}" for k, v in s["fates"].items()),
        "complete cell cycles": s["n_complete_cycles"],
        "median track length": _duration_text(s["track_length_frames_median"], dt),
        "median cell-cycle duration": _duration_text(s["cycle_frames_median"], dt),
        "sister pairs that both divide": s["n_sister_pairs_both_divide"],
        "median sister difference": _duration_text(s["sister_delta_frames_median"], dt),
    }
    lin_help = dict(zip(lin_rows, [_LINEAGE_HELP[k] for k in (
        "n_tracks", "n_divisions", "fates", "n_complete_cycles", "track_length", "cycle",
        "n_sister_pairs_both_divide", "sister_delta")]))
    gen = stats.generations
    if len(gen):
        keep = ["generation", "n_tracks", "n_divide", "n_complete_cycles"]
        unit_cols = [c for c in gen.columns if c.startswith("cycle_min_")] or \
            [c for c in gen.columns if c.startswith("cycle_frames_")]
        gen = gen[keep + unit_cols]

    meas_cols: list[str] = []
    meas_table = measurements if measurements is not None else states
    if meas_table is not None and len(meas_table):
        meas_cols = _measurement_columns(meas_table)

    node_states = {(int(t), int(lab)): st for t, lab, st in zip(states["t"], states["label"], states["state"])}
    ctx: dict[str, Any] = {
        "title": head, "subtitle": subtitle, "notes": notes, "version": __version__,
        "summary_table": Markup(_kv_table(summary)),
        "state_legend": [(k, "#%02x%02x%02x" % STATE_COLORS[k], v) for k, v in STATE_HELP.items()],
        "fig_counts": Markup(_img(plot_state_counts(states, dt))),
        "fig_timeline": Markup(_img(plot_event_timeline(states, dt))),
        "fig_tree": Markup(_img(plot_lineage_tree(lineage, node_states, frame_interval_s=dt))),
        "lineage_help": ("A track is one cell between its birth (a division, or the first frame) and its "
                         "division (or its last frame). Cells present at the first frame or still there at the "
                         "end were not seen for a whole cycle: they count in the fates and track lengths but "
                         "have no cell-cycle duration. 'Generation' counts divisions seen in this movie."),
        "lineage_summary": Markup(_kv_table(lin_rows, lin_help)),
        "generations": Markup(_df_table(gen)) if len(gen) else None,
        "fig_lineage": Markup(_img(plot_lineage_statistics(stats))),
        "thumbnails": [],
        "thumbnails_help": ("Outlines coloured by state, track id beside each nucleus, scale bar in µm when "
                            "the pixel size is known. 3D movies: maximum projection, each nucleus outlined at "
                            "its own z-slice."),
        "toc": [("summary", "At a glance"), ("states", "States"), ("lineage", "Lineage"),
                ("lineage-stats", "Lineage statistics")],
    }
    if (images is None or labels is None) and n_thumbnails > 0:
        images, labels = _find_movie_and_masks(params, path.parent, vs, images, labels)
    if images is not None and labels is not None:
        ctx["thumbnails"] = _thumbnails(images, labels, states, dt, vs, n_thumbnails)
        ctx["toc"].insert(1, ("frames", "Frames"))
    if meas_cols:
        desc = meas_table[meas_cols].describe().T[["count", "mean", "50%", "std", "min", "max"]]
        desc = desc.rename(columns={"50%": "median"}).reset_index().rename(columns={"index": "measure"})
        ctx["measurements"] = Markup(_df_table(desc))
        ctx["fig_measurements"] = Markup(_img(plot_measurements(meas_table, meas_cols[:9])))
        ctx["toc"].append(("measurements", "Measurements"))
    if reconciliation:
        changes = reconciliation.get("changes")
        table = _df_table(changes) if isinstance(changes, pd.DataFrame) and len(changes) else \
            "<p>No state was changed.</p>"
        ctx["reconciliation"] = {"rule": str(reconciliation.get("rule", "")), "table": Markup(table)}
        ctx["toc"].append(("reconciliation", "Reconciliation"))
    if evaluation:
        # every key the template reads, so that a comparison without state measures (no scored nucleus) or
        # without tracking measures still renders
        ev: dict[str, Any] = {"matched": evaluation.get("matched"), "metrics": None, "metrics_help": None,
                              "confusion": None, "tracking": None}
        metrics = evaluation.get("metrics")
        if isinstance(metrics, pd.DataFrame) and len(metrics):
            ev["metrics"] = Markup(_df_table(metrics))
            ev["metrics_help"] = Markup(_metric_help_for(list(metrics.columns)))
        if evaluation.get("confusion") is not None:
            cm = np.asarray(evaluation["confusion"])
            ev["confusion"] = Markup(_img(plot_confusion_matrix(
                cm, list(evaluation["classes"]), "States after reconciliation vs ground truth")))
        if evaluation.get("tracking"):
            ev["tracking"] = Markup(_kv_table(dict(evaluation["tracking"]), METRIC_HELP))
        ctx["evaluation"] = ev
        ctx["toc"].append(("evaluation", "Ground truth"))
    card = params.pop("model_card", None)
    if isinstance(card, str):
        card = None
    ctx["parameters"] = Markup(_kv_table(params))
    ctx["model_card"] = Markup(_kv_table(card)) if card else None
    ctx["timings"] = Markup(_kv_table({k: round(float(v), 2) for k, v in timings_s.items()}))
    ctx["toc"] += [("parameters", "Parameters"), ("timings", "Timings")]

    env = jinja2.Environment(loader=jinja2.PackageLoader("dynacell.viz", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    ctx.setdefault("measurements", None)
    ctx.setdefault("fig_measurements", None)
    ctx.setdefault("reconciliation", None)
    ctx.setdefault("evaluation", None)
    text = env.get_template("report.html.j2").render(**ctx)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
