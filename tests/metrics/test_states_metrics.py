"""Tests of dynacell.metrics.classification."""

from __future__ import annotations

import numpy as np
import pytest

from dynacell.errors import InvalidInputError
from dynacell.metrics.classification import (
    classification_report,
    expected_calibration_error,
    false_event_rate,
    fit_temperature,
)

CLASSES = ["stable", "mitotic", "new_daughter"]


def test_report_of_perfect_and_swapped_predictions() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    rep = classification_report(y, y, classes=CLASSES)
    assert rep["macro_f1"] == 1.0 and rep["balanced_accuracy"] == 1.0 and rep["n"] == 6
    assert np.trace(np.array(rep["confusion"])) == 6
    wrong = np.array([0, 0, 0, 2, 2, 1])
    rep = classification_report(y, wrong, classes=CLASSES)
    assert rep["per_class"]["mitotic"]["recall"] == 0.0
    assert rep["per_class"]["stable"]["f1"] == 1.0
    assert rep["confusion"][1][2] == 2


def test_report_accepts_state_names_and_rejects_unknown() -> None:
    rep = classification_report(["stable", "mitotic"], ["stable", "stable"], classes=CLASSES)
    assert rep["per_class"]["mitotic"]["support"] == 1
    with pytest.raises(InvalidInputError, match="death"):
        classification_report(["death"], ["stable"], classes=CLASSES)
    with pytest.raises(InvalidInputError):
        classification_report([0, 1], None, None)


def test_ece_zero_for_confident_correct_and_high_for_confident_wrong() -> None:
    y = np.array([0, 1, 2, 0])
    onehot = np.eye(3)[y]
    assert expected_calibration_error(onehot, y) == pytest.approx(0.0, abs=1e-6)
    wrong = np.eye(3)[(y + 1) % 3]
    assert expected_calibration_error(wrong, y) > 0.9


def test_temperature_scaling_cools_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    logits = rng.normal(size=(600, 3))
    logits[np.arange(600), y] += 1.0
    hot = logits * 8.0
    t = fit_temperature(hot, y)
    assert t > 2.0
    p_hot = np.exp(hot - hot.max(1, keepdims=True))
    p_hot /= p_hot.sum(1, keepdims=True)
    z = hot / t
    p_cal = np.exp(z - z.max(1, keepdims=True))
    p_cal /= p_cal.sum(1, keepdims=True)
    assert expected_calibration_error(p_cal, y) < expected_calibration_error(p_hot, y)


def test_false_event_rate() -> None:
    out = false_event_rate(["stable"] * 998 + ["mitotic", "death"])
    assert out["mitotic_per_1000"] == pytest.approx(1.0)
    assert out["events_per_1000"] == pytest.approx(2.0)
    assert out["n"] == 1000
