"""The main job on real data from ../shared/data (skipped when absent).

The classifier is an untrained stand-in (see test_cli_run.make_tiny_model): these tests check
that the real inputs go through and that the tracking part of the job is right.
"""

from __future__ import annotations

import json

import pytest
from _helpers import make_tiny_model

from dynacell.pipeline import run


@pytest.mark.data
@pytest.mark.slow
def test_mouse_8cell_eight_full_tracks(shared_data, tmp_path):
    root = shared_data / "embryo3d" / "mouse-8cell"
    model = make_tiny_model(tmp_path / "tiny3d", 3)
    res = run(root / "images", labels=root / "labels", model=model, out=tmp_path / "out", progress=False,
              video=False)
    tracks = res.lineage.tracks()
    assert len(tracks) == 8
    assert (tracks["n_nodes"] == 11).all()
    assert not res.lineage.divisions()
    assert len(res.states) == 88
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    gate = info["parameters"]["linking"]["gate"]
    assert gate["max_distance"] > gate["default"]  # the motion gate is what keeps the 8 tracks whole
