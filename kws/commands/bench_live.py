"""``kws bench live``: per-hop speed, detection latency and idle CPU of the live loop, against
the targets of the live demo (>= 20x real time with both stages, median word-end -> event
latency <= 300 ms, < 15 % of one core while listening to silence)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

REALTIME_X, LATENCY_MS, CPU_PERCENT = 20.0, 300.0, 15.0


def bench_live(
    model: Annotated[Optional[Path], typer.Option(help="Cascade bundle (default: samples/cascade).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Speech Commands folder for the keyword stream (default: the shared dev set, else samples/).")] = None,
    minutes: Annotated[float, typer.Option(min=0.1, help="Length of the keyword stream timed --fast.")] = 1.0,
    realtime_seconds: Annotated[float, typer.Option(min=1.0, help="Seconds of that stream played in real time (latency).")] = 30.0,
    silence_seconds: Annotated[float, typer.Option(min=1.0, help="Seconds of silence played in real time (CPU).")] = 10.0,
    seed: Annotated[int, typer.Option(help="Seed of the keyword stream.")] = 0,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
) -> None:
    """Time the live loop hop by hop, measure word-end -> event latency and idle CPU."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from cascade.bundle import Bundle
    from cascade.stream_build import build_stream_folder
    from cascade.stream_make import StreamRecipe
    from data_prep.errors import KwsError
    from kws.commands.bench import blas_threads, default_data_dir, write_json
    from kws.commands.common import default_bundle
    from cascade.pipeline import StreamingCascade
    from kws.live.bench import forced_open, hop_figures, matched_latencies, play_file, warmed, write_silence

    if json_out is not None and json_out.exists() and not force:
        raise KwsError(f"{json_out}: already exists (use --force to overwrite)")
    console = Console()
    bundle = Bundle.open(model or default_bundle())
    cfg = bundle.config
    data_dir = data_dir if data_dir is not None else default_data_dir()
    with tempfile.TemporaryDirectory(prefix="kws-bench-live-") as tmp, blas_threads(1):
        console.print(f"building a {minutes:g}-minute keyword stream from {data_dir}")
        truth = build_stream_folder(data_dir, [], Path(tmp) / "stream", StreamRecipe(minutes=minutes, seed=seed), config=cfg)
        wav = Path(tmp) / "stream" / "stream.wav"
        console.print("timing hops --fast: natural gate, then gate forced open")
        natural = play_file(bundle, wav, fast=True, runner=warmed(StreamingCascade(bundle)))
        forced = play_file(bundle, wav, fast=True, runner=warmed(forced_open(bundle)))
        console.print(f"latency: {realtime_seconds:g} s of the stream in real time")
        rt = play_file(bundle, wav, fast=False, seconds=realtime_seconds)
        console.print(f"CPU: {silence_seconds:g} s of silence in real time")
        silence = play_file(bundle, write_silence(Path(tmp) / "silence.wav", silence_seconds, cfg.sample_rate), fast=False)
    fast_hits = matched_latencies(natural.events, truth["keywords"])
    rt_hits = matched_latencies(rt.events, truth["keywords"])
    word_to_event = [after * 1000.0 + pipeline for after, pipeline in rt_hits]
    hops = {"natural": hop_figures(natural, cfg.stride_ms), "forced_open": hop_figures(forced, cfg.stride_ms)}
    latency = {
        "after_word_end_ms_fast": [round(a * 1000.0, 1) for a, _ in fast_hits],
        "word_end_to_event_ms": [round(x, 1) for x in word_to_event],
        "median_word_end_to_event_ms": float(np.median(word_to_event)) if word_to_event else None,
        "median_after_word_end_ms": float(np.median([a for a, _ in fast_hits]) * 1000.0) if fast_hits else None,
        "pipeline_ms_median": float(np.median(rt.latency_ms)) if len(rt.latency_ms) else None,
        "pipeline_ms_p99": float(np.percentile(rt.latency_ms, 99)) if len(rt.latency_ms) else None,
        "keywords_in_realtime_part": sum(k["end"] <= realtime_seconds for k in truth["keywords"]),
        "hits_in_realtime_part": len(rt_hits),
    }
    cpu = {"cpu_percent": silence.cpu_percent, "cpu_s": silence.cpu_s, "wall_s": silence.wall_s,
           "stage2_runs": silence.stage2_runs, "dropped": silence.dropped}

    table = Table(title=f"kws bench live: {bundle.path}")
    for col in ("run", "hops", "median ms", "p99 ms", "max ms", "x real time", "stage-2 duty"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for name, h in hops.items():
        table.add_row(name, f"{h['hops']:,}", f"{h['hop_median_ms']:.3f}", f"{h['hop_p99_ms']:.3f}",
                      f"{h['hop_max_ms']:.3f}", f"{h['realtime_factor']:.0f}", f"{h['stage2_duty']:.1%}")
    console.print(table)
    med = latency["median_word_end_to_event_ms"]
    checks = [
        ("x real time, natural gate", hops["natural"]["realtime_factor"], f">= {REALTIME_X:g}", hops["natural"]["realtime_factor"] >= REALTIME_X),
        ("x real time, gate forced open", hops["forced_open"]["realtime_factor"], f">= {REALTIME_X:g}", hops["forced_open"]["realtime_factor"] >= REALTIME_X),
        ("median word end -> event (ms)", med, f"<= {LATENCY_MS:g}", med is not None and med <= LATENCY_MS),
        ("CPU on silence (% of one core)", cpu["cpu_percent"], f"< {CPU_PERCENT:g}", cpu["cpu_percent"] < CPU_PERCENT),
    ]
    verdicts = Table(title="targets")
    for col in ("target", "measured", "needed", "result"):
        verdicts.add_column(col)
    for name, value, needed, ok in checks:
        verdicts.add_row(name, "n/a" if value is None else f"{value:.1f}", needed, "[green]PASS[/]" if ok else "[red]FAIL[/]")
    console.print(verdicts)
    console.print(
        f"latency: {len(rt_hits)} of {latency['keywords_in_realtime_part']} keywords detected in the real-time part; "
        f"decision needs {latency['median_after_word_end_ms'] or float('nan'):.0f} ms of audio past the word end (median over "
        f"{len(fast_hits)} hits of the whole stream); pipeline (capture -> decision) {latency['pipeline_ms_median'] or float('nan'):.1f} ms "
        f"median, {latency['pipeline_ms_p99'] or float('nan'):.1f} ms p99; inference every {bundle.inference_stride_ms:g} ms",
        soft_wrap=True)
    if json_out is not None:
        import os
        import platform
        import sys

        data = {"benchmark": "live", "model": str(bundle.path), "data_dir": str(data_dir), "minutes": minutes,
                "inference_stride_ms": bundle.inference_stride_ms, "hops": hops, "latency": latency, "cpu": cpu,
                "targets": {name: {"value": value, "needed": needed, "passed": ok} for name, value, needed, ok in checks},
                "passed": all(ok for *_, ok in checks),
                "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()}}
        write_json(json_out, data, force)
        console.print(f"wrote {json_out}")
