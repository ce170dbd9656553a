"""Named operating points (high / balanced / low) and false accepts by source, on a real
stream of sample keywords, negatives from folders named like `kws data negatives` sources,
and the shipped cascade."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from cascade.evaluation.det import replay
from cascade.evaluation.gate_replay import measured_at, open_trace
from cascade.evaluation.operating_point import Trace, fast_events
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.evaluation.stream_sources import KEYWORDS, UNKNOWN_SOURCE, source_kind, step_sources
from cascade.runtime.bundle import Bundle, write_bundle
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.detector import Detector
from cascade.runtime.operating_points import poisson_interval
from cascade.runtime.stream_run import detect_file
from kws.cli import app
from kws.report.sections import operating_points_table

runner = CliRunner()


@pytest.fixture(scope="module")
def stream(samples_dir: Path, tmp_path_factory) -> Path:
    """1 minute: sample keywords, 'music' and 'synth' negatives (folders named as by kws data
    negatives), over the Speech Commands noise and a 'music' bed."""
    root = tmp_path_factory.mktemp("points")
    noise = sorted((samples_dir / "speech_commands" / "_background_noise_").glob("*.wav"))
    negs = root / "validation"
    for kind, src in (("music", noise[0]), ("synth", noise[1])):
        (negs / kind).mkdir(parents=True)
        audio, rate = sf.read(src, dtype="float32")
        for k in range(3):
            sf.write(negs / kind / f"{k}.flac", audio[k * rate : (k + 1) * rate], rate)
    bed = root / "tracks"
    bed.mkdir()
    sf.write(bed / "track.flac", np.concatenate([sf.read(p, dtype="float32")[0] for p in noise[:2]]), 16000)
    out = root / "stream"
    build_stream_folder(samples_dir / "speech_commands", [negs], out, StreamRecipe(minutes=1.0, seed=4, keyword_share=0.6),
                        split="training", bed_dirs=[bed])
    return out


def test_truth_records_each_source(stream: Path) -> None:
    truth = json.loads((stream / "truth.json").read_text())
    kinds = {e["source"] for e in truth["negative_events"]}
    assert kinds <= {"music", "synthetic", "speech"} and {"music", "synthetic"} & kinds
    bed = truth["bed_segments"]
    assert {s["source"] for s in bed} <= {"noise", "music"} and bed[0]["start"] == 0.0
    assert bed[-1]["end"] == pytest.approx(truth["duration_s"])
    assert source_kind(Path("/n/validation/synth/a.flac"), Path("/n/validation"), "speech") == "synthetic"
    assert source_kind(Path("/x/tracks/a.flac"), Path("/x/tracks"), "music") == "music"
    assert source_kind(Path("/d/_background_noise_/a.wav"), Path("/d"), "speech") == "noise"
    # keyword windows first, then negative events, then the bed
    k, e = truth["keywords"][0], truth["negative_events"][0]
    assert step_sources(truth, np.array([k["start"], e["start"]])) == [KEYWORDS, e["source"]]


def test_stream_eval_splits_false_accepts_and_duty_by_source(stream: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["stream", "eval", str(stream), "--json", str(report), "--profile", "nrf52840"])
    assert result.exit_code == 0, result.output
    assert "false accepts and stage 2 by source" in result.output and "operating point balanced" in result.output
    data = json.loads(report.read_text())
    rows, total = data["by_source"], data["total"]
    assert sum(r["false_accepts"] for r in rows.values()) == total["false_accepts"]
    assert sum(r["stage2_runs"] for r in rows.values()) == total["stage2_runs"]
    assert sum(r["hours"] for r in rows.values()) == pytest.approx(total["hours"])
    assert {"music", KEYWORDS} <= set(rows) and all(0 <= r["stage2_duty"] <= 1 for r in rows.values())
    assert data["operating_point"]["name"] == "balanced"

    old = tmp_path / "old"  # a truth file written before sources were recorded
    old.mkdir()
    (old / "stream.wav").symlink_to(stream / "stream.wav")
    truth = json.loads((stream / "truth.json").read_text())
    del truth["negative_events"], truth["bed_segments"]
    (old / "truth.json").write_text(json.dumps(truth))
    report2 = tmp_path / "r2.json"
    result = runner.invoke(app, ["stream", "eval", str(old), "--json", str(report2), "--profile", "nrf52840"])
    assert result.exit_code == 0, result.output
    rows2 = json.loads(report2.read_text())["by_source"]
    assert set(rows2) <= {UNKNOWN_SOURCE, KEYWORDS} and UNKNOWN_SOURCE in rows2
    assert json.loads(report2.read_text())["total"]["false_accepts"] == total["false_accepts"]


def test_calibrate_writes_three_measured_points_and_commands_run_them(stream: Path, samples_dir: Path,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "calibrated"
    result = runner.invoke(app, ["stream", "calibrate", str(stream), "--model", str(samples_dir / "cascade"),
                                 "--out", str(out), "--target-fa", "60", "--hit-target", "0.8"])
    assert result.exit_code == 0, result.output
    for name in ("high", "balanced", "low"):
        assert f"operating point {name}" in result.output
    manifest = tomllib.loads((out / "cascade.toml").read_text())
    assert set(manifest["operating_points"]) == {"high", "balanced", "low"}
    bundle = Bundle.open(out)
    points = bundle.operating_points
    assert bundle.sensitivity == "balanced" and manifest["smoothing"]["threshold"] == points["balanced"].threshold
    assert points["high"].threshold <= points["balanced"].threshold <= points["low"].threshold
    assert points["high"].measured.hits >= points["balanced"].measured.hits >= points["low"].measured.hits
    # the figures are the real Smoother's on the stream, and the fast replay agrees with it
    run = detect_file(bundle, stream / "stream.wav")
    keywords = tuple(json.loads((stream / "truth.json").read_text())["keywords"])
    trace = Trace(run.trace_t, run.trace_posterior, keywords, run.duration_s)
    for name, point in points.items():
        m = point.measured
        assert m.hours == pytest.approx(1 / 60) and m.keywords == len(keywords)
        lo, hi = m.false_accepts_per_hour_ci95
        assert lo <= m.false_accepts_per_hour <= hi
        cfg = bundle.at(name).smoothing
        slow = replay(trace.times, trace.posteriors, cfg, bundle.labels)
        assert [(e["t"], e["label"]) for e in fast_events(trace, bundle.labels, cfg)] == [(e["t"], e["label"]) for e in slow]
    detector = Detector.open(out, sensitivity="high")
    assert detector.operating_point.name == "high" and detector.bundle.smoothing.threshold == points["high"].threshold
    audio, _ = sf.read(stream / "stream.wav", dtype="float32")
    assert len(detector.push(audio)) == len(replay(trace.times, trace.posteriors, bundle.at("high").smoothing, bundle.labels))

    table = operating_points_table(bundle)  # the report's gate section shows them
    assert [r[0] for r in table.rows] == ["high", "balanced (default)", "low"]
    assert table.rows[1][3].endswith(f"({points['balanced'].measured.hits}/{len(keywords)})")

    result = runner.invoke(app, ["detect", str(stream / "stream.wav"), "--model", str(out), "--sensitivity", "low",
                                 "--truth", str(stream / "truth.json")])
    assert result.exit_code == 0, result.output
    assert points["low"].describe() in result.output
    live = runner.invoke(app, ["live", "--model", str(out), "--sensitivity", "high", "--input", str(stream / "stream.wav"),
                               "--fast", "--json-events", "--seconds", "3"])
    assert live.exit_code == 0, live.output
    assert points["high"].describe() in live.stderr and points["high"].describe() not in live.stdout


def test_a_bundle_without_points_runs_its_thresholds_as_balanced(samples_dir: Path, tmp_path: Path) -> None:
    shipped = Bundle.open(samples_dir / "cascade")
    old = tmp_path / "old"  # a bundle written before operating points existed: the shipped one without them
    write_bundle(old, shipped.stage1.path, shipped.stage2.path, tau=shipped.tau, inference_stride_ms=shipped.inference_stride_ms,
                 smoothing=shipped.smoothing, calibration=shipped.calibration)
    bundle = Bundle.open(old)
    assert list(bundle.operating_points) == ["balanced"] and bundle.at(None).smoothing == bundle.smoothing
    measured = bundle.operating_point.measured  # from its calibration's validation figures
    assert measured is not None and measured.false_accepts == 5 and measured.hours == 1.0
    clip = next((samples_dir / "speech_commands" / "yes").glob("*.wav"))
    result = runner.invoke(app, ["detect", str(clip), "--model", str(old), "--sensitivity", "high"])
    assert result.exit_code == 1 and "no operating point 'high' (has: balanced" in result.output
    assert runner.invoke(app, ["detect", "x.wav", "--sensitivity", "loud"]).exit_code == 2


def test_poisson_interval_is_the_exact_one() -> None:
    assert poisson_interval(0) == (0.0, pytest.approx(3.6889, abs=1e-4))
    assert poisson_interval(5) == (pytest.approx(1.6235, abs=1e-4), pytest.approx(11.6683, abs=1e-4))
    assert poisson_interval(1) == (pytest.approx(0.02532, abs=1e-5), pytest.approx(5.5716, abs=1e-4))


def test_release_ratio_travels_with_the_smoothing_table() -> None:
    cfg = SmoothingConfig(release_ratio=0.8, threshold=0.5, label_thresholds=(("yes", 0.9),))
    assert SmoothingConfig.from_dict(cfg.to_dict()) == cfg and cfg.release_for("yes") == pytest.approx(0.72)


def _trace(bumps: dict[float, float], keyword_at: tuple[float, ...], seconds: float = 60.0) -> Trace:
    """A recorded 'yes' posterior: 0.02 everywhere, ``bumps`` {second: level} for one second."""
    times = np.arange(0.1, seconds, 0.1)
    yes = np.full(len(times), 0.02)
    for start, level in bumps.items():
        yes[(times >= start) & (times < start + 1.0)] = level
    posteriors = np.stack([np.zeros_like(yes), 1.0 - yes, yes], axis=1)
    return Trace(times, posteriors, tuple({"start": t, "end": t + 1.0, "label": "yes"} for t in keyword_at), seconds)


def test_balanced_is_judged_on_clean_streams_when_given() -> None:
    """A crowded stream's keywords score 0.6 and so do two music bursts; clearly spoken keywords
    score 0.97. Judged on the crowded stream alone, 95 % hits forces a bar at 0.6 and two false
    accepts; judged on the clean stream, balanced keeps the bar high and opens for no music."""
    from cascade.evaluation.sensitivity import operating_points

    labels = ("_silence_", "_unknown_", "yes")
    wild = _trace({10.0: 0.6, 20.0: 0.6, 30.0: 0.6, 40.0: 0.6, 50.0: 0.6}, (10.0, 30.0, 50.0))
    clean = _trace({5.0: 0.97, 25.0: 0.97, 45.0: 0.97}, (5.0, 25.0, 45.0))
    base = SmoothingConfig(window_ms=300.0, threshold=0.9, suppression_ms=1000.0, min_count=1)
    alone = operating_points([wild], labels, base, hit_target=0.95)
    judged = operating_points([wild], labels, base, hit_target=0.95, clean=[clean])
    assert alone["balanced"].threshold <= 0.6 and alone["balanced"].measured.false_accepts == 2
    assert judged["balanced"].threshold > 0.6 and judged["balanced"].measured.false_accepts == 0
    assert judged["balanced"].clean.hits == 3 and alone["balanced"].clean is None
    assert judged["high"].threshold <= judged["balanced"].threshold <= judged["low"].threshold
    point = judged["balanced"]
    assert type(point).from_dict("balanced", point.to_dict()) == point
    assert "clean near-mic keywords: 1.000 (3/3)" in point.describe()


def test_each_point_gets_its_gate_tau_from_one_open_gate_run(stream: Path, samples_dir: Path, tmp_path: Path) -> None:
    """The stream runs once with the gate open; replaying a tau on it is exactly the cascade run
    at that tau (posteriors and gate states alike). Calibration keeps the clip tau as the floor,
    measures each point's stage-2 duty, and --gate-loss lets a point trade hits for energy."""
    shipped = Bundle.open(samples_dir / "cascade")
    opened = open_trace(shipped, stream)
    assert opened.stage2.shape == opened.closed.shape and opened.p_keyword.max() > shipped.tau
    for tau in (shipped.tau, 0.6, 0.9):
        trace, gate = opened.at(tau)
        run = detect_file(dataclasses.replace(shipped, tau=tau), stream / "stream.wav")
        np.testing.assert_array_equal(gate, run.trace_opened)
        np.testing.assert_allclose(trace.posteriors, run.trace_posterior, atol=1e-6)

    strict, loose = tmp_path / "strict", tmp_path / "loose"
    for out, loss in ((strict, "0"), (loose, "0.5")):
        result = runner.invoke(app, ["stream", "calibrate", str(stream), "--model", str(samples_dir / "cascade"),
                                     "--out", str(out), "--target-fa", "60", "--hit-target", "0.8", "--gate-loss", loss])
        assert result.exit_code == 0, result.output
        assert "the gate on the validation streams" in result.output
    floor = shipped.calibration["tau"]
    a, b = Bundle.open(strict), Bundle.open(loose)
    assert a.calibration["tau"] == b.calibration["tau"] == floor  # the clip calibration is kept
    for name in ("high", "balanced", "low"):
        pa, pb = a.operating_points[name], b.operating_points[name]
        assert floor <= pa.tau <= pb.tau and a.at(name).tau == pa.tau and b.at(name).tau == pb.tau
        # loss 0: not one hit below what the point finds at the floor
        at_floor = measured_at([opened], floor, a.labels, pa.smoothing(a.smoothing))
        assert pa.measured.hits == at_floor.hits and pa.measured.false_accepts <= at_floor.false_accepts
        assert pb.measured.hits >= at_floor.hits - 0.5 * at_floor.keywords
        assert pb.measured.stage2_duty <= pa.measured.stage2_duty <= at_floor.stage2_duty
        assert pb.measured.stage2_duty == pytest.approx(float(opened.at(pb.tau)[1].mean()))
        assert f"gate tau {pb.tau:.3g}" in pb.describe() and "stage 2 on" in pb.describe()
    # the manifest's [gate] holds the default's tau (what an older kws runs); Bundle.open runs balanced
    assert tomllib.loads((loose / "cascade.toml").read_text())["gate"]["tau"] == b.operating_points["balanced"].tau
    assert b.tau == b.operating_points["balanced"].tau and b.at("low").at("balanced").tau == b.tau
    curve = json.loads((loose / "operating_point.json").read_text())["gate_curve"]
    assert [r["tau"] for r in curve] == sorted(r["tau"] for r in curve) and floor in [r["tau"] for r in curve]
    duties = [r["stage2_duty"] for r in curve]
    assert duties == sorted(duties, reverse=True)  # a higher tau never runs stage 2 more
