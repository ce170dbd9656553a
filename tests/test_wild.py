"""False accepts in the wild: streams over a music bed, operating-point calibration with
per-keyword thresholds, DET figures, hard-negative mining — on real audio and a real bundle."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from cascade.evaluation.det import DET_THRESHOLDS, det_curve, hits_at_rate, rate_at_hits, replay, shifted
from cascade.evaluation.operating_point import Trace, calibrate_operating_point, fast_events
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.stream_run import detect_file
from kws.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def stream_trace(samples_dir: Path, tmp_path_factory) -> tuple[Bundle, Trace, Path]:
    """A 1-minute stream of sample keywords over a bed that includes a long 'music' recording,
    run through the shipped cascade (a trained one: it detects, and it makes mistakes)."""
    root = tmp_path_factory.mktemp("wild")
    bed = root / "bed"
    bed.mkdir()
    noise_dir = samples_dir / "speech_commands" / "_background_noise_"
    tone = np.concatenate([sf.read(p, dtype="float32")[0] for p in sorted(noise_dir.glob("*.wav"))[:2]])
    sf.write(bed / "track.flac", tone, 16000)
    stream = root / "stream"
    build_stream_folder(samples_dir / "speech_commands", [], stream, StreamRecipe(minutes=1.0, seed=4),
                        split="training", bed_dirs=[bed])
    bundle = Bundle.open(samples_dir / "cascade")
    result = detect_file(bundle, stream / "stream.wav")
    truth = json.loads((stream / "truth.json").read_text())
    return bundle, Trace(result.trace_t, result.trace_posterior, tuple(truth["keywords"]), result.duration_s), stream


def test_stream_bed_is_recorded_in_the_truth(stream_trace) -> None:
    _, trace, stream = stream_trace
    truth = json.loads((stream / "truth.json").read_text())
    assert truth["bed"] and truth["bed"][0].endswith("bed") and trace.keywords


@pytest.mark.parametrize("smoothing", [
    SmoothingConfig(threshold=0.5),
    SmoothingConfig(window_ms=300.0, threshold=0.4, suppression_ms=750.0),
    SmoothingConfig(window_ms=1000.0, threshold=0.5, suppression_ms=0.0, min_count=1,
                    label_thresholds=(("yes", 0.9), ("no", 0.35), ("up", 0.3))),
])
def test_fast_replay_equals_the_smoother(stream_trace, smoothing: SmoothingConfig) -> None:
    bundle, trace, _ = stream_trace
    slow = replay(trace.times, trace.posteriors, smoothing, bundle.labels)
    fast = fast_events(trace, bundle.labels, smoothing)
    assert len(slow) >= 3, "a comparison of empty lists would prove nothing"
    assert [(e["t"], e["label"]) for e in fast] == [(e["t"], e["label"]) for e in slow]


def test_per_keyword_thresholds_change_detections(stream_trace) -> None:
    bundle, trace, _ = stream_trace
    base = SmoothingConfig(window_ms=500.0, threshold=0.3, suppression_ms=0.0, min_count=1)
    events = replay(trace.times, trace.posteriors, base, bundle.labels)
    assert events, "the stream should trigger something at threshold 0.3"
    silenced = events[0]["label"]
    strict = dataclasses.replace(base, label_thresholds=((silenced, 1.0),))
    after = replay(trace.times, trace.posteriors, strict, bundle.labels)
    assert all(e["label"] != silenced for e in after) and len(after) < len(events)


def test_calibration_meets_its_target_on_the_streams_it_saw(stream_trace) -> None:
    bundle, trace, _ = stream_trace
    free = calibrate_operating_point([trace], bundle.labels, 60.0, windows_ms=(500.0,), suppressions_ms=(1000.0,))
    cfg = free["smoothing"]
    events = replay(trace.times, trace.posteriors, cfg, bundle.labels)
    from cascade.evaluation.stream_score import score_events

    score = score_events(events, trace.keywords, trace.duration_s)
    assert score.false_accepts_per_hour <= 60.0  # <= 1 false accept in this minute
    assert score.hits == free["score"]["hits"]
    single = calibrate_operating_point([trace], bundle.labels, 60.0, windows_ms=(500.0,), suppressions_ms=(1000.0,),
                                       per_keyword=False)
    assert single["smoothing"].label_thresholds == ()
    assert free["score"]["hits"] >= single["score"]["hits"]  # per-keyword starts from the best global one


def test_det_curve_moves_per_keyword_thresholds_together(stream_trace) -> None:
    bundle, trace, _ = stream_trace
    cfg = SmoothingConfig(threshold=0.6, label_thresholds=(("yes", 0.8),))
    assert shifted(cfg, 0.3).threshold_for("yes") == 1.0 and shifted(cfg, -0.2).threshold_for("yes") == pytest.approx(0.6)
    curve = det_curve(trace.times, trace.posteriors, cfg, bundle.labels, trace.keywords, trace.duration_s)
    assert [c["threshold"] for c in curve] == list(DET_THRESHOLDS)
    fa = [c["false_accepts"] for c in curve]
    assert fa == sorted(fa, reverse=True)  # higher bars never add false accepts
    assert rate_at_hits(curve, 0.0) == min(c["false_accepts_per_hour"] for c in curve)
    assert rate_at_hits(curve, 1.01) is None and hits_at_rate(curve, -1.0) is None


def test_stream_eval_calibrate_cli(stream_trace, tmp_path: Path) -> None:
    bundle, _, stream = stream_trace
    out = tmp_path / "calibrated"
    result = runner.invoke(app, ["stream", "calibrate", str(stream), "--model", str(bundle.path), "--out", str(out),
                                 "--target-fa", "60"])
    assert result.exit_code == 0, result.output
    calibrated = Bundle.open(out)
    op = calibrated.calibration["operating_point"]
    assert op["target_false_accepts_per_hour"] == 60.0 and (out / "operating_point.json").is_file()
    assert (out / "threshold_curve.json").is_file()  # the gate's figures travel with it
    again = runner.invoke(app, ["stream", "calibrate", str(stream), "--model", str(bundle.path), "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output

    report, det = tmp_path / "r.json", tmp_path / "det.png"
    result = runner.invoke(app, ["stream", "eval", str(stream), "--model", str(out), "--json", str(report),
                                 "--det", str(det), "--profile", "nrf52840"])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["smoothing"]["label_thresholds"] == dict(calibrated.smoothing.label_thresholds)
    assert data["total"]["hits"] <= data["total"]["keywords"] and 0 <= data["total"]["stage2_duty"] <= 1
    assert [r["profile"] for r in data["energy"]] == ["nrf52840"] and data["energy"][0]["energy_j_per_hour"] > 0
    assert det.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _first_seconds(stream: Path, folder: Path, seconds: int) -> Path:
    """A negatives folder holding the first ``seconds`` of the stream as one long recording."""
    folder.mkdir()
    audio, rate = sf.read(stream / "stream.wav", dtype="float32")
    sf.write(folder / "long.wav", audio[: seconds * rate], rate)
    return folder


def test_mining_writes_the_windows_the_cascade_saw(stream_trace, tmp_path: Path) -> None:
    bundle, _, stream = stream_trace
    folder = _first_seconds(stream, tmp_path / "negs", 30)
    out = tmp_path / "mined"
    result = runner.invoke(app, ["stream", "mine", str(folder), "--model", str(bundle.path), "--out", str(out),
                                 "--min-score", "0.3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "mined.json").read_text())
    assert summary["mined"] == len(summary["clips"]) > 0
    times = [c["t"] for c in summary["clips"]]
    assert all(b - a >= 1.0 - 1e-6 for a, b in zip(times, times[1:]))
    for clip in summary["clips"]:
        data, sr = sf.read(out / clip["clip"], dtype="float32")
        assert sr == 16000 and len(data) == bundle.config.clip_samples and clip["score"] >= 0.3
    again = runner.invoke(app, ["stream", "mine", str(folder), "--model", str(bundle.path), "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output


def test_gate_mining_keeps_the_windows_the_gate_opens_on(stream_trace, tmp_path: Path) -> None:
    """--gate scores stage 1's P(keyword) against the bundle's tau: every window written is one
    the gate really opened on, and the count follows the gate, not stage 2."""
    bundle, _, stream = stream_trace
    folder = _first_seconds(stream, tmp_path / "negs", 30)
    out = tmp_path / "gate_mined"
    result = runner.invoke(app, ["stream", "mine", str(folder), "--model", str(bundle.path), "--out", str(out),
                                 "--gate", "--max-per-file", "8"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "mined.json").read_text())
    assert summary["config"]["gate"] and summary["config"]["min_score"] == bundle.tau
    assert 0 < summary["mined"] <= 8 and set(summary["by_label"]) == {"keyword"}
    trace = detect_file(bundle, folder / "long.wav")
    checked = 0
    for clip in summary["clips"]:
        assert clip["score"] >= bundle.tau
        data, _ = sf.read(out / clip["clip"], dtype="float32")
        assert len(data) == bundle.config.clip_samples
        # the same window in a plain run of the recording: the gate opened there with this score
        step = np.flatnonzero(np.abs(trace.trace_t - clip["t"]) < 1e-6)
        if len(step):
            assert trace.trace_opened[step[0]] and trace.trace_p_keyword[step[0]] == pytest.approx(clip["score"], abs=1e-4)
            checked += 1
    assert summary["mined"] >= 2 and checked >= summary["mined"] - 1  # only a window reaching into the padding has no twin
