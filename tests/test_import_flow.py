"""The import flow of docs/architecture.md ("Layout and import flow"), read from the source (no import is run).

Every ``import dynacell.X`` / ``from dynacell.X import ...`` of every module, lazy ones inside functions
included, is an edge between two top-level parts of the package. The rules:

- imports flow downward (:data:`RANK`): a part imports only parts of its own rank or below;
- ``io`` and ``lineage`` never import torch or lightning;
- inference never imports training: only ``train`` itself, ``cli`` and the benchmark harnesses import
  ``dynacell.train``;
- ``pipeline.py`` composes: it imports no numpy and holds no function besides ``run`` and ``run_config``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import dynacell

SRC = Path(dynacell.__file__).parent

#: Rank of each top-level part: a part may import parts of the same or a lower rank.
RANK = {
    "__init__": 0, "errors": 0, "progress": 0, "provenance": 0,
    "io": 1, "cards": 1,
    "lineage": 2,
    "samples": 3, "models": 3, "simulate": 3,
    "states": 4, "segment": 4, "track": 4, "motion": 4, "forecast": 4, "diffusion": 4, "viz": 4, "metrics": 4,
    "export": 4,
    "runconfig": 5,
    "train": 6,
    "pipeline": 7, "demo": 7,
    "cli": 8, "napari": 8,
}

#: Known upward imports, each with its reason (file, imported part).
UPWARD_EXCEPTIONS: dict[tuple[str, str], str] = {}

#: Modules outside ``train`` and ``cli`` allowed to import ``dynacell.train``: benchmark harnesses that
#: retrain or read the training splits (run by ``dynacell benchmark``, never by an inference path).
TRAIN_IMPORTERS = {"segment/benchmark.py", "forecast/benchmark.py"}


def _part(rel: Path) -> str:
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _edges() -> list[tuple[str, str, str]]:
    """``(file relative to the package, its part, imported top-level name)`` for every import."""
    edges = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
                if node.module == "dynacell":
                    names = [f"dynacell.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                target = parts[1] if parts[0] == "dynacell" and len(parts) > 1 else parts[0]
                if parts[0] == "dynacell" and target not in RANK:  # ``from dynacell import STATES``
                    target = "__init__"
                edges.append((rel.as_posix(), _part(rel), target if parts[0] == "dynacell" else f"ext:{target}"))
    return edges


EDGES = _edges()


def test_every_part_has_a_rank():
    parts = {_part(f.relative_to(SRC)) for f in SRC.rglob("*.py")}
    assert parts <= set(RANK), sorted(parts - set(RANK))


def test_imports_flow_downward():
    upward = sorted({(f, src, dst) for f, src, dst in EDGES
                     if not dst.startswith("ext:") and RANK[dst] > RANK[src]
                     and (f, dst) not in UPWARD_EXCEPTIONS and f not in TRAIN_IMPORTERS})
    assert not upward, upward


@pytest.mark.parametrize("part", ["io", "lineage"])
def test_io_and_lineage_never_import_torch(part):
    bad = sorted({f for f, src, dst in EDGES if src == part and dst in ("ext:torch", "ext:lightning")})
    assert not bad, bad


def test_inference_never_imports_training():
    bad = sorted({f for f, src, dst in EDGES
                  if dst == "train" and src not in ("train", "cli") and f not in TRAIN_IMPORTERS})
    assert not bad, bad


def test_pipeline_only_composes():
    tree = ast.parse((SRC / "pipeline.py").read_text(encoding="utf-8"))
    functions = sorted(n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    assert functions == ["run", "run_config"]
    assert not [e for e in EDGES if e[0] == "pipeline.py" and e[2] in ("ext:numpy", "ext:scipy")]


def test_the_rules_catch_a_violation(monkeypatch):
    """The checks above are not vacuous: an upward, a torch and a training import are each found."""
    fake = [("io/x.py", "io", "states"), ("lineage/y.py", "lineage", "ext:torch"), ("segment/z.py", "segment", "train")]
    monkeypatch.setattr(sys.modules[__name__], "EDGES", EDGES + fake)
    with pytest.raises(AssertionError, match="io/x.py"):
        test_imports_flow_downward()
    with pytest.raises(AssertionError, match="lineage/y.py"):
        test_io_and_lineage_never_import_torch("lineage")
    with pytest.raises(AssertionError, match="segment/z.py"):
        test_inference_never_imports_training()
