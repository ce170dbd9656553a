"""The negative-audio corpus and what training takes from it: real files, real decoding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from data_prep.augment import AugmentConfig, augment, noise_segments, rms
from data_prep.config import FeatureConfig
from data_prep.negatives import SENTENCES_PER_READER, SPLITS, Source, build_negatives, split_of
from kws.cli import app
from kws.train.run import negative_windows

runner = CliRunner()


@pytest.fixture()
def corpus(samples_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """'music': the sample noise recordings as long OGG 'tracks' at 44.1 kHz stereo; 'other':
    short clips, one of them a truncated FLAC as real corpora have."""
    noise = sorted((samples_dir / "speech_commands" / "_background_noise_").glob("*.wav"))
    music, other = tmp_path / "music", tmp_path / "other"
    music.mkdir()
    other.mkdir()
    for i, path in enumerate(noise[:3]):
        audio, rate = sf.read(path, dtype="float32")
        stereo = np.stack([audio, audio], axis=1)
        sf.write(music / f"track{i}.ogg", stereo[::1], rate, format="OGG", subtype="VORBIS")
    clips = sorted((samples_dir / "speech_commands").glob("*/*.wav"))
    for path in clips[:12]:
        sf.write(other / f"{path.parent.name}_{path.stem}.flac", sf.read(path, dtype="float32")[0], 16000)
    good = (other / f"{clips[0].parent.name}_{clips[0].stem}.flac").read_bytes()
    (other / "broken.flac").write_bytes(good[: len(good) // 3])
    return music, other


def test_split_is_stable_and_covers_all_splits() -> None:
    names = [f"music/track{i}.ogg" for i in range(200)]
    first = [split_of(n) for n in names]
    assert first == [split_of(n) for n in names]
    shares = {s: first.count(s) / len(first) for s in SPLITS}
    assert 0.55 < shares["training"] < 0.85 and shares["validation"] > 0.05 and shares["testing"] > 0.05


def test_corpus_is_split_by_file_and_held_out_goes_to_testing(corpus, tmp_path: Path) -> None:
    music, other = corpus
    out = tmp_path / "neg"
    manifest = build_negatives(out, [Source(name="music", path=music), Source(name="other", path=other, held_out=True)])
    rows = manifest["files"]
    assert {r["split"] for r in rows if r["source"] == "other"} == {"testing"}
    assert len(manifest["skipped"]) == 1 and "broken.flac" in manifest["skipped"][0]
    for row in rows:
        audio, rate = sf.read(out / row["file"], dtype="float32")
        assert rate == 16000 and audio.ndim == 1 and abs(len(audio) / rate - row["seconds"]) < 1e-3
        assert row["file"].startswith(f"{row['split']}/{row['source']}/")
    assert json.loads((out / "negatives.json").read_text())["summary"]["testing/other"]["files"] == 12
    with pytest.raises(Exception, match="already exists"):
        build_negatives(out, [Source(name="music", path=music)])


def test_negatives_cli_one_line_errors(corpus, tmp_path: Path) -> None:
    music, _ = corpus
    result = runner.invoke(app, ["data", "negatives", str(tmp_path / "x"), "--source", "no-equals-sign"])
    assert result.exit_code != 0 and "NAME=FOLDER" in result.output and "Traceback" not in result.output
    ok = runner.invoke(app, ["data", "negatives", str(tmp_path / "y"), "--source", f"music={music}"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["data", "negatives", str(tmp_path / "y"), "--source", f"music={music}"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_negatives_of_nothing_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """With no source and no voices it wrote an empty corpus and said so as a success."""
    result = runner.invoke(app, ["data", "negatives", str(tmp_path / "n")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"error: {tmp_path / 'n'}: nothing to write: give --source" in result.output
    assert not (tmp_path / "n").exists()


def test_a_source_that_is_no_folder_says_so(tmp_path: Path) -> None:
    """Both said "no audio files", which sends a user looking for files in a folder that is not there."""
    afile = tmp_path / "a.txt"
    afile.write_text("not a folder")
    for source, says in ((tmp_path / "nosuch", "no such folder"), (afile, "a file, not a folder of audio")):
        result = runner.invoke(app, ["data", "negatives", str(tmp_path / "n"), "--source", f"s={source}"])
        assert result.exit_code == 1 and result.output.strip() == f"error: {source}: {says}", result.output
        assert not (tmp_path / "n").exists()


def test_long_recordings_give_many_windows_short_ones_their_loudest(rng: np.random.Generator) -> None:
    length = 16000
    word = np.zeros(24000, np.float32)
    word[15000:17000] = 0.5
    (short,) = negative_windows(word, FeatureConfig())
    assert short.shape == (length,) and np.abs(short).max() == 0.5
    track = rng.normal(0, 0.1, 60 * length).astype(np.float32)
    track[: 10 * length] = 0.0  # a silent intro gives no windows
    windows = negative_windows(track, FeatureConfig())
    assert 15 <= len(windows) < 24 and (rms(windows) > 1e-3).all()


def test_snr_mode_still_puts_noise_under_silence(rng: np.random.Generator) -> None:
    cfg = AugmentConfig(noise_prob=1.0, noise_mode="snr", snr_db_range=(10.0, 10.0), volume_range=(0.1, 0.1), shift_ms=0)
    noise = (rng.normal(0, 0.2, 32000).astype(np.float32),)
    batch = np.zeros((3, 16000), np.float32)
    batch[1] = rng.normal(0, 0.1, 16000)
    out = augment(batch, noise, cfg, np.random.default_rng(0), sample_rate=16000)
    assert (rms(out[[0, 2]]) > 0.01).all()  # silent rows got noise at the volume
    assert 20 * np.log10(rms(batch[1]) / rms(out[1] - batch[1])) == pytest.approx(10.0, abs=0.05)


def test_noise_weights_choose_the_pool_share(rng: np.random.Generator) -> None:
    pool = (np.zeros(2000, np.float32), np.ones(2000, np.float32))
    seg = noise_segments(pool, 100, 4000, np.random.default_rng(1), weights=(0.2, 0.8))
    assert seg[:, 0].mean() == pytest.approx(0.8, abs=0.03)


def test_kokoro_speakers_read_sentences_each_in_one_split(tmp_path: Path, kokoro_dir: Path) -> None:
    """Real Kokoro: two speakers, each reading sentences at a random level, named and split by speaker."""
    out = tmp_path / "neg"
    manifest = build_negatives(out, [], kokoro_voices=2, kokoro_dir=kokoro_dir, seed=4)
    rows = [r for r in manifest["files"] if r["source"] == "kokoro"]
    assert len(rows) == 2 * SENTENCES_PER_READER and manifest["kokoro_voices"] == 2
    splits_of: dict[str, set[str]] = {}
    for row in rows:
        speaker = Path(row["file"]).name.split("_")[0]
        splits_of.setdefault(speaker, set()).add(row["split"])
        assert row["file"].startswith(f"{row['split']}/kokoro/kokoro") and row["origin"].startswith("kokoro ")
        audio, rate = sf.read(out / row["file"], dtype="float32")
        assert rate == 16000 and len(audio) / rate > 1.0 and 0.19 < np.abs(audio).max() < 0.91
    assert len(splits_of) == 2 and all(len(s) == 1 for s in splits_of.values())
    assert {s for (s,) in splits_of.values()} == {split_of(f"kokoro/{k}") for k in splits_of}


def test_missing_kokoro_model_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "negatives", str(tmp_path / "neg"), "--kokoro-voices", "3",
                                 "--model-dir", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "Kokoro model not found" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "neg").exists()
