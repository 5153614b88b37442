"""The model card records the nucleus-size rule of its training sets (``fit._scale_card``)."""

from __future__ import annotations

import pytest

from dynacell.errors import InvalidInputError
from dynacell.train.fit import _scale_card


def _info(name, diameter, target=12.0):
    scale = None if target is None else {"method": "nucleus-size", "target_diameter_px": target, "n_frames": 3,
                                         "nucleus_diameter_px": diameter, "pixels_per_crop_px": diameter / target}
    return {"path": f"/tmp/{name}.npz", "dataset": name, "scale_normalization": scale}


def test_scale_card_records_rule_and_movies():
    card = _scale_card([_info("a", 36.0), _info("b", 24.0)])
    assert card["target_diameter_px"] == 12.0 and card["n_frames"] == 3
    assert card["training_movies"]["a"]["pixels_per_crop_px"] == pytest.approx(3.0)
    assert card["training_movies"]["b"]["nucleus_diameter_px"] == pytest.approx(24.0)
    assert _scale_card([_info("a", 1.0, target=None)]) is None


def test_scale_card_refuses_mixed_sets():
    with pytest.raises(InvalidInputError, match="target-diameter"):
        _scale_card([_info("a", 36.0), _info("b", 24.0, target=None)])
    with pytest.raises(InvalidInputError, match="target-diameter"):
        _scale_card([_info("a", 36.0), _info("b", 24.0, target=16.0)])
