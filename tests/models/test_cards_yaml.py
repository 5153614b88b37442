"""``dynacell.cards.read_yaml_mapping``: the one reader of model cards and training configurations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dynacell.cards import read_yaml_mapping
from dynacell.errors import FormatError

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(ROOT.glob("src/dynacell/*/pretrained/*/model.yaml")) + sorted(ROOT.glob("configs/*.yaml"))


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_reader_gives_what_pyyaml_safe_load_gives(path: Path) -> None:
    """The reader may use libyaml's C loader for speed; every shipped card and config reads the same."""
    assert read_yaml_mapping(path, "document") == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_reader_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(FormatError, match="model.yaml: not valid YAML"):
        read_yaml_mapping(bad, "model card")
    bad.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(FormatError, match="expected a mapping of model card fields, got list"):
        read_yaml_mapping(bad, "model card")
    with pytest.raises(FormatError, match="model card not found"):
        read_yaml_mapping(tmp_path / "missing.yaml", "model card")
