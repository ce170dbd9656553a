"""``kws bench eval-memory``: the report's shape on a tiny folder, and the repeated folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from kws.cli import app
from kws.commands.bench_scale import repeat_folder

runner = CliRunner()


def test_repeat_folder_links_every_clip_n_times(samples_dir: Path, tmp_path: Path) -> None:
    source = samples_dir / "speech_commands" / "yes"
    out = repeat_folder(source, tmp_path / "x3", 3)
    originals = sorted(p.name for p in source.glob("*.wav"))
    made = sorted(p.name for p in out.rglob("*.wav"))
    assert made == sorted(f"k{k}_{name}" for name in originals for k in range(3))
    first = out / f"k2_{originals[0]}"
    assert first.read_bytes() == (source / originals[0]).read_bytes()
    assert os.stat(first).st_ino == os.stat(source / originals[0]).st_ino  # a hard link, no copy


def test_bench_eval_memory_report(bundle_dir: Path, samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    args = ["bench", "eval-memory", "--model", str(bundle_dir), "--data", str(samples_dir / "speech_commands"),
            "--clips", "60", "--sizes", "1,2", "--workers", "1,2", "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [row["multiple"] for row in data["sizes"]] == [1, 2]
    assert [row["clips"] for row in data["sizes"]] == [60, 120]
    assert all(row["peak_rss_bytes"] > 50 * 2**20 for row in data["sizes"])  # a real process's RSS
    assert data["rss_ratio"] == data["sizes"][1]["peak_rss_bytes"] / data["sizes"][0]["peak_rss_bytes"]
    assert set(data["methods"]) == {"workers_1", "workers_2"}
    assert all(m["clips"] == 120 and m["clips_per_second"] > 0 for m in data["methods"].values())
    assert data["targets"]["rss_flat"]["threshold"] == 1.0

    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "already exists" in again.output
    refused = runner.invoke(app, [*args[:6], "--clips", "5"])
    assert refused.exit_code == 1 and "at least 60" in refused.output


def test_bench_detect_memory_report(tmp_path: Path) -> None:
    """The ratio machinery on short recordings (the real run is 10 min vs 2 h; see the README)."""
    out = tmp_path / "detect.json"
    args = ["bench", "detect-memory", "--minutes", "0.5,2", "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [row["minutes"] for row in data["sizes"]] == [0.5, 2.0]
    assert all(row["peak_rss_bytes"] > 50 * 2**20 for row in data["sizes"])  # a real `kws detect` process
    assert data["rss_ratio"] == data["sizes"][1]["peak_rss_bytes"] / data["sizes"][0]["peak_rss_bytes"]
    assert "detect-memory" == data["benchmark"] and "rss_flat" in data["targets"]
    refused = runner.invoke(app, ["bench", "detect-memory", "--minutes", "10"])
    assert refused.exit_code == 1 and "at least two lengths" in refused.output
