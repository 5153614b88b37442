"""The nucleus-size rule from pixel counts equals scikit-image's ``regionprops`` (the code it replaced)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.measure import regionprops_table

from dynacell.io.movie import Movie
from dynacell.io.scan import frame_objects
from dynacell.samples import nucleus_diameter_px


def _reference(labels: Movie, n_frames: int, voxel_size_um=None):
    """The earlier implementation: ``regionprops_table`` on each of the first labelled frames."""
    diam, used = [], []
    for t in labels.frame_indices:
        lab = np.asarray(labels.frame(int(t)))
        if not lab.any():
            continue
        kw = {} if voxel_size_um is None else {"spacing": tuple(float(v) for v in voxel_size_um)}
        diam.append(regionprops_table(lab.astype(np.int64), properties=("equivalent_diameter_area",),
                                      **kw)["equivalent_diameter_area"])
        used.append(int(t))
        if len(used) >= n_frames:
            break
    d = np.concatenate(diam)
    return float(np.median(d)), used, int(d.size)


@pytest.mark.parametrize("seed", range(6))
def test_diameter_from_counts_equals_regionprops(seed):
    rng = np.random.default_rng(seed)
    ndim = 2 + seed % 2
    shape = (5, 7, 18, 21) if ndim == 3 else (5, 37, 41)
    n_ids = int(rng.integers(3, 80))
    # ids in runs of 5 pixels along X: scattered, but flat as label images are (frame_objects refuses noise)
    labs = np.repeat(rng.integers(0, n_ids, size=(*shape[:-1], -(-shape[-1] // 5))), 5, axis=-1)[..., :shape[-1]]
    labs = labs.astype([np.uint16, np.int32, np.uint8][seed % 3])
    labs[0] = 0  # an empty first frame is skipped
    labs[2][labs[2] == 1] = 0  # an id missing in one frame
    labels = Movie(labs, "TZYX" if ndim == 3 else "TYX", source="labels")
    vs = None if seed < 2 else tuple(rng.uniform(0.1, 3.0, ndim))
    objects = {}
    for t in labels.frame_indices:
        frame_objects(np.asarray(labels.frame(int(t))), int(t), objects)
    ref = _reference(labels, 3, vs)
    assert nucleus_diameter_px(labels, n_frames=3, voxel_size_um=vs) == ref  # exactly, not approximately
    assert nucleus_diameter_px(labels, n_frames=3, voxel_size_um=vs, objects=objects) == ref
    # only some frames measured: the rest are read
    part = {k: v for k, v in objects.items() if k == 1}
    assert nucleus_diameter_px(labels, n_frames=3, voxel_size_um=vs, objects=part) == ref


def test_wrong_counts_change_the_diameter():
    """The objects' sizes are what is measured: a wrong size gives another diameter (the test can fail)."""
    labs = np.zeros((2, 30, 30), np.uint16)
    labs[:, 2:12, 2:12] = 1
    labs[:, 15:20, 15:20] = 2
    labs[:, 22:29, 3:9] = 3
    labels = Movie(labs, "TYX", source="labels")
    objects = {}
    for t in (0, 1):
        frame_objects(labs[t], t, objects)
    ids, cen, sizes, boxes = objects[0]
    objects[0] = (ids, cen, sizes * 4, boxes)
    assert nucleus_diameter_px(labels, n_frames=1, objects=objects)[0] == pytest.approx(
        2 * nucleus_diameter_px(labels, n_frames=1)[0])
