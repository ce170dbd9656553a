"""``kws bench eval-memory``: peak memory of `kws eval` flat as the test set grows; --workers.

Each size is a separate ``kws eval`` process, so its peak resident set (``ru_maxrss`` from
``os.wait4`` on that child alone) is its own. The larger folders repeat the clips of the 1x
folder under new names (hard links: distinct files to the cache, no extra disk), so every
size does the same work per clip and only the count grows.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.bundle_eval import evaluate_bundle
from cascade.evaluation.model_eval import evaluate
from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import ModelDir
from data_prep.errors import ConfigError
from data_prep.outputs import refuse_existing
from data_prep.speech_commands import load_dataset
from kws.bench.child import measure_kws
from kws.bench.testset import repeated_test_set
from kws.commands.bench import Measurement, Target, app, default_data_dir, print_report, report_dict, write_json
from kws.commands.common import default_bundle, is_bundle

_RSS_TARGET = 1.2  # peak RSS of the largest size / the 1x size must stay under this


def repeat_folder(source: Path, dest: Path, times: int) -> Path:
    """``dest`` holding every WAV of ``source`` ``times`` times (``k<i>_<name>`` hard links,
    copies where links are impossible), in the same per-label folders."""
    import shutil

    for wav in sorted(source.rglob("*.wav")):
        target_dir = dest / wav.parent.relative_to(source)
        target_dir.mkdir(parents=True, exist_ok=True)
        for k in range(times):
            target = target_dir / f"k{k}_{wav.name}"
            try:
                os.link(wav, target)
            except OSError:
                shutil.copy2(wav, target)
    return dest


def run_eval(data: Path, model: Path, workers: int, cache_dir: Path, report: Path) -> tuple[float, int, dict]:
    """One ``kws eval`` child: (wall seconds, peak RSS bytes, its JSON report)."""
    run = measure_kws(["eval", str(data), "--model", str(model), "--workers", str(workers), "--json", str(report),
                       "--force"], env=dict(os.environ, KWS_CACHE_DIR=str(cache_dir)))
    return run.seconds, run.peak_rss_bytes, json.loads(report.read_text())


def timed_eval(data: Path, model: Path, workers: int, cache_dir: Path) -> float:
    """Seconds of one evaluation pass in this process (what `kws eval` runs, minus start-up)."""

    start = time.perf_counter()
    if is_bundle(model):
        evaluate_bundle(Bundle.open(model), data, cache_dir=cache_dir, workers=workers)
    else:
        evaluate(ModelDir.open(model), data, cache_dir=cache_dir, workers=workers)
    return time.perf_counter() - start


@app.command("eval-memory")
def bench_eval_memory(
    model: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Cascade bundle or model dir (default: samples/cascade).")] = None,
    data: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Source of clips (default: the shared dev set, else samples/).")] = None,
    clips: Annotated[int, typer.Option(min=1, help="Clips of the 1x folder (the canonical test set has 4,890).")] = 4890,
    sizes: Annotated[str, typer.Option(help="Multiples of --clips to evaluate, comma-separated.")] = "1,2,4",
    workers: Annotated[str, typer.Option(help="--workers values to time on the largest size (cached pass); the first also runs the memory passes.")] = "1,2",
    json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
    force: Annotated[bool, typer.Option()] = False,
) -> None:
    """Peak RSS of `kws eval` at 1x, 2x, 4x the clips (it must stay flat) and clips/s per --workers."""
    from rich.console import Console
    from rich.table import Table

    try:
        multiples = sorted({int(s) for s in sizes.split(",")})
        worker_counts = [int(w) for w in workers.split(",")]
    except ValueError:
        raise ConfigError(f"--sizes {sizes!r} / --workers {workers!r}: expected comma-separated integers") from None
    if not multiples or multiples[0] < 1 or not worker_counts or min(worker_counts) < 1:
        raise ConfigError("--sizes and --workers need positive integers")
    refuse_existing(json_out, force)
    model = model or default_bundle()
    data = data or default_data_dir()
    minimum = len(load_dataset(data).examples("testing"))
    if clips < minimum:
        raise ConfigError(f"--clips {clips}: use at least {minimum} (the testing split of {data}) so every label is present")
    rows, measurements = [], []
    with tempfile.TemporaryDirectory(prefix="kws-bench-scale-") as tmp:
        root = Path(tmp)
        base = repeated_test_set(data, root / "x1", clips)
        for m in multiples:
            folder = base if m == 1 else repeat_folder(base, root / f"x{m}", m)
            seconds, rss, report = run_eval(folder, model, worker_counts[0], root / f"cache-x{m}", root / f"x{m}.json")
            rows.append({"multiple": m, "clips": report["n"], "peak_rss_bytes": rss, "seconds": seconds})
        largest, cache = rows[-1], root / f"cache-x{multiples[-1]}"
        folder = base if multiples[-1] == 1 else root / f"x{multiples[-1]}"
        timed_eval(folder, model, worker_counts[0], cache)  # untimed: imports, first loads
        for w in worker_counts:  # in this process, cache warm: inference dominates, no start-up
            seconds = timed_eval(folder, model, w, cache)
            measurements.append(Measurement(f"workers_{w}", f"cached pass, --workers {w}", largest["clips"], seconds))

    console = Console()
    table = Table(title=f"kws eval peak memory ({model})")
    for col in ("size", "clips", "peak RSS MiB", f"x {rows[0]['multiple']}x", "cold pass s"):
        table.add_column(col, justify="right")
    for r in rows:
        ratio = r["peak_rss_bytes"] / rows[0]["peak_rss_bytes"]
        table.add_row(f"{r['multiple']}x", str(r["clips"]), f"{r['peak_rss_bytes'] / 2**20:.0f}", f"{ratio:.2f}", f"{r['seconds']:.1f}")
    console.print(table)
    rss_ratio = largest["peak_rss_bytes"] / rows[0]["peak_rss_bytes"]
    targets = [Target("rss_flat", f"peak RSS {multiples[-1]}x / {multiples[0]}x under {_RSS_TARGET} ({_RSS_TARGET} / measured)",
                      _RSS_TARGET / rss_ratio, 1.0)]
    notes = [f"throughput: one in-process pass per --workers value on {largest['clips']} clips, cache warm",
             f"peak RSS ratio {multiples[-1]}x/{multiples[0]}x: {rss_ratio:.3f}"]
    print_report(f"kws eval throughput by --workers ({largest['clips']} clips)", measurements, targets, notes)
    if json_out is not None:
        write_json(json_out, report_dict("eval-memory", measurements, targets, model=str(model), sizes=rows,
                                         rss_ratio=rss_ratio), force)
