"""The end-of-run summary of ``kws live`` (as a dict for JSON and as a rich table)."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table

from cascade.runtime.near_miss import near_miss_text
from kws.live.energy import EnergyFigures
from kws.live.loop import LiveStatus


def _stats(values) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {"median": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    return {"median": float(np.median(v)), "p99": float(np.percentile(v, 99)), "mean": float(v.mean()),
            "max": float(v.max())}


def summary_dict(status: LiveStatus, energy: EnergyFigures | None) -> dict[str, Any]:
    hop = _stats(status.hop_ms)
    compute_s = float(np.sum(np.asarray(status.hop_ms, np.float64))) / 1000.0
    cpu_s = float(np.sum(np.asarray(status.hop_cpu_ms, np.float64))) / 1000.0
    return {
        "source": status.source,
        "source_rate": status.source_rate,
        "model_rate": status.model_rate,
        "audio_s": status.audio_s,
        "wall_s": status.wall_s,
        "stopped_by": status.stopped_by,
        "error": status.error or None,
        "peak_level_db": status.peak_level_db,
        "steps": status.steps,
        "stage2_runs": status.stage2_runs,
        "stage2_duty": status.stage2_duty,
        "stage2_per_s": status.stage2_per_s,
        "detections": [e.to_dict() for e in status.events],
        "near_misses": status.near_misses.count,  # keywords heard under their bar (cascade/runtime/near_miss.py)
        "latest_near_misses": [m.to_dict() for m in status.near_misses.latest],
        "overflows": status.overflows,
        "dropped_blocks": status.dropped,
        "hop_ms": hop,
        "hop_cpu_ms": _stats(status.hop_cpu_ms),
        "realtime_factor": status.audio_s / compute_s if compute_s else float("inf"),
        "realtime_factor_cpu": status.audio_s / cpu_s if cpu_s else float("inf"),
        "latency_ms": _stats(status.latency_ms) if status.realtime else None,
        "cpu_percent": status.cpu_percent,
        "energy": energy.to_dict() if energy is not None else None,
    }


def summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title="kws live: summary", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("listened", f"{summary['audio_s']:.1f} s of audio in {summary['wall_s']:.1f} s, peak level "
                              f"{summary['peak_level_db']:.0f} dBFS (stopped by {summary['stopped_by']})")
    table.add_row("detections", ", ".join(f"{d['label']}@{d['t']:.2f}s" for d in summary["detections"]) or "none")
    if summary["near_misses"]:
        table.add_row("near misses", near_miss_text(summary["near_misses"], summary["latest_near_misses"]))
    table.add_row("stage 2", f"ran on {summary['stage2_runs']} of {summary['steps']} steps "
                             f"({summary['stage2_duty']:.1%} duty, {summary['stage2_per_s']:.2f}/s)")
    hop, lat = summary["hop_ms"], summary["latency_ms"] or {}
    table.add_row("per hop", f"{hop['median']:.3f} ms median, {hop['p99']:.3f} ms p99 "
                             f"({summary['realtime_factor']:.0f}x real time)")
    if lat:
        table.add_row("latency", f"{lat['median']:.0f} ms median, {lat['p99']:.0f} ms p99 (capture -> decision)")
    table.add_row("CPU", f"{summary['cpu_percent']:.1f} % of one core")
    losses = summary["overflows"] + summary["dropped_blocks"]
    table.add_row("overflows", f"[{'red' if losses else 'green'}]{summary['overflows']} input overflows, "
                               f"{summary['dropped_blocks']} dropped blocks[/]")
    e = summary["energy"]
    if e is not None:
        days = "inf" if e["battery_days"] == float("inf") else f"{e['battery_days']:,.1f}"
        table.add_row(f"energy ({e['profile']})", f"{e['avg_power_mw']:.3f} mW average, {days} days on {e['battery']} "
                                                  f"(stage 2 always on: {e['always_on_mw']:.3f} mW)")
    return table
