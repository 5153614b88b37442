"""``classify_movie`` feeds crops to the model as they are cut, in the same forward passes as before.

The reference is the earlier path: every frame's crops of a group concatenated, then
:func:`dynacell.states.classify.predict_batched` (blocks of ``batch_size``, passes of
``max_forward_crops``). A model that records its passes checks the composition; the probabilities
must be identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import synthetic_movie

from dynacell.samples.crops import iter_frame_crops
from dynacell.states.classify import (
    classify_movie,
    crop_kwargs_for_movie,
    crop_parameters,
    predict_batched,
)


class _PassRecorder:
    """A state model whose probabilities depend on each crop only (and on nothing of its batch)."""

    classes = ("stable", "mitotic", "new_daughter")

    def __init__(self, ndim: int, max_forward_crops: int, size: int = 12):
        self.ndim = ndim
        self.crop_size = (size,) * ndim
        self.card = {"name": "recorder", "ndim": ndim}
        self.max_forward_crops = max_forward_crops
        self.passes: list[int] = []
        rng = np.random.default_rng(1)
        self._w = None
        self._rng = rng

    def predict_proba(self, x, batch_size=256):
        x = np.asarray(x, dtype=np.float32)
        step = min(int(batch_size), self.max_forward_crops)
        out = []
        for i in range(0, len(x), step):
            xb = x[i:i + step]
            self.passes.append(len(xb))
            flat = xb.reshape(len(xb), -1).astype(np.float64)
            if self._w is None:
                self._w = self._rng.normal(size=(flat.shape[1], len(self.classes)))
            z = flat @ self._w / flat.shape[1] ** 0.5
            e = np.exp(z - z.max(axis=1, keepdims=True))
            out.append((e / e.sum(axis=1, keepdims=True)).astype(np.float32))
        return np.concatenate(out)


@pytest.mark.parametrize(("ndim", "batch_size", "max_forward"), [(2, 5, 3), (2, 4, 7), (3, 3, 2), (2, 6, 300)])
def test_streamed_passes_equal_concatenated_reference(ndim, batch_size, max_forward):
    images, labels = synthetic_movie(T=7, size=48, seed=3, ndim=ndim)
    model = _PassRecorder(ndim, max_forward)
    got = classify_movie(images, labels, model, batch_size=batch_size, progress=False)
    streamed = list(model.passes)

    # reference: groups of frames until >= batch_size crops, each concatenated, then predict_batched
    model.passes.clear()
    crop = crop_parameters(model, ndim)
    crop.update({k: v for k, v in crop_kwargs_for_movie(crop, images, labels).items() if k != "scale_normalization"})
    frames = [fc for fc in iter_frame_crops(images, labels, list(labels.frame_indices), size=crop["size"],
                                            voxel_size_um=crop["voxel_size_um"], target_voxel_um=crop["target_voxel_um"],
                                            progress=False, context=False)]
    proba, group = [], []
    for fc in frames:
        group.append(fc.x)
        if sum(len(g) for g in group) >= batch_size:
            proba.append(predict_batched(model, np.concatenate(group), batch_size))
            group = []
    if group:
        proba.append(predict_batched(model, np.concatenate(group), batch_size))
    ref = np.concatenate(proba)
    assert streamed == model.passes  # the same forward passes, in the same order
    order = np.lexsort((np.concatenate([fc.label_ids for fc in frames]),
                        np.repeat([fc.t for fc in frames], [len(fc.label_ids) for fc in frames])))
    np.testing.assert_array_equal(got[["p_stable", "p_mitotic", "p_new_daughter"]].to_numpy(), ref[order])
    assert len(got) == len(ref) > batch_size
