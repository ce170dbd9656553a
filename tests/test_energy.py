"""Energy / duty-cycle estimator: hand-computed math, cascade vs always-on, published
MLPerf Tiny measurements, and ``kws energy`` on a real int8 model."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cascade.energy.battery import BATTERIES, get_battery
from cascade.energy.cost import LayerCost, ModelCost, fft_counts, frontend_cost
from cascade.energy.estimate import estimate_cascade, estimate_single, frontend_stage, model_stage
from cascade.energy.profiles import load_profile
from cascade.energy.published import PUBLISHED, format_table, mlperf_ds_cnn, prediction_errors
from cascade.energy.results import EnergyEstimate
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError

TOY_PROFILE = """
name = "toy"
board = "toy board"
core = "toy core"
runtime = "toy runtime"
sleep_mode = "toy sleep"
clock_hz = 1_000_000
voltage = 2.0
active_mw = 10.0
sleep_ma = 0.5
frontend_mw = 0.5
flash_bytes = 100_000
sram_bytes = 20_000
runtime_flash_bytes = 10_000
runtime_sram_bytes = 1_000
per_layer_overhead_cycles = 10
per_invoke_overhead_cycles = 100
wakeup_us = 10

[cycles_per_mac]
conv = 2
depthwise = 3
dense = 4

[frontend_cycles]
window = 1
fft_butterfly = 2
fft_post = 1
power = 1
mel = 1
log = 10
dct = 1
"""
TOY_CONFIG = FeatureConfig(sample_rate=8000, window_ms=32.0, stride_ms=16.0, n_fft=256, n_mels=10, n_mfcc=5)


@pytest.fixture()
def toy(tmp_path):
    path = tmp_path / "toy.toml"
    path.write_text(TOY_PROFILE)
    return load_profile(path)


def _model(name: str, **macs: int) -> ModelCost:
    return ModelCost(name, tuple(LayerCost(f"{name}_{k}", k, n) for k, n in macs.items()), 1000, 2000)


def test_frontend_counts_follow_the_config():
    cfg = FeatureConfig()  # 640-sample window, n_fft 1024, 40 mels, 10 MFCC, T = 49
    ops = frontend_cost(cfg).ops
    mel = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=40, fmin=20.0, fmax=4000.0)
    assert ops["window"] == 640
    assert (ops["fft_butterfly"], ops["fft_post"]) == (256 * 9, 512)  # 512-point complex FFT + split
    assert ops["power"] == 513 and ops["log"] == 40 and ops["dct"] == 400
    assert ops["mel"] == np.count_nonzero(mel) < 40 * 513
    ram = frontend_cost(cfg).ram_bytes
    assert ram == {"audio_ring": (640 + 320) * 2, "fft_buffers": 2 * 1024 * 4, "feature_window": 49 * 10}
    assert fft_counts(256) == (64 * 7, 128)
    assert ops["sqrt"] == 0  # a power spectrum takes no square root
    magnitude = frontend_cost(FeatureConfig(spectrum="magnitude", mel_bank="tensorflow")).ops
    assert magnitude["sqrt"] == 513 and magnitude["power"] == 513
    profile = load_profile("nrf52840")
    assert (frontend_stage(FeatureConfig(spectrum="magnitude"), profile).cycles
            == frontend_stage(cfg, profile).cycles + 513 * profile.frontend_cycles["sqrt"])


def test_a_profile_without_sqrt_cycles_prices_power_spectra_only(toy):
    """Profiles written before the magnitude spectrum still load; only a front end that takes
    square roots needs the figure, and says which."""
    assert "sqrt" not in toy.frontend_cycles and frontend_stage(TOY_CONFIG, toy).cycles > 0
    with pytest.raises(ConfigError, match=r"toy.toml: no frontend_cycles.sqrt"):
        frontend_stage(dataclasses.replace(TOY_CONFIG, spectrum="magnitude"), toy)


def test_energy_math_on_a_hand_computed_case(toy):
    stage2 = _model("s2", conv=1000, depthwise=200, dense=100)
    stage1 = _model("s1", dense=50)
    s2 = model_stage(stage2, toy)
    assert s2.cycles == 1000 * 2 + 200 * 3 + 100 * 4 + 3 * 10 + 100
    assert s2.latency_ms == pytest.approx(3.13) and s2.energy_uj == pytest.approx(31.3)
    t1 = (50 * 4 + 10 + 100) / 1e6

    nnz = np.count_nonzero(librosa.filters.mel(sr=8000, n_fft=256, n_mels=10, fmin=20.0, fmax=4000.0))
    front_cycles = 256 + 2 * 64 * 7 + 128 + 129 + nnz + 10 * 10 + 5 * 10
    assert frontend_stage(TOY_CONFIG, toy).cycles == front_cycles
    t_front = front_cycles / 1e6

    hops, infs, rate = 1000 / 16, 1000 / 32, 2.0
    out = estimate_cascade(stage1, stage2, TOY_CONFIG, toy, inference_stride_ms=32, stage2_rate_per_s=rate, battery="2xaa")
    duty = hops * t_front + infs * t1 + rate * 3.13e-3 + hops * 10e-6
    avg = 10.0 * duty + 1.0 * (1 - duty) + 0.5  # sleep 0.5 mA x 2 V = 1 mW
    assert out.duty_cycle == pytest.approx(duty)
    assert out.avg_power_mw == pytest.approx(avg)
    assert out.energy_j_per_hour == pytest.approx(avg * 3.6)
    assert out.battery_days == pytest.approx(2850 * 3.0 * 0.9 / avg / 24)
    duty2 = hops * t_front + infs * 3.13e-3 + hops * 10e-6
    avg2 = 10.0 * duty2 + (1 - duty2) + 0.5
    assert out.stage2_always_on.avg_power_mw == pytest.approx(avg2)
    assert out.cascade_vs_stage2_energy == pytest.approx(avg / avg2)
    assert out.latency_ms == pytest.approx({"frontend": t_front * 1e3, "stage1": t1 * 1e3, "stage2": 3.13})
    sram = 2000 * 2 + (256 + 128) * 2 + 2 * 256 * 4 + TOY_CONFIG.num_frames * 5 + 1000
    assert out.fits.sram_bytes_needed == sram and out.fits.ok
    assert out.realtime.ok and out.realtime.verdict.startswith("keeps up")


def test_duty_cycle_rises_with_the_invocation_rate():
    profile = load_profile("nrf52840")
    stage1, stage2 = _model("s1", conv=20_000, dense=500), mlperf_ds_cnn()
    duties = [
        estimate_cascade(stage1, stage2, FeatureConfig(), profile, inference_stride_ms=100, stage2_rate_per_s=r).duty_cycle
        for r in (0.0, 0.1, 0.5, 1.0, 2.0)
    ]
    assert all(a < b for a, b in zip(duties, duties[1:])), duties


@pytest.mark.parametrize("name", ["stm32f746-disco", "nrf52840", "apollo3", "esp32s3"])
def test_a_rarely_opened_cascade_costs_less_than_stage2_always_on(name):
    out = estimate_cascade(
        _model("s1", conv=20_000, depthwise=3_000, dense=500), mlperf_ds_cnn(), FeatureConfig(), load_profile(name),
        inference_stride_ms=100, stage2_rate_per_s=0.2,
    )
    assert out.cascade_vs_stage2_compute_energy < out.cascade_vs_stage2_energy < 1.0
    assert out.avg_power_mw < out.stage2_always_on.avg_power_mw


def test_does_not_fit_and_cannot_keep_up_are_explained():
    profile = load_profile("rp2040")
    huge = ModelCost("huge", (LayerCost("c", "conv", 1000),), flash_bytes=4 << 20, arena_bytes=1 << 20)
    out = estimate_single(huge, FeatureConfig(), profile, inference_stride_ms=20)
    assert not out.fits.ok and not out.fits.flash and not out.fits.sram
    assert out.fits.reason.startswith("does not fit: flash needs") and "SRAM needs" in out.fits.reason
    slow = estimate_single(mlperf_ds_cnn(), FeatureConfig(), profile, inference_stride_ms=20)
    assert not slow.realtime.ok and slow.realtime.verdict.startswith("cannot keep up")
    assert slow.duty_cycle > 1


def test_rates_are_checked():
    profile, cfg, m = load_profile("nrf52840"), FeatureConfig(), _model("m", dense=10)
    with pytest.raises(ConfigError, match="shorter than the feature stride"):
        estimate_single(m, cfg, profile, inference_stride_ms=10)
    with pytest.raises(ConfigError, match="30 ms is not a multiple of the feature stride 20.0 ms"):
        estimate_single(m, cfg, profile, inference_stride_ms=30)  # no streaming cascade runs it: was estimated
    assert estimate_single(m, cfg, profile, inference_stride_ms=40).duty_cycle > 0
    with pytest.raises(ConfigError, match="exceeds the stage-1 rate"):
        estimate_cascade(m, m, cfg, profile, inference_stride_ms=100, stage2_rate_per_s=20)
    with pytest.raises(ConfigError, match="unknown battery"):
        get_battery("d-cell")
    with pytest.raises(ConfigError, match="unknown kind"):
        LayerCost("x", "lstm", 1)


def test_batteries():
    assert BATTERIES["cr2032"].usable_mwh == pytest.approx(225 * 3.0 * 0.7)
    assert get_battery("2XAA").days(1.0) == pytest.approx(2850 * 3.0 * 0.9 / 24)
    assert math.isinf(get_battery("cr2032").days(0.0))


def test_mlperf_ds_cnn_has_the_published_macs():
    model = mlperf_ds_cnn()
    assert model.total_macs == 320_000 + 4 * (72_000 + 512_000) + 768 == 2_656_768  # "~2.66 M"


def test_published_measurements_are_predicted_within_30_percent():
    predictions = prediction_errors()
    print("\n" + format_table(predictions))
    for p in predictions:
        if p.row.role == "calibrate":  # calibration rows must be reproduced by the profiles
            assert abs(p.latency_error) < 0.01, p.row.key
            if p.energy_error is not None:
                assert abs(p.energy_error) < 0.02, p.row.key
            continue
        if "latency" in p.row.checks:
            assert abs(p.latency_error) <= 0.30, (p.row.key, p.latency_error)
        if "energy" in p.row.checks:
            assert abs(p.energy_error) <= 0.30, (p.row.key, p.energy_error)
    held_back = [r for r in PUBLISHED if r.role == "holdback"]
    assert len(held_back) >= 5 and {r.profile for r in held_back} >= {"nucleo-l4r5zi", "stm32f746-disco"}


# --- the CLI on a real int8 model ----------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    import keras

    from export.quantize import quantize

    keras.utils.set_random_seed(0)
    inp = keras.Input(FeatureConfig().input_shape)
    x = keras.layers.Reshape((*FeatureConfig().input_shape, 1))(inp)
    x = keras.layers.Conv2D(8, (3, 3), strides=2, activation="relu")(x)
    x = keras.layers.DepthwiseConv2D((3, 3), activation="relu")(x)
    x = keras.layers.Conv2D(8, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    rep = np.random.default_rng(0).normal(size=(16, *FeatureConfig().input_shape)).astype(np.float32)
    path = tmp_path_factory.mktemp("energy") / "tiny_int8.tflite"
    path.write_bytes(quantize(model, rep))
    return path


def _app() -> typer.Typer:
    from kws.cli import app

    return app


def test_cli_single_and_cascade(tiny_tflite, tmp_path):
    runner, app = CliRunner(), _app()
    user = tmp_path / "mine.toml"
    user.write_text(TOY_PROFILE.replace("clock_hz = 1_000_000", "clock_hz = 48_000_000"))
    out = tmp_path / "single.json"
    result = runner.invoke(app, ["energy", "--model", str(tiny_tflite), "--profile", "nrf52840", "--profile", str(user),
                                 "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "nrf52840" in result.output and "toy" in result.output
    data = json.loads(out.read_text())
    assert set(data) == {"nrf52840", "toy"}
    for r in data.values():
        assert {"latency_ms", "energy_uj", "duty_cycle", "avg_power_mw", "battery_days", "fits"} <= set(r)
        assert r["latency_ms"]["model"] > 0 and 0 < r["duty_cycle"] < 1 and r["fits"]["ok"] in (True, False)
    again = runner.invoke(app, ["energy", "--model", str(tiny_tflite), "--profile", "nrf52840", "--json", str(out)])
    assert again.exit_code == 1 and "--force" in again.output

    cascade = tmp_path / "cascade.json"
    result = runner.invoke(app, ["energy", "--model", str(tiny_tflite), "--stage1", str(tiny_tflite), "--all",
                                 "--invocation-rate", "0.5", "--inference-stride-ms", "40", "--battery", "2xaa",
                                 "--json", str(cascade)])
    assert result.exit_code == 0, result.output
    data = json.loads(cascade.read_text())
    assert len(data) == 6 and all(r["battery"] == "2xaa" and r["cascade_vs_stage2_energy"] > 0 for r in data.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nrf52840", "--invocation-rate", "1"], "--stage1"),
        (["--profile", "pdp11"], "unknown profile"),
        ([], "--profile"),
        (["--profile", "nrf52840", "--battery", "d-cell"], "'d-cell' is not one of 'cr2032', '2xaa'"),
        (["--profile", "nrf52840", "--inference-stride-ms", "0"], "shorter than the feature stride"),  # was: 0 ignored
        (["--profile", "nrf52840", "--inference-stride-ms", "nan"], "inference stride nan ms is not a finite number"),
    ],
)
def test_cli_errors_are_one_line(tiny_tflite, args, message):
    result = CliRunner().invoke(_app(), ["energy", "--model", str(tiny_tflite), *args])
    code = 2 if "not one of" in message else 1  # a choice typer checks is a usage error
    assert result.exit_code == code and message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_energy_estimate_json_keeps_the_keys_files_have_and_reads_back():
    profile, m = load_profile("nrf52840"), mlperf_ds_cnn()
    out = estimate_cascade(_model("s1", conv=20_000, dense=500), m, FeatureConfig(), profile,
                           inference_stride_ms=100, stage2_rate_per_s=0.2)
    data = json.loads(json.dumps(out.to_json()))
    header = ["profile", "board", "runtime", "clock_mhz", "battery", "hop_ms", "inference_stride_ms"]
    budget = ["duty_cycle", "avg_power_mw", "energy_j_per_hour", "compute_energy_j_per_hour", "battery_days",
              "power_breakdown_mw"]
    assert list(data) == [*header, "stage2_rate_per_s", "latency_ms", "energy_uj", *budget, "fits", "realtime",
                          "stage2_always_on", "cascade_vs_stage2_energy", "cascade_vs_stage2_compute_energy"]
    assert list(data["stage2_always_on"]) == ["duty_cycle", "avg_power_mw", "energy_j_per_hour", "battery_days", "realtime"]
    assert EnergyEstimate.from_json(data) == out and out.is_cascade
    single = estimate_single(m, FeatureConfig(), profile, inference_stride_ms=40)
    assert list(single.to_json()) == [*header, "latency_ms", "energy_uj", *budget, "fits", "realtime"]
    assert not single.is_cascade and EnergyEstimate.from_json(single.to_json()) == single
    partial = EnergyEstimate.from_json({"profile": "x", "energy_j_per_hour": 1.0})  # an older or foreign file
    assert partial.fits is None and partial.realtime is None and partial.latency_ms == {}


def test_a_nan_invocation_rate_is_refused(tiny_tflite):
    """It was a table of nan."""
    result = CliRunner().invoke(_app(), ["energy", "--model", str(tiny_tflite), "--stage1", str(tiny_tflite),
                                         "--profile", "nrf52840", "--invocation-rate", "nan"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == "error: stage-2 invocation rate nan/s must be a number >= 0"


@pytest.mark.parametrize(("content", "says"), [
    ("[]", "not a keyword-free measurement (a JSON object expected, got list)"),
    ('{"stage2_per_s": "often"}', "stage2_per_s='often' is not a finite number >= 0"),
    ('{"stage2_per_s": NaN}', "stage2_per_s=nan is not a finite number >= 0"),
    ('{"stage2_per_s": -1}', "stage2_per_s=-1 is not a finite number >= 0"),
])
@pytest.mark.parametrize("command", ["energy", "report"])
def test_a_damaged_keyword_free_measurement_is_one_line(tmp_path, content, says, command):
    """A bundle's keyword_free.json of the wrong shape was a traceback in both (NaN: a table of nan)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).resolve().parents[1] / "samples" / "cascade", bundle)
    (bundle / "keyword_free.json").write_text(content)
    args = ["energy", "--model", str(bundle), "--all"] if command == "energy" else ["report", str(bundle)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f"error: {bundle / 'keyword_free.json'}: {says}"
    assert not (bundle / "report.html").exists()
