"""The hand-off between an audio source and the processing loop.

A PortAudio callback must never block or do model work, so it only copies its block into a
bounded queue. A full queue (the loop fell behind) drops the block and counts it; PortAudio's
own input-overflow flag is counted too. Neither is ever silent: both reach the display and the
summary.
"""

from __future__ import annotations

import dataclasses
import queue
import time

import numpy as np


@dataclasses.dataclass(frozen=True)
class Block:
    samples: np.ndarray  # (frames, channels) float32, as the device delivered them
    arrived: float  # time.monotonic() when its last sample reached the host


@dataclasses.dataclass(frozen=True)
class End:
    """The source has no more audio (end of file, or stopped); ``error`` if it failed."""

    error: Exception | None = None


class BlockQueue:
    def __init__(self, max_blocks: int = 256) -> None:
        self._queue: queue.Queue[Block | End] = queue.Queue(maxsize=max_blocks)
        self.dropped = 0  # blocks lost because the loop fell behind
        self.overflows = 0  # blocks the device flagged as input overflow
        self.blocks = 0

    def offer(self, samples: np.ndarray, arrived: float | None = None) -> bool:
        """Non-blocking put for real-time producers (the audio callback): drop when full."""
        try:
            self._queue.put_nowait(Block(samples, time.monotonic() if arrived is None else arrived))
        except queue.Full:
            self.dropped += 1
            return False
        self.blocks += 1
        return True

    def put(self, samples: np.ndarray, arrived: float | None = None, timeout: float | None = None) -> bool:
        """Blocking put for producers faster than real time (a file in --fast mode)."""
        try:
            self._queue.put(Block(samples, time.monotonic() if arrived is None else arrived), timeout=timeout)
        except queue.Full:
            return False
        self.blocks += 1
        return True

    def flag_overflow(self) -> None:
        self.overflows += 1

    def finish(self, timeout: float) -> bool:
        """Blocking end-of-stream mark for a producer that is not in a hurry (end of file):
        False if the loop made no room within ``timeout``."""
        try:
            self._queue.put(End(), timeout=timeout)
        except queue.Full:
            return False
        return True

    def close(self, error: Exception | None = None) -> None:
        """Mark the end of the stream; never blocks (a full queue gives up its oldest block,
        which no one is waiting for once the source stops)."""
        while True:
            try:
                self._queue.put_nowait(End(error))
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    pass

    def get(self, timeout: float) -> Block | End | None:
        """The next block, End, or None when nothing arrived within ``timeout`` seconds."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
