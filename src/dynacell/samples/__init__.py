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

from dynacell.samples.build import build_sample_set
from dynacell.samples.crops import (
    NORMALIZATION,
    FrameCrops,
    crop_window,
    crop_windows,
    crops_for_frame,
    iter_frame_crops,
    normalize_crops,
    nucleus_centroids,
)
from dynacell.samples.relabel import relabel_by_markers, relabel_movie_by_markers
from dynacell.samples.sampleset import META_COLUMNS, SampleSet, concat, export_seed_layout, import_seed_layout
from dynacell.samples.scale import nucleus_diameter_px, scale_crop_kwargs, scale_normalization
from dynacell.samples.splits import group_labels, grouped_split

__all__ = [
    "META_COLUMNS",
    "NORMALIZATION",
    "FrameCrops",
    "SampleSet",
    "build_sample_set",
    "concat",
    "crop_window",
    "crop_windows",
    "crops_for_frame",
    "export_seed_layout",
    "group_labels",
    "grouped_split",
    "import_seed_layout",
    "iter_frame_crops",
    "normalize_crops",
    "nucleus_centroids",
    "nucleus_diameter_px",
    "relabel_by_markers",
    "relabel_movie_by_markers",
    "scale_crop_kwargs",
    "scale_normalization",
]
