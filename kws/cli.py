"""The ``kws`` command line: a thin typer layer over the packages.

Heavy libraries (TensorFlow, librosa) are imported inside commands, never here, so
``kws --help`` is instant. Every ``KwsError`` becomes one line on stderr and exit code 1,
both for the console script and under typer's ``CliRunner``.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from data_prep.errors import KwsError
from kws.commands import bench, data, features


class _OneLineErrors(TyperGroup):
    """Root group that reports user errors as one line instead of a traceback."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except KwsError as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            ctx.exit(1)
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            ctx.exit(130)


app = typer.Typer(
    name="kws",
    cls=_OneLineErrors,
    help="Cascaded keyword spotting: audio -> MFCC -> tiny gate + classifier -> int8 firmware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("features")(features.features)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")


def main() -> None:
    app()
