"""``dynacell run`` as the whole process imports its libraries first, collects once and freezes the survivors
(:func:`dynacell.cli.run.settle_run_imports`): garbage is freed, not frozen; objects made later are not frozen; the
collector is left as it was; library callers and tests calling ``main()`` are not touched."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest
from _helpers import _ctc_folder, make_tiny_model


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)


def test_settle_frees_the_garbage_and_freezes_only_the_survivors() -> None:
    res = _python("""
        import gc, weakref
        from dynacell.cli.run import settle_run_imports

        class Node: pass
        kept, lost = Node(), Node()
        lost.me = lost                      # a reference cycle nobody holds: garbage
        dead = weakref.ref(lost); del lost
        assert dead() is not None
        n = settle_run_imports(("json", "csv"))
        assert dead() is None, "the garbage was frozen instead of freed"
        assert n == gc.get_freeze_count() > 0
        assert gc.is_tracked(kept) and gc.isenabled()
        later = Node(); later.me = later    # made after the freeze: collected as usual
        gone = weakref.ref(later); del later
        gc.collect()
        assert gone() is None and gc.get_freeze_count() == n
        import csv, json                     # the listed modules were imported
        print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_settle_leaves_a_disabled_collector_disabled_and_imports_fail_loudly() -> None:
    res = _python("""
        import gc
        from dynacell.cli.run import settle_run_imports

        gc.disable()
        settle_run_imports(("json",))
        assert not gc.isenabled()
        gc.enable()
        try:
            settle_run_imports(("json", "no_such_module_xyz"))
        except ModuleNotFoundError:
            assert gc.isenabled()   # the collector is back on after the failed import
            print("ok")
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_default_list_names_modules_that_import() -> None:
    from dynacell.cli.run import RUN_IMPORTS

    res = _python(f"""
        import importlib
        for name in {RUN_IMPORTS!r}:
            importlib.import_module(name)
        print("ok")
    """)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_run_settles_as_the_process_entry_only(tmp_path, monkeypatch, capsys) -> None:
    img, tra = _ctc_folder(tmp_path, T=6, split_at=2)
    model = make_tiny_model(tmp_path / "tiny2d", 2)
    args = ["-q", "run", str(img), "--labels", str(tra), "--model", str(model), "--no-video", "--no-progress"]
    # the whole process (python -m dynacell.cli.main): settled once, before the run, and the outputs are written
    prog = f"""
        import atexit, gc, runpy, sys
        import dynacell.cli.run as r
        import dynacell.pipeline as p
        calls = []
        real_settle, real_run = r.settle_run_imports, p.run_config
        r.settle_run_imports = lambda *a: calls.append("settle") or real_settle(*a)
        p.run_config = lambda *a, **k: calls.append("run") or real_run(*a, **k)
        atexit.register(lambda: print("calls", calls, gc.get_freeze_count() > 0))
        sys.argv = ["dynacell", *{[*args, "-o", str(tmp_path / "a")]!r}]
        runpy.run_module("dynacell.cli.main", run_name="__main__", alter_sys=True)
    """
    res = _python(prog)
    assert res.returncode == 0, res.stderr
    assert "calls ['settle', 'run'] True" in res.stdout
    assert (tmp_path / "a" / "states.csv").is_file()
    # main() called in process (a test, a caller's script): nothing is frozen
    from dynacell.cli import run as run_module
    from dynacell.cli.main import main

    def refuse(*a):
        raise AssertionError("settled outside the process entry")

    monkeypatch.setattr(run_module, "settle_run_imports", refuse)
    monkeypatch.setattr(sys, "argv", ["dynacell", *args, "-o", str(tmp_path / "b")])
    before = gc.get_freeze_count()
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    assert gc.get_freeze_count() == before
    assert (tmp_path / "b" / "states.csv").is_file()
