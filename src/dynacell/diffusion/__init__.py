"""Diffusion coefficient of single molecules from raw image stacks (motion blur + motion).

- :class:`DiffusionPredictor` (``from_pretrained("diffusion-2d")``, ``from_folder``): a trained
  network reads D and its uncertainty from stacks, with test-time averaging over the 8 dihedral
  transforms, and refuses or warns outside its training ranges (:class:`DiffusionCard`).
- :func:`trajectory_estimates`: the trajectory estimators on the same stacks (Gaussian-fit
  localisation, then the seed's MSD slope, CVE and optimal MSD fit of :mod:`dynacell.motion`).
- :func:`localise_stacks`: per-frame Gaussian fits.
"""

from dynacell.diffusion.baselines import TRAJECTORY_METHODS, trajectory_estimates
from dynacell.diffusion.card import DiffusionCard
from dynacell.diffusion.localise import localise_stacks
from dynacell.diffusion.predict import PRETRAINED, DiffusionPredictor

__all__ = [
           "PRETRAINED",
           "TRAJECTORY_METHODS",
           "DiffusionCard",
           "DiffusionPredictor",
           "localise_stacks",
           "trajectory_estimates",
]
