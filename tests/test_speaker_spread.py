"""The accuracy's spread over speakers (cluster bootstrap) beside the clip-count standard error:
the pure function on constructed results, then `kws eval` on real clips with the shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.evaluation.speaker_spread import paired_difference, speaker_spread
from data_prep.splits import speaker_id
from kws.cli import app
from kws.commands.common import SAMPLES

SPEAKERS = [f"spk{i % 18:02d}" for i in range(360)]  # 18 speakers, 20 clips each


def _wrong_on(speakers: set[str], count: int) -> np.ndarray:
    """``count`` wrong clips, taken from ``speakers`` in clip order; the rest right."""
    correct = np.ones(len(SPEAKERS), dtype=bool)
    wrong = [i for i, s in enumerate(SPEAKERS) if s in speakers][:count]
    correct[wrong] = False
    return correct


def test_errors_on_one_speaker_widen_the_interval_that_clips_alone_do_not() -> None:
    spread_out = speaker_spread(_wrong_on(set(SPEAKERS), 36), SPEAKERS)  # 2 wrong per speaker
    one_speaker = speaker_spread(_wrong_on({"spk00", "spk01"}, 36), SPEAKERS)  # 2 speakers never right
    assert spread_out.accuracy == one_speaker.accuracy == pytest.approx(0.9)
    assert spread_out.clip_se == one_speaker.clip_se == pytest.approx(np.sqrt(0.9 * 0.1 / 360))
    assert spread_out.high - spread_out.low == 0.0  # every speaker at 90 %: resampling them changes nothing
    width = one_speaker.high - one_speaker.low
    assert width > 4 * 1.96 * one_speaker.clip_se  # the clustered errors make the honest interval far wider
    assert one_speaker.low < 0.9 < one_speaker.high
    assert speaker_spread(_wrong_on({"spk00", "spk01"}, 36), SPEAKERS) == one_speaker  # seeded: reproducible


def test_clips_without_a_speaker_are_their_own_clusters_and_one_speaker_is_no_spread() -> None:
    assert speaker_spread([True, False, True], ["a", "a", ""]) is None  # one named speaker: nothing to resample
    spread = speaker_spread([True, False, True, True], ["b", "a", "", ""])
    assert spread.speakers == 2
    assert spread.per_speaker == (("a", 1, 0), ("b", 1, 1), ("(no speaker)", 2, 2))
    assert spread.to_json()["per_speaker"]["(no speaker)"] == {"n": 2, "correct": 2}
    with pytest.raises(ValueError, match="3 results for 2 speaker ids"):
        speaker_spread([True, True, False], ["a", "b"])


def test_a_paired_difference_resamples_both_models_on_the_same_speakers() -> None:
    base = _wrong_on({"spk00", "spk01"}, 36)  # two hard speakers, hard for both models
    better = base.copy()
    better[[i for i, s in enumerate(SPEAKERS) if s == "spk00"][:4]] = True  # A gets 4 of those clips right
    a, b = speaker_spread(better, SPEAKERS), speaker_spread(base, SPEAKERS)
    same = paired_difference(b, b)
    assert (same.difference, same.low, same.high, same.only_a, same.only_b) == (0.0, 0.0, 0.0, 0, 0)
    paired = paired_difference(a, b)
    assert paired.difference == pytest.approx(4 / 360) and (paired.only_a, paired.only_b) == (4, 0)
    assert 0.0 <= paired.low <= paired.difference <= paired.high  # never worse on any draw of speakers
    # unpaired intervals overlap almost entirely; pairing removes the speakers both find hard
    assert paired.high - paired.low < 0.25 * (b.high - b.low)
    with pytest.raises(ValueError, match="did not score the same clips"):
        paired_difference(a, speaker_spread(base[:-1], SPEAKERS[:-1]))


def test_kws_eval_against_another_model_on_real_clips(tmp_path: Path) -> None:
    if not (SAMPLES / "cascade").is_dir():
        pytest.skip("samples/cascade is not shipped in this checkout")
    out = tmp_path / "eval.json"
    args = ["eval", str(SAMPLES / "speech_commands"), "--model", str(SAMPLES / "cascade"),
            "--against", str(SAMPLES / "models" / "stage2"), "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    against = report["against"]
    assert against["difference"] == pytest.approx(report["accuracy"] - report["stage2_accuracy"])
    assert against["accuracy"] == pytest.approx(report["stage2_accuracy"])  # stage 2 alone, as the cascade measured it
    assert against["only_a"] - against["only_b"] == round(against["difference"] * report["n"])
    low, high = against["ci95"]
    assert low <= against["difference"] <= high
    assert "cascade - stage2:" in result.output and "paired, whole speakers resampled" in result.output


@pytest.mark.parametrize("model", ["models/stage2", "cascade"])
def test_kws_eval_reports_the_spread_over_the_test_speakers(model: str, tmp_path: Path) -> None:
    if not (SAMPLES / model).is_dir():
        pytest.skip(f"samples/{model} is not shipped in this checkout")
    data = SAMPLES / "speech_commands"
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", str(data), "--model", str(SAMPLES / model), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    spread = report["speakers"]
    listed = {speaker_id(line) for line in (data / "testing_list.txt").read_text().split()}
    assert spread["speakers"] == len(listed) and set(spread["per_speaker"]) <= listed | {"(no speaker)"}
    assert sum(s["n"] for s in spread["per_speaker"].values()) == report["n"]
    assert sum(s["correct"] for s in spread["per_speaker"].values()) == round(report["accuracy"] * report["n"])
    low, high = spread["ci95"]
    assert low <= report["accuracy"] <= high
    assert f"95 % interval over {len(listed)} speakers" in result.output
    if model == "cascade":  # the gate's recall too: its tau was set on other speakers
        gate = report["stage1_recall_speakers"]
        keyword_clips = sum(r["n"] for label, r in report["per_label"].items() if not label.startswith("_"))
        assert sum(s["n"] for s in gate["per_speaker"].values()) == keyword_clips
        assert sum(s["correct"] for s in gate["per_speaker"].values()) == round(report["stage1_recall"] * keyword_clips)
        assert gate["ci95"][0] <= report["stage1_recall"] <= gate["ci95"][1]
        assert f"stage-1 recall {report['stage1_recall']:.3f}: 95 % interval over" in result.output
    else:
        assert "stage1_recall_speakers" not in report
