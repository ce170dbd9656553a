"""``kws bench eval``: a full canonical-test-set-sized evaluation pass, cold and cached."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.bundle_eval import evaluate_bundle
from cascade.evaluation.model_eval import evaluate
from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import ModelDir
from data_prep.outputs import refuse_existing
from kws.bench.testset import repeated_test_set
from kws.commands.bench import Measurement, Target, app, default_data_dir, print_report, report_dict, write_json
from kws.commands.common import default_bundle, is_bundle


@app.command("eval")
def bench_eval(
    model: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Cascade bundle or model dir (default: samples/cascade).")] = None,
    data: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Source of clips (default: the shared dev set, else samples/).")] = None,
    clips: Annotated[int, typer.Option(min=1, help="Clips in the pass (the canonical test set has 4,890).")] = 4890,
    workers: Annotated[int, typer.Option(min=1, help="Interpreter threads.")] = 2,
    json_out: Annotated[Optional[Path], typer.Option("--json")] = None,
    force: Annotated[bool, typer.Option()] = False,
) -> None:
    """Time `kws eval` on a test-set-sized folder: cold (decode + MFCC + int8) and cached."""
    import time

    refuse_existing(json_out, force)  # before the timed passes, not after them
    model = model or default_bundle()
    data = data or default_data_dir()
    with tempfile.TemporaryDirectory(prefix="kws-bench-eval-") as tmp:
        root = Path(tmp)
        test_set = repeated_test_set(data, root / "test_set", clips)
        times = {}
        for key in ("cold", "cached"):
            start = time.perf_counter()
            if is_bundle(model):
                report = evaluate_bundle(Bundle.open(model), test_set, cache_dir=root / "cache", workers=workers)
            else:
                report = evaluate(ModelDir.open(model), test_set, cache_dir=root / "cache", workers=workers)
            times[key] = time.perf_counter() - start
    measurements = [Measurement(k, f"eval pass, {k}", report.n, s) for k, s in times.items()]
    targets = [Target("cold_30s", "cold pass within 30 s (30 s / measured)", 30.0 / times["cold"], 1.0),
               Target("cached_10s", "cached pass within 10 s (10 s / measured)", 10.0 / times["cached"], 1.0)]
    print_report(f"kws eval on {report.n} clips ({workers} workers)", measurements, targets,
                 [f"model {model}; accuracy {report.accuracy:.4f} (repeated clips: a speed test, not a score)"])
    if json_out is not None:
        write_json(json_out, report_dict("eval", measurements, targets, model=str(model), workers=workers), force)
