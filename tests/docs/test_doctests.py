"""Run the Examples of every public docstring in the package (doctests), module by module.

Modules whose optional dependencies are absent (e.g. the napari plugin without napari) are
skipped with the reason; every other import failure is a test failure.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dynacell

#: Modules that need optional packages, with the package they need.
OPTIONAL = {"dynacell.napari": "napari", "dynacell.export": "bioimageio"}


def _modules() -> list[str]:
    names = [dynacell.__name__]
    for info in pkgutil.walk_packages(dynacell.__path__, prefix="dynacell."):
        names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples(name: str) -> None:
    for prefix, package in OPTIONAL.items():
        if name.startswith(prefix):
            pytest.importorskip(package, reason=f"{name} needs the optional package {package}")
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name) if t.examples]
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} doctest example(s) failed in {name} (run python -m doctest -v)"
