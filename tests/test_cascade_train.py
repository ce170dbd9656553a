"""kws cascade train: your keywords to a calibrated bundle in one command, run for real.

One short run (yes,no on samples/, one epoch per stage) is shared by the module: it must write a
bundle Bundle.open, kws eval and kws detect take; a re-run skips every step; OUT is never
overwritten without --force. The interrupted-run test kills a real run mid-training (slow).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.runtime.bundle import Bundle
from cascade.runtime.gate import lowest_keyword
from data_prep.config import FeatureConfig
from kws.cli import app
from kws.recipe.config import resolve_warm_start
from kws.train.warm_start import REFERENCE_FEATURES, SHIPPED_REFERENCE

REPO = Path(__file__).resolve().parents[1]
STEPS = ("synth", "confusables", "train_stage1", "train_stage2", "tflm", "cascade")


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _train(data: Path, out: Path, *extra: str):
    return _cli("cascade", "train", data, "--labels", "yes,no", "--out", out, "--epochs", "1", "--quiet",
                "--confusables", "2", *extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory, samples_dir: Path):
    root = tmp_path_factory.mktemp("cascade_train")
    out = root / "yesno"
    result = _train(samples_dir / "speech_commands", out)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_writes_a_bundle_that_eval_and_detect_run_on(run, samples_dir: Path) -> None:
    out, output = run
    bundle = Bundle.open(out)
    assert bundle.labels == ("_silence_", "_unknown_", "yes", "no")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["cascade.toml", "features.toml", "keyword_free.json", "operating_point.json", "stage1", "stage2",
         "threshold_curve.json"])
    work = out.with_name("yesno.work")
    # the operating points are measured on a stream of the validation split, never the test split
    truth = json.loads((work / "cascade" / "validation_stream" / "truth.json").read_text())
    assert truth["split"] == "validation" and truth["keywords"]
    assert set(bundle.operating_points) == {"high", "balanced", "low"} and bundle.sensitivity == "balanced"
    assert bundle.operating_points["balanced"].measured.keywords == len(truth["keywords"])
    assert "operating point balanced" in output
    tflm = json.loads((work / "tflm" / "tflm.json").read_text())
    assert tflm["stage1"]["bit_exact"] and tflm["stage2"]["bit_exact"] and tflm["stage2"]["samples"] > 0
    for step in STEPS:
        assert step in output
    assert f"tau = {bundle.calibration['tau']:.4f}" in output and f"bundle: {out}" in output and str(work) in output
    assert f"gate tau {bundle.tau:.3g}" in output  # balanced's, at or above the clip floor
    assert bundle.tau >= bundle.calibration["tau"]
    # each keyword's recall at the floor is reported beside the pooled one (clean clips and copies)
    per_keyword = bundle.calibration["per_keyword"]
    assert set(per_keyword) == {"yes", "no"} and all(0 <= r <= 1 for r in per_keyword.values())
    assert f"lowest keyword {lowest_keyword(per_keyword)}" in output
    assert "int8 accuracy: validation" in output

    data = samples_dir / "speech_commands"
    evaluated = _cli("eval", data, "--model", out)
    assert evaluated.exit_code == 0, evaluated.output
    assert "cascade accuracy" in evaluated.output
    clip = min((data / "yes").iterdir())
    detected = _cli("detect", clip, "--model", out)
    assert detected.exit_code == 0, detected.output
    assert "detections in 1.0 s" in detected.output


def test_the_default_recipe_is_the_measured_one(run) -> None:
    """Not told otherwise, stage 2 starts from the MLPerf reference on its front end, the gate has
    the shipped gate's kernels, and both stages train with speed, noise and room augmentation
    (docs/custom_keywords.md); the bundle carries that front end, so eval/detect/export read the
    clips as training did."""
    out, _ = run
    work = out.with_name("yesno.work")
    config = json.loads((work / "train_stage2" / "model" / "train_config.json").read_text())
    assert config["init_from"] == str(SHIPPED_REFERENCE) and config["arch_params"]["level"] is True
    gate = json.loads((work / "train_stage1" / "model" / "train_config.json").read_text())
    shipped = json.loads((REPO / "samples" / "models" / "stage1" / "train_config.json").read_text())
    assert gate["arch"] == shipped["arch"] and gate["arch_params"] == shipped["arch_params"] == {"kernel": 11, "dw_kernel": 9}
    # the gate's floor passes every validation keyword clip; the mining draft keeps its own 0.98
    bundle = Bundle.open(out)
    assert bundle.calibration["target_recall"] == 1.0 and bundle.calibration["recall"] == 1.0
    recipe = json.loads((work / "recipe.json").read_text())["recipe"]
    assert recipe["mining_recall"] == 0.98
    assert not recipe["gate_from_stage2"] and not gate["teacher"]  # recorded keywords: the gate learns the labels
    for stage in (1, 2):
        augment = json.loads((work / f"train_stage{stage}" / "model" / "train_config.json").read_text())["augment"]
        assert tuple(augment["speed_range"]) == (0.85, 1.15) and augment["reverb_prob"] == 0.3
        assert augment["noise_mode"] == "snr" and tuple(augment["snr_db_range"]) == (0.0, 20.0)
    assert FeatureConfig.load(out / "features.toml") == REFERENCE_FEATURES


def test_warm_start_defaults_to_what_the_clip_length_allows() -> None:
    assert resolve_warm_start(None, None) == (True, "")
    assert resolve_warm_start(None, 1000.0) == (True, "")
    on, note = resolve_warm_start(None, 1500.0)
    assert not on and "--clip-ms 1500: stage 2 trains from scratch" in note
    assert resolve_warm_start(False, None) == (False, "") and resolve_warm_start(True, 1500.0) == (True, "")


def test_confusable_words_train_both_stages_as_unknown(run) -> None:
    out, output = run
    work = out.with_name("yesno.work")
    clips = work / "confusables" / "clips"
    manifest = json.loads((clips / "confusables.json").read_text())
    assert {k: len(v) for k, v in manifest["keywords"].items()} == {"yes": 2, "no": 2}
    assert len(list(clips.rglob("*.wav"))) == manifest["counts"]["written"] > 0
    for stage in (1, 2):
        config = json.loads((work / f"train_stage{stage}" / "model" / "train_config.json").read_text())
        assert str(clips) in config["negatives"]
    assert "trained as _unknown_" in output


def test_a_teacher_that_does_not_know_a_keyword_is_one_line(tmp_path: Path, samples_dir: Path, shared_data: Path) -> None:
    teacher = Path(os.environ.get("KWS_TEACHER", shared_data.parent / "teachers" / "mlperf_tiny_ds_cnn"))
    if not teacher.is_dir():
        pytest.skip(f"MLPerf Tiny teacher not found at {teacher}")
    result = _cli("cascade", "train", samples_dir / "speech_commands", "--labels", "yes,marvin", "--out", tmp_path / "b",
                  "--teacher", teacher)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: --teacher {teacher.resolve()}: does not know marvin (its words: down, go, left, no, off, on, right, stop, "
        "up, yes); it can only distil keywords it was trained on: drop --teacher"]
    assert list(tmp_path.iterdir()) == []


def test_rerun_refuses_without_force_and_skips_every_step_with_it(run, samples_dir: Path) -> None:
    out, _ = run
    manifest = (out / "cascade.toml").read_bytes()
    again = _train(samples_dir / "speech_commands", out)
    assert again.exit_code == 1
    assert again.output.strip() == f"error: {out}: already exists (use --force to replace it)"
    assert (out / "cascade.toml").read_bytes() == manifest

    start = time.perf_counter()
    forced = _train(samples_dir / "speech_commands", out, "--force")
    assert forced.exit_code == 0, forced.output
    assert time.perf_counter() - start < 30  # nothing retrained
    for step in STEPS:
        assert f"{step}: up to date, skipped" in forced.output
    assert "resuming" in forced.output and "(earlier run)" in forced.output
    assert Bundle.open(out).tau == Bundle.open(out.with_name("yesno.work") / "cascade" / "bundle").tau


def test_force_never_replaces_what_kws_did_not_write(tmp_path: Path, samples_dir: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    result = _train(samples_dir / "speech_commands", mine, "--force")
    assert result.exit_code == 1 and "not written by kws" in result.output
    assert (mine / "notes.txt").read_text() == "keep me" and not (tmp_path / "mine.work").exists()

    work = tmp_path / "somewhere"
    work.mkdir()
    (work / "data.txt").write_text("mine")
    result = _train(samples_dir / "speech_commands", tmp_path / "b", "--work", work)
    assert result.exit_code == 1 and "not a kws cascade train work folder" in result.output
    assert len(result.output.strip().splitlines()) == 1

    inside = samples_dir / "speech_commands" / "work"  # refused before anything is written
    result = _train(samples_dir / "speech_commands", tmp_path / "b", "--work", inside)
    assert result.exit_code == 1 and "inside the audio folder" in result.output and not inside.exists()


@pytest.mark.parametrize("args, message", [
    (("--labels", "yes,nope"), "no recordings of nope (its word folders: backward, bed"),
    (("--labels", "12", "--speed", "1.2,0.9"), "speed_range"),
    (("--labels", "yes", "--synth-engine", "loud"), "loud"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path: Path, samples_dir: Path, args, message) -> None:
    result = _cli("cascade", "train", samples_dir / "speech_commands", "--out", tmp_path / "b", *args)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output
    assert list(tmp_path.iterdir()) == []  # no bundle, no work folder


def test_kokoro_confusables_without_its_model_is_one_line_before_any_work(tmp_path: Path, samples_dir: Path,
                                                                         monkeypatch) -> None:
    monkeypatch.setenv("KWS_KOKORO_DIR", str(tmp_path / "nowhere"))
    result = _cli("cascade", "train", samples_dir / "speech_commands", "--labels", "yes", "--out", tmp_path / "b",
                  "--confusables-engine", "kokoro")
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "nowhere" in lines[0] and "kokoro" in lines[0].lower()
    assert [p.name for p in tmp_path.iterdir()] == []  # no bundle, no work folder


def test_data_without_validation_clips_is_one_line(tmp_path: Path, samples_dir: Path) -> None:
    data = tmp_path / "data"
    for word in ("yes", "cat"):
        (data / word).mkdir(parents=True)
        for clip in sorted((samples_dir / "speech_commands" / word).iterdir())[:3]:
            (data / word / clip.name).write_bytes(clip.read_bytes())
    for name in ("validation_list.txt", "testing_list.txt"):
        (data / name).write_text("")
    result = _cli("cascade", "train", data, "--labels", "yes", "--out", tmp_path / "b")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        (f"error: {data}: no validation clips of yes (they pick the best epoch and calibrate the gate: list some in "
         "validation_list.txt, or use the hash split without list files)")]


@pytest.mark.slow
def test_killed_run_resumes_training_from_its_checkpoint(tmp_path: Path, samples_dir: Path) -> None:
    """A real kill -9 during stage-2 training; the same command resumes from the checkpoint."""
    out = tmp_path / "k"
    cmd = [sys.executable, "-c", "from kws.cli import main; main()", "cascade", "train", str(samples_dir / "speech_commands"),
           "--labels", "yes,no", "--out", str(out), "--epochs", "4", "--stage1-epochs", "1", "--quiet", "--confusables", "0"]
    model = tmp_path / "k.work" / "train_stage2" / "model"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not list((model / "checkpoint").glob("ckpt-*.index")):
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a stage-2 checkpoint"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not out.exists() and not (model / "metrics.json").exists()
    done = subprocess.run(cmd, cwd=REPO, check=False, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train_stage1: up to date, skipped" in done.stdout
    assert "resuming at epoch" in done.stdout
    assert len(json.loads((model / "history.json").read_text())) == 4
    Bundle.open(out)
