"""Crops, sample sets and grouped splits: the data of the nucleus-state classifier.

* :func:`crop_window` / :func:`crop_windows`: the one crop function ``[t−1, t, t+1, mask]``,
  used by training and inference alike (zero padding, first/last-frame rule, normalisation).
* :func:`crops_for_frame`, :func:`iter_frame_crops`: every nucleus of a frame, streaming.
* :class:`SampleSet` (``save`` / ``load`` / ``concat``), seed-layout import and export.
* :func:`scale_normalization`: per-movie zoom so nuclei have a common size (nucleus-size rule).
* :func:`relabel_movie_by_markers`: full segments take the ids of tracking markers.
* :func:`grouped_split`: train/val/test by lineage tree, sequence or time block.
* :func:`build_sample_set`: movie + labels + lineage → sample set (``dynacell extract``).
"""

from typing import Any

#: Where each public name lives. The submodules are imported on first use (PEP 562), so that
#: ``from dynacell.samples.crops import ...`` (the crops of ``classify_movie``, every ``dynacell run``) does
#: not also import the sample-set, split and build modules (about 30 ms of a run's classify step).
_WHERE: dict[str, str] = {
    "META_COLUMNS": "sampleset",
    "NORMALIZATION": "crops",
    "FrameCrops": "crops",
    "SampleSet": "sampleset",
    "build_sample_set": "build",
    "concat": "sampleset",
    "crop_window": "crops",
    "crop_windows": "crops",
    "crops_for_frame": "crops",
    "export_seed_layout": "sampleset",
    "group_labels": "splits",
    "grouped_split": "splits",
    "import_seed_layout": "sampleset",
    "iter_frame_crops": "crops",
    "normalize_crops": "crops",
    "nucleus_centroids": "crops",
    "nucleus_diameter_px": "scale",
    "relabel_by_markers": "relabel",
    "relabel_movie_by_markers": "relabel",
    "scale_crop_kwargs": "scale",
    "scale_normalization": "scale",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'dynacell.samples' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"dynacell.samples.{where}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
