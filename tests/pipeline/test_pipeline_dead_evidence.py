"""``dynacell run --dead-evidence``: the segmenter's dead class in states.csv, run.json and the decision."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _helpers import FixedClassifier, make_live_dead_model, synthetic_movie

from dynacell.errors import InvalidInputError
from dynacell.pipeline import run


@pytest.mark.slow
def test_dead_evidence_reaches_states_run_json_and_the_changes(tmp_path):
    images, labels = synthetic_movie(T=4)
    model = make_live_dead_model(tmp_path / "dead", dead_bias=20.0)  # every nucleus looks dead
    res = run(images, labels=labels, model=FixedClassifier(proba=(0.9, 0.05, 0.05, 0.0)), out=tmp_path / "out",
              progress=False, video=False, dead_evidence=str(model))
    st = pd.read_csv(tmp_path / "out" / "states.csv")
    assert st["p_dead_seg"].gt(0.99).all()
    info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert info["dead_evidence"]["model"] == "tiny-live-dead" and info["dead_evidence"]["n_rated"] == len(st)
    # the synthetic movie's tracks end at the division or at the movie's end: no end inside the field, so
    # even "dead" everywhere decides no death
    assert set(info["counts"]["track_ends"]) <= {"divides", "movie_end"}
    assert "death" not in set(res.states["state"]) and info["dead_evidence"]["death_calls"] == 0


def test_dead_evidence_with_a_model_without_dead_class_fails_before_writing(tmp_path):
    images, labels = synthetic_movie(T=3)
    with pytest.raises(InvalidInputError, match="dead evidence.*dead"):
        run(images, labels=labels, model=FixedClassifier(), out=tmp_path / "o", progress=False, video=False,
            dead_evidence="nuclei-seg-2d")
    assert not (tmp_path / "o").exists()
