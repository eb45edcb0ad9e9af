"""How a failure reaches a person: one line, never a traceback.

:func:`error_text` turns any exception into one line (batch workers and logs use it too);
:func:`one_line_errors` and :class:`OneLineUsageGroup` make every expected failure of a
command, usage errors included, one red ``error:`` line on stderr with exit code 2 (usage) or
1 (runtime). Shared by the ``sspnet`` and ``sspcodec`` command lines.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NoReturn

import click
import typer
from typer.core import TyperGroup

try:  # typer 0.2x vendors its own click: its usage errors are not click's classes
    from typer._click.exceptions import NoArgsIsHelpError as _NoArgsHelp
    from typer._click.exceptions import UsageError as _Usage
except ImportError:  # an older typer on plain click
    from click.exceptions import NoArgsIsHelpError as _NoArgsHelp
    from click.exceptions import UsageError as _Usage


#: Errors the user fixes by changing the command (exit 2) and failures while running (exit 1).
USAGE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, LookupError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
)
RUNTIME_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, MemoryError, ImportError)


def fail(msg: str, code: int = 2) -> NoReturn:
    """Print one red ``error:`` line on stderr and exit with *code* (2 usage, 1 runtime)."""
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def error_text(exc: BaseException) -> str:
    """An exception as one line: whitespace runs (newlines included) collapsed, never empty."""
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + str(exc) if str(exc) else ''}"
    return " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def one_line_errors(
    usage: tuple[type[BaseException], ...] = USAGE_ERRORS,
    runtime: tuple[type[BaseException], ...] = RUNTIME_ERRORS,
) -> Iterator[None]:
    """Turn the expected failures of a command's body into one ``error:`` line and an exit code.

    Click's own exits pass through untouched: ``typer.Exit`` is a RuntimeError, and catching it
    as a failure is what printed "error: 2" after a message. *usage* types exit 2, *runtime*
    types exit 1; anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
        raise
    except usage as exc:
        fail(error_text(exc), 2)
    except runtime as exc:
        fail(error_text(exc), 1)


@contextlib.contextmanager
def _usage_as_one_line() -> Iterator[None]:
    """A usage error (a value that does not parse, a missing argument) as one ``error:`` line
    with exit 2, like every other error, instead of click's usage box; a bare command that
    prints its help is left alone."""
    try:
        yield
    except (_NoArgsHelp, click.exceptions.NoArgsIsHelpError):
        raise
    except (_Usage, click.UsageError) as exc:
        where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        fail(" ".join(exc.format_message().split()) + where, 2)


class OneLineUsageGroup(TyperGroup):
    """The command group of both CLIs: usage errors of the group and its commands in one line."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _usage_as_one_line():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _usage_as_one_line():
            return super().invoke(ctx)


__all__ = ["RUNTIME_ERRORS", "USAGE_ERRORS", "OneLineUsageGroup", "error_text", "fail", "one_line_errors"]
