"""`kws stream make` on your own keywords (--labels) and on a folder with a damaged clip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from kws.cli import app


def _data(samples_dir: Path, root: Path) -> Path:
    """marvin and sheila as keywords, cat and dog as other words, all in the testing list, and
    one marvin clip that is not audio."""
    data = root / "data"
    listed = []
    for word in ("marvin", "sheila", "cat", "dog"):
        shutil.copytree(samples_dir / "speech_commands" / word, data / word)
        listed += [f"{word}/{p.name}" for p in sorted((data / word).iterdir())]
    (data / "marvin" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (data / "testing_list.txt").write_text("\n".join([*listed, "marvin/broken.wav"]) + "\n")
    (data / "validation_list.txt").write_text("")
    return data


def test_stream_of_custom_keywords_names_them_and_skips_a_damaged_clip(tmp_path: Path, samples_dir: Path) -> None:
    data = _data(samples_dir, tmp_path)
    truth = build_stream_folder(data, [], tmp_path / "s", StreamRecipe(minutes=0.5, seed=3, keyword_share=0.8),
                                labels="marvin,sheila")
    spoken = {k["label"] for k in truth["keywords"]}
    assert spoken == {"marvin", "sheila"}  # not the Speech Commands ten, which this folder has none of
    assert truth["labels"] == "marvin,sheila"
    assert [s["file"] for s in truth["skipped"]] == [str(data / "marvin" / "broken.wav")]
    assert all(k["file"] != str(data / "marvin" / "broken.wav") for k in truth["keywords"])


def test_stream_make_cli_takes_labels(tmp_path: Path, samples_dir: Path) -> None:
    data = _data(samples_dir, tmp_path)
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["stream", "make", "--keywords", str(data), "--labels", "marvin,sheila",
                                      "--minutes", "0.5", "--seed", "3", "--keyword-share", "0.8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"skipped 1 unreadable clip: {data / 'marvin' / 'broken.wav'}")
    truth = json.loads((out / "truth.json").read_text())
    assert truth["keywords"] and {k["label"] for k in truth["keywords"]} <= {"marvin", "sheila"}

    default = CliRunner().invoke(app, ["stream", "make", "--keywords", str(data), "--minutes", "0.3",
                                       "--out", str(tmp_path / "twelve")])
    assert default.exit_code == 1 and "labels not in the dataset: yes, no" in default.output  # the ten by default
