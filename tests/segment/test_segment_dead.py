"""Per-nucleus dead evidence from a background/live/dead segmenter (dynacell.segment.dead)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import make_live_dead_model, synthetic_movie

from dynacell.errors import InvalidInputError
from dynacell.io.movie import Movie
from dynacell.segment.dead import (
    dead_evidence,
    load_dead_model,
    nucleus_diameter_from_labels_px,
)


def test_dead_evidence_rates_every_nucleus_of_every_frame(tmp_path):
    images, labels = synthetic_movie(T=3)
    model = make_live_dead_model(tmp_path / "m")
    ev = dead_evidence(images, labels, model)
    assert list(ev.columns) == ["t", "label", "p_dead_seg"]
    expected = sum(len(np.unique(labels.frame(t))) - 1 for t in range(3))
    assert len(ev) == expected and ev["t"].tolist() == sorted(ev["t"].tolist())
    assert ev["p_dead_seg"].between(0, 1).all()
    # a model whose dead logit dominates calls every nucleus dead
    dead = dead_evidence(images, labels, make_live_dead_model(tmp_path / "d", dead_bias=20.0))
    assert (dead["p_dead_seg"] > 0.99).all()


def test_dead_evidence_refuses_models_without_a_dead_class_and_mismatched_frames(tmp_path, tiny_model):
    with pytest.raises(InvalidInputError, match="dead"):
        load_dead_model(tiny_model)
    images, labels = synthetic_movie(T=2)
    small = Movie(np.asarray(labels.data)[:, :32, :32], "TYX")
    with pytest.raises(InvalidInputError, match="differ"):
        dead_evidence(images, small, make_live_dead_model(tmp_path / "m"))


def test_nucleus_diameter_from_labels(make_discs):
    _, lab = make_discs(centres=((20, 20), (60, 60)), radius=10)
    assert nucleus_diameter_from_labels_px(lab) == pytest.approx(20.0, rel=0.05)
    assert nucleus_diameter_from_labels_px(np.stack([lab, lab])) == pytest.approx(20.0, rel=0.05)
    assert np.isnan(nucleus_diameter_from_labels_px(np.zeros((8, 8), int)))


@pytest.mark.slow
def test_simulated_dead_nuclei_are_the_last_frames_of_dying_tracks():
    from dynacell.train.segment import SIM_DEAD_FRAMES, _sim_frames

    frames = _sim_frames(3)
    dead = [(f.t % 100, d) for f in frames for d in f.dead]
    assert dead  # the simulation has deaths, each labelled on up to SIM_DEAD_FRAMES frames
    per_label: dict[int, list[int]] = {}
    for t, d in dead:
        per_label.setdefault(d, []).append(t)
    for d, ts in per_label.items():
        assert len(ts) <= SIM_DEAD_FRAMES and max(ts) - min(ts) < SIM_DEAD_FRAMES
        later = [f for f in frames if f.t % 100 > max(ts)]
        assert all(d not in np.unique(f.labels) for f in later)  # the nucleus is gone after its death


def test_shipped_live_dead_model_card_says_simulation_only():
    seg = load_dead_model("live-dead-sim-2d")
    assert seg.card.classes == ["background", "live", "dead"] and seg.card.ndim == 2
    assert (seg.folder / "weights.pt").stat().st_size < 3 * 2**20
    assert list(seg.card.training_data) == ["sim"] and "SIMULATION ONLY" in seg.card.metrics["test"]["note"]
