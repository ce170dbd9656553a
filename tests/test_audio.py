"""Audio loading: formats, channels, rates, lengths, and every kind of bad file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from data_prep.audio import load_audio, load_clip, pad_or_crop, read_audio, write_audio, write_wav
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError, first_line


@pytest.fixture()
def speech(keyword_wav: Path) -> np.ndarray:
    data, rate = sf.read(keyword_wav, dtype="float32")
    assert rate == 16000
    return data


def test_real_clip_loads_at_clip_length(keyword_wav: Path, config: FeatureConfig) -> None:
    clip = load_clip(keyword_wav, config)
    assert clip.dtype == np.float32 and clip.shape == (config.clip_samples,)
    assert 0 < np.abs(clip).max() <= 1.0


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")])
def test_formats_and_sample_types(tmp_path: Path, speech: np.ndarray, fmt: str, subtype: str) -> None:
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, speech, 16000, format=fmt, subtype=subtype)
    out = load_audio(path, 16000)
    tol = 0.05 if fmt == "OGG" else 1e-4  # Vorbis is lossy
    assert out.shape == speech.shape
    assert np.sqrt(np.mean((out - speech) ** 2)) < tol


def test_stereo_is_mixed_to_mono(tmp_path: Path, speech: np.ndarray) -> None:
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([speech, 0.5 * speech], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 16000), 0.75 * speech, atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_rates_are_resampled(tmp_path: Path, rate: int, config: FeatureConfig) -> None:
    t = np.arange(rate) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / f"tone_{rate}.wav"
    sf.write(path, tone, rate, subtype="PCM_16")
    out = load_clip(path, config)
    assert out.shape == (config.clip_samples,)
    spectrum = np.abs(np.fft.rfft(out[2000:14000]))
    peak_hz = np.argmax(spectrum) * config.sample_rate / 12000
    assert abs(peak_hz - 440) < 3


def test_pad_and_crop_like_the_reference_pipeline() -> None:
    x = np.arange(1, 6, dtype=np.float32)
    np.testing.assert_array_equal(pad_or_crop(x, 8), [1, 2, 3, 4, 5, 0, 0, 0])
    np.testing.assert_array_equal(pad_or_crop(x, 3), [1, 2, 3])
    assert pad_or_crop(np.ones((2, 5), np.float32), 7).shape == (2, 7)


def test_short_clip_is_padded(tmp_path: Path, speech: np.ndarray, config: FeatureConfig) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, speech[:4000], 16000)
    clip = load_clip(path, config)
    assert clip.shape == (config.clip_samples,) and not clip[4000:].any()


def _write_truncated(path: Path, source: Path, keep: int) -> Path:
    path.write_bytes(source.read_bytes()[:keep])
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d, src: d / "missing.wav", "no such file"),
        (lambda d, src: (d / "empty.wav").write_bytes(b"") and None or d / "empty.wav", "empty file"),
        (lambda d, src: _write_truncated(d / "cut_header.wav", src, 30), "not a readable audio file"),
        (lambda d, src: _write_truncated(d / "cut_data.wav", src, 1000), "truncated WAV"),
        (lambda d, src: (d / "text.wav").write_text("this is not audio\n") and d / "text.wav", "not a readable audio file"),
        (lambda d, src: d, "is a directory"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path: Path, keyword_wav: Path, make, message: str) -> None:
    path = make(tmp_path, keyword_wav)
    with pytest.raises(AudioError, match=message) as err:
        load_audio(path, 16000)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_zero_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero samples"):
        load_audio(path, 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf(tmp_path: Path, bad: float) -> None:
    x = np.zeros(1600, np.float32)
    x[100] = bad
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN/Inf"):
        load_audio(path, 16000)


def test_copied_release_file_is_byte_identical_input(tmp_path: Path, keyword_wav: Path, config: FeatureConfig) -> None:
    copy = tmp_path / "copy.wav"
    shutil.copy(keyword_wav, copy)
    np.testing.assert_array_equal(load_clip(copy, config), load_clip(keyword_wav, config))


def test_first_line_of_an_exception_names_the_problem_in_one_line():
    assert first_line(ValueError("bad header\n  at offset 12")) == "bad header"
    assert first_line(RuntimeError("\n  leading blank line\nmore")) == "leading blank line"  # was "" in the archive copy
    assert first_line(OSError()) == "OSError"


def test_write_wav_is_exact_atomic_16_bit_pcm(tmp_path):
    pcm = np.array([0, 1, -1, 32767, -32768, 1234], np.int16)
    path = write_wav(tmp_path / "sub" / "clip.wav", pcm, 16000)
    assert sorted(p.name for p in path.parent.iterdir()) == ["clip.wav"]  # no temp file left
    samples, rate = read_audio(path)
    assert rate == 16000 and np.array_equal(np.round(samples * 32768).astype(np.int16), pcm)
    flac = write_audio(tmp_path / "x.flac", samples, 8000, "FLAC")
    again, rate = read_audio(flac)
    assert rate == 8000 and np.array_equal(again, samples)
