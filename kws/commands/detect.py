"""``kws detect FILE --model BUNDLE``: time-stamped detections of the streaming cascade."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.stream_score import read_truth, score_events
from cascade.runtime.model_dir import write_json
from cascade.runtime.near_miss import NearMisses, near_miss_text
from cascade.runtime.stream_run import detect_file
from data_prep.atomic import write_text_atomic
from data_prep.audio import probe_audio
from data_prep.outputs import refuse_result_files
from kws.commands.common import BundleOption, SensitivityOption, open_bundle


def detect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Audio file of any length (resampled, mixed to mono).")],
    model: BundleOption = None,
    sensitivity: SensitivityOption = None,
    events: Annotated[Optional[Path], typer.Option(help="Write detections as JSON lines.")] = None,
    truth: Annotated[Optional[Path], typer.Option(exists=True, dir_okay=False, help="Truth file from `kws stream make`: score the run.")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write a summary (and score) as JSON.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
) -> None:
    """Run the cascade over a recording hop by hop and print each detection."""
    from rich.console import Console

    refuse_result_files({"--events": events, "--json": json_out}, force)
    keywords = read_truth(truth)["keywords"] if truth is not None else None  # a bad truth file: before the run
    probe_audio(file)  # a bad recording is the only line, before the operating point's
    bundle = open_bundle(model, sensitivity, announce=True)
    misses = NearMisses.of(bundle)
    result = detect_file(bundle, file, trace=False,
                         on_step=lambda s: misses.update(s.t, s.label, s.score, s.detection is not None))
    console = Console()
    rows = [e.to_dict() for e in result.events]
    for row in rows:
        console.print(f"{row['t']:9.2f} s  {row['label']:10s} {row['score']:.3f}")
    summary = {"file": str(file), "model": str(bundle.path), "operating_point": bundle.sensitivity, "duration_s": result.duration_s,
               "detections": len(rows), "steps": result.steps, "stage2_runs": result.stage2_runs,
               "stage2_per_hour": result.stage2_per_hour, "stage2_duty": result.stage2_duty,
               "near_misses": misses.count, "latest_near_misses": [m.to_dict() for m in misses.latest]}
    score = score_events(rows, keywords, result.duration_s) if keywords is not None else None
    if score is not None:
        summary["score"] = score.to_json()
    console.print(
        f"{len(rows)} detections in {result.duration_s:.1f} s; stage 2 ran on {result.stage2_runs} of "
        f"{result.steps} steps ({result.stage2_per_hour:.0f}/hour)", soft_wrap=True)
    if misses.count:
        console.print("near misses: " + near_miss_text(misses.count, summary["latest_near_misses"]), soft_wrap=True)
    if score is not None:
        console.print(f"hit rate {score.hit_rate:.3f} ({score.hits}/{score.keywords}), "
                      f"false accepts {score.false_accepts} ({score.false_accepts_per_hour:.1f}/hour)")
    if events is not None:
        write_text_atomic(events, "".join(json.dumps(r) + "\n" for r in rows))
    if json_out is not None:
        write_json(json_out, summary)
