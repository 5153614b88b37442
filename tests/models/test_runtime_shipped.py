"""dynacell.models.runtime.shipped_model_folder: the one name check behind every task's from_pretrained."""

from __future__ import annotations

import pytest

from dynacell.errors import InvalidInputError
from dynacell.models.runtime import shipped_model_folder


def test_a_shipped_name_gives_its_folder(tmp_path):
    (tmp_path / "m1").mkdir()
    (tmp_path / "m1" / "model.yaml").write_text("name: m1\n", encoding="utf-8")
    (tmp_path / "not-a-model").mkdir()  # no card: not shipped
    assert shipped_model_folder("m1", tmp_path, "state") == tmp_path / "m1"
    with pytest.raises(InvalidInputError, match=r"no shipped state model 'not-a-model'; shipped: m1$"):
        shipped_model_folder("not-a-model", tmp_path, "state")


def test_every_task_names_itself_and_its_shipped_models():
    from dynacell.states.registry import StateClassifier, available_models

    with pytest.raises(InvalidInputError, match="no shipped state model 'nope'; shipped: .*nuclei-2d"):
        StateClassifier.from_pretrained("nope")
    assert "nuclei-2d" in available_models()


def test_an_empty_task_folder_says_none(tmp_path):
    with pytest.raises(InvalidInputError, match="shipped: none"):
        shipped_model_folder("x", tmp_path / "absent", "diffusion")
