"""The linker's motion prior is selected through RunConfig / ``dynacell run --motion-prior``."""

from __future__ import annotations

import json

import pytest
from _helpers import FixedClassifier, synthetic_movie

from dynacell.errors import InvalidInputError
from dynacell.pipeline import run


@pytest.mark.slow
def test_motion_prior_reaches_the_linker_and_run_json(tmp_path):
    images, labels = synthetic_movie()
    res = run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "out", progress=False, video=False,
              motion_prior="kalman")
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["config"]["motion_prior"] == "kalman"
    assert info["parameters"]["linking"]["motion_prior"] == "kalman"
    assert res.lineage.graph.graph["linking"]["motion_prior"] == "kalman"
    assert len(res.lineage.divisions()) == 1


def test_unknown_motion_prior_fails_before_writing(tmp_path):
    images, labels = synthetic_movie(T=3)
    with pytest.raises(InvalidInputError, match="unknown motion prior"):
        run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "o", progress=False, motion_prior="teleport")
    assert not (tmp_path / "o").exists()
