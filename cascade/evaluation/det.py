"""DET curve of a stream: miss rate against false accepts per hour over detection thresholds.

The stage posteriors of a run do not depend on the detection threshold, so one pass of the
cascade is recorded and the smoother alone is replayed for every threshold.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.figures import pyplot, save_png
from cascade.evaluation.stream_score import score_events
from cascade.runtime.decision import Smoother, SmoothingConfig

DET_THRESHOLDS = tuple(float(t) for t in np.round(np.concatenate([np.arange(0.3, 0.875, 0.05), np.arange(0.9, 0.995, 0.01)]), 3))


def replay(times: np.ndarray, posteriors: np.ndarray, smoothing: SmoothingConfig, labels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Detections the smoother makes on a recorded sequence of step posteriors."""
    smoother = Smoother(smoothing, labels)
    events = []
    for t, p in zip(times, posteriors):
        detection = smoother.update(float(t), p)[0]
        if detection is not None:
            events.append({"t": detection.t, "label": detection.label, "score": detection.score})
    return events


def shifted(smoothing: SmoothingConfig, shift: float) -> SmoothingConfig:
    """Every threshold (the default and each keyword's) moved by ``shift``, kept in [0, 1]."""
    move = lambda v: float(np.clip(round(v + shift, 6), 0.0, 1.0))  # noqa: E731
    return dataclasses.replace(smoothing, threshold=move(smoothing.threshold),
                               label_thresholds=tuple((k, move(v)) for k, v in smoothing.label_thresholds))


def det_curve(times: np.ndarray, posteriors: np.ndarray, smoothing: SmoothingConfig, labels: tuple[str, ...],
              keywords: Sequence[dict[str, Any]], duration_s: float, thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
    """One point per default threshold in ``thresholds``; per-keyword thresholds move with it
    (by the same shift), so the curve passes through the calibrated operating point."""
    thresholds = thresholds if thresholds is not None else DET_THRESHOLDS
    curve = []
    for th in thresholds:
        cfg = shifted(smoothing, float(th) - smoothing.threshold)
        score = score_events(replay(times, posteriors, cfg, labels), keywords, duration_s)
        curve.append({"threshold": cfg.threshold, "miss_rate": 1.0 - score.hit_rate,
                      "false_accepts_per_hour": score.false_accepts_per_hour, "hit_rate": score.hit_rate,
                      "false_accepts": score.false_accepts, "hits": score.hits})
    return curve


def rate_at_hits(curve: Sequence[dict[str, float]], hit_rate: float) -> float | None:
    """Fewest false accepts per hour among points reaching ``hit_rate`` (None: never reached)."""
    rates = [c["false_accepts_per_hour"] for c in curve if c["hit_rate"] >= hit_rate]
    return min(rates) if rates else None


def hits_at_rate(curve: Sequence[dict[str, float]], fa_per_hour: float) -> float | None:
    """Best hit rate among points with at most ``fa_per_hour`` false accepts per hour."""
    rates = [c["hit_rate"] for c in curve if c["false_accepts_per_hour"] <= fa_per_hour]
    return max(rates) if rates else None


def det_png(curve: list[dict[str, float]], path: Path, title: str) -> Path:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    fa = [max(c["false_accepts_per_hour"], 0.1) for c in curve]
    ax.plot(fa, [c["miss_rate"] for c in curve], "o-", ms=3)
    for c, x in zip(curve[:: max(1, len(curve) // 6)], fa[:: max(1, len(curve) // 6)]):
        ax.annotate(f"{c['threshold']:.2f}", (x, c["miss_rate"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour (log; 0 drawn at 0.1)")
    ax.set_ylabel("miss rate")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return save_png(fig, path)
