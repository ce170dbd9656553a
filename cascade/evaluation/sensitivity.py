"""Choosing the three named operating points (``high``, ``balanced``, ``low``) on validation
streams, and measuring each with the real ``Smoother``.

All three are the FA-target calibration's smoothing (window, suppression, per-keyword
thresholds) with every threshold moved by one shift (``det.shifted``), so they lie on the
bundle's DET curve and only the sensitivity differs. The rule:

- ``balanced``: the fewest false accepts among shifts that find >= ``hit_target`` (95 %) of the
  validation keywords; if no shift does, the one with the most hits. Ties: the higher bar.
  With clean streams (validation speakers' keywords near the microphone over quiet room noise),
  the hit share is measured there and the false accepts on the music/speech streams: nobody
  keeps a detector that ignores a clearly spoken keyword, and a crowded stream's hit rate is a
  harder, different question.
- ``high``: no less sensitive than balanced; the fewest false accepts among shifts finding
  >= ``high_hit_target`` (98 %, on the clean streams if given), else the most hits.
- ``low``: no more sensitive than balanced; the most hits within ``target_fa_per_hour``, else
  the fewest false accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cascade.evaluation.det import DET_THRESHOLDS, replay, shifted
from cascade.evaluation.operating_point import Trace, score_traces, window_means
from cascade.evaluation.stream_score import score_events
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.operating_points import Measured, OperatingPoint

Point = tuple[SmoothingConfig, dict[str, float]]


def _pick(points: Sequence[Point], keep: Callable[[Point], bool], rank: Callable[[Point], tuple]) -> Point | None:
    pool = [p for p in points if keep(p)]
    return max(pool, key=rank) if pool else None


def choose_points(traces: Sequence[Trace], labels: Sequence[str], calibrated: SmoothingConfig, *, hit_target: float = 0.95,
                  high_hit_target: float = 0.98, target_fa_per_hour: float = 5.0,
                  clean: Sequence[Trace] = ()) -> dict[str, SmoothingConfig]:
    """high / balanced / low smoothing configs by the rule of the module doc."""
    shifts = [shifted(calibrated, th - calibrated.threshold) for th in DET_THRESHOLDS]
    means = [window_means(t.times, t.posteriors, calibrated.window_ms) for t in traces]
    clean_means = [window_means(t.times, t.posteriors, calibrated.window_ms) for t in clean]
    # (config, wild score, share of keywords found where the hit targets are judged)
    curve = []
    for cfg in shifts:
        wild = score_traces(traces, labels, cfg, means)
        judged = score_traces(clean, labels, cfg, clean_means)["hit_rate"] if clean else wild["hit_rate"]
        curve.append((cfg, wild, judged))
    bar = lambda p: p[0].threshold  # noqa: E731
    fewest_fa = lambda p: (-p[1]["false_accepts"], bar(p))  # noqa: E731
    most_hits = lambda p: (p[2], p[1]["hits"], -p[1]["false_accepts"], bar(p))  # noqa: E731
    balanced = (_pick(curve, lambda p: p[2] >= hit_target, fewest_fa)
                or _pick(curve, lambda p: True, most_hits))
    assert balanced is not None
    above = lambda p: bar(p) <= bar(balanced)  # noqa: E731  (as or more sensitive)
    below = lambda p: bar(p) >= bar(balanced)  # noqa: E731
    high = (_pick(curve, lambda p: above(p) and p[2] >= high_hit_target, fewest_fa)
            or _pick(curve, above, most_hits))
    low = (_pick(curve, lambda p: below(p) and p[1]["false_accepts_per_hour"] <= target_fa_per_hour,
                 lambda p: (p[1]["hits"], -p[1]["false_accepts"], bar(p)))
           or _pick(curve, below, fewest_fa))
    assert high is not None and low is not None
    return {"high": high[0], "balanced": balanced[0], "low": low[0]}


def measure(traces: Sequence[Trace], labels: Sequence[str], smoothing: SmoothingConfig) -> Measured:
    """Hits and false accepts of the real Smoother over the traces (the figures reported)."""
    hits = keywords = fa = 0
    seconds = 0.0
    for t in traces:
        s = score_events(replay(t.times, t.posteriors, smoothing, tuple(labels)), t.keywords, t.duration_s)
        hits, keywords, fa, seconds = hits + s.hits, keywords + s.keywords, fa + s.false_accepts, seconds + t.duration_s
    return Measured(keywords=keywords, hits=hits, false_accepts=fa, hours=seconds / 3600.0)


def operating_points(traces: Sequence[Trace], labels: Sequence[str], calibrated: SmoothingConfig, *,
                     clean: Sequence[Trace] = (), **targets: float) -> dict[str, OperatingPoint]:
    """The three named points, measured (on the clean streams too, when given)."""
    return {name: OperatingPoint.of(name, cfg, measure(traces, labels, cfg),
                                    measure(clean, labels, cfg) if clean else None)
            for name, cfg in choose_points(traces, labels, calibrated, clean=clean, **targets).items()}
