"""The ``dynacell`` process freezes the survivors of each full garbage collection (fewer objects walked by the
next one); library callers and opt-out keep the collector as it is."""

from __future__ import annotations

import gc

import pytest

from dynacell.cli import main as cli_main


@pytest.fixture()
def clean_gc():
    before = list(gc.callbacks)
    yield
    gc.callbacks[:] = before
    gc.unfreeze()


def test_full_collection_freezes_survivors_young_ones_do_not(clean_gc) -> None:
    gc.unfreeze()
    assert cli_main.freeze_after_full_collections() is True
    assert cli_main.freeze_after_full_collections() is True  # a second call installs nothing more
    assert gc.callbacks.count(cli_main._freeze_survivors) == 1
    keep = [[i] for i in range(1000)]  # survivors of the collection
    gc.collect(0)
    gc.collect(1)
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert gc.get_freeze_count() >= len(keep)
    # the frozen survivors are not walked again: a second full collection finds nothing new to freeze from them
    frozen = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() - frozen < len(keep)


def test_environment_opt_out(clean_gc, monkeypatch) -> None:
    monkeypatch.setenv(cli_main.GC_FREEZE_ENV, "0")
    assert cli_main.freeze_after_full_collections() is False
    assert cli_main._freeze_survivors not in gc.callbacks


def test_not_installed_when_main_is_called_from_other_code(clean_gc, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.argv", ["dynacell", "--version"])
    cli_main.main()
    assert capsys.readouterr().out.startswith("dynacell ")
    assert cli_main._freeze_survivors not in gc.callbacks
