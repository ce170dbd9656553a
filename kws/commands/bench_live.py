"""``kws bench live``: per-hop speed, detection latency and idle CPU of the live loop, against
the targets of the live demo (>= 20x real time with both stages, median word-end -> event
latency <= 300 ms, < 15 % of one core while listening to silence)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.evaluation.stream_build import build_stream_folder
from data_prep.outputs import refuse_existing
from kws.bench.live import LATENCY_RECIPE, forced_open, hop_figures, matched_latencies, play_file, write_silence
from kws.commands.bench import blas_threads, default_data_dir, write_json
from kws.commands.common import BundleOption, open_bundle

REALTIME_X, LATENCY_MS, CPU_PERCENT = 20.0, 300.0, 15.0


def bench_live(
    model: BundleOption = None,
    data_dir: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, help="Speech Commands folder for the keyword stream (default: the shared dev set, else samples/).")] = None,
    minutes: Annotated[float, typer.Option(min=0.1, help="Length of the keyword stream timed --fast.")] = 2.0,
    repeat: Annotated[int, typer.Option(min=1, help="Rounds of each --fast run; the fastest counts.")] = 2,
    realtime_seconds: Annotated[float, typer.Option(min=1.0, help="Seconds of that stream played in real time (pipeline latency).")] = 30.0,
    silence_seconds: Annotated[float, typer.Option(min=1.0, help="Seconds of silence played in real time (CPU).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the keyword stream.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Time the live loop hop by hop, measure word-end -> event latency and idle CPU."""
    import dataclasses
    import os
    import platform
    import sys

    import numpy as np
    from rich.console import Console

    refuse_existing(json_out, force)
    console = Console()
    bundle = open_bundle(model)
    cfg = bundle.config
    data_dir = data_dir if data_dir is not None else default_data_dir()
    recipe = dataclasses.replace(LATENCY_RECIPE, minutes=minutes, seed=seed)
    with tempfile.TemporaryDirectory(prefix="kws-bench-live-") as tmp, blas_threads(1):
        console.print(f"building a {minutes:g}-minute keyword stream from {data_dir}")
        truth = build_stream_folder(data_dir, [], Path(tmp) / "stream", recipe, config=cfg)
        wav = Path(tmp) / "stream" / "stream.wav"
        console.print(f"timing hops --fast ({repeat} rounds): natural gate, then gate forced open")
        runs = {"natural": [], "forced_open": []}
        for _ in range(repeat):
            runs["natural"].append(play_file(bundle, wav, fast=True))
            runs["forced_open"].append(play_file(bundle, wav, fast=True, runner=forced_open(bundle)))
        console.print(f"pipeline latency: {realtime_seconds:g} s of the stream in real time")
        rt = play_file(bundle, wav, fast=False, seconds=realtime_seconds)
        console.print(f"CPU: {silence_seconds:g} s of silence in real time")
        silence = play_file(bundle, write_silence(Path(tmp) / "silence.wav", silence_seconds, cfg.sample_rate), fast=False)
    hops = {name: max((hop_figures(s, cfg.stride_ms) for s in statuses), key=lambda h: h["realtime_factor"])
            for name, statuses in runs.items()}
    natural = runs["natural"][0]
    after_end = [a * 1000.0 for a, _ in matched_latencies(natural.events, truth["keywords"])]
    pipeline = np.asarray(rt.latency_ms, np.float64)
    direct = [a * 1000.0 + p for a, p in matched_latencies(rt.events, truth["keywords"])]
    med_after = float(np.median(after_end)) if after_end else None
    med_pipe = float(np.median(pipeline)) if pipeline.size else None
    estimate = med_after + med_pipe if med_after is not None and med_pipe is not None else None
    latency = {
        "after_word_end_ms": [round(x, 1) for x in after_end],
        "median_after_word_end_ms": med_after,
        "pipeline_ms_median": med_pipe,
        "pipeline_ms_p99": float(np.percentile(pipeline, 99)) if pipeline.size else None,
        "median_word_end_to_event_ms": estimate,
        "direct_word_end_to_event_ms": [round(x, 1) for x in direct],
        "keywords": len(truth["keywords"]),
        "hits": len(after_end),
    }
    cpu = {"cpu_percent": silence.cpu_percent, "cpu_s": silence.cpu_s, "wall_s": silence.wall_s,
           "stage2_runs": silence.stage2_runs, "dropped": silence.dropped}
    checks = [
        ("x real time, natural gate", hops["natural"]["realtime_factor"], f">= {REALTIME_X:g}", hops["natural"]["realtime_factor"] >= REALTIME_X),
        ("x real time, gate forced open", hops["forced_open"]["realtime_factor"], f">= {REALTIME_X:g}", hops["forced_open"]["realtime_factor"] >= REALTIME_X),
        ("median word end -> event (ms)", estimate, f"<= {LATENCY_MS:g}", estimate is not None and estimate <= LATENCY_MS),
        ("CPU on silence (% of one core)", cpu["cpu_percent"], f"< {CPU_PERCENT:g}", cpu["cpu_percent"] < CPU_PERCENT),
    ]
    _print(console, bundle, hops, checks, latency, realtime_seconds)
    if json_out is not None:
        data = {"benchmark": "live", "model": str(bundle.path), "data_dir": str(data_dir), "minutes": minutes,
                "inference_stride_ms": bundle.inference_stride_ms, "hops": hops, "latency": latency, "cpu": cpu,
                "targets": {name: {"value": value, "needed": needed, "passed": ok} for name, value, needed, ok in checks},
                "passed": all(ok for *_, ok in checks),
                "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}}
        write_json(json_out, data, force)
        console.print(f"wrote {json_out}")


def _print(console, bundle, hops: dict, checks: list, latency: dict, realtime_seconds: float) -> None:
    from rich.table import Table

    table = Table(title=f"kws bench live: {bundle.path} (inference every {bundle.inference_stride_ms:g} ms)")
    for col in ("run", "hops", "median ms", "p99 ms", "max ms", "x real time", "x (CPU time)", "stage-2 duty"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for name, h in hops.items():
        table.add_row(name, f"{h['hops']:,}", f"{h['hop_median_ms']:.3f}", f"{h['hop_p99_ms']:.3f}", f"{h['hop_max_ms']:.3f}",
                      f"{h['realtime_factor']:.0f}", f"{h['realtime_factor_cpu']:.0f}", f"{h['stage2_duty']:.1%}")
    console.print(table)
    verdicts = Table(title="targets")
    for col in ("target", "measured", "needed", "result"):
        verdicts.add_column(col)
    for name, value, needed, ok in checks:
        verdicts.add_row(name, "n/a" if value is None else f"{value:.1f}", needed, "[green]PASS[/]" if ok else "[red]FAIL[/]")
    console.print(verdicts)

    def ms(value) -> str:
        return "n/a" if value is None else f"{value:.0f} ms"

    direct = latency["direct_word_end_to_event_ms"]
    console.print(
        f"word end -> event = audio the decision needs past the word end ({ms(latency['median_after_word_end_ms'])} median "
        f"over {latency['hits']} of {latency['keywords']} keywords detected) + the live pipeline, capture -> decision "
        f"({ms(latency['pipeline_ms_median'])} median, {ms(latency['pipeline_ms_p99'])} p99, {realtime_seconds:g} s in real time); "
        f"measured directly on the {len(direct)} detections of the real-time part: {ms(float(sum(direct) / len(direct)) if direct else None)} mean",
        soft_wrap=True)
