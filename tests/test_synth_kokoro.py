"""Kokoro synthesis with the real model: clips, split by voice, resume, manifest, CLI errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from data_prep import synth_kokoro as kokoro
from data_prep.errors import KwsError
from data_prep.speech_commands import load_dataset
from data_prep.splits import speaker_id
from kws.cli import app

WORDS = ("yes", "go")
VOICES = "af_bella,bm_george"


@pytest.fixture(scope="module")
def run(tmp_path_factory, kokoro_dir):
    """2 words x (2 voices + 1 blend), one of the three held out for validation."""
    model_dir = kokoro_dir
    plan = kokoro.plan(WORDS, kokoro.voice_names(model_dir), voices=VOICES, blend=1, speeds="0.9-1.1",
                       validation_share=0.34, seed=3)
    out = tmp_path_factory.mktemp("kokoro") / "clips"
    manifest = kokoro.synthesize_kokoro(plan, out, model_dir=model_dir, jobs=1)
    return plan, out, manifest


def test_clips_are_one_second_16k_and_not_silent(run):
    plan, out, manifest = run
    files = sorted(out.glob("*/*.wav"))
    assert len(files) == len(WORDS) * 3 == manifest["counts"]["written"]
    for path in files:
        info = sf.info(str(path))
        assert (info.samplerate, info.frames, info.subtype) == (16000, 16000, "PCM_16")
        audio, _ = sf.read(str(path))
        assert np.abs(audio).max() > 0.1 and np.sqrt(np.mean(audio**2)) > 0.005


def test_split_is_by_voice_and_the_folder_reads_as_a_dataset(run):
    plan, out, manifest = run
    validation = (out / "validation_list.txt").read_text().split()
    assert (out / "testing_list.txt").read_text() == ""
    held_sources = [key for key, split in plan.split_of_source.items() if split == "validation"]
    assert len(held_sources) == 1  # round(0.34 * 3 sources)
    held_out = {s.speaker_id for s in plan.speakers if s.source.key == held_sources[0]}
    blend = plan.blends[0]
    assert {speaker_id(e) for e in validation} == held_out and len(validation) == len(WORDS)
    assert manifest["blends"] == [{"key": blend.key, "first": blend.first, "second": blend.second, "weight": blend.weight}]
    dataset = load_dataset(out, ",".join(WORDS), silence_pct=0, unknown_pct=0)
    assert dataset.speakers("validation") == held_out
    assert not dataset.speakers("training") & held_out and len(dataset.speakers("training")) == 2


def test_manifest_records_the_run(run):
    plan, out, manifest = run
    saved = json.loads((out / "synth.json").read_text())
    assert saved == json.loads(json.dumps(manifest)) and saved["complete"]
    assert saved["settings"]["voices"] == VOICES.split(",") and saved["settings"]["seed"] == 3
    assert {s["id"] for s in saved["speakers"]} == {s.speaker_id for s in plan.speakers}
    assert all(0.9 <= s["speed"] <= 1.1 for s in saved["speakers"])
    assert saved["counts"]["clips_per_split"] == {"training": 4, "validation": 2, "testing": 0}


def test_rerun_skips_clips_on_disk_and_fills_gaps(run, kokoro_dir):
    plan, out, _ = run
    files = sorted(out.glob("*/*.wav"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    manifest = kokoro.synthesize_kokoro(plan, out, model_dir=kokoro_dir, jobs=1)
    assert (manifest["counts"]["written"], manifest["counts"]["existing"]) == (1, len(files) - 1)
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in files[1:]) and files[0].is_file()


def test_phrase_longer_than_the_clip_is_skipped_with_a_hint(tmp_path, kokoro_dir):
    model_dir = kokoro_dir
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path / "out"), "--engine", "kokoro", "--words", "hey kws",
                                      "--voices", "af_bella", "--clip-ms", "500", "--jobs", "1",
                                      "--model-dir", str(model_dir)])
    assert result.exit_code == 0, result.output
    assert "--clip-ms" in result.output and not list((tmp_path / "out").glob("*/*.wav"))
    manifest = json.loads((tmp_path / "out" / "synth.json").read_text())
    assert manifest["counts"]["too_long"] == 1 and manifest["too_long"] == {"hey_kws": 1}


def test_missing_model_is_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path / "out"), "--engine", "kokoro",
                                      "--model-dir", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and kokoro.MODEL_FILE in lines[0] and kokoro.VOICES_FILE in lines[0]


def test_missing_package_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "kokoro_onnx", None)  # as if not installed
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path / "out"), "--engine", "kokoro"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "pip install 'kws[tts]'" in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_folder_kws_did_not_write_is_refused_even_with_force(tmp_path, samples_dir, force):
    """--force wrote into a person's own dataset: with Kokoro its validation_list.txt and
    testing_list.txt were rewritten from the synthetic speakers alone (every recorded clip
    moved into training). Refused now, with or without --force, before any clip."""
    clip = next((samples_dir / "speech_commands" / "yes").glob("*.wav"))
    (tmp_path / "yes").mkdir()
    shutil.copy(clip, tmp_path / "yes" / clip.name)
    for name in ("validation_list.txt", "testing_list.txt"):
        (tmp_path / name).write_text(f"yes/{clip.name}\n")
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path), "--words", "yes", "--voices", "1", *force])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == (f"error: {tmp_path}: not written by kws (no synth.json or confusables.json); "
                                     "refusing to replace it even with --force")
    assert [p.name for p in (tmp_path / "yes").iterdir()] == [clip.name]
    assert all((tmp_path / n).read_text() == f"yes/{clip.name}\n" for n in ("validation_list.txt", "testing_list.txt"))


@pytest.mark.parametrize("words", ["", " , "])
def test_no_word_in_words_is_one_line_not_all_35(words: str, tmp_path):
    """An empty --words (an unset $WORDS in a script) synthesized all 35 words."""
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path / "out"), "--words", words])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip() == f"error: --words {words!r}: no word in it (leave --words out for all 35 v0.02 words)"
    assert not (tmp_path / "out").exists()


def test_speakers_voices_speeds_and_blends_are_stable():
    available = ["af_bella", "am_adam", "bm_george", "ef_dora", "zf_xiaobei"]
    assert kokoro.choose_voices("english", available) == ["af_bella", "am_adam", "bm_george"]
    assert kokoro.choose_voices("all", available) == sorted(available)
    with pytest.raises(KwsError, match="nobody"):
        kokoro.choose_voices("af_bella,nobody", available)
    assert kokoro.parse_speeds("0.8,1.0,1.2") == ("list", (0.8, 1.0, 1.2))
    assert kokoro.parse_speeds("0.85-1.15") == ("range", (0.85, 1.15))
    for bad in ("fast", "3-4", "0.4,1.0"):  # outside Kokoro's 0.5-2.0: refused before a clip, not mid-run
        with pytest.raises(KwsError, match="--speeds"):
            kokoro.parse_speeds(bad)
    with pytest.raises(KwsError, match="--blend -1"):  # was taken as no blends, silently
        kokoro.make_blends(available, -1, seed=1)
    blends = kokoro.make_blends(available, 4, seed=1)
    assert blends == kokoro.make_blends(available, 4, seed=1) and len(set(blends)) == 4
    assert all(b.second != b.first and 0 < b.weight < 1 for b in blends)
    speakers = kokoro.make_speakers([kokoro.Source("af_bella")], "0.8,1.2", seed=0)
    assert [s.speaker_id for s in speakers] == [kokoro.Speaker(kokoro.Source("af_bella"), 0.8).speaker_id,
                                               kokoro.Speaker(kokoro.Source("af_bella"), 1.2).speaker_id]
    assert kokoro.Speaker(kokoro.Source("af_bella"), 1.0).speaker_id == "kokoro" + __import__("hashlib").sha1(
        b"af_bella/1.000").hexdigest()[:8]
