"""Mel filterbanks, (n_mels, n_fft/2 + 1) float64: the two recipes a FeatureConfig can name.

"slaney" is librosa's default; "tensorflow" is ``tf.signal.linear_to_mel_weight_matrix``, the
MLPerf Tiny KWS front end's, written in numpy (the teacher adapter computes it per training batch,
where eager TF is slow; a test checks it against TF).
"""

from __future__ import annotations

import numpy as np


def hz_to_mel_htk(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, as ``tf.signal.linear_to_mel_weight_matrix`` uses."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def slaney(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa  # lazy: librosa costs ~1 s to import; `kws --help` does not need it

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float64)


def tensorflow(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangles linear in HTK mel, unit peak, no area normalisation; TF zeroes the DC bin."""
    bins = n_fft // 2 + 1
    mel = hz_to_mel_htk(np.linspace(0.0, sample_rate / 2.0, bins)[1:])[:, None]
    edges = np.linspace(hz_to_mel_htk(fmin), hz_to_mel_htk(fmax), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    return np.vstack([np.zeros((1, n_mels)), weights]).T


BANKS = {"slaney": slaney, "tensorflow": tensorflow}
