"""Figures, overlays, videos and the HTML report of a run.

- :mod:`dynacell.viz.overlay`: max projections, outlines coloured by state, ``overlay.mp4``;
- :mod:`dynacell.viz.plots`: state counts, event timeline, lineage tree, confusion matrix;
- :mod:`dynacell.viz.report`: the self-contained ``report.html``.
"""

from dynacell.viz.overlay import STATE_COLORS, max_projection, overlay_frame, write_overlay_video
from dynacell.viz.plots import plot_confusion_matrix, plot_event_timeline, plot_lineage_tree, plot_state_counts
from dynacell.viz.report import write_report

__all__ = [
    "STATE_COLORS",
    "max_projection",
    "overlay_frame",
    "write_overlay_video",
    "plot_confusion_matrix",
    "plot_event_timeline",
    "plot_lineage_tree",
    "plot_state_counts",
    "write_report",
]
