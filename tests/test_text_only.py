"""kws cascade train for a keyword with no recordings (kws/recipe/text_only.py), run for real.

A new user's first try: "computer" is no folder of samples/speech_commands. Without --synth (or
without Kokoro) the run is refused in one line that says what to add, and writes nothing. With
Kokoro voices it trains, holds some voices out for the gate and the operating points, and a
re-run resumes every step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.runtime.bundle import Bundle
from data_prep.errors import DatasetError
from data_prep.speech_commands import load_dataset
from kws.cli import app
from kws.recipe.config import CascadeRecipe
from kws.recipe.text_only import VIEW, VOICES

WORD = "computer"


def _train(data: Path, out: Path, *extra: str, labels: str = WORD):
    args = ["cascade", "train", data, "--labels", labels, "--out", out, "--epochs", "1", "--stage1-epochs", "1",
            "--confusables", "0", "--calibrate-snr", "off", "--quiet", *extra]
    return CliRunner().invoke(app, [str(a) for a in args])


def _error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("extra, says", [((), "add --synth N"), (("--synth", "4", "--synth-engine", "espeak"), "Kokoro")],
                         ids=["no-synth", "espeak"])
def test_a_keyword_without_recordings_needs_kokoro_voices(tmp_path: Path, samples_dir: Path, extra, says) -> None:
    data = samples_dir / "speech_commands"
    result = _train(data, tmp_path / "bundle", *extra)
    assert result.exit_code != 0
    line = _error_line(result.output)
    assert WORD in line and says in line and "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # refused before the work folder or the bundle


@pytest.mark.parametrize("labels, folder", [("Computer", "computer"), ("hey kws", "hey_kws"), ("hey__kws", "hey_kws")])
def test_a_keyword_from_text_is_named_as_its_folder(tmp_path: Path, samples_dir: Path, labels, folder) -> None:
    """Its voices are written to word_folder(label): a label that names another folder found
    none of them, after the synthesis ("no clips of Computer")."""
    result = _train(samples_dir / "speech_commands", tmp_path / "bundle", "--synth", "4", labels=labels)
    assert result.exit_code != 0 and f"write it as {folder} " in _error_line(result.output)
    assert not any(tmp_path.iterdir())


def test_a_recorded_keyword_without_validation_clips_is_refused_before_the_voices(tmp_path: Path, samples_dir: Path,
                                                                                  kokoro_dir: Path) -> None:
    data = tmp_path / "data"
    for word in ("yes", "bed"):
        shutil.copytree(samples_dir / "speech_commands" / word, data / word)
    (data / "validation_list.txt").write_text("")  # no validation clip of "yes"
    (data / "testing_list.txt").write_text("")
    result = _train(data, tmp_path / "bundle", "--synth", "4", labels=f"yes,{WORD}")
    assert result.exit_code != 0 and "no validation clips of yes" in _error_line(result.output)
    assert not (tmp_path / "bundle.work").exists()  # no voices were made


def test_the_synth_step_leaves_text_only_keywords_to_the_view() -> None:
    recipe = CascadeRecipe(data="d", labels=f"{WORD},yes", synth=5, unknown_pct=100.0, text_only=(WORD,))
    words = recipe.words_to_synthesize()
    assert WORD not in words and "yes" in words and len(words) == 3  # yes + two other words


def test_an_extra_folder_may_lack_the_text_only_keyword_but_not_every_keyword(tmp_path: Path, samples_dir: Path) -> None:
    extra = tmp_path / "extra"
    shutil.copytree(samples_dir / "speech_commands" / "yes", extra / "yes")
    shutil.copytree(samples_dir / "speech_commands" / "bed", extra / "bed")
    listed = load_dataset(extra, f"yes,{WORD}", partial=True)  # "computer" comes from the view
    assert {e.label for e in listed.all_examples} >= {"yes", "_unknown_"}
    with pytest.raises(DatasetError, match=f"labels not in the dataset: {WORD}"):
        load_dataset(extra, WORD, partial=True)  # it would add nothing: refused as before


def test_trained_from_text_with_held_out_voices(tmp_path: Path, samples_dir: Path, kokoro_dir: Path) -> None:
    data = samples_dir / "speech_commands"
    out = tmp_path / "computer"
    result = _train(data, out, "--synth", "4")
    assert result.exit_code == 0, result.output
    assert f"no recordings of {WORD}" in result.output and "synthetic voices only" in result.output
    bundle = Bundle.open(out)
    assert WORD in bundle.labels
    work = out.with_name("computer.work")
    recorded = json.loads((work / "recipe.json").read_text())["recipe"]
    assert recorded["data"] == str(work / VIEW) and recorded["text_only"] == [WORD]
    # a keyword from text: the gate learns stage 2's keyword mass unless told otherwise (measured better)
    assert recorded["gate_from_stage2"] and "keyword mass" in result.output
    gate = json.loads((work / "train_stage1" / "model" / "train_config.json").read_text())
    assert gate["teacher"] == str(work / "train_stage2" / "model")
    view = load_dataset(work / VIEW, WORD)
    held_out = {e.speaker for e in view.examples("validation") if e.label == WORD}
    trained = {e.speaker for e in view.examples("training") if e.label == WORD}
    assert held_out and trained and not held_out & trained  # calibrated on voices it never trained on
    assert len(held_out) + len(trained) == 4 and (work / VOICES / WORD).is_dir()
    # the synthetic other words (no keyword among them) train whole as _unknown_, in both stages
    for stage in (1, 2):
        trained_on = json.loads((work / f"train_stage{stage}" / "model" / "train_config.json").read_text())
        assert str(work / "synth" / "clips") in trained_on["negatives"] and not trained_on["extra_data"]
    truth = json.loads((work / "cascade" / "validation_stream" / "truth.json").read_text())
    streamed = [k for k in truth["keywords"] if k["label"] == WORD]
    assert streamed and all(Path(k["file"]).parent.name == WORD for k in streamed)
    # the recordings of every other word are the data's own, in their own split
    def yes_clips(root: Path) -> set[tuple[str, str]]:
        return {(e.split, e.path.name) for e in load_dataset(root, "yes").all_examples if e.label == "yes"}
    assert yes_clips(work / VIEW) == yes_clips(data)
    again = _train(data, out, "--synth", "4", "--force")
    assert again.exit_code == 0, again.output
    assert again.output.count("up to date, skipped") == 6
