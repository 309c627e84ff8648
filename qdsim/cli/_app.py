"""The typer app and the error handling shared by every verb."""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="qdsim",
    help="Buried perovskite quantum dots: forward model sweeps and single-dot analysis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}

# Verb modules; each defines its commands with @app.command on the shared `app`.
_VERB_MODULES = ("model", "trace", "photons", "zeeman")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _STATE["debug"] = debug


class UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


def _load_verbs() -> None:
    for name in _VERB_MODULES:
        try:
            importlib.import_module(f"qdsim.cli.{name}")
        except ModuleNotFoundError as exc:  # a verb module not written yet
            if exc.name != f"qdsim.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `qdsim` console script."""
    _load_verbs()
    try:
        rc = app(args=argv, standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except SystemExit:
        raise
    except (UserError, ValueError, FileNotFoundError, OSError) as exc:
        if _STATE["debug"]:
            raise
        typer.echo(f"qdsim: error: {exc}", err=True)
        sys.exit(2)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
