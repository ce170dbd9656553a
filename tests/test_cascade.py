"""The cascade bundle end to end on real models: build, open, eval, stream == batch, detect."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.evaluation.bundle_eval import evaluate_bundle
from cascade.evaluation.calibrate import build_cascade
from cascade.evaluation.search import stream_windows
from cascade.evaluation.stream_build import build_stream_folder
from cascade.evaluation.stream_make import StreamRecipe
from cascade.evaluation.stream_score import score_events
from cascade.runtime.bundle import Bundle
from cascade.runtime.pipeline import Cascade, StageRunner, StreamingCascade, step_frames
from data_prep.audio import load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError, ModelError
from data_prep.features import mfcc
from kws.bench.live import matched_latencies
from kws.cli import app
from kws.live.loop import LiveEvent

runner = CliRunner()


def test_bundle_holds_everything(bundle_dir: Path) -> None:
    bundle = Bundle.open(bundle_dir)
    assert bundle.config == FeatureConfig()
    assert 0 <= bundle.tau <= 1 and bundle.calibration["recall"] >= 0.9
    assert bundle.inference_stride_frames == 5
    assert (bundle_dir / "threshold_curve.json").is_file()


def test_broken_bundles_are_refused(bundle_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "b"
    shutil.copytree(bundle_dir, broken)
    (broken / "stage2" / "model_int8.tflite").unlink()
    with pytest.raises(ModelError, match="missing model_int8.tflite"):
        Bundle.open(broken)
    mismatch = tmp_path / "m"
    shutil.copytree(bundle_dir, mismatch)
    FeatureConfig(stride_ms=10).save(mismatch / "stage1" / "features.toml")
    with pytest.raises(KwsError, match="stride_ms: 10.0 != 20.0"):
        Bundle.open(mismatch)
    with pytest.raises(ModelError, match="not a cascade bundle"):
        Bundle.open(tmp_path)


def test_eval_reports_cascade_and_stage2(bundle_dir: Path, samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["eval", str(samples_dir / "speech_commands"), "--model", str(bundle_dir), "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    for key in ("accuracy", "stage2_accuracy", "stage1_recall", "stage2_invocation_rate", "n", "confusion", "labels"):
        assert key in report
    assert report["n"] == 60 and 0 <= report["stage2_invocation_rate"] <= 1
    direct = evaluate_bundle(Bundle.open(bundle_dir), samples_dir / "speech_commands")
    assert direct.accuracy == report["accuracy"] and direct.to_json() == report | {"model": direct.model}


def test_stream_equals_batch_on_one_clip(bundle_dir: Path, keyword_wav: Path) -> None:
    """The streaming path computes, at the step whose window is the clip, exactly what the
    batch path computes on the clip: same features, same int8 stage 1, same gate."""
    bundle = Bundle.open(bundle_dir)
    clip = load_clip(keyword_wav, bundle.config)
    runner_ = StreamingCascade(bundle)
    steps = runner_.push(clip[:5000]) + runner_.push(clip[5000:])
    assert len(steps) == 1 and steps[0].t == pytest.approx(1.0)
    batch = Cascade(bundle).classify_clips(mfcc(clip, bundle.config)[None])
    assert steps[0].p_keyword == pytest.approx(float(batch["p1"][0, Cascade(bundle).keyword_index]), abs=1e-7)
    assert steps[0].opened == bool(batch["opened"][0])


def test_steps_come_every_inference_stride(bundle_dir: Path, rng: np.random.Generator) -> None:
    bundle = Bundle.open(bundle_dir)
    audio = (rng.standard_normal(3 * bundle.config.sample_rate) * 0.01).astype(np.float32)
    steps = StreamingCascade(bundle).push(audio)
    times = np.array([s.t for s in steps])
    np.testing.assert_allclose(np.diff(times), bundle.inference_stride_ms / 1000)
    assert times[0] == pytest.approx(1.0)


def test_a_step_carries_its_frame_and_the_raw_outputs_it_decided_on(bundle_dir: Path, rng: np.random.Generator) -> None:
    """Golden vectors replay these in C: the frame that completed the window and the int8
    outputs of the stages the step ran, the very values its probabilities came from."""
    bundle = Bundle.open(bundle_dir)
    cfg, audio = bundle.config, (rng.standard_normal(2 * bundle.config.sample_rate) * 0.05).astype(np.float32)
    stream = StreamingCascade(dataclasses.replace(bundle, tau=0.0))  # every gate opens: stage 2 runs too
    steps = stream.push(audio[:7000]) + stream.push(audio[7000:])
    every = bundle.inference_stride_frames
    assert [s.frame for s in steps] == list(range(cfg.num_frames, steps[-1].frame + 1, every))
    assert [s.frame for s in steps] == step_frames(0, steps[-1].frame, cfg.num_frames, every)
    for s in steps:
        assert s.t == pytest.approx(((s.frame - 1) * cfg.stride_samples + cfg.window_samples) / cfg.sample_rate)
        assert s.stage1_raw.dtype == np.int8 and s.stage2_raw is not None and s.stage2_raw.dtype == np.int8
        p1 = stream.cascade.stage1.tflite.dequantize_output(s.stage1_raw)
        assert s.p_keyword == float(p1[stream.cascade.keyword_index])
        np.testing.assert_array_equal(s.posterior, stream.cascade.stage2.tflite.dequantize_output(s.stage2_raw))
    closed = StreamingCascade(dataclasses.replace(bundle, tau=1.1)).push(audio)
    assert all(not s.opened and s.stage2_raw is None for s in closed)


def test_cascade_search_sees_the_windows_the_stream_runs_on(bundle_dir: Path, rng: np.random.Generator) -> None:
    bundle = Bundle.open(bundle_dir)
    audio = (rng.standard_normal(3 * bundle.config.sample_rate) * 0.05).astype(np.float32)
    windows = stream_windows(audio, bundle.stage1, bundle.inference_stride_frames)
    stream = StreamingCascade(bundle)
    steps = stream.push(audio)
    assert len(windows) == len(steps)
    p1 = StageRunner(bundle.stage1)(windows)[:, stream.cascade.keyword_index]
    assert [float(p) for p in p1] == [s.p_keyword for s in steps]


def test_detect_on_a_built_stream(bundle_dir: Path, samples_dir: Path, tmp_path: Path) -> None:
    stream = tmp_path / "stream"
    truth = build_stream_folder(samples_dir / "speech_commands", [], stream, StreamRecipe(minutes=0.5, seed=1))
    assert truth["keywords"] and (stream / "stream.wav").is_file()
    events, summary = tmp_path / "ev.jsonl", tmp_path / "s.json"
    result = runner.invoke(app, ["detect", str(stream / "stream.wav"), "--model", str(bundle_dir), "--truth",
                                 str(stream / "truth.json"), "--events", str(events), "--json", str(summary)])
    assert result.exit_code == 0, result.output
    data = json.loads(summary.read_text())
    assert data["steps"] > 250 and 0 <= data["stage2_runs"] <= data["steps"]
    assert {"hit_rate", "false_accepts_per_hour"} <= set(data["score"])
    scored = runner.invoke(app, ["stream", "score", "--truth", str(stream / "truth.json"), "--events", str(events)])
    assert scored.exit_code == 0 and json.loads(scored.output)["false_accepts"] == data["score"]["false_accepts"]


def test_stream_scoring_rules() -> None:
    keywords = [{"start": 10.0, "end": 10.6, "label": "yes"}, {"start": 20.0, "end": 20.5, "label": "no"}]
    events = [
        {"t": 9.8, "label": "yes"},  # hit (within 0.25 s before)
        {"t": 11.0, "label": "yes"},  # double trigger: false accept
        {"t": 21.9, "label": "no"},  # hit (within 1.5 s after)
        {"t": 30.0, "label": "up"},  # false accept
    ]
    score = score_events(events, keywords, 3600.0)
    assert (score.hits, score.false_accepts, score.hit_rate, score.false_accepts_per_hour) == (2, 2, 1.0, 2.0)
    assert list(score.to_json()) == ["keywords", "hits", "hit_rate", "false_accepts", "false_accepts_per_hour", "duration_s"]
    assert score_events([{"t": 22.1, "label": "no"}], keywords, 3600.0).hits == 0
    # kws bench live measures latency on exactly the events that score as hits
    live = [LiveEvent(e["t"], e["label"], 0.9, 0.5, float(i), 0.0) for i, e in enumerate(events)]
    assert matched_latencies(live, keywords) == [(9.8 - 10.6, 0.0), (21.9 - 20.5, 2.0)]


def test_det_replay_reproduces_the_live_detections(bundle_dir: Path, samples_dir: Path, tmp_path: Path) -> None:
    from cascade.evaluation.det import det_curve, replay
    from cascade.runtime.stream_run import detect_file

    stream = tmp_path / "s"
    truth = build_stream_folder(samples_dir / "speech_commands", [], stream, StreamRecipe(minutes=0.5, seed=2))
    bundle = Bundle.open(bundle_dir)
    result = detect_file(bundle, stream / "stream.wav")
    events = replay(result.trace_t, result.trace_posterior, bundle.smoothing, bundle.labels)
    assert [(e["t"], e["label"]) for e in events] == [(d.t, d.label) for d in result.detections]
    curve = det_curve(result.trace_t, result.trace_posterior, bundle.smoothing, bundle.labels, truth["keywords"],
                      result.duration_s, thresholds=[0.0, 0.5, 1.0])
    assert curve[-1]["false_accepts_per_hour"] <= curve[0]["false_accepts_per_hour"]
    assert curve[0]["miss_rate"] <= curve[1]["miss_rate"] <= curve[2]["miss_rate"]


def test_eval_refuses_a_data_config_the_model_was_not_trained_on(bundle_dir: Path, trained_models: dict[str, Path],
                                                                 samples_dir: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "other.toml"
    FeatureConfig(n_mfcc=13).save(cfg)
    for model in (bundle_dir, trained_models["stage2"]):
        result = runner.invoke(app, ["eval", str(samples_dir / "speech_commands"), "--model", str(model), "--config", str(cfg)])
        assert result.exit_code == 1 and "n_mfcc" in result.output and "does not match" in result.output


def test_build_skips_a_damaged_validation_clip_and_names_it(trained_models: dict[str, Path], samples_dir: Path,
                                                           tmp_path: Path) -> None:
    """One damaged recording in the validation split (as in real wake-word corpora) used to stop
    the gate's calibration, the last step of `kws cascade train`, after all the training."""
    data = tmp_path / "data"
    shutil.copytree(samples_dir / "speech_commands", data)
    broken = data / "yes" / "broken_nohash_0.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    listing = data / "validation_list.txt"
    listing.write_text(listing.read_text() + "yes/broken_nohash_0.wav\n")
    (data / "no" / "broken2_nohash_0.wav").write_bytes(b"RIFF nor this")  # an _unknown_ one, for the keyword-free audio
    listing.write_text(listing.read_text() + "no/broken2_nohash_0.wav\n")
    bundle, cal = build_cascade(trained_models["stage1"], trained_models["stage2"], data, tmp_path / "b", recall=0.9)
    assert sorted(r.split(":")[0] for r in cal["skipped"]) == sorted([str(broken), str(data / "no" / "broken2_nohash_0.wav")])
    assert Bundle.open(bundle.path).calibration["skipped"] == cal["skipped"]


@pytest.mark.parametrize("swap, stride, says", [
    (True, "100", "samples/models/stage2: not a stage-1 model"),  # was a traceback after scoring the split
    (False, "30", "--inference-stride-ms: inference stride 30.0 ms is not a multiple of the feature stride 20.0 ms"),
    (False, "nan", "--inference-stride-ms: inference stride nan ms is not a finite number"),  # named a temp folder
])
def test_build_refuses_a_model_in_the_wrong_slot_or_a_bad_stride_in_one_line(samples_dir: Path, tmp_path: Path,
                                                                              swap: bool, stride: str, says: str) -> None:
    models = samples_dir / "models"
    stage1 = models / ("stage2" if swap else "stage1")
    result = runner.invoke(app, ["cascade", "build", "--stage1", str(stage1), "--stage2", str(models / "stage2"),
                                 "--data", str(samples_dir / "speech_commands"), "--out", str(tmp_path / "b"),
                                 "--inference-stride-ms", stride])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1 and says in result.output
    assert list(tmp_path.iterdir()) == []  # no bundle, no temp folder


@pytest.mark.parametrize("stride", ["nan", "inf"])
def test_a_bundle_with_a_non_finite_stride_is_one_line(samples_dir: Path, tmp_path: Path, stride: str) -> None:
    bundle = tmp_path / "b"
    shutil.copytree(samples_dir / "cascade", bundle)
    manifest = bundle / "cascade.toml"
    manifest.write_text(manifest.read_text().replace("inference_stride_ms = 100.0", f"inference_stride_ms = {stride}"))
    clip = samples_dir / "speech_commands" / "yes" / "189cbabe_nohash_2.wav"
    result = runner.invoke(app, ["detect", str(clip), "--model", str(bundle)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f"error: {bundle}: inference stride {stride} ms is not a finite number"


@pytest.mark.parametrize("line", ['{"t": 1.0}', '{"t": "soon", "label": "yes"}', '[1.0, "yes"]'])
def test_stream_score_names_an_events_line_that_is_not_a_detection(samples_dir: Path, tmp_path: Path, line: str) -> None:
    """A line without a label was a traceback; one with a text time was scored as a false accept."""
    stream = tmp_path / "s"
    build_stream_folder(samples_dir / "speech_commands", [], stream, StreamRecipe(minutes=0.2, seed=1))
    events = tmp_path / "events.jsonl"
    events.write_text('{"t": 0.5, "label": "no"}\n\n' + line + "\n")
    result = runner.invoke(app, ["stream", "score", "--truth", str(stream / "truth.json"), "--events", str(events)])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f'error: {events}: line 3 is not a detection (needs a number "t" and a string "label")'
