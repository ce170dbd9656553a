"""``kws bench detect-memory``: peak RSS of `kws detect` on a short and a long recording.

`kws detect` reads a recording block by block and keeps no per-step trace, so its memory must
not grow with the recording's length (target: the longest within 10 % of the shortest).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.runtime.bundle import Bundle
from data_prep.errors import ConfigError
from data_prep.outputs import refuse_existing
from kws.bench.detect_memory import keyword_clips, measure_detect, write_long_wav
from kws.commands.bench import Target, app, default_data_dir, print_report, report_dict, write_json
from kws.commands.common import default_bundle

_RSS_TARGET = 1.10  # peak RSS of the longest recording / the shortest must stay under this


@app.command("detect-memory")
def bench_detect_memory(
    model: Annotated[Optional[Path], typer.Option(help="Cascade bundle (default: samples/cascade).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Keyword clips spoken into the recordings (default: the shared dev set, else samples/).")] = None,
    minutes: Annotated[str, typer.Option(help="Recording lengths in minutes, comma-separated.")] = "10,120",
    json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
    force: Annotated[bool, typer.Option()] = False,
) -> None:
    """Write generated 16 kHz recordings (noise + keywords), run `kws detect` on each in its own
    process, print each peak RSS and the ratio longest / shortest."""
    from rich.console import Console
    from rich.table import Table

    try:
        lengths = sorted({float(m) for m in minutes.split(",")})
    except ValueError:
        raise ConfigError(f"--minutes {minutes!r}: expected comma-separated numbers") from None
    if len(lengths) < 2 or lengths[0] <= 0 or lengths[-1] > 24 * 60:
        raise ConfigError(f"--minutes {minutes!r}: give at least two lengths in (0, 1440]")
    refuse_existing(json_out, force)
    model = model or default_bundle()
    bundle = Bundle.open(model)
    clips = keyword_clips(data or default_data_dir(), bundle.labels, bundle.config)
    runs = []
    with tempfile.TemporaryDirectory(prefix="kws-bench-detect-") as tmp:
        for m in lengths:
            wav = write_long_wav(Path(tmp) / f"{m:g}min.wav", m * 60, clips, bundle.config.sample_rate)
            runs.append(measure_detect(wav, model, m * 60))
            wav.unlink()

    table = Table(title=f"kws detect peak memory ({model})")
    for col in ("recording", "peak RSS MiB", f"x {lengths[0]:g} min", "wall s"):
        table.add_column(col, justify="right")
    for m, r in zip(lengths, runs):
        table.add_row(f"{m:g} min", f"{r.peak_rss_bytes / 2**20:.1f}",
                      f"{r.peak_rss_bytes / runs[0].peak_rss_bytes:.3f}", f"{r.wall_seconds:.1f}")
    Console().print(table)
    ratio = runs[-1].peak_rss_bytes / runs[0].peak_rss_bytes
    targets = [Target("rss_flat", f"peak RSS {lengths[-1]:g} / {lengths[0]:g} min under {_RSS_TARGET} "
                      f"({_RSS_TARGET} / measured)", _RSS_TARGET / ratio, 1.0)]
    print_report("kws detect on long recordings", [], targets, [f"peak RSS ratio {lengths[-1]:g}/{lengths[0]:g} min: {ratio:.3f}"])
    if json_out is not None:
        rows = [{"minutes": m, "peak_rss_bytes": r.peak_rss_bytes, "wall_seconds": r.wall_seconds} for m, r in zip(lengths, runs)]
        write_json(json_out, report_dict("detect-memory", [], targets, model=str(model), sizes=rows, rss_ratio=ratio), force)
