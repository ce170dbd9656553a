"""MACs and parameters read from the int8 graph equal hand counts; the CLI reports them."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cascade.energy.model_stats import collect_stats, graph_layers
from data_prep.cache import compute_features
from data_prep.errors import ModelError
from data_prep.normalize import FeatureStats
from export.quantize import quantize
from kws.train.models import build_model

MLPERF_DS_CNN_MACS = 2.66e6


@pytest.fixture(scope="module")
def features(dev_data, config) -> np.ndarray:
    raw = compute_features(sorted(dev_data.glob("*/*_nohash_0.wav"))[::11][:24], config)
    return FeatureStats.measure(raw).apply(raw)


def _hand_model() -> keras.Model:
    """(8, 6) -> conv 3x2 valid (4) -> dw 3x3 same -> pw (5) -> avgpool -> dense 3, non-zero biases."""
    bias = keras.initializers.RandomUniform(0.1, 0.5, seed=1)
    inputs = keras.Input((8, 6))
    x = keras.layers.Reshape((8, 6, 1))(inputs)
    x = keras.layers.Conv2D(4, (3, 2), padding="valid", activation="relu", bias_initializer=bias)(x)
    x = keras.layers.DepthwiseConv2D((3, 3), padding="same", activation="relu", bias_initializer=bias)(x)
    x = keras.layers.Conv2D(5, (1, 1), activation="relu", bias_initializer=bias)(x)
    x = keras.layers.AveragePooling2D((6, 5))(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", bias_initializer=bias)(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def hand_int8() -> bytes:
    rep = np.random.default_rng(7).normal(0, 1, (32, 8, 6)).astype(np.float32)
    return quantize(_hand_model(), rep)


def test_macs_and_params_equal_hand_counts(hand_int8):
    layers, io = graph_layers(hand_int8)
    by_op = {(layer.op, layer.output_shape): layer for layer in layers}
    out_h, out_w = 8 - 3 + 1, 6 - 2 + 1  # valid 3x2 conv on 8x6
    conv = by_op[("CONV_2D", (1, out_h, out_w, 4))]
    dw = by_op[("DEPTHWISE_CONV_2D", (1, out_h, out_w, 4))]
    pw = by_op[("CONV_2D", (1, out_h, out_w, 5))]
    dense = by_op[("FULLY_CONNECTED", (1, 3))]
    assert conv.macs == out_h * out_w * 4 * 3 * 2 * 1 == 720
    assert dw.macs == out_h * out_w * 4 * 3 * 3 == 1080
    assert pw.macs == out_h * out_w * 5 * 1 * 1 * 4 == 600
    assert dense.macs == 5 * 3 == 15
    assert (conv.params, dw.params, pw.params, dense.params) == (3 * 2 * 4 + 4, 3 * 3 * 4 + 4, 4 * 5 + 5, 5 * 3 + 3)
    assert sum(layer.macs for layer in layers) == 720 + 1080 + 600 + 15
    zero_mac_ops = {layer.op for layer in layers if layer.macs == 0}
    assert zero_mac_ops == {"RESHAPE", "AVERAGE_POOL_2D", "SOFTMAX"}
    assert io == {"input_shape": (1, 8, 6), "input_dtype": "int8", "output_shape": (1, 3), "output_dtype": "int8"}


def test_ds_cnn_matches_the_mlperf_mac_count(config, features):
    data = quantize(build_model("ds_cnn", config.input_shape, 12), features)
    layers, _ = graph_layers(data)
    total = sum(layer.macs for layer in layers)
    assert abs(total - MLPERF_DS_CNN_MACS) / MLPERF_DS_CNN_MACS < 0.05
    # by hand: stem 25*5*64*10*4, 4 x (DW 25*5*64*9 + PW 25*5*64*64), dense 64*12
    assert total == 25 * 5 * 64 * 40 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12


def test_collect_stats_reads_a_model_directory(tmp_path, hand_int8):
    (tmp_path / "model_int8.tflite").write_bytes(hand_int8)
    model = _hand_model()
    model.save(tmp_path / "model.keras")
    stats = collect_stats(tmp_path, arena=False)
    assert stats.flash_bytes == len(hand_int8) and stats.arena_bytes is None
    assert stats.keras_params == model.count_params() == stats.params  # no BatchNorm to fold
    assert stats.keras_bytes == (tmp_path / "model.keras").stat().st_size


def _cli() -> typer.Typer:
    from kws.cli import app

    return app


def test_cli_prints_table_and_writes_json(tmp_path, hand_int8):
    model = tmp_path / "hand.tflite"
    model.write_bytes(hand_int8)
    out = tmp_path / "stats.json"
    result = CliRunner().invoke(_cli(), ["model-stats", str(model), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "DEPTHWISE_CONV_2D" in result.output and "2,415" in result.output
    data = json.loads(out.read_text())
    assert data["macs"] == 2415 and data["flash_bytes"] == len(hand_int8)
    assert 0 < data["arena_bytes"] < 8192
    again = CliRunner().invoke(_cli(), ["model-stats", str(model), "--json", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output


@pytest.mark.parametrize("name, content, message, code", [
    ("absent.tflite", None, "does not exist", 2),  # typer's existing-path check, as one line
    ("empty_dir", None, "model directory has no model_int8.tflite", 1),
    ("bad.tflite", b"\x00" * 32, "not a TFLite model", 1),
])
def test_cli_bad_models_are_one_line_errors(tmp_path, name, content, message, code):
    target = tmp_path / name
    if name.endswith("_dir"):
        target.mkdir()
    elif content is not None:
        target.write_bytes(content)
    result = CliRunner().invoke(_cli(), ["model-stats", str(target), "--no-arena"])
    assert result.exit_code == code
    assert message in result.output and str(target) in result.output and "Traceback" not in result.output


def test_damaged_flatbuffer_is_a_model_error(hand_int8):
    damaged = hand_int8[:8] + bytes(len(hand_int8) - 8)
    with pytest.raises(ModelError):
        graph_layers(damaged)


def test_a_truncated_model_file_is_named_in_its_error(hand_int8, tmp_path):
    """The message said "<in-memory model>": the bytes had been read before they were parsed."""
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(hand_int8[: len(hand_int8) // 3])
    result = CliRunner().invoke(_cli(), ["model-stats", str(cut), "--no-arena"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith(f"error: {cut}: cannot parse the TFLite flatbuffer"), result.output


def test_a_bundle_is_not_one_model_and_says_which_to_give(samples_dir) -> None:
    """It said "model directory has no model_int8.tflite", true but no help."""
    bundle = samples_dir / "cascade"
    result = CliRunner().invoke(_cli(), ["model-stats", str(bundle), "--no-arena"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip() == f"error: {bundle}: a cascade bundle, not one model: give {bundle / 'stage1'} or {bundle / 'stage2'}"
    assert collect_stats(bundle / "stage1", arena=False).params > 0  # each of its models still is one


def test_a_keras_model_with_python_code_is_refused_not_run(tmp_path) -> None:
    """#18: a user's model.keras is loaded with safe_mode=True: a Lambda layer (arbitrary code
    in the file) is refused with one line, and its code never runs."""
    import shutil
    from pathlib import Path

    from cascade.runtime.model_dir import load_keras
    from kws.cli import app

    model_dir = tmp_path / "evil"
    shutil.copytree(Path(__file__).resolve().parents[1] / "samples" / "models" / "stage2", model_dir)
    marker = tmp_path / "ran.txt"
    inputs = keras.Input((49, 10))
    code = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]")  # the path baked into its bytecode
    outputs = keras.layers.Lambda(code)(inputs)
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(outputs))).save(model_dir / "model.keras")
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(ModelError, match="holds Python code"):
        load_keras(model_dir / "model.keras")
    result = CliRunner().invoke(app, ["model-stats", str(model_dir)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == f"error: {model_dir / 'model.keras'}: refused: the model holds Python code (a Lambda layer), " \
                        "which kws does not run (Keras safe_mode=True)", result.output
    assert "Traceback" not in result.output and not marker.exists()
