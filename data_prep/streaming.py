"""Streaming MFCC: audio in chunks of any size, one MFCC row per stride out.

It keeps only the samples of the window not yet complete and calls the same
``mfcc_from_frames`` as the batch path, so the rows it emits equal the batch rows.
"""

from __future__ import annotations

import numpy as np

from data_prep.config import FeatureConfig
from data_prep.features import frame_signal, mfcc_from_frames


class StreamingFrontend:
    """Resettable streaming feature extractor (leftover samples + a ring of the last T rows)."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        self._ring = np.zeros(self.config.input_shape, dtype=np.float32)
        self.frames_emitted = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Feed samples; return the (k, n_mfcc) rows completed by them (k may be 0)."""
        cfg = self.config
        buf = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32).reshape(-1)])
        frames = frame_signal(buf, cfg)
        k = frames.shape[0]
        rows = mfcc_from_frames(frames, cfg) if k else np.zeros((0, cfg.n_mfcc), np.float32)
        self._pending = buf[k * cfg.stride_samples :].copy()
        self._update_ring(rows)
        self.frames_emitted += k
        return rows

    def _update_ring(self, rows: np.ndarray) -> None:
        t = self.config.num_frames
        if rows.shape[0] >= t:
            self._ring = rows[-t:].copy()
        elif rows.shape[0]:
            self._ring = np.concatenate([self._ring[rows.shape[0] :], rows])

    @property
    def window(self) -> np.ndarray:
        """The latest T rows, (T, n_mfcc): the input a model sees at this moment."""
        return self._ring

    @property
    def ready(self) -> bool:
        """True once a full clip's worth of rows has been seen since reset."""
        return self.frames_emitted >= self.config.num_frames
