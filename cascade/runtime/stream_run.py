"""Run a cascade over a long recording, hop by hop, through the ``Detector`` the live loop and
embedding apps use."""

from __future__ import annotations

import array
import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import Detection
from cascade.runtime.detector import Detector, Event
from cascade.runtime.pipeline import Step, StreamingCascade
from data_prep.audio import stream_audio


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
    trace_stage1: np.ndarray  # (steps, stage-1 labels) stage 1's probabilities: replaying another gate tau

    @property
    def events(self) -> list[Event]:
        return [Event(d.label, d.t, d.score) for d in self.detections]

    @property
    def stage2_per_hour(self) -> float:
        return self.stage2_runs * 3600.0 / self.duration_s if self.duration_s else 0.0

    @property
    def stage2_duty(self) -> float:
        return self.stage2_runs / self.steps if self.steps else 0.0


def trailing_silence(bundle: Bundle, samples: int) -> int:
    """Samples of silence that follow a recording of ``samples`` (at the bundle's rate): one
    clip when it is shorter than a clip plus the smoothing window, else none. A word in a stream
    is followed by more audio; a one-second file of one word (every Speech Commands clip) would
    end after a single step, too few for ``min_count``, and never be detected."""
    cfg = bundle.config
    short = cfg.clip_samples + int(round(bundle.smoothing.window_ms * cfg.sample_rate / 1000.0))
    return cfg.clip_samples if samples < short else 0


def run_stream(
    bundle: Bundle,
    samples: np.ndarray,
    *,
    chunk_samples: int | None = None,
    **kwargs,
) -> StreamResult:
    """Feed ``samples`` (float32 mono at the bundle's rate) in chunks; collect every step."""
    chunk = chunk_samples or bundle.config.stride_samples
    return run_blocks(bundle, (samples[start : start + chunk] for start in range(0, len(samples), chunk)), **kwargs)


def run_blocks(
    bundle: Bundle,
    blocks: Iterable[np.ndarray],
    *,
    runner: StreamingCascade | None = None,
    on_step: Callable[[Step], None] | None = None,
    trace: bool = True,
) -> StreamResult:
    """Feed blocks of any size (float32 mono at the bundle's rate) through the streaming cascade.
    The steps do not depend on how the audio is cut. ``trace=False`` keeps only the detections
    and counts (the trace arrays come back empty), so memory does not grow with the length.

    A short recording is valid input too (one word): ``trailing_silence`` follows it, so the
    window slides over the word and the smoother sees it in several steps. ``duration_s``
    stays the recording's own."""
    detector = Detector(bundle, runner=runner)
    times, p_keyword, latency = array.array("d"), array.array("f"), array.array("f")
    opened, posteriors, stage1 = array.array("b"), array.array("f"), array.array("f")
    detections: list[Detection] = []
    steps = stage2_runs = 0

    def feed(block: np.ndarray) -> None:
        nonlocal steps, stage2_runs
        for step in detector.steps(block):
            steps += 1
            stage2_runs += step.opened
            if step.detection is not None:
                detections.append(step.detection)
            if trace:
                times.append(step.t)  # float64: replays see the live times
                p_keyword.append(step.p_keyword)
                opened.append(step.opened)
                latency.append(step.latency_ms)
                posteriors.extend(np.asarray(step.posterior, np.float32))
                stage1.extend(np.asarray(step.p_stage1, np.float32))
            if on_step is not None:
                on_step(step)

    samples = 0
    for block in blocks:
        samples += len(block)
        feed(block)
    if pad := trailing_silence(bundle, samples):
        feed(np.zeros(pad, np.float32))
    return StreamResult(
        detections=tuple(detections),
        duration_s=samples / bundle.config.sample_rate,
        steps=steps,
        stage2_runs=stage2_runs,
        trace_t=np.frombuffer(times, np.float64),
        trace_p_keyword=np.frombuffer(p_keyword, np.float32),
        trace_opened=np.frombuffer(opened, np.int8).astype(bool),
        latency_ms=np.frombuffer(latency, np.float32),
        trace_posterior=np.frombuffer(posteriors, np.float32).reshape(len(times), len(bundle.labels)),
        trace_stage1=np.frombuffer(stage1, np.float32).reshape(len(times), len(bundle.stage1.labels)),
    )


def detect_file(bundle: Bundle, path: Path, **kwargs) -> StreamResult:
    """Any audio file (resampled, mixed to mono) through the streaming cascade, read block by
    block: a recording of any length in constant memory for the audio."""
    return run_blocks(bundle, stream_audio(path, bundle.config.sample_rate), **kwargs)
