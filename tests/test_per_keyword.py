"""Per-keyword results wherever a user evaluates: `kws eval` per label (with what the gate
dropped), `kws eval --sensitivity`, `kws stream eval` per keyword with a DET curve each, and
the report's per-keyword section — on the shipped cascade, the sample clips and a real stream."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.evaluation.det import DET_THRESHOLDS, det_sweep
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.evaluation.stream_score import score_by_label, score_events
from cascade.runtime.bundle import Bundle, write_bundle
from cascade.runtime.decision import SmoothingConfig, clip_label
from cascade.runtime.operating_points import Measured, OperatingPoint
from cascade.runtime.stream_run import detect_file
from data_prep.labels import RESERVED
from data_prep.splits import speaker_id
from kws.cli import app
from kws.report.build import build_report

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"
# what `kws eval --json` wrote before per-label results, in this order
EVAL_KEYS = ["accuracy", "n", "labels", "per_class", "confusion", "model", "data", "split", "tau", "stage2_accuracy",
             "stage1_recall", "stage2_invocation_rate", "stage2_invocation_rate_non_keyword", "skipped", "long_recordings"]
STREAM_KEYS = ["model", "smoothing", "operating_point", "streams", "total", "by_source", "det",
               "false_accepts_per_hour_at_95pct_hits", "hit_rate_at_5_fa_per_hour", "energy"]


def _eval(*args) -> tuple[str, dict]:
    out = Path(args[-1])
    result = runner.invoke(app, ["eval", *map(str, args[:-1]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    return result.output, json.loads(out.read_text())


def _assert_adds_up(report: dict) -> None:
    rows, n = report["per_label"], report["n"]
    assert list(rows) == report["labels"]
    assert sum(r["n"] for r in rows.values()) == n == sum(r["predicted"] for r in rows.values())
    assert sum(r["correct"] for r in rows.values()) == round(report["accuracy"] * n)
    for label, r in rows.items():
        if r["n"]:
            assert r["recall"] == pytest.approx(report["per_class"][label]["recall"])


@pytest.fixture(scope="module")
def samples_eval(samples_dir: Path, tmp_path_factory) -> tuple[str, dict]:
    return _eval(samples_dir / "speech_commands", "--model", samples_dir / "cascade",
                 tmp_path_factory.mktemp("eval") / "eval.json")


def test_eval_per_label_adds_up_and_keeps_the_old_keys(samples_eval) -> None:
    output, report = samples_eval
    assert list(report)[: len(EVAL_KEYS)] == EVAL_KEYS and "per_label" in report
    assert "operating_point" not in report  # no --sensitivity: each clip's top label, as before
    _assert_adds_up(report)
    rows, n = report["per_label"], report["n"]
    keywords = {k: r for k, r in rows.items() if k not in RESERVED}
    n_kw = sum(r["n"] for r in keywords.values())
    assert sum(r["gate_closed"] for r in keywords.values()) == round((1 - report["stage1_recall"]) * n_kw)
    assert sum(r["gate_closed"] for r in rows.values()) == round((1 - report["stage2_invocation_rate"]) * n)
    assert sum(r["stage2_correct"] for r in rows.values()) == round(report["stage2_accuracy"] * n)
    assert any(r["gate_closed"] for r in keywords.values()), "the shipped gate drops a few sample keywords"
    header = next(line for line in output.splitlines() if "gate closed" in line)
    assert all(word in header for word in ("label", "n", "recall", "precision", "stage 2 alone"))
    stop = rows["stop"]
    assert f"│ stop      │ {stop['n']} │ {stop['recall']:.3f}  │" in output


def test_a_keyword_without_clips_gets_an_empty_row(samples_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "no_go"  # every 'go' clip in training: the testing split has none
    data.mkdir()
    for entry in (samples_dir / "speech_commands").iterdir():
        if entry.name != "testing_list.txt":
            (data / entry.name).symlink_to(entry)
    lines = (samples_dir / "speech_commands" / "testing_list.txt").read_text().splitlines()
    (data / "testing_list.txt").write_text("".join(f"{line}\n" for line in lines if not line.startswith("go/")))
    output, report = _eval(data, "--model", samples_dir / "cascade", tmp_path / "r.json")
    go = report["per_label"]["go"]
    assert go["n"] == 0 and go["recall"] is None and go["stage2_recall"] is None and go["gate_closed"] == 0
    _assert_adds_up(report)
    assert "│ go        │ 0 │ -      │" in output


def test_model_directory_per_label(samples_dir: Path, tmp_path: Path) -> None:
    output, report = _eval(samples_dir / "speech_commands", "--model", samples_dir / "models" / "stage1", tmp_path / "m.json")
    _assert_adds_up(report)
    assert set(report["per_label"]) == {"_silence_", "_unknown_", "keyword"}
    assert all("gate_closed" not in r for r in report["per_label"].values()) and "gate closed" not in output
    result = runner.invoke(app, ["eval", str(samples_dir / "speech_commands"), "--model", str(samples_dir / "models" / "stage1"),
                                 "--sensitivity", "low"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")] == [
        f"error: {samples_dir / 'models' / 'stage1'}: --sensitivity needs a cascade bundle (operating points), not a model directory"]


def test_clip_label_applies_a_points_thresholds() -> None:
    labels = ("_silence_", "_unknown_", "yes", "no")
    post = np.array([0.05, 0.15, 0.75, 0.05], dtype=np.float32)
    assert clip_label(post, labels) == 2 and clip_label(post, labels, SmoothingConfig(threshold=0.75)) == 2
    assert clip_label(post, labels, SmoothingConfig(threshold=0.9)) == 1  # not reported: the likelier non-keyword
    assert clip_label(post, labels, SmoothingConfig(threshold=0.9, label_thresholds=(("yes", 0.6),))) == 2


@pytest.fixture(scope="module")
def pointed_bundle(samples_dir: Path, tmp_path_factory) -> Path:
    """The shipped stages with three operating points: high reports every keyword argmax
    (threshold 0), low none (int8 probabilities never reach 1.0)."""
    shipped = Bundle.open(samples_dir / "cascade")
    measured = Measured(keywords=10, hits=7, false_accepts=3, hours=0.5)
    points = {"high": OperatingPoint(name="high", threshold=0.0, measured=measured),
              "balanced": OperatingPoint.of("balanced", shipped.smoothing, measured),
              "low": OperatingPoint(name="low", threshold=1.0, measured=measured)}
    out = tmp_path_factory.mktemp("pointed") / "bundle"
    write_bundle(out, shipped.stage1.path, shipped.stage2.path, tau=shipped.tau,
                 inference_stride_ms=shipped.inference_stride_ms, smoothing=shipped.smoothing,
                 calibration=shipped.calibration, operating_points=points)
    return out


def test_eval_sensitivity_decides_at_the_named_point(pointed_bundle: Path, samples_dir: Path, samples_eval,
                                                      tmp_path: Path) -> None:
    data = samples_dir / "speech_commands"
    _, argmax = samples_eval
    output, low = _eval(data, "--model", pointed_bundle, "--sensitivity", "low", tmp_path / "low.json")
    point = Bundle.open(pointed_bundle).operating_points["low"]
    assert point.describe() in output.replace("\n", "")
    assert low["operating_point"]["name"] == "low" and low["operating_point"]["threshold"] == 1.0
    assert list(low)[: len(EVAL_KEYS)] == EVAL_KEYS
    _assert_adds_up(low)
    for label, r in low["per_label"].items():  # no keyword reaches 1.0: none is detected
        if label not in RESERVED:
            assert r["correct"] == r["predicted"] == r["stage2_correct"] == 0
    assert low["accuracy"] < argmax["accuracy"] and low["stage1_recall"] == argmax["stage1_recall"]
    _, high = _eval(data, "--model", pointed_bundle, "--sensitivity", "high", tmp_path / "high.json")
    assert high["confusion"] == argmax["confusion"] and high["operating_point"]["name"] == "high"
    shipped = Bundle.open(samples_dir / "cascade")  # a bundle of one point (written before points existed), at 0.97
    strict = tmp_path / "strict"
    write_bundle(strict, shipped.stage1.path, shipped.stage2.path, tau=shipped.tau, inference_stride_ms=shipped.inference_stride_ms,
                 smoothing=dataclasses.replace(shipped.smoothing, threshold=0.97, label_thresholds=()),
                 calibration=shipped.calibration)
    _, balanced = _eval(data, "--model", strict, "--sensitivity", "balanced", tmp_path / "b.json")
    assert balanced["operating_point"]["threshold"] == 0.97 and balanced["accuracy"] < argmax["accuracy"]
    missing = runner.invoke(app, ["eval", str(data), "--model", str(strict), "--sensitivity", "high"])
    assert missing.exit_code == 1 and "no operating point 'high' (has: balanced" in missing.output


def test_score_by_label_splits_hits_and_false_accepts() -> None:
    keywords = [{"start": 10.0, "end": 10.8, "label": "yes"}, {"start": 20.0, "end": 20.8, "label": "no"},
                {"start": 30.0, "end": 30.8, "label": "no"}]
    events = [{"t": 10.9, "label": "yes"}, {"t": 11.5, "label": "yes"},  # a hit, then a double trigger
              {"t": 21.0, "label": "no"}, {"t": 25.0, "label": "up"}]  # a hit; 'up' never spoken
    rows = score_by_label(events, keywords, 3600.0, ("_silence_", "_unknown_", "yes", "no", "up", "down"))
    assert list(rows) == ["yes", "no", "up", "down"]
    assert [(r.keywords, r.hits, r.misses, r.false_accepts) for r in rows.values()] == [
        (1, 1, 0, 1), (2, 1, 1, 0), (0, 0, 0, 1), (0, 0, 0, 0)]
    total = score_events(events, keywords, 3600.0)
    assert sum(r.hits for r in rows.values()) == total.hits and sum(r.false_accepts for r in rows.values()) == total.false_accepts
    assert rows["up"].false_accepts_per_hour == 1.0 and score_by_label([], [], 60.0) == {}


@pytest.fixture(scope="module")
def stream(samples_dir: Path, tmp_path_factory) -> Path:
    """40 s of sample keywords (mostly) and other words over the Speech Commands noise."""
    out = tmp_path_factory.mktemp("kw_stream") / "stream"
    build_stream_folder(samples_dir / "speech_commands", [], out, StreamRecipe(minutes=40 / 60, seed=1, keyword_share=0.9),
                        split="training")
    return out


def test_det_sweep_per_label_adds_up_to_the_curve(samples_dir: Path, tmp_path: Path) -> None:
    bundle = Bundle.open(samples_dir / "cascade")
    stream = tmp_path / "stream"  # held-out speakers: the shipped cascade makes mistakes on them
    build_stream_folder(samples_dir / "speech_commands", [], stream, StreamRecipe(minutes=40 / 60, seed=1, keyword_share=0.9),
                        split="testing")
    result = detect_file(bundle, stream / "stream.wav")
    keywords = json.loads((stream / "truth.json").read_text())["keywords"]
    sweep = det_sweep(result.trace_t, result.trace_posterior, bundle.smoothing, bundle.labels, keywords, result.duration_s)
    assert [p.threshold for p in sweep] == list(DET_THRESHOLDS)
    assert any(p.total.false_accepts for p in sweep), "the low thresholds should make mistakes"
    for p in sweep:
        rows = p.by_label.values()
        assert sum(r.hits for r in rows) == p.total.hits and sum(r.false_accepts for r in rows) == p.total.false_accepts
        assert sum(r.keywords for r in rows) == p.total.keywords == len(keywords)
        assert set(p.by_label) >= {name for name in bundle.labels if name not in RESERVED}


@pytest.fixture(scope="module")
def stream_report(stream: Path, pointed_bundle: Path, tmp_path_factory) -> tuple[str, Path, Path]:
    """`kws stream eval --json --det-per-keyword` on the stream, once: (output, JSON, PNG)."""
    root = tmp_path_factory.mktemp("stream_eval")
    report, det = root / "stream_eval.json", root / "det_keywords.png"
    result = runner.invoke(app, ["stream", "eval", str(stream), "--model", str(pointed_bundle), "--json", str(report),
                                 "--det-per-keyword", str(det), "--profile", "nrf52840"])
    assert result.exit_code == 0, result.output
    return result.output, report, det


def test_stream_eval_per_keyword_and_its_det(stream_report) -> None:
    output, report, det = stream_report
    data = json.loads(report.read_text())
    assert list(data)[: len(STREAM_KEYS)] == STREAM_KEYS
    rows, total = data["per_keyword"], data["total"]
    for key in ("keywords", "hits", "false_accepts"):
        assert sum(r[key] for r in rows.values()) == total[key]
    assert all(r["misses"] == r["keywords"] - r["hits"] for r in rows.values())
    # the hit rate's spread over the speakers of the clips the stream plays (truth.json names them)
    spread, truth = data["speakers"], json.loads((Path(data["streams"][0]["stream"]) / "truth.json").read_text())
    assert spread["speakers"] == len({speaker_id(k["file"]) for k in truth["keywords"]}) >= 2
    assert sum(s["n"] for s in spread["per_speaker"].values()) == total["keywords"]
    assert sum(s["correct"] for s in spread["per_speaker"].values()) == total["hits"]
    assert spread["ci95"][0] <= total["hit_rate"] <= spread["ci95"][1] and "whole speakers resampled" in output
    spoken = {name for name, r in rows.items() if r["keywords"]}
    assert spoken and set(data["det_per_keyword"]) == spoken
    assert all(r["hit_rate"] is None for name, r in rows.items() if name not in spoken)
    threshold = data["smoothing"]["threshold"]
    for name, curve in data["det_per_keyword"].items():
        assert [c["threshold"] for c in curve] == [c["threshold"] for c in data["det"]]
        at_point = next(c for c in curve if c["threshold"] == threshold)  # the replay agrees with the real run
        assert (at_point["hits"], at_point["false_accepts"]) == (rows[name]["hits"], rows[name]["false_accepts"])
    assert det.read_bytes()[:8] == PNG and det.stat().st_size > 20_000
    assert "per keyword" in output and "misses" in output


def test_report_shows_per_keyword_tables_and_det(stream_report, samples_eval, tmp_path: Path) -> None:
    _, evaluation = samples_eval
    run = tmp_path / "run"
    run.mkdir()
    (run / "eval.json").write_text(json.dumps(evaluation))
    shutil.copy(stream_report[1], run / "stream_eval.json")
    _, md = build_report(run)
    text = md.read_text()
    assert "## Keywords on streams" in text and "| keyword | spoken | hits | misses |" in text
    assert "speakers (whole speakers resampled)" in text.split("## Keywords on streams")[1]
    assert "stage 2 alone | gate closed |" in text
    low, high = evaluation["speakers"]["ci95"]
    assert f"the 95 % interval is {100 * low:.1f}%-{100 * high:.1f}%" in text  # the spread over speakers
    stop = evaluation["per_label"]["stop"]
    assert f"| stop | {100 * stop['precision']:.1f}% | {100 * stop['recall']:.1f}% |" in text
    assert (run / "report_files" / "keyword_det.png").read_bytes()[:8] == PNG
