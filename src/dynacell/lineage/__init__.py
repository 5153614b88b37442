"""Cell lineages: the :class:`Lineage` graph, builders from every format, event labels.

No torch import here: reading lineages stays fast and light.
"""

from dynacell.lineage.graph import Lineage, Node

__all__ = ["Lineage", "Node"]
