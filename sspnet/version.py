"""`--version` for both command lines: one place that says which build a bug report came from."""
from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

import typer


def version_line(program: str) -> str:
    """"<program> <version> (torch <version>, Python <version>)"."""
    try:
        own = version("sspcodec")  # both packages ship in one distribution
    except PackageNotFoundError:  # a source tree that is not installed
        own = "unknown"
    return f"{program} {own} (torch {version('torch')}, Python {sys.version.split()[0]})"


def add_version_option(app: typer.Typer, program: str) -> None:
    """Give `app` an eager ``--version`` that prints :func:`version_line` and exits."""

    def show(value: bool) -> None:
        if value:
            typer.echo(version_line(program))
            raise typer.Exit()

    @app.callback()
    def _options(
        show_version: bool = typer.Option(
            False, "--version", callback=show, is_eager=True, help="Print the version and exit."),
    ) -> None:
        """Options before the command."""


__all__ = ["add_version_option", "version_line"]
