"""The rich panel of ``kws live``: a pure function of the loop's status and the energy figures,
so it renders the same in a terminal, under a test's recording console or in a screenshot."""

from __future__ import annotations

import numpy as np
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cascade.runtime.near_miss import near_miss_text
from kws.live.energy import EnergyFigures
from kws.live.loop import SILENT_DB, LiveStatus

BAR = 32
SHOWN_EVENTS = 8
RECENT_HOPS = 500  # the host figures describe the last ~10 s, not the whole run


def bar(fraction: float, width: int = BAR, marker: float | None = None, style: str = "green") -> Text:
    """A horizontal bar filled to ``fraction`` of ``width``; ``marker`` draws a threshold tick."""
    filled = round(min(max(fraction, 0.0), 1.0) * width)
    tick = None if marker is None else min(width - 1, round(min(max(marker, 0.0), 1.0) * width))
    text = Text()
    for i in range(width):
        if i == tick:
            text.append("|", style="bold white")
        elif i < filled:
            text.append("█", style=style)
        else:
            text.append("·", style="grey35")
    return text


def _days(days: float) -> str:
    return "∞" if days == float("inf") else f"{days:,.1f} days"


def _percentile(values, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


def render(status: LiveStatus, energy: EnergyFigures | None, title: str = "kws live") -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    rate = f"{status.model_rate} Hz"
    if status.source_rate != status.model_rate:
        rate = f"{status.source_rate} Hz → {status.model_rate} Hz (resampled)"
    grid.add_row("input", Text(status.source, overflow="fold"))
    grid.add_row("audio", Text(f"{status.audio_s:.1f} s at {rate}"))
    level = (max(status.level_db, SILENT_DB / 2) - SILENT_DB / 2) / (-SILENT_DB / 2)  # -60..0 dBFS
    grid.add_row("level", bar(level, style="cyan") + Text(f"  {status.level_db:6.1f} dBFS"))
    grid.add_row("stage 1", bar(status.p_keyword, marker=status.tau, style="yellow")
                 + Text(f"  P(keyword) {status.p_keyword:.2f}   τ {status.tau:.2f}"))
    gate = Text(" OPEN ", style="bold black on green") if status.opened else Text(" closed ", style="grey50")
    grid.add_row("gate", gate + Text(f"   stage 2 ran on {status.stage2_runs} of {status.steps} steps "
                                     f"({status.stage2_duty:.1%} duty, {status.stage2_per_s:.2f}/s)"))
    grid.add_row("stage 2", Text(f"{status.label or '-'}", style="bold magenta")
                 + Text(f"  {status.score:.2f}  (top label of the smoothed posterior)", style="default"))
    misses = status.near_misses
    if misses.count:
        grid.add_row("near misses", Text(near_miss_text(misses.count, [m.to_dict() for m in misses.latest]), style="yellow"))
    if energy is not None:
        grid.add_row(f"energy ({energy.profile})",
                     Text(f"{energy.avg_power_mw:.3f} mW avg, {_days(energy.battery_days)} on {energy.battery}"
                          f"   (stage 2 always on: {energy.always_on_mw:.3f} mW, {_days(energy.always_on_days)})"))
    losses = status.overflows + status.dropped
    recent = status.hop_ms[-RECENT_HOPS:]
    grid.add_row("host", Text(f"hop {_percentile(recent, 50):.2f} ms median, {_percentile(recent, 99):.2f} ms p99"
                              f"   ·   CPU {status.cpu_percent:.0f} %   ·   ")
                 + Text(f"overflows {status.overflows}, dropped blocks {status.dropped}",
                        style="bold red" if losses else "green"))
    events = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for col in ("t (s)", "keyword", "score", "stage 1", "latency ms"):
        events.add_column(col, justify="left" if col == "keyword" else "right")
    for e in status.events[-SHOWN_EVENTS:]:
        latency = "-" if e.latency_ms is None else f"{e.latency_ms:.0f}"
        events.add_row(f"{e.t:.2f}", e.label, f"{e.score:.2f}", f"{e.stage1:.2f}", latency)
    shown = f"detections ({len(status.events)})"
    return Panel(Group(grid, Text(""), Text(shown, style="bold"), events), title=title, subtitle="Ctrl-C to stop")
