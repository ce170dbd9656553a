"""Where live audio comes from: a PortAudio input stream or a file played like one.

Both push blocks of ``block_frames`` samples at their own rate into the same ``BlockQueue``;
the loop cannot tell them apart, which is what lets tests run the live code path on a file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from data_prep.audio import check_samples, read_audio
from data_prep.errors import AudioError
from kws.live.blocks import BlockQueue
from kws.live.devices import InputDevice, sounddevice


class MicSource:
    """A PortAudio callback stream; the callback only copies the block into the queue."""

    def __init__(self, device: InputDevice, rate: int, channels: int, block_frames: int, blocks: BlockQueue) -> None:
        self.device, self.rate, self.channels = device, rate, channels
        self.block_frames, self.blocks = block_frames, blocks
        self.name = device.describe()
        self.realtime = True
        self.input_latency_s = 0.0  # PortAudio's estimate of the device -> callback delay
        self._stream = None

    def _callback(self, indata, frames, time_info, status) -> None:  # PortAudio's thread
        if status.input_overflow:
            self.blocks.flag_overflow()
        self.blocks.offer(indata.copy())

    def start(self) -> None:
        sd = sounddevice()
        try:
            self._stream = sd.InputStream(
                device=self.device.index, channels=self.channels, samplerate=self.rate, blocksize=self.block_frames,
                dtype="float32", callback=self._callback,
            )  # fmt: skip
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            self._stream = None
            raise AudioError(
                f"cannot open input device {self.device.name!r} at {self.rate} Hz: {exc} "
                "(busy, unplugged or not an input? `kws live --list-devices` lists inputs)"
            ) from None
        self.input_latency_s = float(self._stream.latency)

    def stop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001 - closing a stream that died must not hide why
                pass
        self.blocks.close()


class FileSource:
    """A file played into the queue block by block: paced like a device (each block arrives
    when its last sample would have been recorded) or, with ``realtime=False``, as fast as
    the loop takes them (a blocking put: nothing is dropped)."""

    def __init__(self, path: Path, block_ms: float, blocks: BlockQueue, realtime: bool = True) -> None:
        data, self.rate = read_audio(Path(path))
        samples = check_samples(data if data.ndim == 2 else data[:, None], str(path))
        self.samples = np.ascontiguousarray(samples, dtype=np.float32)
        self.block_frames = max(1, round(self.rate * block_ms / 1000.0))
        self.blocks, self.realtime = blocks, realtime
        self.name = f"{path} ({self.rate} Hz, {'real time' if realtime else 'fast'})"
        self.input_latency_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._play, name="kws-live-file", daemon=True)
        self._thread.start()

    def _play(self) -> None:
        start = time.monotonic()
        total = len(self.samples)
        for begin in range(0, total, self.block_frames):
            if self._stop.is_set():
                return
            block = self.samples[begin : begin + self.block_frames]
            if self.realtime:
                due = start + (begin + len(block)) / self.rate
                self._stop.wait(max(0.0, due - time.monotonic()))
                if self._stop.is_set():
                    return
                self.blocks.offer(block, arrived=due)
            else:
                while not self.blocks.put(block, timeout=0.1):
                    if self._stop.is_set():
                        return
        while not self._stop.is_set() and not self.blocks.finish(timeout=0.1):
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.blocks.close()
