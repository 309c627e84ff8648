"""The typer app and the error handling shared by every verb."""

from __future__ import annotations

import importlib
import sys
import warnings

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
_VERB_MODULES = ("model", "trace", "photons", "zeeman", "place")


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _STATE["debug"] = debug


class UserError(Exception):
    """An expected failure: printed as one line, exit status 2."""


#: Exit status of a verb whose fit did not converge (its numbers are printed, marked, but are no
#: result). Expected errors exit with 2.
EXIT_NOT_CONVERGED = 3


def exit_not_converged(file: object, what: str, message: str = "") -> None:
    """End a verb whose fit did not converge: one `qdsim: error:` line, exit status 3."""
    why = f" ({message})" if message else ""
    typer.echo(
        f"qdsim: error: {file}: the {what} fit did not converge{why}; the numbers above are "
        "its last iterate, not a result",
        err=True,
    )
    raise typer.Exit(EXIT_NOT_CONVERGED)


def _load_verbs() -> None:
    for name in _VERB_MODULES:
        try:
            importlib.import_module(f"qdsim.cli.{name}")
        except ModuleNotFoundError as exc:  # a verb module not written yet
            if exc.name != f"qdsim.cli.{name}":
                raise


def _click_exception_types() -> tuple[tuple[type, ...], tuple[type, ...]]:
    """`(ClickException classes, Abort classes)` of the click the installed typer runs on.

    typer >= 0.2x vendors click as `typer._click` (and no longer installs click); older typer
    uses the real `click`. Both are looked up here, neither is imported unless typer itself
    already did, so this works with whatever typer pip resolves.
    """
    shown: list[type] = []
    aborts: list[type] = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        mod = sys.modules.get(name)
        if mod is None:
            continue
        if isinstance(getattr(mod, "ClickException", None), type):
            shown.append(mod.ClickException)
        if isinstance(getattr(mod, "Abort", None), type):
            aborts.append(mod.Abort)
    typer_abort = getattr(getattr(typer, "exceptions", None), "Abort", None)
    if isinstance(typer_abort, type):
        aborts.append(typer_abort)
    return tuple(shown), tuple(aborts)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings (a fit that did not converge, records skipped) as one stderr line."""
    typer.echo(f"qdsim: warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `qdsim` console script.

    Usage errors (unknown option or verb, a missing or malformed argument) print click's usage
    line and message and exit with status 2; expected errors (bad input, unreadable or damaged
    files) print one line `qdsim: error: ...` and exit with status 2 (`--debug`: the traceback).
    """
    _load_verbs()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # qdsim's own warnings (records left unread, a fit that did not converge) are shown, once
        warnings.filterwarnings("default", category=UserWarning, module=r"qdsim(\.|$)")
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
        except Exception as exc:  # click usage errors (no such option, bad value) and the like
            shown, aborts = _click_exception_types()
            if shown and isinstance(exc, shown):
                exc.show()
                sys.exit(getattr(exc, "exit_code", 2))
            if aborts and isinstance(exc, aborts):
                typer.echo("Aborted!", err=True)
                sys.exit(1)
            raise
