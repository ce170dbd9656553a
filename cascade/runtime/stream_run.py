"""Run a cascade over a long recording, hop by hop, through the ``Detector`` the live loop and
embedding apps use."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import Detection
from cascade.runtime.detector import Detector, Event
from cascade.runtime.pipeline import Step, StreamingCascade
from data_prep.audio import load_audio


@dataclasses.dataclass(frozen=True)
class StreamResult:
    detections: tuple[Detection, ...]
    duration_s: float
    steps: int
    stage2_runs: int
    trace_t: np.ndarray  # step times (s)
    trace_p_keyword: np.ndarray  # stage-1 P(keyword) per step
    trace_opened: np.ndarray  # gate state per step
    latency_ms: np.ndarray  # host time per step
    trace_posterior: np.ndarray  # (steps, labels) posteriors fed to the smoother

    @property
    def events(self) -> list[Event]:
        return [Event(d.label, d.t, d.score) for d in self.detections]

    @property
    def stage2_per_hour(self) -> float:
        return self.stage2_runs * 3600.0 / self.duration_s if self.duration_s else 0.0

    @property
    def stage2_duty(self) -> float:
        return self.stage2_runs / self.steps if self.steps else 0.0


def run_stream(
    bundle: Bundle,
    samples: np.ndarray,
    *,
    chunk_samples: int | None = None,
    runner: StreamingCascade | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> StreamResult:
    """Feed ``samples`` (float32 mono at the bundle's rate) in chunks; collect every step.
    ``chunk_samples`` only sets how much is read at a time: the steps do not depend on it."""
    detector = Detector(bundle, runner=runner)
    chunk = chunk_samples or bundle.config.stride_samples
    steps: list[Step] = []
    for start in range(0, len(samples), chunk):
        for step in detector.steps(samples[start : start + chunk]):
            steps.append(step)
            if on_step is not None:
                on_step(step)
    return StreamResult(
        detections=tuple(s.detection for s in steps if s.detection is not None),
        duration_s=len(samples) / bundle.config.sample_rate,
        steps=len(steps),
        stage2_runs=sum(s.opened for s in steps),
        trace_t=np.array([s.t for s in steps], np.float64),  # float64: replays see the live times
        trace_p_keyword=np.array([s.p_keyword for s in steps], np.float32),
        trace_opened=np.array([s.opened for s in steps], bool),
        latency_ms=np.array([s.latency_ms for s in steps], np.float32),
        trace_posterior=np.array([s.posterior for s in steps], np.float32).reshape(len(steps), -1),
    )


def detect_file(bundle: Bundle, path: Path, **kwargs) -> StreamResult:
    """Any audio file (resampled, mixed to mono) through the streaming cascade."""
    return run_stream(bundle, load_audio(path, bundle.config.sample_rate), **kwargs)
