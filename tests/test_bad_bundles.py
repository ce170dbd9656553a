"""Issue 18, D7-D9 and after: a damaged or foreign cascade bundle or model folder is refused
when it is opened, by every command, in one line naming the file and what is wrong with it."""

from __future__ import annotations

import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest
from cli_errors import YES, kws, one_line_error

from data_prep.config import FeatureConfig
from data_prep.toml_io import dumps
from kws.commands.common import SAMPLES


# --- D7 / D8 / D9: every bundle and model is checked once, on open ---------------------------------
def _swap_stage2_into_stage1(b: Path) -> None:
    shutil.copy(b / "stage2" / "model_int8.tflite", b / "stage1" / "model_int8.tflite")


def _drop_last_label(b: Path) -> None:
    labels = (b / "stage2" / "labels.txt").read_text().split()
    (b / "stage2" / "labels.txt").write_text("".join(f"{label}\n" for label in labels[:-1]))
    manifest = tomllib.loads((b / "cascade.toml").read_text())
    manifest["cascade"]["labels"] = manifest["stage2"]["labels"] = labels[:-1]
    (b / "cascade.toml").write_text(dumps(manifest))


def _stage1_labels_in_stage2(b: Path) -> None:
    for name in ("labels.txt", "model_int8.tflite"):
        shutil.copy(b / "stage1" / name, b / "stage2" / name)
    manifest = tomllib.loads((b / "cascade.toml").read_text())
    manifest["cascade"]["labels"] = manifest["stage2"]["labels"] = manifest["stage1"]["labels"]
    (b / "cascade.toml").write_text(dumps(manifest))


@pytest.mark.parametrize("damage, expected", [
    (_swap_stage2_into_stage1, "stage1/model_int8.tflite: 12 outputs but 3 labels"),  # D8
    (_drop_last_label, "stage2/model_int8.tflite: 12 outputs but 11 labels"),  # D7
    (_stage1_labels_in_stage2, "a stage-1 model in the stage-2 slot"),
])
@pytest.mark.parametrize("command", ["eval", "detect", "energy"])
def test_inconsistent_bundles_are_refused_by_every_command(damage, expected: str, command: str, bundle: Path,
                                                           tmp_path: Path) -> None:
    if bundle != SAMPLES / "cascade":
        pytest.skip("the expected label counts are those of the shipped 12-class cascade")
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    damage(broken)
    args = {"eval": ["eval", SAMPLES / "speech_commands", "--model", broken],
            "detect": ["detect", YES, "--model", broken],
            "energy": ["energy", "--model", broken]}[command]
    one_line_error(kws(*args), expected)


@pytest.mark.parametrize("value, expected", [(99, "bundle format 99 (written by kws"), ("two", "is not a bundle format")])
def test_a_bundle_of_another_format_is_refused(value, expected: str, bundle: Path, tmp_path: Path) -> None:
    """The manifest's format was written and never read: a newer kws's bundle ran as if it were this one's."""
    newer = tmp_path / "newer"
    shutil.copytree(bundle, newer)
    manifest = tomllib.loads((newer / "cascade.toml").read_text())
    manifest["cascade"]["format"] = value
    (newer / "cascade.toml").write_text(dumps(manifest))
    for args in (["detect", YES], ["energy"]):
        one_line_error(kws(*args, "--model", newer), str(newer / "cascade.toml"), expected)


@pytest.mark.parametrize("field, value, expected", [("threshold", 1.5, "threshold = 1.5 (in [0, 1])"),
                                                    ("window_ms", float("nan"), "window_ms = nan (a finite time > 0)")])
def test_a_bad_smoothing_value_is_named(field: str, value: float, expected: str, bundle: Path, tmp_path: Path) -> None:
    """The error printed the whole SmoothingConfig; a NaN window was not refused at all."""
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    manifest = tomllib.loads((broken / "cascade.toml").read_text())
    manifest["smoothing"][field] = value
    (broken / "cascade.toml").write_text(dumps(manifest))
    line = one_line_error(kws("detect", YES, "--model", broken), str(broken), "invalid smoothing: " + expected)
    assert "SmoothingConfig" not in line


def test_a_bundle_built_for_other_features_is_refused(bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(bundle, broken)
    other = FeatureConfig(clip_ms=1500.0)
    for path in (broken / "features.toml", broken / "stage1" / "features.toml", broken / "stage2" / "features.toml"):
        other.save(path)
    manifest = tomllib.loads((broken / "cascade.toml").read_text())
    manifest["cascade"]["fingerprint"] = other.fingerprint()
    (broken / "cascade.toml").write_text(dumps(manifest))
    one_line_error(kws("detect", YES, "--model", broken), "model_int8.tflite: input shape", "does not match")


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04broken"])
def test_a_corrupt_keras_model_is_one_clear_line(content: bytes, stage2: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(stage2, model)
    (model / "model.keras").write_bytes(content)
    line = one_line_error(kws("eval", SAMPLES / "speech_commands", "--model", model), str(model / "model.keras"), "corrupt")
    assert "File not found" not in line


def test_a_keras_archive_with_a_broken_config_is_one_clear_line(stage2: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(stage2, model)
    with zipfile.ZipFile(model / "model.keras", "w") as z:
        z.writestr("config.json", "{not json")
    one_line_error(kws("eval", SAMPLES / "speech_commands", "--model", model), str(model / "model.keras"), "corrupt Keras model")
