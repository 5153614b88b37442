"""The ``dynacell`` command line (Typer + rich).

Each command group lives in its own module of :mod:`dynacell.cli` with a
``register(app)`` function; heavy imports (torch, dask) happen inside the commands so
that ``dynacell --help`` stays fast. User errors (:class:`~dynacell.errors.DynacellError`)
are printed as one line on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys

import typer

from dynacell.errors import DynacellError

app = typer.Typer(
    name="dynacell",
    help="Deep learning on time-lapse cell microscopy: tracks, lineage and nucleus states.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Modules of dynacell.cli that register commands, in help order.
COMMAND_MODULES = (
    "run",
    "demo",
    "lineage",
    "extract",
    "train",
    "evaluate",
    "tracks",
    "simulate",
    "models",
    "benchmark",
    "forecast",
    "motion",
    "particles",
    "diffusion",
    "segment",
)


def _print_version(value: bool) -> None:
    if value:
        from dynacell import __version__

        typer.echo(f"dynacell {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only log warnings and errors."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print dynacell's version and exit."),
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for _name in COMMAND_MODULES:
    importlib.import_module(f"dynacell.cli.{_name}").register(app)


#: Options naming an output file or folder; their parent is checked before the command starts.
OUTPUT_OPTIONS = ("-o", "--out", "--output", "--geff", "--seed-layout")

#: Exit codes: 2 for bad input (one-line message), 1 for an operating-system error (disk full,
#: permission denied), 128 + signal number after Ctrl-C (130) or ``kill`` (143).
EXIT_USER_ERROR = 2


def _output_paths(argv: list[str]) -> list[tuple[str, str]]:
    """(option, value) pairs of the output options in ``argv`` (``-o X``, ``--out=X``)."""
    found = []
    for i, tok in enumerate(argv):
        if tok == "--":
            break
        name, eq, value = tok.partition("=")
        if name in OUTPUT_OPTIONS:
            if eq:
                found.append((name, value))
            elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                found.append((name, argv[i + 1]))
    return found


def _check_outputs(argv: list[str]) -> None:
    """The output contract's first rule: every output's parent is a writable folder, checked before any work."""
    if any(tok in ("--help", "-h") for tok in argv):
        return
    from dynacell.io.writers import check_output_path

    for option, value in _output_paths(argv):
        check_output_path(value, option=option)


class _Signals:
    """Ctrl-C (SIGINT) and SIGTERM seen during a command: the exit code is 128 + the signal number.

    A library may catch ``KeyboardInterrupt`` and carry on (or return normally); the flag set here
    still makes the process exit non-zero, so ``dynacell run ... && next`` never continues after an
    interrupt.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict = {}

    def install(self) -> None:
        """Route SIGINT and SIGTERM to ``KeyboardInterrupt``, remembering which signal came."""
        import signal

        def on_signal(signum, frame):
            if self.received is None:
                self.received = signum
            raise KeyboardInterrupt

        for name in ("SIGINT", "SIGTERM"):
            sig = getattr(signal, name, None)
            if sig is not None:
                try:
                    self._previous[sig] = signal.signal(sig, on_signal)
                except ValueError:  # not the main thread (e.g. called from a test runner thread)
                    pass

    def restore(self) -> None:
        """Put back the handlers found by :meth:`install` (``main()`` may be called inside another program)."""
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


def _interrupted(signals: _Signals) -> None:
    signum = signals.received or 2
    what = "terminated" if signum == 15 else "interrupted (Ctrl-C)"
    from dynacell.io.writers import committed_outputs

    done = committed_outputs()
    if done:  # the signal came after the result was moved into place: say so, do not claim nothing was written
        names = ", ".join(str(p) for p in done)
        print(f"dynacell: {what} after the output was complete; kept whole: {names}", file=sys.stderr)
    else:
        print(f"dynacell: {what}; temporary files removed, no output written", file=sys.stderr)
    sys.exit(128 + signum)


def main() -> None:
    """Entry point of the ``dynacell`` console script.

    Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 1 an
    operating-system error such as a full disk (one line); 130 after Ctrl-C and 143 after SIGTERM
    (temporary outputs removed). The code always reflects the outcome, also when a library
    swallowed the interrupt.
    """
    signals = _Signals()
    signals.install()
    try:
        _main(signals)
    except SystemExit as exc:
        if signals.received is None:
            if _is_process_entry():
                _exit_now(exc.code)
            raise
        # After Ctrl-C / SIGTERM the temporary outputs are already removed: leave at once with 128 + signal,
        # so that a worker thread still inside a library (the crop prefetch, a dask pool) cannot turn the
        # status into a death by signal at interpreter shutdown (seen as -2 about once in 10 runs).
        import logging
        import os

        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exc.code if isinstance(exc.code, int) else 128 + signals.received)
    finally:
        signals.restore()
    if _is_process_entry():
        _exit_now(0)


def _is_process_entry() -> bool:
    """Whether :func:`main` is the whole process: ``python -m dynacell.cli.main`` or the ``dynacell`` console
    script (not a caller's script, ``python -c``, or a test calling :func:`main`)."""
    from pathlib import Path

    top = sys.modules.get("__main__")
    if getattr(getattr(top, "__spec__", None), "name", None) == "dynacell.cli.main":
        return True
    return getattr(top, "main", None) is main and Path(getattr(top, "__file__", None) or "").name == "dynacell"


def _exit_now(code) -> None:
    """End the process with ``code`` (as ``SystemExit(code)`` would) after the normal exit work — atexit handlers,
    logging shut down, streams flushed — but without the interpreter's teardown of every loaded module, which
    costs 0.7–0.9 CPU-s once torch, pandas and matplotlib are loaded (``dynacell run`` on GOWT1 01: 13.9 CPU-s,
    of which ~1 after ``main`` returned)."""
    import atexit
    import os

    if code is None:
        rc = 0
    elif isinstance(code, int):
        rc = code
    else:  # SystemExit("message"): printed, status 1
        print(code, file=sys.stderr)
        rc = 1
    try:
        atexit._run_exitfuncs()  # temporary folders' finalizers, logging.shutdown, open files
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def _main(signals: _Signals) -> None:
    from dynacell.cli.options import merge_multi_value_options

    from dynacell.io.writers import clear_committed_outputs

    clear_committed_outputs()
    argv = merge_multi_value_options(sys.argv[1:])
    try:
        _check_outputs(argv)
        rc = app(args=argv, prog_name="dynacell", standalone_mode=False)
    except DynacellError as exc:
        if signals.received is not None:
            _interrupted(signals)
        print(f"dynacell: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except (typer.Abort, KeyboardInterrupt):
        _interrupted(signals)
    except SystemExit:
        if signals.received is not None:
            _interrupted(signals)
        raise
    except MemoryError:
        print("dynacell: error: out of memory; the input is larger than this machine can hold (see the limits in "
              "docs/output-contract.md)", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:  # disk full, permission denied, file vanished: one line, no traceback
        if signals.received is not None:
            _interrupted(signals)
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        print(f"dynacell: error: {where}{exc.strerror or exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # usage errors: missing argument, unknown option, bad option value
        import click

        if signals.received is not None:
            _interrupted(signals)
        # Typer >= 0.20 vendors click: its usage errors derive from typer.TyperException, not click's.
        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    if signals.received is not None:
        _interrupted(signals)
    # With standalone_mode=False, click returns the code of a typer.Exit / an interrupt instead of exiting.
    if isinstance(rc, int) and not isinstance(rc, bool) and rc != 0:
        if rc == 130:
            _interrupted(signals)
        sys.exit(rc)


if __name__ == "__main__":
    main()
