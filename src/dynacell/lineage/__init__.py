"""Cell lineages: the :class:`Lineage` graph, builders from every format, event labels.

No torch import here: reading lineages stays fast and light.
"""

from dynacell.lineage.checks import LabelCheck, check_against_labels
from dynacell.lineage.events import EVENT_STATES, EventRules, count_states, label_events
from dynacell.lineage.formats import FORMATS, detect_format, read_geff, read_lineage, to_networkx, write_geff
from dynacell.lineage.graph import Lineage, Node
from dynacell.lineage.summary import first_frames, summarize

__all__ = [
    "Lineage",
    "Node",
    "read_lineage",
    "detect_format",
    "FORMATS",
    "write_geff",
    "read_geff",
    "to_networkx",
    "EventRules",
    "label_events",
    "count_states",
    "EVENT_STATES",
    "check_against_labels",
    "LabelCheck",
    "summarize",
    "first_frames",
]
