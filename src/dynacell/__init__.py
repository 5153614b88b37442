"""dynacell: deep learning on time-lapse cell microscopy.

From a movie of nuclei (2D+t or 3D+t) to tracks, a lineage and a state for every
nucleus at every frame (``stable``, ``mitotic``, ``new_daughter``, ``death``).
Subpackages: :mod:`dynacell.io`, :mod:`dynacell.lineage`, :mod:`dynacell.samples`,
:mod:`dynacell.models`, :mod:`dynacell.train`, :mod:`dynacell.states`,
:mod:`dynacell.track`, :mod:`dynacell.simulate`, :mod:`dynacell.metrics`,
:mod:`dynacell.viz` and :mod:`dynacell.pipeline`.
"""

from dynacell.errors import DynacellError, InvalidInputError

__version__ = "0.1.0"
__all__ = ["DynacellError", "InvalidInputError", "__version__"]

#: Nucleus states, in the order used by every classifier output.
STATES: tuple[str, ...] = ("stable", "mitotic", "new_daughter", "death")
