"""``kws bench live`` on a short stream: every figure is there and physically sensible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kws.bench.live import matched_latencies
from kws.cli import app
from kws.commands.common import SAMPLES, is_bundle
from kws.live.loop import LiveEvent

runner = CliRunner()


def test_matching_follows_stream_scoring() -> None:
    keywords = [{"start": 1.0, "end": 1.5, "label": "yes"}, {"start": 4.0, "end": 4.6, "label": "no"}]
    events = [LiveEvent(1.9, "yes", 0.9, 0.9, 50.0, 1.0), LiveEvent(2.0, "yes", 0.9, 0.9, 60.0, 1.0),
              LiveEvent(4.5, "up", 0.9, 0.9, 70.0, 1.0), LiveEvent(6.2, "no", 0.9, 0.9, 80.0, 1.0)]
    got = matched_latencies(events, keywords)  # a double trigger and a wrong label never match
    assert [(round(a, 3), p) for a, p in got] == [(0.4, 50.0)]
    assert [round(a, 3) for a, _ in matched_latencies([LiveEvent(6.0, "no", 1, 1, None, 1)], keywords)] == [1.4]


def test_bench_live_reports_every_target(request, samples_dir: Path, tmp_path: Path) -> None:
    model = SAMPLES / "cascade" if is_bundle(SAMPLES / "cascade") else request.getfixturevalue("bundle_dir")
    out = tmp_path / "live.json"
    result = runner.invoke(app, ["bench", "live", "--model", str(model), "--data-dir", str(samples_dir / "speech_commands"),
                                 "--minutes", "0.25", "--repeat", "1", "--realtime-seconds", "2", "--silence-seconds", "2",
                                 "--json", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["targets"]) == {"x real time, natural gate", "x real time, gate forced open",
                                      "median word end -> event (ms)", "CPU on silence (% of one core)"}
    natural, forced = report["hops"]["natural"], report["hops"]["forced_open"]
    assert natural["hops"] == forced["hops"] == 749  # 15 s of 20 ms hops after the first 40 ms window
    assert forced["stage2_duty"] == 1.0 and natural["stage2_runs"] <= forced["stage2_runs"]
    assert 0 < forced["hop_median_ms"] <= forced["hop_p99_ms"] <= forced["hop_max_ms"] and forced["realtime_factor"] > 1
    assert 0 < report["cpu"]["cpu_percent"] < 100 and report["cpu"]["wall_s"] == pytest.approx(2.0, abs=0.5)
    assert report["latency"]["pipeline_ms_median"] is not None and report["latency"]["pipeline_ms_median"] >= 0
    assert "targets" in result.output and ("PASS" in result.output or "FAIL" in result.output)
    rerun = runner.invoke(app, ["bench", "live", "--model", str(model), "--json", str(out)])
    assert rerun.exit_code == 1 and "already exists" in rerun.output


def test_a_negative_seed_is_one_line(samples_dir: Path) -> None:
    """It was a traceback from NumPy's seeding once the stream was being made."""
    result = runner.invoke(app, ["bench", "live", "--data-dir", str(samples_dir / "speech_commands"), "--seed", "-1"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1] == "error: --seed -1: must be >= 0"
