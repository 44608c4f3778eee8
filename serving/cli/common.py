"""What every ``crmind`` command shares: one way to fail, and one place that turns domain errors into exits."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import click
import typer
from typer.core import TyperGroup

from config.errors import CrmindError


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one red line for a person and exit (no traceback)."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


class CrmindGroup(TyperGroup):
    """The root command group: any ``CrmindError`` raised by any sub-command becomes a clean exit."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the sub-command; a domain error prints its message and exits with its code."""
        try:
            return super().invoke(ctx)
        except CrmindError as exc:
            fail(exc.message, exc.exit_code)


def port_is_free(host: str, port: int) -> None:
    """Exit with a clear line if something already listens on ``host:port`` (before anything starts)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is not busy
        try:
            sock.bind((host, port))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} "
                 f"(is crmind already running? choose another with --port)")
