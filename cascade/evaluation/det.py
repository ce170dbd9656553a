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
from cascade.evaluation.stream_score import StreamScore, pool_by_label, pool_scores, score_by_label, score_events
from cascade.runtime.decision import Smoother, SmoothingConfig

FA_FLOOR = 0.1  # where 0 false accepts per hour is drawn on the log axis
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


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """The smoother's detections at one threshold of the sweep, scored: over all labels and
    per label (``stream_score.score_by_label``)."""

    threshold: float
    total: StreamScore
    by_label: dict[str, StreamScore]


def det_sweep(times: np.ndarray, posteriors: np.ndarray, smoothing: SmoothingConfig, labels: tuple[str, ...],
              keywords: Sequence[dict[str, Any]], duration_s: float, thresholds: Sequence[float] | None = None) -> list[SweepPoint]:
    """One point per default threshold in ``thresholds``; per-keyword thresholds move with it
    (by the same shift), so the curve passes through the calibrated operating point. One
    replay per threshold scores both the whole stream and each keyword."""
    thresholds = thresholds if thresholds is not None else DET_THRESHOLDS
    points = []
    for th in thresholds:
        cfg = shifted(smoothing, float(th) - smoothing.threshold)
        events = replay(times, posteriors, cfg, labels)
        points.append(SweepPoint(cfg.threshold, score_events(events, keywords, duration_s),
                                 score_by_label(events, keywords, duration_s, labels)))
    return points


def det_point(threshold: float, score: StreamScore) -> dict[str, float]:
    """A DET curve's point as JSON holds it."""
    return {"threshold": threshold, "hits": score.hits, "hit_rate": score.hit_rate, "miss_rate": 1.0 - score.hit_rate,
            "false_accepts": score.false_accepts, "false_accepts_per_hour": score.false_accepts_per_hour}


def det_curve(times: np.ndarray, posteriors: np.ndarray, smoothing: SmoothingConfig, labels: tuple[str, ...],
              keywords: Sequence[dict[str, Any]], duration_s: float, thresholds: Sequence[float] | None = None) -> list[dict[str, float]]:
    """The DET curve over all keywords (``det_sweep``)."""
    return [det_point(p.threshold, p.total)
            for p in det_sweep(times, posteriors, smoothing, labels, keywords, duration_s, thresholds)]


def pool_sweeps(sweeps: Sequence[Sequence[SweepPoint]]) -> list[SweepPoint]:
    """Sweeps of several streams (same thresholds) as one: counts and hours summed, per label too."""
    out = []
    for points in zip(*sweeps):
        out.append(SweepPoint(points[0].threshold, pool_scores([p.total for p in points]),
                              pool_by_label([p.by_label for p in points], [p.total.duration_s for p in points])))
    return out


def keyword_curves(sweep: Sequence[SweepPoint]) -> dict[str, list[dict[str, float]]]:
    """A DET curve per keyword of a sweep: its hits against its own false accepts per hour.
    Only keywords spoken in the streams (a miss rate needs some)."""
    names = [name for name, score in sweep[0].by_label.items() if score.keywords] if sweep else []
    return {name: [det_point(p.threshold, p.by_label[name]) for p in sweep] for name in names}


def rate_at_hits(curve: Sequence[dict[str, float]], hit_rate: float) -> float | None:
    """Fewest false accepts per hour among points reaching ``hit_rate`` (None: never reached)."""
    rates = [c["false_accepts_per_hour"] for c in curve if c["hit_rate"] >= hit_rate]
    return min(rates) if rates else None


def hits_at_rate(curve: Sequence[dict[str, float]], fa_per_hour: float) -> float | None:
    """Best hit rate among points with at most ``fa_per_hour`` false accepts per hour."""
    rates = [c["hit_rate"] for c in curve if c["false_accepts_per_hour"] <= fa_per_hour]
    return max(rates) if rates else None


def _fa_axis(curve: Sequence[dict[str, float]]) -> list[float]:
    """False accepts per hour on a log axis: 0 drawn at 0.1."""
    return [max(c["false_accepts_per_hour"], FA_FLOOR) for c in curve]


def det_png(curve: list[dict[str, float]], path: Path, title: str) -> Path:
    fig, ax = pyplot().subplots(figsize=(6, 4))
    fa = _fa_axis(curve)
    ax.plot(fa, [c["miss_rate"] for c in curve], "o-", ms=3)
    for c, x in zip(curve[:: max(1, len(curve) // 6)], fa[:: max(1, len(curve) // 6)]):
        ax.annotate(f"{c['threshold']:.2f}", (x, c["miss_rate"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour (log; 0 drawn at 0.1)")
    ax.set_ylabel("miss rate")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return save_png(fig, path)


def keyword_det_figure(curves: dict[str, list[dict[str, float]]], title: str, overall: list[dict[str, float]] | None = None,
                       marks: dict[str, tuple[float, float]] | None = None):
    """Small multiples, one panel per keyword on shared axes (ten lines in one panel cannot be
    told apart): the keyword's DET curve, the overall one in grey behind it, and ``marks``
    (false accepts per hour, miss rate) of the operating point as a star."""
    plt = pyplot()
    names = list(curves)
    cols = min(4, max(1, len(names)))
    rows = max(1, -(-len(names) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.2 * rows + 0.7), sharex=True, sharey=True,
                             squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        if overall:
            ax.plot(_fa_axis(overall), [c["miss_rate"] for c in overall], "-", color="0.75", lw=1.2, label="all keywords")
        curve = curves[name]
        ax.plot(_fa_axis(curve), [c["miss_rate"] for c in curve], "o-", ms=2.5, lw=1.3, color="#2563eb", label="this keyword")
        if marks and name in marks:
            fa, miss = marks[name]
            ax.plot([max(fa, FA_FLOOR)], [miss], "*", ms=9, color="#dc2626", label="operating point")
        ax.set_title(name, fontsize=9)
        ax.set_xscale("log")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[-1]:
        ax.set_xlabel("false accepts / h")
    for ax in axes[:, 0]:
        ax.set_ylabel("miss rate")
    if names:
        axes.flat[0].legend(fontsize=6, loc="upper right")
    else:
        axes.flat[0].set_visible(True)
        axes.flat[0].text(0.5, 0.5, "no keywords in the streams", ha="center", va="center", transform=axes.flat[0].transAxes)
    fig.suptitle(title + f"  (0 false accepts drawn at {FA_FLOOR:g})", fontsize=10)
    return fig


def keyword_marks(rows: dict[str, dict[str, Any]]) -> dict[str, tuple[float, float]]:
    """(false accepts per hour, miss rate) of each spoken keyword's ``per_keyword`` row: where
    the operating point sits on its curve."""
    return {name: (r["false_accepts_per_hour"], 1.0 - r["hit_rate"]) for name, r in rows.items() if r["hit_rate"] is not None}


def keyword_det_png(curves: dict[str, list[dict[str, float]]], path: Path, title: str,
                    overall: list[dict[str, float]] | None = None, marks: dict[str, tuple[float, float]] | None = None) -> Path:
    return save_png(keyword_det_figure(curves, title, overall, marks), path)
