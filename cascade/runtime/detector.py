"""The detector an application embeds: audio in, keyword events out.

``Detector`` wraps the one streaming path (``StreamingCascade``: streaming MFCC -> stage-1
gate -> stage 2 -> ``Smoother``); ``kws detect``, the stream evaluation and the live loop all
run through it, so an app sees exactly the decisions the CLI reports.

Audio is fed to the cascade in pieces of at most one feature stride. Each piece then completes
at most one MFCC row and one inference step, so the events do not depend on how the caller
cuts its audio (1 sample or 10 s per ``push`` give the same events), and the live loop can
time every hop.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import Bundle, default_bundle
from cascade.runtime.operating_points import OperatingPoint
from cascade.runtime.pipeline import Step, StreamingCascade
from data_prep.errors import AudioError, ConfigError
from data_prep.resample import StreamResampler

INT16_SCALE = 32768.0  # int16 -> [-1, 1): what soundfile does when it reads a PCM_16 file as float


@dataclasses.dataclass(frozen=True)
class Event:
    """One keyword detection."""

    label: str
    time: float  # seconds of input since open/reset: end of the 1-s window that fired
    score: float  # smoothed posterior of ``label`` that crossed its threshold, in [0, 1]

    def to_dict(self) -> dict:
        """The JSON row of ``kws detect --events``."""
        return {"t": round(self.time, 3), "label": self.label, "score": round(self.score, 4)}


@dataclasses.dataclass(frozen=True)
class Hop:
    """One piece of model-rate audio fed to the cascade (what the live loop times)."""

    samples: int  # model-rate samples in the piece
    frames: int  # MFCC rows it completed (0 or 1)
    steps: tuple[Step, ...]  # inference steps it completed (0 or 1)
    compute_ms: float  # host wall time: features + stages + decision
    cpu_ms: float  # this thread's CPU time for the same


def as_float32(samples: np.ndarray) -> np.ndarray:
    """Mono samples as float32 in [-1, 1]: int16 is scaled by 1/32768, floats are kept.

    Shape (n,) or (n, 1); anything else (stereo, a batch) is refused, as are NaN/Inf."""
    data = np.asarray(samples)
    if data.ndim == 2 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 1:
        raise AudioError(f"samples of shape {data.shape}: expected mono audio of shape (n,)")
    if data.dtype == np.int16:
        return data.astype(np.float32) / INT16_SCALE
    if not np.issubdtype(data.dtype, np.floating):
        raise AudioError(f"samples of dtype {data.dtype}: expected float32 in [-1, 1] or int16")
    data = data.astype(np.float32, copy=False)
    if not np.isfinite(data).all():
        raise AudioError(f"samples contain NaN/Inf (first at index {int(np.flatnonzero(~np.isfinite(data))[0])})")
    return data


class Detector:
    """Streaming keyword detector over a cascade bundle.

    >>> d = Detector.open()                   # the bundle shipped in samples/cascade
    >>> events = d.push(samples)              # float32 or int16, shape (n,), any n
    >>> [(e.label, e.time, e.score) for e in events]

    ``sample_rate``: the rate of the samples you push; when it is not the bundle's rate they
    are resampled on the fly (soxr's streaming resampler, state kept between pushes). Call
    ``flush()`` at the end of a stream to run the resampler's tail.
    """

    def __init__(self, bundle: Bundle, *, sample_rate: int | None = None,
                 runner: StreamingCascade | None = None) -> None:
        self.bundle = bundle
        self.runner = runner or StreamingCascade(bundle)
        self.sample_rate = int(sample_rate or bundle.config.sample_rate)
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate {sample_rate}: must be > 0")
        self._piece = bundle.config.stride_samples
        self._resampler = StreamResampler(self.sample_rate, self.model_rate)

    @classmethod
    def open(cls, path: Path | str | None = None, *, sample_rate: int | None = None,
             sensitivity: str | None = None) -> "Detector":
        """A detector for the bundle directory ``path`` (default: the shipped samples/cascade) at
        the operating point ``sensitivity``: "high", "balanced" (default) or "low" (bundles
        calibrated by `kws stream calibrate` carry all three; ``operating_point`` says what
        each was measured to do)."""
        bundle = Bundle.open(Path(path) if path is not None else default_bundle()).at(sensitivity)
        return cls(bundle, sample_rate=sample_rate)

    @property
    def operating_point(self) -> OperatingPoint:
        """The point this detector runs at: name, thresholds, measured hit rate and FA/h."""
        return self.bundle.operating_point

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label the cascade classifies (keywords plus _silence_ and _unknown_)."""
        return self.bundle.labels

    @property
    def model_rate(self) -> int:
        return self.bundle.config.sample_rate

    def reset(self) -> None:
        """Forget all audio: the next push starts a new stream at time 0."""
        self.runner.reset()
        self._resampler = StreamResampler(self.sample_rate, self.model_rate)

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed the next samples; return the keywords detected in them (usually none)."""
        return _events(self.steps(samples))

    def flush(self) -> list[Event]:
        """End of stream: feed what the resampler still holds (nothing at the bundle's rate)."""
        return _events(self.steps(np.zeros(0, np.float32), last=True))

    def steps(self, samples: np.ndarray, *, last: bool = False) -> list[Step]:
        """Like ``push``, with every inference step (gate, posteriors, smoothed label)."""
        return [step for hop in self.hops(samples, last=last) for step in hop.steps]

    def hops(self, samples: np.ndarray, *, last: bool = False) -> Iterator[Hop]:
        """Like ``steps``, piece by piece, with the host time of each piece."""
        return self._pieces(self._resampler.push(as_float32(samples), last=last))

    def silence(self, samples: int) -> Iterator[Hop]:
        """``samples`` zeros at the model's rate after the input ended (``trailing_silence``)."""
        return self._pieces(np.zeros(samples, np.float32))

    def _pieces(self, audio: np.ndarray) -> Iterator[Hop]:
        frontend = self.runner.frontend
        for start in range(0, len(audio), self._piece):
            piece = audio[start : start + self._piece]
            frames = frontend.frames_emitted
            begin, begin_cpu = time.perf_counter(), time.thread_time()
            steps = self.runner.push(piece)
            compute_ms = (time.perf_counter() - begin) * 1000.0
            cpu_ms = (time.thread_time() - begin_cpu) * 1000.0
            yield Hop(len(piece), frontend.frames_emitted - frames, tuple(steps), compute_ms, cpu_ms)


def _events(steps: list[Step]) -> list[Event]:
    return [Event(s.detection.label, s.detection.t, s.detection.score) for s in steps if s.detection is not None]
