"""Streaming resampling from a device's native rate to the model's rate.

soxr's ResampleStream keeps its filter state between chunks, so the output does not depend on
how the input was cut into blocks (unlike resampling each block on its own, which clicks at
every block edge). Same library and quality as the batch path's ``data_prep.audio.resample``.
"""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    def __init__(self, in_rate: int, out_rate: int, quality: str = "HQ") -> None:
        self.in_rate, self.out_rate = int(in_rate), int(out_rate)
        self._stream = None
        if self.in_rate != self.out_rate:
            self._stream = soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality=quality)

    @property
    def active(self) -> bool:
        return self._stream is not None

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Mono float32 in at ``in_rate``; whatever output is ready at ``out_rate`` (``last``
        flushes the filter's tail at the end of the stream)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last)
