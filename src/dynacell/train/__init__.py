"""Training of nucleus state classifiers: :class:`TrainConfig`, :func:`fit`.

``dynacell train CONFIG.yaml`` runs :func:`fit` on the config read by :func:`load_config`.
"""

from dynacell.samples.splits import assign_split
from dynacell.train.augment import AugmentConfig, augment_batch, degrade_context
from dynacell.train.config import SplitConfig, TrainConfig, load_config
from dynacell.train.fit import TrainData, fit, load_samples

__all__ = ["AugmentConfig", "SplitConfig", "TrainConfig", "TrainData", "assign_split", "augment_batch", "degrade_context", "fit",
           "load_config", "load_samples"]
