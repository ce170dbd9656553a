"""Wiring of one live run: pick the source, start it, run the loop, always stop the source."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.detector import Detector
from cascade.runtime.pipeline import StreamingCascade
from data_prep.errors import KwsError
from kws.live.blocks import BlockQueue
from kws.live.devices import choose_channels, choose_rate, resolve_device
from kws.live.loop import LiveEvent, LiveLoop, LiveStatus
from kws.live.sources import FileSource, MicSource

DEFAULT_BLOCK_MS = 20.0
MAX_BLOCK_MS = 10_000.0  # a callback block longer than this is a typo, not a latency choice


def require_positive(value: float, option: str, upper: float | None = None) -> None:
    """A finite number > 0 (and <= ``upper``): NaN passes every comparison, and NaN or Inf
    would fail later as a traceback, when turned into a sample count."""
    if not math.isfinite(value) or value <= 0 or (upper is not None and value > upper):
        bound = f" and <= {upper:g}" if upper is not None else ""
        raise KwsError(f"{option} {value}: must be a finite number > 0{bound}")


def make_source(bundle: Bundle, blocks: BlockQueue, *, input_file: Path | None = None, fast: bool = False,
                device: str | None = None, device_rate: int | None = None, block_ms: float = DEFAULT_BLOCK_MS):
    """A FileSource for ``input_file``, else the PortAudio input ``device`` (default input) at
    the model's rate when offered, else at its native rate."""
    require_positive(block_ms, "--block-ms", MAX_BLOCK_MS)
    if input_file is not None:
        if device is not None or device_rate is not None:
            raise KwsError("--input plays a file: --device/--device-rate apply to a microphone only")

        return FileSource(input_file, block_ms, blocks, realtime=not fast)
    if fast:
        raise KwsError("--fast applies to --input FILE only (a microphone runs in real time)")

    dev = resolve_device(device)
    channels = choose_channels(dev)
    rate = choose_rate(dev, bundle.config.sample_rate, channels, device_rate)
    return MicSource(dev, rate, channels, max(1, round(rate * block_ms / 1000.0)), blocks)


def warmed(runner: StreamingCascade) -> StreamingCascade:
    """Run both stages and a second of audio once, then reset: first calls allocate (the
    interpreters' first invoke, lazily built feature tables) and would stall the first hops
    that need them, with audio piling up behind."""
    cfg = runner.bundle.config
    window = np.zeros(cfg.input_shape, np.float32)
    runner.cascade.stage1(window)
    runner.cascade.stage2(window)
    runner.push(np.random.default_rng(0).normal(0, 0.01, cfg.sample_rate).astype(np.float32))
    runner.reset()
    return runner


def run_live(
    bundle: Bundle,
    source,
    blocks: BlockQueue,
    *,
    runner: StreamingCascade | None = None,
    seconds: float | None = None,
    on_event: Callable[[LiveEvent], None] | None = None,
    on_update: Callable[[LiveStatus], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> LiveStatus:
    if seconds is not None:
        require_positive(seconds, "--seconds")
    runner = warmed(runner or StreamingCascade(bundle))
    source.start()  # before the loop: a microphone knows its input latency once open
    try:
        detector = Detector(bundle, sample_rate=source.rate, runner=runner)
        loop = LiveLoop(detector, source, blocks, seconds=seconds, on_event=on_event, on_update=on_update,
                        on_start=on_start)
        return loop.run()
    finally:
        source.stop()
