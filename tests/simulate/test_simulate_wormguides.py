"""The real WormGUIDES C. elegans lineage renders end to end at reduced size."""

from __future__ import annotations

import time

import numpy as np
import pytest

from dynacell.simulate import WORMGUIDES_VOXEL_SIZE_UM, ImagingParams, render_lineage


@pytest.fixture(scope="module")
def worm(shared_data):
    from dynacell.lineage import read_lineage

    return read_lineage(shared_data / "lineages" / "wormguides-celegans")


@pytest.mark.data
def test_wormguides_renders_with_a_programmed_death(worm):
    death = worm.explicit_deaths()[0]
    t0 = max(death[0] - 3, 0)
    start = time.perf_counter()
    res = render_lineage(worm, frames=range(t0, death[0] + 2), scale=0.5,
                         imaging=ImagingParams(voxel_size_um=(1.0, 0.5, 0.5)), progress=False)
    assert res.params["lineage_voxel_size_um"] == [WORMGUIDES_VOXEL_SIZE_UM] * 3  # AceTree default
    elapsed = time.perf_counter() - start
    T = death[0] + 2 - t0
    assert res.images.shape[0] == T and res.images.ndim == 4
    for t in range(T):
        assert set(np.unique(res.labels[t]).tolist()) - {0} == res.lineage.labels_at(t), f"frame {t}"
        assert len(res.lineage.nodes_at(t)) == len(worm.nodes_at(t0 + t))
    dead = (death[0] - t0, death[1])
    assert res.lineage.graph.nodes[dead]["state"] == "death"
    assert res.lineage.graph.nodes[dead]["name"] == worm.graph.nodes[death]["name"]
    assert not res.lineage.children(dead)
    # the embryo (~55 µm long) fits in the frame at 1 µm/px along x after scale=0.5
    assert 40 < res.images.shape[-1] < 80
    assert elapsed < 30.0
