"""Tracking: link per-frame nucleus labels into tracks and a lineage (laptrack), CTC track ids.

- :func:`link_labels` — LAP linking with division and gap closing, physical distances.
- :func:`measure_nuclei` — per-frame centroids and sizes (streaming).
- :func:`local_flow` — the median displacement of each nucleus' linked neighbours.
- :func:`assign_ctc_tracks`, :func:`lineage_to_ctc_tracks`, :class:`TrackRelabel` — CTC
  track ids, the ``L B E P`` table and masks relabelled by track id.
"""

from dynacell.track.ctc import TrackRelabel, assign_ctc_tracks, lineage_to_ctc_tracks
from dynacell.track.linking import (
    DEFAULT_DISTANCE_FACTOR,
    default_max_distance,
    link_labels,
    local_flow,
    measure_nuclei,
)

__all__ = [
    "DEFAULT_DISTANCE_FACTOR",
    "TrackRelabel",
    "assign_ctc_tracks",
    "default_max_distance",
    "lineage_to_ctc_tracks",
    "link_labels",
    "local_flow",
    "measure_nuclei",
]
