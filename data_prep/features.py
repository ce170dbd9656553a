"""MFCC math: one implementation shared by the batch and streaming drivers.

Unlike ``librosa.feature.mfcc`` there is no centring (which changes T) and no whole-clip
``top_db`` clipping (which a stream cannot know): frames are cut exactly as the device cuts
them and the log has a fixed floor, so batch == stream == firmware.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import scipy.fft

from data_prep.audio import load_audio
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError
from data_prep.mel_banks import BANKS

_CHUNK = 32


@functools.lru_cache(maxsize=32)
def feature_tables(config: FeatureConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window (l,), mel filterbank (n_mels, n_bins), DCT-II ortho (n_mfcc, n_mels)), float32.

    These are also what the C frontend embeds as ``const`` arrays.
    """
    import scipy.signal  # lazy: scipy.signal costs ~0.5 s to import; `kws --help` does not need it

    window = scipy.signal.get_window(config.window, config.window_samples, fftbins=True)
    mel = BANKS[config.mel_bank](config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
    dct = scipy.fft.dct(np.eye(config.n_mels), type=2, norm="ortho", axis=0)[: config.n_mfcc]
    tables = tuple(np.ascontiguousarray(t, dtype=np.float32) for t in (window, mel, dct))
    for t in tables:
        t.setflags(write=False)
    return tables  # type: ignore[return-value]


def frame_signal(samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(..., n) -> (..., F, l) frames of l samples every s samples, no padding.

    F = 1 + (n - l) // s, so a clip of L samples gives exactly ``config.num_frames``.
    """
    l, s = config.window_samples, config.stride_samples
    n = samples.shape[-1]
    if n < l:
        return np.zeros(samples.shape[:-1] + (0, l), dtype=np.float32)
    count = 1 + (n - l) // s
    windows = np.lib.stride_tricks.sliding_window_view(samples, l, axis=-1)
    return windows[..., ::s, :][..., :count, :]


def spectrum(frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """|X|^2 or |X| of each windowed frame, as ``config.spectrum`` says."""
    window, _, _ = feature_tables(config)
    spec = scipy.fft.rfft(frames * window, n=config.n_fft, axis=-1)
    power = (spec.real**2 + spec.imag**2).astype(np.float32)
    return power if config.spectrum == "power" else np.sqrt(power)


def log_mel(frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Log mel energies in dB with a fixed floor (``power_to_db(..., top_db=None)``)."""
    _, mel, _ = feature_tables(config)
    energies = spectrum(frames, config) @ mel.T
    return 10.0 * np.log10(np.maximum(energies, config.log_floor))


def mfcc_from_frames(frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """(..., F, l) frames -> (..., F, n_mfcc) float32 MFCC: the single feature computation."""
    _, _, dct = feature_tables(config)
    return (log_mel(frames.astype(np.float32, copy=False), config) @ dct.T).astype(np.float32)


def mfcc(samples: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Batch MFCC: (n,) -> (F, n_mfcc) or (B, n) -> (B, F, n_mfcc).

    For clips of exactly L samples F == ``config.num_frames``.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 1 or samples.shape[0] <= _CHUNK:
        return mfcc_from_frames(frame_signal(samples, config), config)
    # Small chunks keep the FFT working set in cache: ~5x faster than one huge batch here.
    return np.concatenate(
        [mfcc(samples[i : i + _CHUNK], config) for i in range(0, samples.shape[0], _CHUNK)]
    )


def features(audio: np.ndarray | str | Path, config: FeatureConfig | None = None) -> np.ndarray:
    """MFCC of a recording, as the models and the firmware compute them: (T, n_mfcc) float32.

    ``audio``: a file path (WAV/FLAC/OGG/MP3, any rate, mixed to mono and resampled to
    ``config.sample_rate``) or float32 mono samples of shape (n,) at that rate. ``config``:
    default ``FeatureConfig()`` (16 kHz, 40/20 ms, 40 mels, 10 MFCC). T = 1 + (n - l) // s
    rows for n samples, window l, stride s (0 rows when n < l); a 1-s clip gives the
    ``config.num_frames`` rows a model takes.
    """
    cfg = config or FeatureConfig()
    if isinstance(audio, (str, Path)):
        samples = load_audio(Path(audio), cfg.sample_rate)
    else:
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioError(f"samples of shape {samples.shape}: expected mono audio of shape (n,)")
    return mfcc(samples, cfg)
