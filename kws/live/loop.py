"""The live processing loop: blocks from the queue -> mono -> streaming resample -> the
streaming cascade, hop by hop -> status, events.

It runs ``cascade.runtime.detector.Detector``, the same object ``kws detect``, the stream
evaluation and embedding apps run, so live decisions are batch decisions. The detector resamples
the device's rate as a stream and feeds the cascade in pieces of at most one feature stride,
which makes every piece compute exactly the hop it completes, whatever the device's block size.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np

from cascade.runtime.detector import Detector, Hop
from cascade.runtime.near_miss import NearMisses
from cascade.runtime.pipeline import Step
from cascade.runtime.stream_run import trailing_silence
from data_prep.audio import to_mono
from data_prep.errors import AudioError
from kws.live.blocks import BlockQueue, End

SILENT_DB = -120.0


class Source(Protocol):
    name: str
    rate: int
    input_latency_s: float
    realtime: bool  # False for a file pushed --fast: then no capture time, no latency


@dataclasses.dataclass(frozen=True)
class LiveEvent:
    """One detection as ``--json-events`` prints it."""

    t: float  # end of the window that fired, seconds of audio since the start
    label: str
    score: float
    stage1: float  # stage-1 P(keyword) at that step
    latency_ms: float | None  # capture of the window's last sample -> event (None when --fast)
    compute_ms: float  # host time of the hop that fired (features + stages + decision)

    def to_dict(self) -> dict:
        return {"t": round(self.t, 3), "label": self.label, "score": round(self.score, 4),
                "stage1": round(self.stage1, 4),
                "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
                "compute_ms": round(self.compute_ms, 3)}


@dataclasses.dataclass
class LiveStatus:
    """Everything the display and the summary show; updated by the loop only."""

    source: str
    source_rate: int
    model_rate: int
    tau: float
    realtime: bool = True
    audio_s: float = 0.0
    steps: int = 0
    stage2_runs: int = 0
    p_keyword: float = 0.0
    opened: bool = False
    label: str = ""
    score: float = 0.0
    level_db: float = SILENT_DB  # of the latest block
    peak_level_db: float = SILENT_DB  # loudest block so far: proof that audio arrived
    events: list[LiveEvent] = dataclasses.field(default_factory=list)
    near_misses: NearMisses = dataclasses.field(default_factory=lambda: NearMisses({}))  # heard, under the bar
    overflows: int = 0
    dropped: int = 0
    hop_ms: array.array = dataclasses.field(default_factory=lambda: array.array("f"))  # wall time per hop
    hop_cpu_ms: array.array = dataclasses.field(default_factory=lambda: array.array("f"))  # this thread's CPU
    latency_ms: array.array = dataclasses.field(default_factory=lambda: array.array("f"))
    cpu_s: float = 0.0
    wall_s: float = 0.0
    stopped_by: str = ""  # "end of input", "--seconds", "Ctrl-C" or "device error"
    error: str = ""  # why the device stopped delivering audio mid-run (what was heard is still kept)

    @property
    def interrupted(self) -> bool:
        return self.stopped_by == "Ctrl-C"

    @property
    def stage2_duty(self) -> float:
        return self.stage2_runs / self.steps if self.steps else 0.0

    @property
    def stage2_per_s(self) -> float:
        return self.stage2_runs / self.audio_s if self.audio_s else 0.0

    @property
    def cpu_percent(self) -> float:
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else 0.0


def level_db(samples: np.ndarray) -> float:
    """RMS level in dB full scale (a full-scale sine is -3 dB)."""
    if samples.size == 0:
        return SILENT_DB
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENT_DB, 20.0 * math.log10(rms)) if rms > 0 else SILENT_DB


class _Arrivals:
    """When each recent source sample reached the host, to time an event from the capture of
    the last sample its window used (block wait, queueing, resampler delay and compute)."""

    def __init__(self, rate: int, extra_s: float) -> None:
        self.rate, self.extra_s = rate, extra_s
        self._blocks: collections.deque[tuple[int, float]] = collections.deque(maxlen=512)

    def add(self, end_index: int, arrived: float) -> None:
        self._blocks.append((end_index, arrived))

    def captured(self, t: float) -> float:
        """Host time at which source sample ``t * rate`` was recorded: its block's arrival
        minus the samples that followed it in that block (the newest blocks are searched
        first; a window's last sample is almost always in the latest block)."""
        index = t * self.rate
        found = self._blocks[-1]
        for end, arrived in reversed(self._blocks):
            if end < index - 1e-6:
                break
            found = (end, arrived)
        end, arrived = found
        return arrived - max(0.0, end - index) / self.rate - self.extra_s


class LiveLoop:
    def __init__(
        self,
        detector: Detector,
        source: Source,
        blocks: BlockQueue,
        *,
        seconds: float | None = None,
        on_event: Callable[[LiveEvent], None] | None = None,
        on_update: Callable[[LiveStatus], None] | None = None,
        on_start: Callable[[], None] | None = None,
        update_every_s: float = 0.1,
        stall_s: float = 5.0,
    ) -> None:
        if detector.sample_rate != source.rate:
            raise AudioError(f"{source.name}: {source.rate} Hz, but the detector takes {detector.sample_rate} Hz")
        bundle = detector.bundle
        self.detector, self.source, self.blocks = detector, source, blocks
        self.limit = None if seconds is None else int(round(seconds * source.rate))
        self.on_event, self.on_update, self.on_start = on_event, on_update, on_start
        self.update_every_s, self.stall_s = update_every_s, stall_s
        self.status = LiveStatus(source.name, source.rate, detector.model_rate, bundle.tau, source.realtime,
                                 near_misses=NearMisses.of(bundle))
        self._arrivals = _Arrivals(source.rate, source.input_latency_s)
        self._taken = 0  # source samples consumed
        self._fed = 0  # model-rate samples fed to the cascade

    def run(self) -> LiveStatus:
        """Process until the source ends, ``seconds`` of audio are done, Ctrl-C, or the device
        fails after audio arrived (``status.error``: the caller keeps the summary, then fails)."""
        status = self.status
        cpu0, wall0 = time.process_time(), time.monotonic()
        last_update = 0.0
        try:
            status.stopped_by = "--seconds"
            while self.limit is None or self._taken < self.limit:
                item = self.blocks.get(timeout=self.stall_s)
                if item is None:
                    raise AudioError(f"{self.source.name}: no audio for {self.stall_s:g} s (unplugged or stalled?)")
                if isinstance(item, End):
                    if item.error is not None:
                        raise item.error
                    status.stopped_by = "end of input"
                    break
                if self.on_start is not None and self._taken == 0:
                    self.on_start()  # audio is flowing: what a caller waits for before it speaks
                self._block(to_mono(item.samples), item.arrived)
                now = time.monotonic()
                if self.on_update is not None and now - last_update >= self.update_every_s:
                    self._refresh(cpu0, wall0)
                    self.on_update(status)
                    last_update = now
            self._feed(self.detector.hops(np.zeros(0, np.float32), last=True))
            if status.stopped_by == "end of input":  # a file: a short one is followed by silence, as in kws detect
                heard = status.audio_s
                self._feed(self.detector.silence(trailing_silence(self.detector.bundle, self._fed)))
                status.audio_s = heard
        except KeyboardInterrupt:
            status.stopped_by = "Ctrl-C"
        except AudioError as exc:  # a microphone unplugged or a server gone mid-run
            if self._taken == 0:
                raise  # nothing was heard: the device never worked, nothing to keep
            status.stopped_by, status.error = "device error", str(exc)
        self._refresh(cpu0, wall0)
        if self.on_update is not None:
            self.on_update(status)
        return status

    def _refresh(self, cpu0: float, wall0: float) -> None:
        status = self.status
        status.cpu_s, status.wall_s = time.process_time() - cpu0, time.monotonic() - wall0
        status.overflows, status.dropped = self.blocks.overflows, self.blocks.dropped

    def _block(self, samples: np.ndarray, arrived: float) -> None:
        if self.limit is not None:
            samples = samples[: self.limit - self._taken]
        self._taken += len(samples)
        self._arrivals.add(self._taken, arrived)
        self.status.level_db = level_db(samples)
        self.status.peak_level_db = max(self.status.peak_level_db, self.status.level_db)
        self._feed(self.detector.hops(samples))

    def _feed(self, hops: Iterator[Hop]) -> None:
        for hop in hops:
            self._fed += hop.samples
            self.status.audio_s = self._fed / self.status.model_rate
            if hop.frames:
                self.status.hop_ms.append(hop.compute_ms)
                self.status.hop_cpu_ms.append(hop.cpu_ms)
            for step in hop.steps:
                self._step(step, hop.compute_ms)

    def _step(self, step: Step, compute_ms: float) -> None:
        status = self.status
        latency_ms = None
        if status.realtime:
            latency_ms = (time.monotonic() - self._arrivals.captured(step.t)) * 1000.0
            status.latency_ms.append(latency_ms)
        status.steps += 1
        status.stage2_runs += int(step.opened)
        status.p_keyword, status.opened, status.label, status.score = step.p_keyword, step.opened, step.label, step.score
        status.near_misses.update(step.t, step.label, step.score, step.detection is not None)
        if step.detection is not None:
            d = step.detection
            event = LiveEvent(d.t, d.label, d.score, step.p_keyword, latency_ms, compute_ms)
            status.events.append(event)
            if self.on_event is not None:
                self.on_event(event)
