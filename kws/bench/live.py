"""Measurements behind ``kws bench live``: the live loop's speed, latency and CPU use.

- per hop: host time of every 20 ms hop (features, stage 1 when due, stage 2 when the gate
  opens, decision) on a keyword stream played ``--fast`` through the live loop, as the
  bundle runs naturally and with the gate forced open (stage 2 at every inference step);
- detection latency: end of the spoken word (the stream's truth file) -> event, i.e. how much
  audio past the word the decision needed (t - end) plus the live pipeline's own delay
  (capture of the window's last sample -> event: block wait, queue, resampler, compute),
  measured on a real-time run;
- CPU: process CPU time / wall time while the loop listens to silence in real time.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.stream_make import StreamRecipe
from cascade.evaluation.stream_score import match_events
from cascade.runtime.bundle import Bundle
from cascade.runtime.pipeline import StreamingCascade
from data_prep.audio import write_wav
from kws.live.blocks import BlockQueue
from kws.live.loop import LiveEvent, LiveStatus
from kws.live.report import summary_dict
from kws.live.session import run_live
from kws.live.sources import FileSource

# Clearly spoken keywords (15-25 dB over the noise bed) most of the time: the latency of a
# detection is measured on keywords the cascade detects, not on how many it misses.
LATENCY_RECIPE = StreamRecipe(keyword_share=0.8, snr_db=(15.0, 25.0), gap_s=(1.5, 3.0))


def play_file(bundle: Bundle, path: Path, *, fast: bool, seconds: float | None = None,
              runner: StreamingCascade | None = None, block_ms: float = 20.0) -> LiveStatus:
    blocks = BlockQueue()
    return run_live(bundle, FileSource(path, block_ms, blocks, realtime=not fast), blocks, runner=runner,
                    seconds=seconds)


def forced_open(bundle: Bundle) -> StreamingCascade:
    """A runner whose gate always opens (tau 0): stage 2 at every inference step."""
    return StreamingCascade(dataclasses.replace(bundle, tau=0.0))


def matched_latencies(events: list[LiveEvent], keywords: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """(t - word end, pipeline latency ms) of each event that hits a keyword, matched as
    ``cascade.evaluation.stream_score`` matches them (same label, inside [start - 0.25 s, end + 1.5 s])."""
    events = sorted(events, key=lambda e: e.t)
    matches = match_events([(e.t, e.label) for e in events], keywords)
    return [(e.t - keywords[m]["end"], e.latency_ms) for e, m in zip(events, matches) if m is not None]


def hop_figures(status: LiveStatus, hop_ms: float) -> dict[str, float]:
    s = summary_dict(status, None)
    return {**{f"hop_{k}_ms": v for k, v in s["hop_ms"].items()},
            **{f"hop_cpu_{k}_ms": v for k, v in s["hop_cpu_ms"].items()},
            "realtime_factor": s["realtime_factor"], "realtime_factor_cpu": s["realtime_factor_cpu"],
            "hop_budget_ms": hop_ms, "steps": status.steps, "stage2_runs": status.stage2_runs,
            "stage2_duty": status.stage2_duty, "hops": len(status.hop_ms)}


def write_silence(path: Path, seconds: float, rate: int) -> Path:
    return write_wav(path, np.zeros(int(seconds * rate), np.float32), rate)
