"""``kws data info``: the table, the JSON twin, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from kws.cli import app

runner = CliRunner()


def test_info_dev_table_and_json(dev_data: Path, tmp_path: Path):
    out = tmp_path / "info.json"
    result = runner.invoke(app, ["data", "info", str(dev_data), "--labels", "35", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "release-lists" in result.output
    assert "1541" in result.output and "284" in result.output and "367" in result.output
    assert "background noise files: 6" in result.output
    summary = json.loads(out.read_text())
    assert summary["layout"] == "release-lists"
    assert summary["totals"] == {"training": 1541, "validation": 284, "testing": 367}
    assert summary["speakers"] == {"training": 83, "validation": 18, "testing": 18}
    assert summary["speakers_total"] == 119
    assert len(summary["labels"]) == 35 and summary["label_set"] == "35"
    assert summary["counts"]["testing"]["yes"] == sum(
        1 for line in (dev_data / "testing_list.txt").read_text().split() if line.startswith("yes/")
    )
    assert len(summary["background_noise_files"]) == 6


def test_info_twelve_classes_default(dev_data: Path):
    result = runner.invoke(app, ["data", "info", str(dev_data)])
    assert result.exit_code == 0, result.output
    assert "_silence_" in result.output and "_unknown_" in result.output
    assert "12 classes" in result.output


def test_info_hash_split_and_custom_keywords(shared_data: Path, tmp_path: Path):
    out = tmp_path / "v01.json"
    root = shared_data / "speech_commands_v0.01_sample"
    result = runner.invoke(app, ["data", "info", str(root), "--labels", "marvin,wow", "--json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    assert summary["layout"] == "release-hash"
    assert summary["labels"] == ["_silence_", "_unknown_", "marvin", "wow"]
    assert summary["background_noise_files"] == []


def test_info_refuses_to_overwrite_json_without_force(dev_data: Path, tmp_path: Path):
    out = tmp_path / "info.json"
    out.write_text("keep me")
    result = runner.invoke(app, ["data", "info", str(dev_data), "--json", str(out)])
    assert result.exit_code == 1
    assert "already exists (use --force" in result.output
    assert out.read_text() == "keep me"
    result = runner.invoke(app, ["data", "info", str(dev_data), "--json", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["layout"] == "release-lists"


def test_info_bad_inputs_are_one_line_errors(dev_data: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "d" / "yes").mkdir(parents=True)
    shutil.copy(dev_data / "yes" / "022cd682_nohash_0.wav", tmp_path / "d" / "yes")
    (tmp_path / "d" / "testing_list.txt").write_text("yes/gone_nohash_0.wav\n")
    (tmp_path / "d" / "validation_list.txt").write_text("")
    cases = [
        ([str(tmp_path / "missing")], "missing' does not exist"),  # typer's check: exit code 2
        ([str(tmp_path / "empty")], "no word folders"),
        ([str(tmp_path / "d")], "1 listed files are missing, e.g. yes/gone_nohash_0.wav"),
        ([str(dev_data), "--labels", "yes,foo"], "labels not in the dataset: foo"),
        ([str(dev_data), "--labels", "7"], "unknown label set '7'"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["data", "info", *args])
        assert result.exit_code == (2 if "does not exist" in message else 1), (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
        assert "Traceback" not in result.output


def test_info_refuses_a_non_finite_share_in_one_line(samples_dir: Path):
    """NaN or infinite --silence-pct/--unknown-pct was a traceback (NaN/inf to integer)."""
    for option, value in (("--silence-pct", "nan"), ("--unknown-pct", "inf")):
        result = runner.invoke(app, ["data", "info", str(samples_dir / "speech_commands"), option, value])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.output.strip().startswith("error: silence_pct and unknown_pct must be >= 0 and finite, got ")
        assert len(result.output.strip().splitlines()) == 1
