"""The one place where expected errors become exit codes, so every command means the same by them.

- exit 1: the input data is invalid (annotation files, predictions, texts): every problem is listed,
  one line each, naming the file and line or span.
- exit 2: the command cannot run as asked: a bad option or config value, a missing file or model
  folder; one `error:` line.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, TypeVar

import typer

from arner.core.corpus import AnnotationError

EXIT_DATA = 1
EXIT_USAGE = 2

F = TypeVar("F", bound=Callable)


def fail(error: AnnotationError) -> NoReturn:
    """List every problem of invalid input data, then exit 1."""
    for problem in error.problems:
        typer.echo(str(problem), err=True)
    raise typer.Exit(EXIT_DATA)


def usage(message: str) -> NoReturn:
    """One `error:` line, then exit 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


def handle_errors(command: F) -> F:
    """Run a command, turning the errors it expects into one clean message and its exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AnnotationError as e:
            fail(e)
        except (ValueError, OSError) as e:  # ConfigError, ModelLoadError, a bad option value, a missing file
            usage(str(e))

    return run  # type: ignore[return-value]
