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


def main() -> None:
    """Entry point of the ``dynacell`` console script."""
    from dynacell.cli.options import merge_multi_value_options

    try:
        rc = app(args=merge_multi_value_options(sys.argv[1:]), prog_name="dynacell", standalone_mode=False)
    except DynacellError as exc:
        print(f"dynacell: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("dynacell: aborted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # usage errors: missing argument, unknown option, bad option value
        import click

        # Typer >= 0.20 vendors click: its usage errors derive from typer.TyperException, not click's.
        if isinstance(exc, (click.exceptions.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    # With standalone_mode=False, click returns the code of a typer.Exit / an interrupt instead of exiting.
    if isinstance(rc, int) and rc != 0:
        if rc == 130:
            print("dynacell: aborted", file=sys.stderr)
        sys.exit(rc)


if __name__ == "__main__":
    main()
