"""Long recordings are read block by block (issue #18, D15): the same detections as the
whole-file path, at the model's rate, at another rate and in stereo; ``features`` reads one clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
from typer.testing import CliRunner

from cascade.evaluation.mining import cut_windows
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.runtime.bundle import Bundle
from cascade.runtime.stream_run import detect_file, run_blocks, run_stream
from data_prep.audio import CLIP_MARGIN_S, MAX_RECORDING_S, load_audio, load_clip, read_audio, stream_audio
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError
from data_prep.features import mfcc
from data_prep.locate import word_start
from kws.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
BLOCK = 5000  # frames per read: a 30 s stream is ~100 blocks, none aligned with the 20 ms stride


@pytest.fixture(scope="module")
def bundle() -> Bundle:
    return Bundle.open(SAMPLES / "cascade")


@pytest.fixture(scope="module")
def stream_wav(tmp_path_factory, bundle: Bundle) -> Path:
    out = tmp_path_factory.mktemp("stream") / "s"
    build_stream_folder(SAMPLES / "speech_commands", [], out, StreamRecipe(minutes=0.5, seed=3))
    return out / "stream.wav"


def _whole_file(bundle: Bundle, path: Path):
    """The path before #18: the whole file in memory, fed stride by stride."""
    return run_stream(bundle, load_audio(path, bundle.config.sample_rate))


def _events(result) -> list[tuple[float, str, float]]:
    return [(d.t, d.label, d.score) for d in result.detections]


def test_blocks_give_the_whole_file_detections(bundle: Bundle, stream_wav: Path) -> None:
    before = _whole_file(bundle, stream_wav)
    after = run_blocks(bundle, stream_audio(stream_wav, bundle.config.sample_rate, block_frames=BLOCK))
    assert before.detections, "the stream must hold detectable keywords for this test to mean anything"
    assert _events(after) == _events(before)
    assert (after.steps, after.stage2_runs, after.duration_s) == (before.steps, before.stage2_runs, before.duration_s)
    np.testing.assert_array_equal(after.trace_posterior, before.trace_posterior)
    np.testing.assert_array_equal(after.trace_t, before.trace_t)
    lean = detect_file(bundle, stream_wav, trace=False)  # what `kws detect` runs: no per-step trace kept
    assert _events(lean) == _events(before) and lean.trace_t.size == 0 and lean.steps == before.steps


def test_blocks_at_another_rate_match_within_resampling_tolerance(bundle: Bundle, stream_wav: Path,
                                                                  tmp_path: Path) -> None:
    audio, rate = sf.read(str(stream_wav), dtype="float32")
    wav = tmp_path / "s44.wav"
    sf.write(str(wav), soxr.resample(audio, rate, 44100, quality="HQ"), 44100, subtype="FLOAT")
    before = _whole_file(bundle, wav)
    after = run_blocks(bundle, stream_audio(wav, bundle.config.sample_rate, block_frames=BLOCK))
    streamed = np.concatenate(list(stream_audio(wav, bundle.config.sample_rate, block_frames=BLOCK)))
    whole = load_audio(wav, bundle.config.sample_rate)
    assert len(streamed) == len(whole) and np.abs(streamed - whole).max() < 1e-4
    assert [(d.label, round(d.t, 2)) for d in after.detections] == [(d.label, round(d.t, 2)) for d in before.detections]
    assert np.abs(after.trace_posterior - before.trace_posterior).max() < 0.02


def test_stereo_blocks_are_mixed_down_like_the_whole_file(bundle: Bundle, stream_wav: Path, tmp_path: Path) -> None:
    audio, rate = sf.read(str(stream_wav), dtype="float32")
    wav = tmp_path / "stereo.wav"
    sf.write(str(wav), np.stack([audio, 0.25 * audio[::-1]], axis=1), rate, subtype="FLOAT")
    before = _whole_file(bundle, wav)
    after = run_blocks(bundle, stream_audio(wav, bundle.config.sample_rate, block_frames=BLOCK))
    assert _events(after) == _events(before)
    np.testing.assert_array_equal(after.trace_posterior, before.trace_posterior)


def test_streamed_files_are_validated_like_whole_files(tmp_path: Path) -> None:
    bad = np.zeros(20000, np.float32)
    bad[12345] = np.nan
    wav = tmp_path / "nan.wav"
    sf.write(str(wav), bad, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan.wav: contains NaN/Inf samples \(first at index 12345\)"):
        list(stream_audio(wav, 16000, block_frames=BLOCK))
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="zero samples"):
        list(stream_audio(empty, 16000))
    with pytest.raises(AudioError, match="no such file"):
        list(stream_audio(tmp_path / "missing.wav", 16000))


def test_features_reads_one_clip_not_the_recording(stream_wav: Path, tmp_path: Path) -> None:
    """A long file given as a clip: only its first MAX_RECORDING_S are decoded and searched,
    and the clip is the window there that holds the most speech (as training sees it)."""
    cfg = FeatureConfig()
    data, _ = read_audio(stream_wav, max_seconds=1.25)
    assert len(data) == 20000  # only what was asked for is decoded
    head = load_audio(stream_wav, cfg.sample_rate)[: round((MAX_RECORDING_S + CLIP_MARGIN_S) * cfg.sample_rate)]
    start = word_start(head, cfg.clip_samples, cfg.sample_rate)
    whole = head[start : start + cfg.clip_samples]
    np.testing.assert_array_equal(load_clip(stream_wav, cfg), whole)
    audio, rate = sf.read(str(stream_wav), dtype="float32")
    wav = tmp_path / "s22.wav"
    sf.write(str(wav), soxr.resample(audio, rate, 22050, quality="HQ"), 22050, subtype="FLOAT")
    assert np.abs(load_clip(wav, cfg) - load_audio(wav, cfg.sample_rate)[start : start + cfg.clip_samples]).max() < 1e-5
    out = tmp_path / "f.npy"
    result = CliRunner().invoke(app, ["features", str(stream_wav), "--out", str(out)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out), mfcc(whole, cfg))


def test_mining_cuts_the_same_windows_from_blocks_as_from_the_whole_stream() -> None:
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(50_000).astype(np.float32)
    cuts = np.cumsum(rng.integers(1, 7000, 30))
    blocks = np.split(audio, cuts[cuts < len(audio)])
    ends = [5, 16000, 16001, 23456, 40000, 50_000]
    got = cut_windows(iter(blocks), ends, 16000)
    assert len(got) == len(ends)
    for end, window in zip(ends, got, strict=True):
        np.testing.assert_array_equal(window, audio[max(0, end - 16000) : end])
