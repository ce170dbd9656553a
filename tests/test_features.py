"""Batch MFCC against librosa's reference, shapes, batching and T for many configs."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest

from data_prep.audio import load_clip
from data_prep.config import FeatureConfig
from data_prep.features import feature_tables, frame_signal, mfcc


def librosa_reference(clip: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """librosa.feature.mfcc with matching settings: the window centred in n_fft by librosa is
    aligned with ours by offsetting the signal, and the log is power_to_db with our fixed floor
    and no top_db (the two differences the design removes on purpose)."""
    off = (cfg.n_fft - cfg.window_samples) // 2
    y = np.pad(clip, (off, cfg.n_fft - cfg.window_samples - off))
    mel = librosa.feature.melspectrogram(
        y=y, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.stride_samples,
        win_length=cfg.window_samples, window=cfg.window, center=False,
        n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, power=2.0,
    )
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=cfg.log_floor, top_db=None)
    return librosa.feature.mfcc(S=log_mel, n_mfcc=cfg.n_mfcc, dct_type=2, norm="ortho").T


@pytest.mark.parametrize(
    "cfg",
    [FeatureConfig(), FeatureConfig(window_ms=30, stride_ms=10, n_mfcc=13, window="hamming", fmax=8000), FeatureConfig(sample_rate=8000, n_mels=32, fmax=4000)],
    ids=["default", "30ms-13mfcc", "8k"],
)
def test_matches_librosa_reference(keyword_wav: Path, cfg: FeatureConfig) -> None:
    clip = load_clip(keyword_wav, cfg)
    ours = mfcc(clip, cfg)
    ref = librosa_reference(clip, cfg)
    assert ours.shape == ref.shape == cfg.input_shape
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-3)


def test_librosa_defaults_differ_as_documented(keyword_wav: Path, config: FeatureConfig) -> None:
    """Why we do not call librosa.feature.mfcc(y=...): centring gives 1 + L//s frames, not T."""
    clip = load_clip(keyword_wav, config)
    centred = librosa.feature.mfcc(y=clip, sr=config.sample_rate, n_mfcc=config.n_mfcc, n_fft=config.n_fft,
                                   hop_length=config.stride_samples, win_length=config.window_samples)
    assert centred.shape[1] == 1 + config.clip_samples // config.stride_samples != config.num_frames


def test_batch_equals_per_clip(dev_data: Path, config: FeatureConfig) -> None:
    paths = sorted((dev_data / "stop").glob("*.wav"))[:40]
    clips = np.stack([load_clip(p, config) for p in paths])
    batch = mfcc(clips, config)
    assert batch.shape == (40, *config.input_shape) and batch.dtype == np.float32
    for i in (0, 17, 39):
        np.testing.assert_array_equal(batch[i], mfcc(clips[i], config))


@pytest.mark.parametrize(("clip_ms", "window_ms", "stride_ms"), [(1000, 40, 20), (1000, 30, 10), (750, 25, 15), (2000, 64, 32)])
def test_frames_follow_the_formula(clip_ms: float, window_ms: float, stride_ms: float, rng: np.random.Generator) -> None:
    cfg = FeatureConfig(clip_ms=clip_ms, window_ms=window_ms, stride_ms=stride_ms)
    x = rng.standard_normal(cfg.clip_samples).astype(np.float32) * 0.1
    frames = frame_signal(x, cfg)
    assert frames.shape == (cfg.num_frames, cfg.window_samples)
    np.testing.assert_array_equal(frames[3], x[3 * cfg.stride_samples : 3 * cfg.stride_samples + cfg.window_samples])
    assert mfcc(x, cfg).shape == cfg.input_shape


def test_silence_hits_the_fixed_floor(config: FeatureConfig) -> None:
    out = mfcc(np.zeros(config.clip_samples, np.float32), config)
    floor_db = 10 * np.log10(config.log_floor)
    np.testing.assert_allclose(out[:, 0], floor_db * np.sqrt(config.n_mels), rtol=1e-5)
    np.testing.assert_allclose(out[:, 1:], 0, atol=1e-3)


def test_tables_are_cached_and_read_only(config: FeatureConfig) -> None:
    window, mel, dct = feature_tables(config)
    assert feature_tables(FeatureConfig()) is feature_tables(config)
    assert window.shape == (config.window_samples,)
    assert mel.shape == (config.n_mels, config.n_fft // 2 + 1) and dct.shape == (config.n_mfcc, config.n_mels)
    with pytest.raises(ValueError):
        mel[0, 0] = 1.0
