"""Fixed sets of option values are typer choices and input paths must exist: a typo or a missing
file is one line naming the value and the problem, exit code 2, before any work starts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cascade.energy.battery import BATTERIES
from data_prep.splits import SPLITS
from export.firmware import TARGETS
from kws.cli import app
from kws.train.compress.optimize import METHODS
from kws.train.distribute import STRATEGIES

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
CLIP = next((SAMPLES / "speech_commands" / "yes").glob("*.wav"))


def _usage_error(args: list[str], expected: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [result.output.strip()], result.output  # one line
    assert result.output.startswith("error: ") and expected in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train", "{data}", "--out", "{tmp}/m", "--stage", "3"], "'--stage': '3' is not one of '1', '2'"),
        (["train", "{data}", "--out", "{tmp}/m", "--arch", "resnet50"], "'resnet50' is not one of 'bc_resnet', 'ds_cnn', 'tc_resnet', 'tiny'"),
        (["train", "{data}", "--out", "{tmp}/m", "--noise-mode", "loud"], "'loud' is not one of 'volume', 'snr'"),
        (["train", "{data}", "--out", "{tmp}/m", "--strategy", "tpu"], f"'tpu' is not one of {', '.join(map(repr, STRATEGIES))}"),
        (["eval", "{data}", "--split", "train"], f"'train' is not one of {', '.join(map(repr, SPLITS))}"),
        (["optimize", "{data}", "--out", "{tmp}/o", "--method", "distill"], f"'distill' is not one of {', '.join(map(repr, METHODS))}"),
        (["optimize", "{data}", "--out", "{tmp}/o", "--split", "training"], "'training' is not one of 'validation', 'testing'"),
        (["export", "--out", "{tmp}/e", "--target", "esp32"], f"'esp32' is not one of {', '.join(map(repr, TARGETS))}"),
        (["energy", "--battery", "d-cell"], f"'d-cell' is not one of {', '.join(map(repr, BATTERIES))}"),
        (["stream", "make", "--keywords", "{data}", "--out", "{tmp}/s", "--split", "dev"], "'dev' is not one of"),
        (["search", "--data", "{data}", "--out", "{tmp}/s", "--arch", "vgg"], "'vgg' is not one of"),
    ],
)
def test_a_value_outside_its_choices_is_a_usage_error(tmp_path: Path, args: list[str], expected: str) -> None:
    _usage_error([a.format(data=SAMPLES / "speech_commands", tmp=tmp_path) for a in args], expected)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["eval", "{data}", "--workers", "0"], "Invalid value for '--workers'"),
        (["bench", "eval", "--data", "{data}", "--clips", "0"], "Invalid value for '--clips'"),  # named a temp folder
        (["stream", "eval", "{tmp}", "--target-fa", "-1"], "Invalid value for '--target-fa'"),
        (["stream", "eval", "{tmp}", "--hit-target", "2"], "Invalid value for '--hit-target'"),
        (["stream", "calibrate", "{tmp}", "--out", "{tmp}/b", "--target-fa", "nan"], "Invalid value for '--target-fa'"),
        (["stream", "calibrate", "{tmp}", "--out", "{tmp}/b", "--high-hit-target", "1.5"], "Invalid value for '--high-hit-target'"),
        (["stream", "mine", "{tmp}", "--out", "{tmp}/m", "--min-score", "2"], "Invalid value for '--min-score'"),
        (["data", "negatives", "{tmp}/n", "--synth-voices", "-1"], "Invalid value for '--synth-voices'"),
    ],
)
def test_a_number_out_of_its_range_is_a_usage_error(tmp_path: Path, args: list[str], expected: str) -> None:
    """Each was accepted: a run that wrote a bundle or clips for a target nothing can meet."""
    _usage_error([a.format(data=SAMPLES / "speech_commands", tmp=tmp_path) for a in args], expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, expected",
    [
        (["features", "{tmp}/a/rather/long/folder/name/so/that/a/panel/would/wrap/the/path/missing.wav"],
         "file '{tmp}/a/rather/long/folder/name/so/that/a/panel/would/wrap/the/path/missing.wav' does not exist"),
        (["features", "{clip}", "--config", "{tmp}/none.toml"], "none.toml' does not exist"),
        (["detect", "{tmp}"], "file '{tmp}' is a directory"),
        (["detect", "{clip}", "--model", "{tmp}/no_bundle"], "no_bundle' does not exist"),
        (["train", "{tmp}/no_data", "--out", "{tmp}/m"], "no_data' does not exist"),
        (["train", "{clip}", "--out", "{tmp}/m"], "is a file"),
        (["data", "info", "{tmp}/no_data"], "no_data' does not exist"),
        (["stream", "eval", "{tmp}/no_stream"], "no_stream' does not exist"),
        (["live", "--input", "{tmp}/no.wav"], "no.wav' does not exist"),
        (["model-stats", "{tmp}/model.tflite"], "model.tflite' does not exist"),
    ],
)
def test_a_missing_input_is_one_line_naming_it(tmp_path: Path, args: list[str], expected: str) -> None:
    _usage_error([a.format(tmp=tmp_path, clip=CLIP) for a in args], expected.format(tmp=tmp_path))


def test_choices_are_listed_in_help_and_battery_ignores_case(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    assert "<1|2>" in result.output and "<volume|snr>" in result.output and "bc_resnet|ds_cnn|tc_resnet|tiny" in result.output
    model = next((SAMPLES / "models").rglob("*.tflite"), None)
    if model is None:
        pytest.skip("no shipped .tflite in samples/models")
    result = runner.invoke(app, ["energy", "--model", str(model), "--profile", "nrf52840", "--battery", "CR2032"])
    assert result.exit_code == 0, result.output


def test_a_missing_required_option_keeps_typers_usage_panel(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", str(SAMPLES / "speech_commands")])
    assert result.exit_code == 2 and "Missing option '--out'" in result.output and "Usage:" in result.output


def _commands(group, path: tuple[str, ...] = ()):
    """(path, command) of every command and sub-command under ``group``."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))


def test_every_command_named_in_a_help_text_exists() -> None:
    """`kws train --arch` sent users to `kws models`, which never existed: every `kws NAME ...`
    quoted in a command's or an option's help must be a command whose --help works."""
    root = typer.main.get_command(app)
    commands = dict(_commands(root))
    named = set()
    for path, command in commands.items():
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        for text in texts:
            for words in re.findall(r"`kws ((?:[a-z][a-z0-9-]* ?)+)", text):
                # the longest prefix of the quoted words that is a command
                parts = tuple(words.split())
                found = next((parts[:n] for n in range(len(parts), 0, -1) if parts[:n] in commands), None)
                assert found is not None, f"kws {' '.join(path)}: help names `kws {words.strip()}`, no such command"
                named.add(found)
    assert ("model-stats",) in named  # what `kws train --arch` points at now
    for path in sorted(named):
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
