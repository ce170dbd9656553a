"""The gate's tau chosen jointly with the smoothing, per operating point, on validation streams.

A stream is run once with the gate held open (stage 2 on every step), keeping both stages'
outputs; any tau is then replayed exactly: a step whose P(keyword) is below it gets the
closed-gate posterior the cascade would have computed (``background_posterior``). So one run
gives, for every tau, each point's hits and false accepts and the share of steps stage 2 runs
on — the energy the cascade exists to save.

The rule (``choose_taus``): the gate's clip-calibrated tau (its keyword-recall promise) is the
floor; each point takes the highest tau at or above it whose hits, on the music/speech
validation streams and on the clean near-mic ones alike, stay within ``max_loss`` (a share of
the keywords) of what the point finds at the floor, with no more false accepts there. With
``max_loss`` 0 a point only takes energy that costs no keyword on validation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.evaluation.operating_point import Trace, score_traces
from cascade.evaluation.sensitivity import measure
from cascade.evaluation.stream_score import AUDIO, TRUTH, read_truth
from cascade.evaluation.stream_sources import by_source, pool_sources
from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import SmoothingConfig, background_posterior
from cascade.runtime.gate import gate_open
from cascade.runtime.operating_points import Measured, OperatingPoint
from cascade.runtime.stream_run import detect_file

CURVE_TAUS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the gate curve reported beside the chosen taus


@dataclasses.dataclass(frozen=True)
class OpenTrace:
    """One stream run with the gate open: every step's P(keyword), stage 2's posterior and the
    posterior the closed gate would give."""

    times: np.ndarray
    p_keyword: np.ndarray
    stage2: np.ndarray  # (steps, labels)
    closed: np.ndarray  # (steps, labels)
    duration_s: float
    truth: dict[str, Any]

    @property
    def keywords(self) -> tuple[dict[str, Any], ...]:
        return tuple(self.truth["keywords"])

    def at(self, tau: float) -> tuple[Trace, np.ndarray]:
        """The trace the cascade gives at ``tau``, and which steps opened the gate."""
        opened = gate_open(self.p_keyword, tau)
        posteriors = np.where(opened[:, None], self.stage2, self.closed)
        return Trace(self.times, posteriors, self.keywords, self.duration_s), opened


def open_trace(bundle: Bundle, folder: Path) -> OpenTrace:
    """Run ``folder``/stream.wav through the cascade with the gate held open."""
    truth = read_truth(Path(folder) / TRUTH)
    result = detect_file(dataclasses.replace(bundle, tau=0.0), Path(folder) / AUDIO)
    closed = np.stack([background_posterior(p, bundle.stage1.labels, bundle.labels) for p in result.trace_stage1]) \
        if result.steps else np.zeros((0, len(bundle.labels)), np.float32)
    return OpenTrace(result.trace_t, result.trace_p_keyword, result.trace_posterior, closed, result.duration_s, truth)


def traces_at(traces: Sequence[OpenTrace], tau: float) -> tuple[list[Trace], float, list[np.ndarray]]:
    """The traces at ``tau``, the share of their steps stage 2 runs on, and each one's gate states."""
    pairs = [t.at(tau) for t in traces]
    steps = sum(len(o) for _, o in pairs)
    duty = sum(int(o.sum()) for _, o in pairs) / steps if steps else 0.0
    return [t for t, _ in pairs], duty, [o for _, o in pairs]


def measured_at(traces: Sequence[OpenTrace], tau: float, labels: Sequence[str], smoothing: SmoothingConfig) -> Measured:
    """A point's hits and false accepts (the real Smoother) and stage-2 duty at ``tau``."""
    at, duty, _ = traces_at(traces, tau)
    return dataclasses.replace(measure(at, labels, smoothing), stage2_duty=duty)


def candidate_taus(traces: Sequence[OpenTrace], floor: float) -> list[float]:
    """Every distinct P(keyword) at or above ``floor`` (the only taus that change anything:
    stage 1's output is int8), ascending, the floor first."""
    values = np.unique(np.concatenate([t.p_keyword for t in traces]).astype(np.float64)) if traces else np.zeros(0)
    return [float(floor)] + [float(v) for v in values if v > floor]


def _score(traces: Sequence[OpenTrace], tau: float, labels: Sequence[str], cfg: SmoothingConfig) -> dict[str, float] | None:
    """Hits and false accepts at ``tau`` by the vectorised smoother (the search; the chosen
    point is then measured with the real one)."""
    return score_traces(traces_at(traces, tau)[0], labels, cfg) if traces else None


def _within(s: dict[str, float] | None, base: dict[str, float] | None, max_loss: float) -> bool:
    if s is None or base is None:
        return True
    return s["hits"] >= base["hits"] - max_loss * base["keywords"] - 1e-9 and s["false_accepts"] <= base["false_accepts"]


def choose_taus(points: dict[str, OperatingPoint], smoothing: SmoothingConfig, labels: Sequence[str],
                traces: Sequence[OpenTrace], clean: Sequence[OpenTrace], floor: float,
                max_loss: float) -> dict[str, OperatingPoint]:
    """Each point with its gate tau by the module's rule, measured there (duty included)."""
    candidates = candidate_taus([*traces, *clean], floor)
    out = {}
    for name, point in points.items():
        cfg = point.smoothing(smoothing)
        base, base_clean = _score(traces, floor, labels, cfg), _score(clean, floor, labels, cfg)
        chosen = floor
        # hits fall (nearly) monotonically with tau: walk up until the loss is exceeded
        for tau in candidates[1:]:
            if not (_within(_score(traces, tau, labels, cfg), base, max_loss)
                    and _within(_score(clean, tau, labels, cfg), base_clean, max_loss)):
                break
            chosen = tau
        out[name] = dataclasses.replace(point, tau=chosen, measured=measured_at(traces, chosen, labels, cfg),
                                        clean=measured_at(clean, chosen, labels, cfg) if clean else None)
    return out


def gate_curve(points: dict[str, OperatingPoint], smoothing: SmoothingConfig, labels: Sequence[str],
               traces: Sequence[OpenTrace], clean: Sequence[OpenTrace], taus: Sequence[float]) -> list[dict[str, Any]]:
    """What each tau would do: stage-2 duty (overall and per source of the validation streams)
    and each point's hit rate and false accepts per hour there: the energy/hits trade-off (by the
    vectorised smoother, which agrees with the real one to float rounding)."""
    rows = []
    for tau in taus:
        at, duty, opened = traces_at(traces, tau)
        clean_at = traces_at(clean, tau)[0] if clean else None
        sources = pool_sources([by_source(t.truth, t.times, o, [], t.duration_s) for t, o in zip(traces, opened)])
        row: dict[str, Any] = {"tau": float(tau), "stage2_duty": duty,
                               "stage2_duty_by_source": {k: v["stage2_duty"] for k, v in sources.items()}}
        for name, point in points.items():
            cfg = point.smoothing(smoothing)
            m = score_traces(at, labels, cfg)
            row[name] = {"hit_rate": m["hit_rate"], "false_accepts_per_hour": m["false_accepts_per_hour"]}
            if clean_at is not None:
                row[name]["clean_hit_rate"] = score_traces(clean_at, labels, cfg)["hit_rate"]
        rows.append(row)
    return rows
