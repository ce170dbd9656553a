"""Streaming MFCC equals batch MFCC whatever the chunking (the openWakeWord-style invariance
test, as a hypothesis property over configs and chunk sizes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.audio import load_audio, load_clip
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.streaming import StreamingFrontend


def stream(front: StreamingFrontend, audio: np.ndarray, sizes: list[int]) -> np.ndarray:
    rows, i, k = [], 0, 0
    while i < len(audio):
        n = sizes[k % len(sizes)]
        rows.append(front.push(audio[i : i + n]))
        i, k = i + n, k + 1
    return np.concatenate(rows)


configs = st.builds(
    lambda stride, window_mult, n_mfcc, window, rate: FeatureConfig(
        sample_rate=rate, clip_ms=500, stride_ms=stride, window_ms=stride * window_mult,
        n_mfcc=n_mfcc, window=window, fmax=rate / 2,
    ),
    stride=st.sampled_from([10, 16, 20, 25]),
    window_mult=st.sampled_from([1, 1.5, 2, 3]),
    n_mfcc=st.integers(1, 20),
    window=st.sampled_from(["hann", "hamming"]),
    rate=st.sampled_from([8000, 16000]),
)


@settings(max_examples=40, deadline=None)
@given(cfg=configs, sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=6), seed=st.integers(0, 2**16))
def test_stream_equals_batch_for_any_config_and_chunking(cfg: FeatureConfig, sizes: list[int], seed: int) -> None:
    audio = np.random.default_rng(seed).standard_normal(cfg.clip_samples).astype(np.float32) * 0.2
    front = StreamingFrontend(cfg)
    streamed = stream(front, audio, sizes)
    batch = mfcc(audio, cfg)
    assert streamed.shape == batch.shape == cfg.input_shape
    np.testing.assert_allclose(streamed, batch, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(front.window, batch, rtol=1e-5, atol=1e-4)
    assert front.ready


def test_real_speech_one_stride_at_a_time(keyword_wav: Path, config: FeatureConfig) -> None:
    clip = load_clip(keyword_wav, config)
    front = StreamingFrontend(config)
    streamed = stream(front, clip, [config.stride_samples])
    np.testing.assert_allclose(streamed, mfcc(clip, config), rtol=1e-5, atol=1e-4)


def test_long_audio_window_tracks_the_latest_clip(dev_data: Path, config: FeatureConfig) -> None:
    """Over a long recording the ring holds exactly the batch features of the last L samples
    that end on a frame boundary."""
    noise = load_audio(dev_data / "_background_noise_" / "running_tap.wav", config.sample_rate)[: 5 * config.sample_rate]
    front = StreamingFrontend(config)
    stream(front, noise, [777, 123, 4096])
    end = (front.frames_emitted - 1) * config.stride_samples + config.window_samples
    np.testing.assert_allclose(front.window, mfcc(noise[end - config.clip_samples : end], config), rtol=1e-5, atol=1e-4)


def test_reset_forgets_everything(config: FeatureConfig, rng: np.random.Generator) -> None:
    front = StreamingFrontend(config)
    front.push(rng.standard_normal(5000).astype(np.float32))
    front.reset()
    assert front.frames_emitted == 0 and not front.ready and not front.window.any()
    assert front.push(np.zeros(config.window_samples - 1, np.float32)).shape == (0, config.n_mfcc)
    assert front.push(np.zeros(1, np.float32)).shape == (1, config.n_mfcc)
