"""The public Python API (``from kws import Detector, features``) on the shipped cascade and real
keyword recordings: the same events as ``kws detect``, whatever the chunking or sample type."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import kws
from cascade.runtime.bundle import SHIPPED, is_bundle
from data_prep.audio import load_audio, load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError
from data_prep.features import mfcc
from kws import Detector, Event, features
from kws.cli import app

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not is_bundle(SHIPPED), reason="no shipped cascade in samples/cascade")


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector.open()


@pytest.fixture(scope="module")
def recording(samples_dir: Path, tmp_path_factory) -> Path:
    """Six seconds of real keywords (yes, stop, left) over real background noise, as int16 WAV."""
    root = samples_dir / "speech_commands"
    audio = load_audio(sorted((root / "_background_noise_").glob("*.wav"))[0], 16000)[: 6 * 16000] * 0.1
    for i, word in enumerate(("yes", "stop", "left")):
        clip = load_audio(sorted((root / word).glob("*.wav"))[0], 16000)
        audio[16000 * 2 * i + 4000 : 16000 * 2 * i + 4000 + len(clip)] += clip
    path = tmp_path_factory.mktemp("api") / "keywords.wav"
    sf.write(str(path), np.clip(audio, -1, 1), 16000, subtype="PCM_16")
    return path


def _push_in_chunks(detector: Detector, samples: np.ndarray, chunk: int) -> list[Event]:
    detector.reset()
    return [e for start in range(0, len(samples), chunk) for e in detector.push(samples[start : start + chunk])]


def test_import_kws_loads_no_tensorflow() -> None:
    code = "import sys, kws; print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'ai_edge_litert')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert set(kws.__all__) >= {"Detector", "Event", "features"}


def test_detector_gives_the_events_of_kws_detect(detector: Detector, recording: Path, tmp_path: Path) -> None:
    events_file = tmp_path / "events.jsonl"
    result = CliRunner().invoke(app, ["detect", str(recording), "--events", str(events_file)])
    assert result.exit_code == 0, result.output
    cli = [json.loads(line) for line in events_file.read_text().splitlines()]
    detector.reset()
    events = detector.push(load_audio(recording, detector.sample_rate))
    assert len(events) >= 2 and {e.label for e in events} <= {"yes", "stop", "left"}  # keywords, nothing else
    assert [e.to_dict() for e in events] == cli


def test_events_do_not_depend_on_the_chunk_size(detector: Detector, recording: Path) -> None:
    samples = load_audio(recording, detector.sample_rate)[: 3 * 16000]  # "yes" (3 s keep 1-sample pushes fast)
    whole = _push_in_chunks(detector, samples, len(samples))
    assert [e.label for e in whole] == ["yes"]
    for chunk in (1, 160, 333, 16000):
        assert _push_in_chunks(detector, samples, chunk) == whole, chunk


def test_int16_input_equals_float_input(detector: Detector, recording: Path) -> None:
    pcm, rate = sf.read(str(recording), dtype="int16")
    assert pcm.dtype == np.int16 and rate == detector.sample_rate
    as_int = _push_in_chunks(detector, pcm, 4000)
    as_float = _push_in_chunks(detector, load_audio(recording, rate), 4000)
    assert as_int == as_float and as_int


def test_reset_starts_a_new_stream(detector: Detector, recording: Path) -> None:
    samples = load_audio(recording, detector.sample_rate)
    detector.reset()
    first = detector.push(samples)
    continued = detector.push(samples)  # no reset: time runs on, smoothing state carries over
    assert [e.time for e in continued] != [e.time for e in first]
    detector.reset()
    assert detector.push(samples) == first


def test_another_sample_rate_is_resampled_as_a_stream(detector: Detector, recording: Path) -> None:
    samples = load_audio(recording, 16000)
    at_48k = load_audio(recording, 48000)
    d48 = Detector(detector.bundle, sample_rate=48000)
    events = [e for start in range(0, len(at_48k), 4800) for e in d48.push(at_48k[start : start + 4800])] + d48.flush()
    assert d48.sample_rate == 48000 and d48.labels == detector.labels
    assert [e.label for e in events] == [e.label for e in _push_in_chunks(detector, samples, 16000)]


def test_bad_samples_are_one_clear_error(detector: Detector) -> None:
    with pytest.raises(AudioError, match=r"shape \(100, 2\): expected mono"):
        detector.push(np.zeros((100, 2), np.float32))
    with pytest.raises(AudioError, match="dtype int32"):
        detector.push(np.zeros(100, np.int32))
    with pytest.raises(AudioError, match="NaN/Inf .first at index 3"):
        detector.push(np.array([0, 0, 0, np.nan], np.float32))


def test_features_of_a_path_and_of_samples(samples_dir: Path) -> None:
    wav = sorted((samples_dir / "speech_commands" / "yes").glob("*.wav"))[0]
    cfg = FeatureConfig()
    feats = features(wav)
    assert feats.shape == (cfg.num_frames, cfg.n_mfcc) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, mfcc(load_clip(wav, cfg), cfg))  # what `kws features` shows
    np.testing.assert_array_equal(features(load_audio(wav, 16000), cfg), feats)
    assert features(np.zeros(3 * 16000, np.float32)).shape == (1 + (3 * 16000 - cfg.window_samples) // cfg.stride_samples, cfg.n_mfcc)


def test_the_readme_example_runs(capsys) -> None:
    section = (REPO / "README.md").read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 8
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "(49, 10)" and out[1].startswith("[Event(label='yes', time=")
