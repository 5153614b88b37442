"""Nucleus state classifiers as plain :class:`torch.nn.Module` s (no I/O, no training code).

Every classifier maps a batch of crops ``(N, C, [Z,] Y, X)`` float32 to logits
``(N, n_classes)``. Build one by name with :func:`build_model`; :data:`MODEL_NAMES` lists
the names. The seed's models (repository dineshchhantyal/3d-cnn-classification)
are the baselines ``4ncnn``, ``3ncnn``, ``cnn-only`` and ``convlstm``; ``dcnet`` is
dynacell's own design (:mod:`dynacell.models.dcnet`).
"""

from dynacell.models.registry import MODEL_NAMES, build_model, count_parameters, model_channels

__all__ = ["MODEL_NAMES", "build_model", "count_parameters", "model_channels"]
