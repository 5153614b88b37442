"""``report.html``: a self-contained HTML page summarising a run (figures embedded as PNG)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dynacell.lineage.graph import Lineage
from dynacell.viz.plots import (
    figure_to_base64,
    plot_confusion_matrix,
    plot_event_timeline,
    plot_lineage_tree,
    plot_state_counts,
)

__all__ = ["write_report"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:.9em}
th{background:#f3f3f3} img{max-width:100%} .note{color:#8a4b00} code{background:#f4f4f4}
"""


def _table(rows: Mapping[str, Any] | pd.DataFrame) -> str:
    if isinstance(rows, pd.DataFrame):
        return rows.to_html(index=False, border=0, float_format=lambda v: f"{v:.4g}")
    body = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    return str(v)


def _img(fig) -> str:
    return f'<img alt="figure" src="data:image/png;base64,{figure_to_base64(fig)}">'


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
) -> Path:
    """Write a self-contained HTML report of a run.

    Parameters
    ----------
    path : str or Path
        Output ``report.html`` (written to a temporary name, then renamed).
    states : pandas.DataFrame
        ``states.csv`` table: columns ``t, label, track_id, state`` (+ ``p_*``, and
        ``state_classifier``, the state before reconciliation, when present).
    lineage : Lineage
        The lineage used (nodes ``(t, label)``).
    parameters : mapping
        Run parameters (inputs, model, segmenter, voxel size, ...), shown as a table.
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
        Warnings shown at the top (e.g. "labels from the classical segmenter").
    title : str
        Page title.

    Returns
    -------
    Path
        The written report.
    """
    path = Path(path)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for note in notes or []:
        parts.append(f"<p class='note'>{html.escape(note)}</p>")
    counts = states["state"].value_counts() if len(states) else pd.Series(dtype=int)
    summary = {
        "frames": int(states["t"].nunique()) if len(states) else 0,
        "nuclei (node count)": int(len(states)),
        "tracks": int(states["track_id"].nunique()) if len(states) else 0,
        "lineage divisions": len(lineage.divisions()),
    }
    raw = states["state_classifier"].value_counts() if "state_classifier" in states else None
    for state in ("stable", "mitotic", "new_daughter", "death", "unknown"):
        if raw is not None:
            summary[f"{state} calls (classifier → after reconciliation)"] = (
                f"{int(raw.get(state, 0))} → {int(counts.get(state, 0))}")
        else:
            summary[f"{state} calls"] = int(counts.get(state, 0))
    parts.append("<h2>Summary</h2>" + _table(summary))
    parts.append("<h2>State counts over time</h2>" + _img(plot_state_counts(states)))
    parts.append("<h2>Event timeline</h2>" + _img(plot_event_timeline(states)))
    node_states = {(int(t), int(lab)): s for t, lab, s in zip(states["t"], states["label"], states["state"])}
    parts.append("<h2>Lineage tree</h2>" + _img(plot_lineage_tree(lineage, node_states)))
    if reconciliation:
        parts.append("<h2>Reconciliation of states with the lineage</h2>")
        parts.append(f"<p>{html.escape(str(reconciliation.get('rule', '')))}</p>")
        changes = reconciliation.get("changes")
        if isinstance(changes, pd.DataFrame) and len(changes):
            parts.append(_table(changes))
        else:
            parts.append("<p>No state was changed.</p>")
    if evaluation:
        parts.append("<h2>Comparison with ground truth</h2>")
        if evaluation.get("matched"):
            parts.append(f"<p>{html.escape(str(evaluation['matched']))}</p>")
        metrics = evaluation.get("metrics")
        if isinstance(metrics, pd.DataFrame) and len(metrics):
            parts.append(_table(metrics))
        if evaluation.get("confusion") is not None:
            cm = np.asarray(evaluation["confusion"])
            parts.append(_img(plot_confusion_matrix(cm, list(evaluation["classes"]),
                                                    "States after reconciliation vs ground truth")))
        if evaluation.get("tracking"):
            parts.append("<h3>Tracking measures</h3>" + _table(dict(evaluation["tracking"])))
    parts.append("<h2>Run parameters</h2>" + _table(dict(parameters)))
    parts.append("<h2>Timings (s)</h2>" + _table({k: float(v) for k, v in timings_s.items()}))
    parts.append("</body></html>")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
