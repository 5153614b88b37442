"""Simulator of fluorescence time-lapse movies of nuclei with divisions and deaths.

- :func:`render_lineage`: render any :class:`~dynacell.lineage.Lineage` with positions
  (WormGUIDES, BlastoSPIM, CTC, simulated) as a 2D+t or 3D+t movie with exact labels
  and ground-truth states.
- :func:`simulate_embryo`: a stochastic growing embryo (3D) or colony (2D), rendered.
- :class:`ImagingParams`, :class:`AppearanceParams`: the physics, in physical units.
- :func:`simulate_rod_colony`: a growing colony of rod-shaped bacteria imaged by phase contrast
  (:mod:`dynacell.simulate.rods`; :class:`RodColonyParams`, :class:`PhaseContrastParams`).
- :class:`SimulationResult`: images, labels, lineage, parameters; ``save(folder)``.
"""

from dynacell.simulate.embryo import grow_embryo, simulate_embryo
from dynacell.simulate.params import (
    WORMGUIDES_VOXEL_SIZE_UM,
    AppearanceParams,
    ImagingParams,
)
from dynacell.simulate.render import default_rules, ground_truth_states, render_lineage
from dynacell.simulate.result import SimulationResult
from dynacell.simulate.rods import (
    PhaseContrastParams,
    RodColonyParams,
    simulate_rod_colony,
)

__all__ = [
    "WORMGUIDES_VOXEL_SIZE_UM",
    "AppearanceParams",
    "ImagingParams",
    "PhaseContrastParams",
    "RodColonyParams",
    "SimulationResult",
    "default_rules",
    "ground_truth_states",
    "grow_embryo",
    "render_lineage",
    "simulate_embryo",
    "simulate_rod_colony",
]
