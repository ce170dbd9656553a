"""Digital silence: a window of exact zeros is silence, whatever a model makes of it.

A muted or idle microphone (a privacy switch, a PDM clock not yet running, the monitor of an
idle PulseAudio sink) delivers exact zeros. Every ``_silence_`` clip in training is recorded
noise at some gain, so zeros lie outside what the models learned: the shipped gate gives them
P(keyword) 0.70 and opened on every step, so stage 2 ran all the time a microphone was muted.
A frame of zeros has every mel band at the log floor, the smallest c0 the front end can
produce (c0 is a positive sum of the bands); even noise at -160 dBFS sits above it. A window
whose frames all sit at that floor carries nothing to classify, so neither stage runs there and
the step is silence: in batch evaluation, streams, live and firmware alike (the header's
``KWS_SILENT_C0``, counted per frame by ``kws_silence_push`` in ``kws_decision.c``).
"""

from __future__ import annotations

import functools

import numpy as np

from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.labels import SILENCE, UNKNOWN

# c0 units above the all-floor frame that still count as silent: float rounding of the 40-band
# sum in Python or C is ~1e-3 of it; noise at -160 dBFS is 1.6 above, int16 dither ~200.
TOLERANCE = 0.05


@functools.lru_cache(maxsize=8)
def silent_c0(config: FeatureConfig) -> float:
    """The largest c0 of a digitally silent frame: the front end's own c0 of zeros, plus the tolerance."""
    return float(mfcc(np.zeros(config.window_samples, np.float32), config)[..., 0].max()) + TOLERANCE


def silent_windows(features: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(N, T, n_mfcc) raw MFCC windows -> (N,) bool: every frame at the log floor."""
    return np.all(np.asarray(features)[..., 0] <= silent_c0(config), axis=-1)


def silent_output(stage1_labels: tuple[str, ...]) -> np.ndarray:
    """What stage 1 is taken to say on digital silence: all mass on _silence_ (else _unknown_;
    a gate with neither says nothing, so P(keyword) is 0 and the gate stays shut)."""
    out = np.zeros(len(stage1_labels), np.float32)
    background = [name for name in (SILENCE, UNKNOWN) if name in stage1_labels]
    if background:
        out[stage1_labels.index(background[0])] = 1.0
    return out
