"""Recordings of any length (#17): the word is located in a long recording by energy, on every
path (clip loader, feature cache, training clips with jitter, evaluation, calibration), and a
phrase longer than the clip is named. Real clips from samples/, padded with real noise."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from long_audio import RATE, long_folder, noise_bed, pad_word
from typer.testing import CliRunner

from cascade.runtime.model_dir import FEATURES
from data_prep.audio import CLIP_MARGIN_S, check_samples, load_audio, load_clip, pad_or_crop, read_audio, resample, to_mono
from data_prep.cache import FeatureCache, cache_key
from data_prep.config import FeatureConfig
from data_prep.features import mfcc
from data_prep.locate import LOCATE_RULE, word_start
from data_prep.recordings import recording_clips
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.train.config import TrainConfig
from kws.train.data import TrainingArrays
from kws.train.run import training_arrays

CFG = FeatureConfig()
NOTICE = re.compile(r"(\d+) clips longer than 1000 ms: word located by energy")


def _word_energy_kept(clip: np.ndarray, recording: np.ndarray, offset: int, start: int) -> float:
    """Share of the word's energy (the original clip's samples) inside [start, start + L)."""
    energy = np.zeros(len(recording))
    energy[offset : offset + len(clip)] = clip.astype(np.float64) ** 2
    return float(energy[start : start + CFG.clip_samples].sum() / energy.sum())


@pytest.fixture(scope="module")
def words(samples_dir: Path) -> list[np.ndarray]:
    root = samples_dir / "speech_commands"
    return [load_audio(p, RATE) for w in ("yes", "up", "stop", "left") for p in sorted((root / w).glob("*.wav"))[:8]]


@pytest.fixture(scope="module")
def noise_files(samples_dir: Path) -> list[Path]:
    return sorted((samples_dir / "speech_commands" / "_background_noise_").glob("*.wav"))


def test_located_window_holds_the_word_where_the_first_second_does_not(words, noise_files) -> None:
    rng = np.random.default_rng(7)
    located, first = [], []
    for i, clip in enumerate(words):
        recording, offset = pad_word(clip, noise_files[i % len(noise_files)], rng)
        located.append(_word_energy_kept(clip, recording, offset, word_start(recording, CFG.clip_samples, RATE)))
        first.append(_word_energy_kept(clip, recording, offset, 0))
    assert min(located) > 0.9 and np.mean(located) > 0.98
    assert np.mean(first) < 0.6  # the old rule: mostly the noise before the word


def test_a_click_or_a_breath_does_not_move_the_window(words, noise_files) -> None:
    rng = np.random.default_rng(8)
    for i, clip in enumerate(words[::4]):
        recording, offset = pad_word(clip, noise_files[i % len(noise_files)], rng, seconds=(2.8, 3.1))
        far = 0 if offset > len(recording) - offset - len(clip) else len(recording) - 800  # the larger gap
        recording[far + 100 : far + 420] = 0.9 * np.sign(rng.normal(size=320))  # a 20 ms pop at full scale
        start = word_start(recording, CFG.clip_samples, RATE)
        assert _word_energy_kept(clip, recording, offset, start) > 0.9


def test_clips_of_one_clip_length_are_cut_as_before(samples_dir: Path) -> None:
    """Regression: every sample clip (<= 1 s) gives today's samples, hence today's features."""
    paths = sorted(p for p in (samples_dir / "speech_commands").glob("*/*.wav") if p.parent.name != "_background_noise_")
    for path in paths:
        data, rate = read_audio(path, max_seconds=CFG.clip_ms / 1000.0 + CLIP_MARGIN_S)
        before = pad_or_crop(check_samples(resample(to_mono(data), rate, RATE), str(path)), CFG.clip_samples)
        np.testing.assert_array_equal(load_clip(path, CFG), before, err_msg=str(path))


def test_the_cache_serves_the_located_window_under_a_new_key(words, noise_files, tmp_path: Path) -> None:
    recording, _ = pad_word(words[0], noise_files[0], np.random.default_rng(3), seconds=(2.5, 2.5))
    wav = tmp_path / "long.wav"
    sf.write(wav, recording, RATE, subtype="FLOAT")
    start = word_start(recording, CFG.clip_samples, RATE)
    assert start > 0
    with FeatureCache(tmp_path / "cache", CFG) as cache:
        assert cache.dir.name == cache_key(CFG) and LOCATE_RULE in cache.dir.name  # first-second entries: not read
        for _ in range(2):  # a miss, then a hit
            np.testing.assert_array_equal(cache.features_for([wav])[0], mfcc(recording[start : start + CFG.clip_samples], CFG))
        assert cache.stats.hits == 1


@pytest.fixture(scope="module")
def long_data(samples_dir: Path, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("long") / "sc"
    return out, long_folder(samples_dir / "speech_commands", out, seed=1)


def test_training_clips_are_the_located_windows_jittered_within_the_recording(long_data) -> None:
    data, _ = long_data
    dataset = load_dataset(data, "yes,no,up")
    arrays = training_arrays(dataset, TrainConfig(labels="yes,no,up"), CFG)
    examples = dataset.examples("training")
    assert arrays.context is not None and len(arrays.clips) == len(examples)
    margin = arrays.context.before.shape[1]
    assert margin == RATE // 10  # +-100 ms
    for i in (0, 5, len(examples) - 1):
        if examples[i].path is None:
            continue
        recording = load_audio(examples[i].path, RATE)
        start = word_start(recording, CFG.clip_samples, RATE)
        np.testing.assert_array_equal(arrays.clips[i], recording[start : start + CFG.clip_samples])
        seen = set()
        for epoch in range(6):
            clip = arrays.clip(i, seed=0, epoch=epoch)
            np.testing.assert_array_equal(clip, arrays.clip(i, seed=0, epoch=epoch))  # seeded
            hits = [s for s in range(max(0, start - margin), start + margin + 1)
                    if np.array_equal(recording[s : s + CFG.clip_samples], clip)]
            assert hits, "a jittered clip is a window of the recording within +-100 ms"
            seen.add(hits[0])
        assert len(seen) > 1
    plain = TrainingArrays(arrays.clips, arrays.targets, arrays.noise_pool)
    np.testing.assert_array_equal(plain.clip(3, 0, 1), arrays.clips[3])  # no context: no jitter


def test_one_second_clips_train_exactly_as_before(samples_dir: Path) -> None:
    dataset = load_dataset(samples_dir / "speech_commands", "yes,no")
    clips = recording_clips(dataset.examples("training"), CFG)
    assert clips.context is None and clips.notices == ()


def _train(data: Path, out: Path, *extra: str):
    args = ["train", str(data), "--out", str(out), "--stage", "2", "--arch", "ds_cnn", "--arch-params",
            '{"filters": 16, "blocks": 2}', "--labels", "yes,no,up,down,left,right,on,off,stop,go", "--epochs", "8",
            "--batch-size", "32", "--unknown-pct", "30", "--quiet", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output, json.loads((out / "metrics.json").read_text())


def test_training_and_evaluation_say_once_that_words_were_located(long_data, trained_models) -> None:
    data, _ = long_data
    dataset = load_dataset(data, "yes,no,up")
    lines: list[str] = []
    training_arrays(dataset, TrainConfig(labels="yes,no,up"), CFG, log=lines.append)
    files = sum(e.path is not None for e in dataset.examples("training"))
    assert [int(n) for line in lines for n in NOTICE.findall(line)] == [files], lines
    result = CliRunner().invoke(app, ["eval", str(data), "--model", str(trained_models["stage2"]), "--split", "validation"])
    assert result.exit_code == 0, result.output
    assert len(NOTICE.findall(result.output)) == 1, result.output


@pytest.mark.slow
def test_training_on_long_recordings_matches_one_second_clips(long_data, samples_dir: Path, tmp_path: Path) -> None:
    data, _ = long_data
    long_out, long_metrics = _train(data, tmp_path / "long")
    assert len(NOTICE.findall(long_out)) == 1, long_out
    short_out, short_metrics = _train(samples_dir / "speech_commands", tmp_path / "short")
    assert not NOTICE.search(short_out)
    long_acc, short_acc = long_metrics["validation"]["float_accuracy"], short_metrics["validation"]["float_accuracy"]
    assert long_acc >= short_acc - 0.1, (long_acc, short_acc)


def _phrase(first: Path, second: Path) -> np.ndarray:
    """Two real words back to back, each its loudest 650 ms: a ~1.3 s wake phrase."""
    cut = FeatureConfig(clip_ms=650.0)
    return np.concatenate([load_clip(first, cut), load_clip(second, cut)])


def phrase_folder(samples_dir: Path, out: Path) -> Path:
    """'yes' recordings replaced by 'yes'+'up' phrases, 'no' by 'no'+'go', others as unknown."""
    root = samples_dir / "speech_commands"
    partner = {"yes": "up", "no": "go"}
    seconds = {w: sorted((root / p).glob("*.wav")) for w, p in partner.items()}

    def make(path: Path, rng: np.random.Generator):
        if path.parent.name not in partner:
            return None
        others = seconds[path.parent.name]
        return _phrase(path, others[int(rng.integers(0, len(others)))])

    long_folder(root, out, seed=2, seconds=(2.2, 3.1), make=make)
    return out


def test_a_phrase_longer_than_the_clip_is_named_with_the_fix(samples_dir: Path, tmp_path: Path) -> None:
    data = phrase_folder(samples_dir, tmp_path / "phrase")
    examples = load_dataset(data, "yes,no,left").examples("training")
    notices = recording_clips(examples, CFG).notices
    warned = [n for n in notices if "--clip-ms" in n]
    assert {re.search(r"of '(\w+)'", n).group(1) for n in warned} == {"yes", "no"}, notices
    assert "longer than the 1000 ms clip" in warned[0]
    assert not [n for n in recording_clips(examples, FeatureConfig(clip_ms=1500.0)).notices if "--clip-ms" in n]


@pytest.mark.slow
def test_a_1500_ms_wake_phrase_end_to_end(samples_dir: Path, tmp_path: Path) -> None:
    from test_export_firmware import compile_and_selftest

    data = phrase_folder(samples_dir, tmp_path / "phrase")
    runner = CliRunner()
    common = ["--labels", "yes,no", "--epochs", "4", "--batch-size", "32", "--unknown-pct", "50", "--quiet",
              "--clip-ms", "1500"]
    for stage, arch in ((1, "tiny"), (2, "tiny")):
        result = runner.invoke(app, ["train", str(data), "--out", str(tmp_path / f"s{stage}"), "--stage", str(stage),
                                     "--arch", arch, *common])
        assert result.exit_code == 0, result.output
        assert "--clip-ms" not in result.output
        assert "clips longer than 1500 ms: word located by energy" in result.output
    config = FeatureConfig(clip_ms=1500.0)
    assert FeatureConfig.load(tmp_path / "s2" / FEATURES) == config
    bundle = tmp_path / "bundle"
    result = runner.invoke(app, ["cascade", "build", "--stage1", str(tmp_path / "s1"), "--stage2", str(tmp_path / "s2"),
                                 "--data", str(data), "--out", str(bundle), "--recall", "0.9"])
    assert result.exit_code == 0, result.output
    assert "clips longer than 1500 ms: word located by energy" in result.output
    stream = tmp_path / "stream.wav"
    phrase = load_audio(min((data / "yes").glob("*.wav")), RATE)
    sf.write(stream, np.concatenate([noise_bed(samples_dir / "speech_commands/_background_noise_/pink_noise.wav",
                                               RATE * 2, np.random.default_rng(0)), phrase] * 3), RATE)
    result = runner.invoke(app, ["detect", str(stream), "--model", str(bundle)])
    assert result.exit_code == 0, result.output
    fw = tmp_path / "fw"
    result = runner.invoke(app, ["export", "--out", str(fw), "--model", str(bundle), "--data", str(data)])
    assert result.exit_code == 0, result.output
    header = (fw / "src" / "kws_cascade_config.h").read_text()
    assert re.search(rf"#define KWS_CLIP_SAMPLES {config.clip_samples}\b", header)
    assert re.search(rf"#define KWS_NUM_FRAMES {config.num_frames}\b", header) and config.num_frames == 74
    assert "selftest passed" in compile_and_selftest(fw, tmp_path / "build")
