"""``kws bench features`` on a few real clips: the report's shape, not the machine's speed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from kws.cli import app
from kws.commands.bench import find_clips

runner = CliRunner()
METHODS = {"librosa", "batch", "streaming", "cache_cold", "cache_warm"}


def test_bench_features_writes_positive_rates(dev_data: Path, tmp_path: Path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "features", str(dev_data), "--clips", "20", "--repeat", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output or "FAIL" in result.output
    data = json.loads(out.read_text())
    assert data["benchmark"] == "features" and data["clips"] == 20 and data["repeat"] == 2
    assert data["blas_threads"] == 1
    assert set(data["methods"]) == METHODS
    for name, m in data["methods"].items():
        assert m["clips"] == 20 and m["seconds"] > 0 and m["clips_per_second"] > 0, name
        assert m["vs_librosa"] > 0
    assert data["methods"]["librosa"]["vs_librosa"] == 1.0
    assert set(data["targets"]) == {"batch_vs_librosa", "warm_vs_cold"}
    assert data["targets"]["warm_vs_cold"]["threshold"] == 20.0
    assert data["targets"]["batch_vs_librosa"]["threshold"] == 1.0
    assert data["passed"] == all(t["passed"] for t in data["targets"].values())
    assert data["warm_over_cold"] > 0
    assert data["warm_hits"] == 20 and data["cache_identical"] is True
    assert data["streaming_max_abs_diff"] < 1e-3

    again = runner.invoke(app, ["bench", "features", str(dev_data), "--clips", "3", "--json", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_find_clips_spreads_over_words_and_skips_noise(dev_data: Path):
    clips = find_clips(dev_data, 40)
    assert len(clips) == 40
    words = sorted({p.parent.name for p in clips})
    assert len(words) > 10 and words[0] == "backward" and words[-1] == "zero"
    assert len(set(clips)) == 40
    assert not any(p.parent.name.startswith("_") for p in clips)


def test_bench_on_a_folder_without_clips_is_one_line(tmp_path: Path):
    result = runner.invoke(app, ["bench", "features", str(tmp_path), "--clips", "5"])
    assert result.exit_code == 1
    assert "no .wav clips" in result.output and "Traceback" not in result.output


def test_default_data_falls_back_to_the_repo_samples(samples_dir: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KWS_SHARED_DATA", str(tmp_path / "absent"))
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "features", "--clips", "5", "--repeat", "1", "--threads", "0", "--json", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert Path(data["data_dir"]).is_relative_to(samples_dir) and data["clips"] == 5
    assert data["blas_threads"] == "default" and data["cache_identical"] is True


def test_bench_eval_covers_every_label_in_a_short_pass(dev_data: Path, tmp_path: Path):
    """--clips 5 failed naming a temporary folder ("labels not in the dataset"): the repeated set
    took the first clips of the list, all of one label. Now a label at a time; fewer clips than
    labels is refused by name."""
    from kws.bench.testset import repeated_test_set

    folder = repeated_test_set(dev_data, tmp_path / "set", 24)
    counts = {d.name: len(list(d.glob("*.wav"))) for d in folder.iterdir()}
    assert len(counts) == 12 and set(counts.values()) == {2}, counts
    short = runner.invoke(app, ["bench", "eval", "--data", str(dev_data), "--clips", "5"])
    assert short.exit_code == 1 and "Traceback" not in short.output
    assert "--clips 5: fewer than the 12 labels" in short.output and "kws-bench-eval" not in short.output
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "eval", "--data", str(dev_data), "--clips", "24", "--json", str(out)])
    assert result.exit_code == 0, result.output
    methods = json.loads(out.read_text())["methods"]
    assert set(methods) == {"cold", "cached"} and all(m["clips"] == 24 and m["seconds"] > 0 for m in methods.values())


def test_bench_eval_refuses_its_json_before_timing(dev_data: Path, tmp_path: Path):
    """An existing --json (or a folder there, even with --force) was refused only after both
    timed passes (minutes at the default 4,890 clips): now the one line comes first."""
    existing = tmp_path / "bench.json"
    existing.write_text("{}\n")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    for json_out, extra, problem in ((existing, [], "already exists (use --force to overwrite)"),
                                     (folder, ["--force"], "is a folder; give a file name")):
        result = runner.invoke(app, ["bench", "eval", "--data", str(dev_data), "--clips", "24",
                                     "--json", str(json_out), *extra])
        assert result.exit_code == 1 and result.output.strip() == f"error: {json_out}: {problem}", result.output
    assert existing.read_text() == "{}\n" and [p.name for p in folder.iterdir()] == ["notes.txt"]
