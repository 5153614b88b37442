"""The import flow of docs/architecture.md ("Layout and import flow"), read from the source (no import is run).

Every ``import dynacell.X`` / ``from dynacell.X import ...`` of every module, lazy ones inside functions
included, is an edge between two top-level parts of the package. The rules:

- imports flow downward (:data:`RANK`): a part imports only parts of its own rank or below;
- ``io`` and ``lineage`` never import torch or lightning;
- inference never imports training: only ``train`` itself, ``cli`` and the benchmark harnesses import
  ``dynacell.train``;
- ``pipeline.py`` composes: it imports no numpy and holds no function besides ``run`` and ``run_config``.

The same rules are also checked on what Python really loads (a fresh interpreter imports every
module of ``io`` and ``lineage``, of every inference part, or of the task packages, and reads
``sys.modules``): an import through a third-party package or through ``dynacell/__init__`` counts too;
and importing a task package (or ``pipeline`` / ``demo``) loads no torch — it is imported only inside
the prediction functions.
"""

from __future__ import annotations

import ast
import json
import subprocess
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


#: Parts whose modules need optional packages (skipped where the package is absent).
OPTIONAL_PARTS = {"napari": "napari", "export": "bioimageio"}


def _modules(parts: set[str]) -> list[str]:
    """Dotted names of every module of the given top-level parts (from the source tree, nothing imported)."""
    names = []
    for f in sorted(SRC.rglob("*.py")):
        rel = f.relative_to(SRC)
        if _part(rel) not in parts or rel.as_posix() in TRAIN_IMPORTERS:
            continue
        dotted = ".".join(rel.with_suffix("").parts)
        names.append("dynacell" if dotted == "__init__" else "dynacell." + dotted.removesuffix(".__init__"))
    return names


def _loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has in ``sys.modules`` after importing ``modules``."""
    code = (
        "import importlib, importlib.util, json, sys\n"
        f"optional = {sorted(OPTIONAL_PARTS.items())!r}\n"
        f"for m in {modules!r}:\n"
        "    need = [pkg for part, pkg in optional if m.startswith('dynacell.' + part)]\n"
        "    if need and importlib.util.find_spec(need[0]) is None:\n"
        "        continue\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps([w for w in {list(watched)!r} if w in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_io_and_lineage_load_without_torch():
    modules = _modules({"io", "lineage"})
    assert len(modules) > 10  # the whole of both parts, not an empty list
    assert _loaded_after_import(modules, ("torch", "lightning")) == []


def test_inference_loads_without_training():
    parts = set(RANK) - {"train", "cli"}
    modules = _modules(parts)
    assert "dynacell.pipeline" in modules and "dynacell.segment.predict" in modules
    assert _loaded_after_import(modules, ("dynacell.train", "lightning")) == []


def test_task_packages_load_without_torch():
    """Task packages import torch only inside their prediction functions: importing them loads none."""
    modules = _modules({"states", "segment", "track", "motion", "forecast", "diffusion", "viz", "metrics", "export",
                        "pipeline", "demo"})
    assert "dynacell.states.classify" in modules
    assert _loaded_after_import(modules, ("torch", "lightning")) == []


def test_the_loaded_module_check_sees_an_import():
    """Not vacuous: the check finds torch behind a network module and Lightning behind a training module.

    (It sees what importing a module loads; imports inside functions are the static tests' part.)
    """
    assert _loaded_after_import(["dynacell.models.unet"], ("torch", "lightning")) == ["torch"]
    assert _loaded_after_import(["dynacell.train.forecast"], ("dynacell.train", "lightning")) == [
        "dynacell.train", "lightning"]
