"""`kws export` end to end on a trained cascade bundle: files, real gcc builds and the host
self-test, golden vectors against TFLite Micro, targets, refusals, and the CLI."""

from __future__ import annotations

import inspect
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cascade.energy.arena import measure_arena
from cascade.runtime.bundle import Bundle
from cascade.runtime.digital_silence import silent_c0, silent_output
from cascade.runtime.int8_model import TFLiteModel
from data_prep.errors import ConfigMismatch, KwsError, ModelError
from data_prep.features import mfcc
from data_prep.labels import SILENCE, UNKNOWN
from data_prep.toml_io import dumps
from export.c_array import parse_c_bytes
from export.firmware import DEFAULT_TARGET, MANIFEST, export_firmware
from export.header import arena_with_margin
from export.tflm import tflm_outputs
from kws.commands.export import export as export_command

GCC, GXX, MAKE = shutil.which("gcc"), shutil.which("g++"), shutil.which("make")
needs_gcc = pytest.mark.skipif(GCC is None or GXX is None, reason="gcc/g++ not installed")
STRICT_C = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
STRICT_CXX = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


@pytest.fixture(scope="module")
def data(samples_dir) -> Path:
    return samples_dir / "speech_commands"


@pytest.fixture(scope="module")
def exported(bundle_dir, data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "kws_fw"
    export_firmware(bundle_dir, out, data=data, target="tflm")
    return out


def _defines(path: Path) -> dict[str, str]:
    return {m[0]: m[1].strip() for m in re.findall(r"^#define (\w+) (.+?)(?:  /\*.*)?$", path.read_text(), re.M)}


def test_tflm_export_layout_and_manifest(exported, bundle_dir):
    files = {str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    for name in ("README.md", MANIFEST, "models/kws_stage1.tflite", "models/kws_stage2.tflite",
                 "src/kws_stage1_model.cc", "src/kws_stage1_model.h", "src/kws_stage2_model.cc",
                 "src/kws_cascade_config.h", "src/kws_frontend.c", "src/kws_frontend.h", "src/kws_frontend_tables.h",
                 "src/kws_decision.c", "src/kws_decision.h", "src/kws_cascade.cc", "src/kws_cascade.h",
                 "src/kws_ops.h", "golden/kws_golden.h", "golden/golden.json", "golden/mfcc.npy",
                 "host_test/kws_selftest.c", "host_test/Makefile"):
        assert name in files, name
    manifest = json.loads((exported / MANIFEST).read_text())
    assert set(manifest["files"]) == files
    assert manifest["target"] == "tflm" and manifest["verification"]["stage2"]["bit_exact"] is True
    bundle = Bundle.open(bundle_dir)
    assert manifest["config_fingerprint"] == bundle.config.fingerprint()
    readme = (exported / "README.md").read_text()
    total = manifest["memory"]["rows"][-1]
    assert readme.startswith("# kws_fw: ") and "make -C host_test check" in readme
    assert f"{total['flash']:,}" in readme and f"{total['ram']:,}" in readme
    assert not list(exported.parent.glob(".kws_fw.*")), "temporary folder left behind"


def test_model_arrays_are_the_tflite_files(exported, bundle_dir):
    bundle = Bundle.open(bundle_dir)
    for n, stage in ((1, bundle.stage1), (2, bundle.stage2)):
        data = stage.int8_path.read_bytes()
        assert (exported / f"models/kws_stage{n}.tflite").read_bytes() == data
        source = (exported / f"src/kws_stage{n}_model.cc").read_text()
        assert parse_c_bytes(source, f"kws_stage{n}_tflite") == data
        assert f"alignas(16) const unsigned char kws_stage{n}_tflite[]" in source
        assert f"kws_stage{n}_tflite_len = {len(data)};" in source
    ops = (exported / "src/kws_ops.h").read_text()
    assert "AddConv2D" in ops and "AddSoftmax" in ops and "AddFullyConnected" not in ops


def compile_and_selftest(exported: Path, build_dir: Path) -> str:
    """Every exported source compiled strictly (the TFLM-dependent one aside), then the host
    self-test built and run on the export's models; returns its output."""
    src = exported / "src"
    build_dir.mkdir(parents=True, exist_ok=True)
    objects = []
    for c in sorted(src.glob("*.c")):
        objects.append(build_dir / f"{c.stem}.o")
        subprocess.run([GCC, *STRICT_C, "-c", str(c), "-o", str(objects[-1])], check=True, capture_output=True)
    for cc in sorted(src.glob("*.cc")):
        if "tensorflow/lite/micro" in cc.read_text():
            assert cc.name == "kws_cascade.cc"  # the only TFLM-dependent source: not buildable here
            continue
        objects.append(build_dir / f"{cc.stem}.o")
        subprocess.run([GXX, *STRICT_CXX, "-c", str(cc), "-o", str(objects[-1])], check=True, capture_output=True)
    exe = build_dir / "kws_selftest"
    models = [o for o in objects if o.stem.endswith("_model")]
    subprocess.run([GCC, *STRICT_C, f"-I{src}", f"-I{exported / 'golden'}", "-o", str(exe),
                    str(exported / "host_test/kws_selftest.c"), str(src / "kws_frontend.c"),
                    str(src / "kws_decision.c"), *map(str, models), "-lm"], check=True, capture_output=True)
    run = subprocess.run([str(exe), str(exported / "models")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@needs_gcc
def test_sources_compile_strictly_and_the_host_selftest_passes(exported, tmp_path):
    out = compile_and_selftest(exported, tmp_path)
    assert out.count("model_bytes_equal") == 2 and "selftest passed" in out
    assert float(re.search(r"mfcc_max_rel_error (\S+)", out).group(1)) < 1e-3
    assert int(re.search(r"input_max_lsb (\d+)", out).group(1)) <= 1
    assert "gate_mismatches 0" in out and re.search(r"stream_steps \d+ detections \d+ silent [1-9]\d* mismatches 0", out)
    sizes = re.search(r"kws_frontend_t (\d+) kws_feature_ring_t (\d+) kws_smoother_t (\d+)", out).groups()
    rows = {r["part"]: r for r in json.loads((exported / MANIFEST).read_text())["memory"]["rows"]}
    assert [int(s) for s in sizes] == [rows["MFCC frontend"]["ram"], rows["stage 1 model"]["other_ram"],
                                       rows["decision (smoothing)"]["ram"]]


@needs_gcc
def test_selftest_fails_on_a_corrupted_model_file(exported, tmp_path):
    copy = tmp_path / "fw"
    shutil.copytree(exported, copy, ignore=shutil.ignore_patterns("*.o", "kws_selftest"))
    model = copy / "models/kws_stage2.tflite"
    data = bytearray(model.read_bytes())
    data[100] ^= 1
    model.write_bytes(bytes(data))
    run = subprocess.run(["make", "-s", "-C", str(copy / "host_test"), "check"], capture_output=True, text=True)
    assert run.returncode != 0 and "kws_stage2.tflite differs from its C array" in run.stderr


def test_golden_vectors_agree_with_python_and_tflite_micro(exported, bundle_dir):
    bundle = Bundle.open(bundle_dir)
    g = {p.stem: np.load(p) for p in (exported / "golden").glob("*.npy")}
    meta = json.loads((exported / "golden/golden.json").read_text())
    labels = [c["label"] for c in meta["clips"]]
    assert len(labels) == 5 and UNKNOWN in labels and labels.count(SILENCE) == 2
    assert sum(label in bundle.labels and label not in (SILENCE, UNKNOWN) for label in labels) == 2
    assert g["samples"].dtype == np.int16 and g["samples"].shape == (5, bundle.config.clip_samples)
    assert meta["clips"][-1]["source"] == "zeros" and not g["samples"][-1].any()  # a muted microphone, last
    assert np.array_equal(g["mfcc"], mfcc(g["samples"].astype(np.float32) / 32768, bundle.config))
    for n, stage in ((1, bundle.stage1), (2, bundle.stage2)):
        data = stage.int8_path.read_bytes()
        model = TFLiteModel(data)
        inputs = g[f"stage{n}_input"]
        assert np.array_equal(inputs, model.quantize_input(stage.inputs(g["mfcc"])))
        micro = tflm_outputs(data, inputs)
        assert np.array_equal(micro, model.invoke_int8(inputs)) and np.array_equal(micro, g[f"stage{n}_output"])
    steps = len(g["step_frame"])
    assert steps == (5 * bundle.config.clip_samples - bundle.config.clip_samples) // (
        bundle.config.stride_samples * bundle.inference_stride_frames) + 1
    # the last window is the zeros alone: stage 1 did not run, its silence output stands, the gate stayed shut
    silent = TFLiteModel(bundle.stage1.int8_path).output.quantize(silent_output(bundle.stage1.labels))
    assert np.array_equal(g["step_stage1"][-1], silent) and g["step_open"][-1] == 0 and g["step_silent"][-1] == 1
    assert g["step_silent"][:-1].sum() == 0  # no other window of the stream is all zeros


def test_config_header_holds_every_constant(exported, bundle_dir):
    bundle = Bundle.open(bundle_dir)
    cfg, d = bundle.config, _defines(exported / "src/kws_cascade_config.h")
    for key, value in (("SAMPLE_RATE", cfg.sample_rate), ("WINDOW_SAMPLES", cfg.window_samples),
                       ("STRIDE_SAMPLES", cfg.stride_samples), ("N_FFT", cfg.n_fft), ("N_MELS", cfg.n_mels),
                       ("N_MFCC", cfg.n_mfcc), ("NUM_FRAMES", cfg.num_frames), ("CLIP_SAMPLES", cfg.clip_samples),
                       ("NUM_LABELS", len(bundle.labels)), ("INFERENCE_STRIDE_FRAMES", bundle.inference_stride_frames),
                       ("SMOOTHING_MIN_COUNT", bundle.smoothing.min_count)):
        assert int(d[f"KWS_{key}"]) == value, key
    assert d["KWS_CONFIG_FINGERPRINT"] == f'"{cfg.fingerprint()}"' and float(d["KWS_GATE_TAU"]) == bundle.tau
    assert float(d["KWS_SMOOTHING_THRESHOLD"]) == bundle.smoothing.threshold
    assert np.float32(d["KWS_SILENT_C0"].rstrip("f")) == np.float32(silent_c0(cfg))
    assert d["KWS_WINDOW_FUNCTION"] == f'"{cfg.window}"' and float(d["KWS_LOG_FLOOR"].rstrip("f")) == np.float32(cfg.log_floor)
    assert all(f'"{label}"' in d["KWS_LABELS_INIT"] for label in bundle.labels)
    for n, stage in ((1, bundle.stage1), (2, bundle.stage2)):
        model = TFLiteModel(stage.int8_path)
        assert np.float32(d[f"KWS_STAGE{n}_OUTPUT_SCALE"].rstrip("f")) == np.float32(model.output.scale)
        assert int(d[f"KWS_STAGE{n}_INPUT_ZERO_POINT"]) == model.input.zero_point
        measured = measure_arena(stage.int8_path.read_bytes())
        assert int(d[f"KWS_STAGE{n}_ARENA_MEASURED"]) == measured
        assert int(d[f"KWS_STAGE{n}_ARENA_SIZE"]) == arena_with_margin(measured) >= measured * 1.1
    q_tau, gate = int(d["KWS_GATE_TAU_Q"]), np.load(exported / "golden/gate.npy")
    assert np.array_equal(gate, np.arange(-128, 128) >= q_tau)


@needs_gcc
def test_c_and_arduino_targets(bundle_dir, data, tmp_path):
    c = export_firmware(bundle_dir, tmp_path / "c", data=data, target="c").out
    assert not (c / "src/kws_cascade.cc").exists() and not (c / "src/kws_ops.h").exists()
    assert (c / "src/kws_frontend.c").is_file() and (c / "golden/kws_golden.h").is_file()
    ard = export_firmware(bundle_dir, tmp_path / "kws_cascade", data=data, target="arduino").out
    props = dict(line.split("=", 1) for line in (ard / "library.properties").read_text().splitlines())
    assert props["name"] == "kws_cascade" and props["includes"] == "kws_cascade.h"
    sketch = (ard / "examples/kws_cascade/kws_cascade.ino").read_text()
    assert "kws_cascade_init()" in sketch and "kws_cascade_push(" in sketch
    for name in ("src/kws_cascade.cpp", "src/kws_stage1_model.cpp", "src/kws_ops.h", "extras/models/kws_stage1.tflite",
                 "extras/golden/kws_golden.h", "extras/host_test/Makefile"):
        assert (ard / name).is_file(), name
    assert not list((ard / "src").glob("*.cc"))
    if MAKE:
        run = subprocess.run([MAKE, "-s", "-C", str(ard / "extras/host_test"), "check"], capture_output=True, text=True)
        assert run.returncode == 0 and "selftest passed" in run.stdout, run.stdout + run.stderr


def test_non_empty_folder_needs_force_and_only_a_previous_export_is_replaced(bundle_dir, data, tmp_path):
    out = tmp_path / "fw"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(KwsError, match="not empty"):
        export_firmware(bundle_dir, out, data=data, target="c")
    with pytest.raises(KwsError, match="not a kws export"):
        export_firmware(bundle_dir, out, data=data, target="c", force=True)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    export_firmware(bundle_dir, out, data=data, target="c")  # empty folder: fine
    (out / "stale.txt").write_text("old")
    with pytest.raises(KwsError, match="--force"):
        export_firmware(bundle_dir, out, data=data, target="c")
    export_firmware(bundle_dir, out, data=data, target="c", force=True)
    assert not (out / "stale.txt").exists() and (out / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"]


def test_incomplete_bundle_is_refused(bundle_dir, data, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    (broken / "stage2/model_int8.tflite").unlink()
    with pytest.raises(ModelError, match="missing model_int8.tflite"):
        export_firmware(broken, tmp_path / "fw", data=data)
    assert not (tmp_path / "fw").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_config_that_does_not_match_the_models_is_refused(bundle_dir, data, tmp_path):
    broken = tmp_path / "bundle"
    shutil.copytree(bundle_dir, broken)
    bundle = Bundle.open(broken)
    wrong = bundle.config.__class__(**{**bundle.config.to_dict(), "n_mfcc": 13})
    for folder in (broken, broken / "stage1", broken / "stage2"):
        wrong.save(folder / "features.toml")
    for stage in ("stage1", "stage2"):
        (broken / stage / "normalization.json").write_text(json.dumps({"mean": [0.0] * 13, "std": [1.0] * 13}))
    manifest = tomllib.loads((broken / "cascade.toml").read_text())
    manifest["cascade"]["fingerprint"] = wrong.fingerprint()
    (broken / "cascade.toml").write_text(dumps(manifest))
    with pytest.raises(ConfigMismatch, match=r"input shape \(49, 10\) does not match .* \(49, 13\)"):
        export_firmware(broken, tmp_path / "fw", data=data)
    bundle.config.save(broken / "stage1" / "features.toml")  # stages that disagree with each other
    shutil.copy(bundle_dir / "stage1" / "normalization.json", broken / "stage1" / "normalization.json")
    with pytest.raises(KwsError, match="feature config does not match"):
        export_firmware(broken, tmp_path / "fw", data=data)
    assert not (tmp_path / "fw").exists()


def _cli() -> typer.Typer:
    from kws.cli import app

    return app


def test_cli_prints_folder_and_memory_table(bundle_dir, data, tmp_path):
    out = tmp_path / "fw"
    args = ["export", "--model", str(bundle_dir), "--out", str(out), "--target", "c", "--data", str(data)]
    result = CliRunner().invoke(_cli(), args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / MANIFEST).read_text())["memory"]["rows"]
    text = " ".join(result.output.split())
    assert str(out) in text.replace(" ", "") or str(out) in result.output
    assert "stage 1 model" in text and "MFCC frontend" in text and f"{rows[-1]['ram']:,}" in text
    assert "bit-exact" in text
    again = CliRunner().invoke(_cli(), args)
    assert again.exit_code == 1 and "not empty" in again.output and "Traceback" not in again.output
    bad = CliRunner().invoke(_cli(), args[:-4] + ["--target", "esp32", "--force"])
    assert bad.exit_code == 2 and "'esp32' is not one of 'arduino', 'tflm', 'c'" in bad.output
    assert inspect.signature(export_command).parameters["target"].default == DEFAULT_TARGET
