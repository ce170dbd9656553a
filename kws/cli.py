"""The ``kws`` command line: a thin typer layer over the packages.

Heavy libraries (TensorFlow, librosa) are imported inside commands, never here, so
``kws --help`` is instant. Every ``KwsError`` becomes one line on stderr and exit code 1,
both for the console script and under typer's ``CliRunner``; a bad option value (a choice
not offered, an input path that does not exist) one line and exit code 2.
"""

from __future__ import annotations

import os
import re
import warnings

# Quiet TensorFlow's C++ start-up chatter (users can still set their own level).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", message=".*shuffle=True.*")

import typer  # noqa: E402
from typer._click.exceptions import MissingParameter  # noqa: E402  (typer vendors click; not re-exported)
from typer.core import TyperGroup

from data_prep.errors import KwsError
from data_prep.path_errors import missing_path_reason  # noqa: E402
from kws.commands import (
    bench,
    bench_detect,  # noqa: F401  (adds `kws bench detect-memory` to bench.app)
    bench_eval,  # noqa: F401  (adds `kws bench eval` to bench.app)
    bench_live,
    bench_scale,  # noqa: F401  (adds `kws bench eval-memory` to bench.app)
    cascade,
    confusables,
    data,
    demo,
    detect,
    download,
    energy,
    evaluate,
    export,
    features,
    live,
    model_stats,
    negatives,
    optimize,
    report,
    search,
    soup,
    stream,
    synth,
    train,
)

_DOES_NOT_EXIST = re.compile(r"'(?P<path>[^']+)' does not exist\.?$")


def _precise(message: str) -> str:
    """typer's "'PATH' does not exist" for a symlink loop or a broken link says which."""
    match = _DOES_NOT_EXIST.search(message)
    reason = missing_path_reason(match["path"]) if match else None
    return f"{match['path']}: {reason}" if reason and reason != "no such file" else message


class _OneLineErrors(TyperGroup):
    """Root group that reports user errors as one line instead of a traceback.

    Last net: an ``OSError`` that names a file (permission denied, disk full, a path that
    vanished) is about the user's files, not a bug, so it is one line too. Errors without a
    file name keep their traceback, and ``KWS_DEBUG=1`` keeps every traceback."""

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except typer.BadParameter as exc:
            if isinstance(exc, MissingParameter):
                raise  # typer's usage panel: which option is missing and how to call the command
            # A value outside its choices or a path that does not exist: one line, the whole
            # path (typer's panel would wrap it), exit code 2 as for every usage error.
            typer.secho(f"error: {_precise(exc.format_message().replace('Value error, ', ''))}", err=True, fg="red")
            ctx.exit(2)
        except KwsError as exc:
            typer.secho(f"error: {exc}", err=True, fg="red")
            ctx.exit(1)
        except OSError as exc:
            if exc.filename is None or os.environ.get("KWS_DEBUG") == "1":
                raise
            typer.secho(f"error: {exc.filename}: {exc.strerror or exc}", err=True, fg="red")
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
app.command("train")(train.train)
app.command("eval")(evaluate.evaluate)
app.command("detect")(detect.detect)
app.command("energy")(energy.energy)
app.command("demo")(demo.demo)
app.command("model-stats")(model_stats.model_stats)
app.command("export")(export.export)
app.command("report")(report.report)
app.command("live")(live.live)
app.command("optimize")(optimize.optimize)
app.command("soup")(soup.soup)
app.command("search")(search.search)
bench.app.command("live")(bench_live.bench_live)
data.app.command("download")(download.download)
data.app.command("synth")(synth.synth)
data.app.command("negatives")(negatives.negatives)
data.app.command("confusables")(confusables.confusables)
app.add_typer(data.app, name="data")
app.add_typer(bench.app, name="bench")
app.add_typer(cascade.app, name="cascade")
app.add_typer(stream.app, name="stream")


def main() -> None:
    app()
