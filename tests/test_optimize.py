"""kws optimize: QAT, channel pruning and clustering on real models, real int8 conversion and
real TFLite Micro; the optimization table's rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import ConfigError, ModelError

SHAPE = (49, 10)


def _model(arch: str = "ds_cnn", seed: int = 0, **params):
    """A zoo model with non-trivial BN statistics (as after training)."""
    import keras

    from kws.train.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(arch, SHAPE, 12, **params)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.3, beta.shape),
                               rng.normal(0, 0.3, mean.shape), rng.uniform(0.5, 2, var.shape)])
    return model


def _features(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(np.float32)


# --- QAT ------------------------------------------------------------------------------------
def _logits(model):
    """The model up to its classifier output, before softmax (softmax saturates: it would
    hide how far two models' logits differ)."""
    import keras

    return keras.Model(model.inputs[0], model.get_layer(index=-2).output)


@pytest.mark.parametrize("level, ranges", [
    (False, 7),  # input, stem, 2 x (dw, pw), classifier logits
    (True, 10),  # + the level shift, the SUB and the input map (the warm start's level layer)
])
def test_qat_graph_simulates_the_int8_model_and_shares_weights(level: bool, ranges: int):
    from cascade.runtime.int8_model import TFLiteModel
    from export.quantize import quantize
    from kws.train.compress.qat import calibrate, qat_model

    model = _logits(_model(filters=16, blocks=2, level=level))
    if level:  # an input map that is not the identity, as a warm start fits it
        input_map = model.get_layer("input_map")
        rng = np.random.default_rng(3)
        input_map.set_weights([np.diag(rng.uniform(2, 20, SHAPE[1]))[None].astype(np.float32),
                               rng.normal(0, 5, SHAPE[1]).astype(np.float32)])
    x = _features()
    int8 = TFLiteModel(quantize(model, x, "int8")).predict(x)
    trainer = qat_model(model)
    assert calibrate(trainer, x) == ranges
    simulated = trainer.predict(x, verbose=0)
    plain = model.predict(x, verbose=0)
    # the fake-quant graph computes most int8 outputs exactly, the float one almost none (not
    # all: a rounding tie broken differently in one layer moves the next ones; measured 74 % /
    # 63 % without / with the level layer, against 0.3 % / 0.5 % for the float graph)
    exact = np.isclose(simulated, int8, rtol=0, atol=1e-5).mean()
    assert exact > 0.5 and np.isclose(plain, int8, rtol=0, atol=1e-5).mean() < 0.05
    assert np.abs(simulated - int8).mean() < np.abs(plain - int8).mean()
    assert {id(v) for v in model.trainable_variables} <= {id(v) for v in trainer.trainable_variables}


def test_qat_rejects_layers_it_cannot_fold():
    import keras

    from kws.train.compress.qat import qat_model

    inputs = keras.Input(SHAPE)
    x = keras.layers.Reshape((*SHAPE, 1))(inputs)
    x = keras.layers.LayerNormalization()(x)
    with pytest.raises(ModelError, match="LayerNormalization"):
        qat_model(keras.Model(inputs, keras.layers.Flatten()(x)))


# --- pruning --------------------------------------------------------------------------------
@pytest.mark.parametrize("arch, params, narrow", [
    ("ds_cnn", {"filters": 8, "blocks": 2}, {"filters": 6}),
    ("tc_resnet", {"width": 0.5}, {"width": 0.25}),
    ("bc_resnet", {"width": 1.0}, {"width": 0.5}),  # broadcasting ADDs join (T, F, C) and (T, 1, C) channels
])
def test_pruning_removes_dead_channels_without_changing_the_output(arch, params, narrow):
    """Channels whose every BN outputs zero are the weakest (folded L1 = 0) and carry
    nothing: the narrower model must compute exactly what the wide one does."""
    from kws.train.compress.keras_graph import consumers, single_consumer
    from kws.train.compress.prune import transfer_channels
    from kws.train.models import build_model

    model = _model(arch, **params)
    target = build_model(arch, SHAPE, 12, **{**params, **narrow})
    users = consumers(model)
    dead_per_layer = {}
    for layer, small in zip(model.layers, target.layers):
        if type(layer).__name__ == "BatchNormalization":
            drop = layer.get_weights()[0].shape[0] - small.get_weights()[0].shape[0]
            gamma, beta, mean, var = layer.get_weights()
            gamma[-drop or len(gamma):], beta[-drop or len(beta):] = 0, 0  # the last `drop` channels die
            layer.set_weights([gamma, beta, mean, var])
            dead_per_layer[layer.name] = drop
        elif type(layer).__name__ == "Conv2D" and layer.filters > small.filters and \
                single_consumer(users, layer, "BatchNormalization") is None:
            # a conv with no BN after it (BC-ResNet's temporal 1x1 conv): its own filters die
            kernel, *rest = layer.get_weights()
            kernel[..., small.filters - layer.filters:] = 0
            layer.set_weights([kernel, *rest])
    kept = transfer_channels(model, target)
    assert kept and all(k < total for k, total in kept.values())
    x = _features(8)
    np.testing.assert_allclose(target.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_width_for_macs_cuts_the_requested_share_as_model_stats_counts_it():
    from cascade.energy.model_stats import graph_layers
    from export.quantize import quantize
    from kws.train.models import build_model
    from kws.train.width import keras_macs, width_for_macs

    params = {"filters": 24, "blocks": 2}
    full = build_model("ds_cnn", SHAPE, 12, **params)
    before = keras_macs(full)
    chosen, after = width_for_macs("ds_cnn", params, SHAPE, 12, 0.6 * before)
    assert after <= 0.6 * before and chosen["blocks"] == 2 and chosen["filters"] < 24
    wider = build_model("ds_cnn", SHAPE, 12, **{**chosen, "filters": chosen["filters"] + 1})
    assert keras_macs(wider) > 0.6 * before  # the widest that meets the target
    narrow = build_model("ds_cnn", SHAPE, 12, **chosen)
    counted = sum(layer.macs for layer in graph_layers(quantize(narrow, _features(8), "int8"))[0])
    assert counted == after
    with pytest.raises(ConfigError, match="no width"):
        width_for_macs("ds_cnn", params, SHAPE, 12, 10)


# --- clustering -----------------------------------------------------------------------------
def test_clustering_keeps_k_values_per_kernel_through_training_steps_and_int8():
    from ai_edge_litert import interpreter as litert

    from export.quantize import quantize
    from kws.train.compress.cluster import cluster_model, project, unique_counts

    model = _model(filters=16, blocks=1)
    clusters = cluster_model(model, 4)
    assert max(unique_counts(model).values()) <= 4
    rng = np.random.default_rng(0)
    for c in clusters:  # an optimizer step moves every weight on its own...
        c.layer.kernel.assign(np.asarray(c.layer.kernel) + rng.normal(0, 0.01, c.assignment.shape).astype(np.float32))
    assert min(unique_counts(model).values()) > 4
    project(clusters)  # ...and the projection shares the centroids again
    counts = unique_counts(model)
    assert len(counts) == 4 and max(counts.values()) <= 4  # stem, dw, pw, classifier
    # per-channel int8: each output channel of each weight tensor keeps <= 4 values
    it = litert.Interpreter(model_content=quantize(model, _features(16), "int8"))
    weights = [d for d in it.get_tensor_details() if d["dtype"] == np.int8 and len(d["shape"]) == 4
               and d["quantization_parameters"]["scales"].size > 1]
    assert len(weights) == 4
    for d in weights:
        w = it.get_tensor(d["index"])
        axis = d["quantization_parameters"]["quantized_dimension"]
        per_channel = [len(np.unique(np.take(w, c, axis=axis))) for c in range(w.shape[axis])]
        assert max(per_channel) <= 4, d["name"]
    with pytest.raises(ConfigError):
        cluster_model(model, 1)


# --- end to end on a trained model ----------------------------------------------------------
@pytest.fixture(scope="module")
def finetune_data(trained_models):
    from cascade.runtime.model_dir import ModelDir
    from kws.train.compress.optimize import load_data

    return load_data(ModelDir.open(trained_models["stage2"]))


@pytest.mark.parametrize("method", ["qat", "prune", "cluster"])
def test_each_method_writes_a_bit_exact_int8_model_dir(method, trained_models, finetune_data, tmp_path):
    import keras

    from cascade.runtime.int8_model import TFLiteModel
    from cascade.runtime.model_dir import ModelDir
    from export.tflm import verify_bit_exact
    from kws.train.compress.cluster import unique_counts
    from kws.train.compress.optimize import OPTIMIZE_JSON, OptimizeSettings, optimize

    out = tmp_path / method
    settings = OptimizeSettings(method=method, epochs=1, verify_samples=24, clusters=8, macs_reduction=0.3)
    record = optimize(trained_models["stage2"], out, settings, data=finetune_data)
    opened = ModelDir.open(out)  # a complete model directory every later command accepts
    assert json.loads((out / OPTIMIZE_JSON).read_text())["method"] == method
    assert record["bit_exact"]["bit_exact"] and record["bit_exact"]["samples"] == 24
    assert [h["epoch"] for h in record["history"]] == [0, 1]
    assert set(record["metrics"]) >= {"validation", "testing"}
    # an independent TFLM check on the test speakers' features
    x, _ = finetune_data.split("testing")
    model_bytes = opened.int8_path.read_bytes()
    assert verify_bit_exact(model_bytes, TFLiteModel(model_bytes).quantize_input(x[:16])).bit_exact
    if method == "prune":
        assert record["int8_macs_after"] <= 0.7 * record["int8_macs_before"]
        assert json.loads((out / "train_config.json").read_text())["arch_params"] == record["arch_params"]
    else:
        assert record["int8_macs_after"] == record["int8_macs_before"]
    if method == "cluster":
        assert max(unique_counts(keras.models.load_model(opened.keras_path, safe_mode=True)).values()) <= 8
    with pytest.raises(Exception, match="already exists"):
        optimize(trained_models["stage2"], out, settings, data=finetune_data)


def test_fine_tuning_keeps_the_models_teacher(trained_models, samples_dir, tmp_path):
    """A model distilled from a teacher is fine-tuned on that teacher's soft targets, as it
    was trained (on labels alone a warm-started stage 2 forgets: docs/distillation.md)."""
    from typer.testing import CliRunner

    from cascade.runtime.model_dir import ModelDir
    from kws.cli import app as kws_app
    from kws.train.compress.optimize import OptimizeSettings, load_data, optimize

    student = tmp_path / "student"
    result = CliRunner().invoke(kws_app, [
        "train", str(samples_dir / "speech_commands"), "--out", str(student), "--stage", "2", "--arch", "ds_cnn",
        "--arch-params", '{"filters": 8, "blocks": 1}', "--epochs", "1", "--batch-size", "32",
        "--unknown-pct", "50", "--teacher", str(trained_models["stage2"]), "--quiet"])
    assert result.exit_code == 0, result.output
    data = load_data(ModelDir.open(student))
    assert data.distill is not None
    record = optimize(student, tmp_path / "ft", OptimizeSettings(method="finetune", epochs=1, verify_samples=8), data=data)
    assert record["teacher"] == str(trained_models["stage2"].resolve())
    assert [h["epoch"] for h in record["history"]] == [0, 1] and record["bit_exact"]["bit_exact"]


def test_optimize_refuses_bad_settings_and_models(tmp_path, trained_models):
    from kws.train.compress.optimize import OptimizeSettings, optimize

    with pytest.raises(ConfigError, match="unknown optimization method"):
        OptimizeSettings(method="distill")
    with pytest.raises(ConfigError, match="macs-reduction"):
        OptimizeSettings(method="prune", macs_reduction=1.5)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("features.toml", "labels.txt", "normalization.json", "model_int8.tflite"):
        (bare / name).write_bytes((Path(trained_models["stage2"]) / name).read_bytes())
    with pytest.raises(ModelError, match="model.keras"):
        optimize(bare, tmp_path / "out", OptimizeSettings(method="qat"))


# --- CLI --------------------------------------------------------------------------------------
@pytest.fixture()
def app():
    from kws.cli import app as root

    return root


def test_cli_reports_bad_input_in_one_line(app, trained_models, tmp_path):
    from typer.testing import CliRunner

    runner = CliRunner()
    result = runner.invoke(app, ["optimize", str(trained_models["stage2"]), "--method", "distill", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "'distill' is not one of 'qat', 'prune', 'cluster', 'finetune'" in result.output
    result = runner.invoke(app, ["optimize", str(trained_models["stage2"]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "exactly one MODEL and one --method" in result.output
    result = runner.invoke(app, ["optimize", str(tmp_path / "missing"), "--method", "qat", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "missing' does not exist" in result.output and "Traceback" not in result.output


def test_cli_table_refuses_a_folder_of_the_users_before_any_training(app, samples_dir, tmp_path):
    """--table replaces OUT/<model>-<method> (force or not): a folder of the user's own there was
    refused only when its turn came, after the methods before it had trained (hours)."""
    from typer.testing import CliRunner

    out = tmp_path / "table"
    mine = out / "stage1-prune"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("mine")
    result = CliRunner().invoke(app, ["optimize", str(samples_dir / "models" / "stage1"), "--table", "--method", "qat",
                                      "--method", "prune", "--out", str(out), "--epochs", "1", "--quiet"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().startswith(f"error: {mine}: not written by kws (no optimize.json")
    assert sorted(p.name for p in out.iterdir()) == ["stage1-prune"]  # qat was not trained
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_cli_table_measures_every_row(app, trained_models, tmp_path):
    """The full comparison on the tiny stage-1 model: PTQ rows, the optimized rows, targets."""
    from typer.testing import CliRunner

    out = tmp_path / "table"
    result = CliRunner().invoke(app, ["optimize", str(trained_models["stage1"]), "--table", "--out", str(out),
                                      "--epochs", "1", "--quiet", "--profile", "nrf52840"])
    assert result.exit_code == 0, result.output
    table = json.loads((out / "optimization_table.json").read_text())
    rows = {r["technique"]: r for r in table["models"][0]["rows"]}
    assert list(rows) == ["float32", "float16", "dynamic", "int8", "int16x8", "qat", "prune", "cluster", "finetune"]
    assert rows["int8"]["tflite_bytes"] < rows["float32"]["tflite_bytes"]
    assert rows["prune"]["macs"] <= 0.7 * rows["int8"]["macs"]
    assert rows["float16"]["arena_bytes"] is None and "TFLite Micro cannot run" in rows["float16"]["arena_note"]
    assert rows["int8"]["per_profile"]["nrf52840"]["latency_ms"] > rows["prune"]["per_profile"]["nrf52840"]["latency_ms"]
    assert rows["float32"]["per_profile"] is None
    assert set(table["models"][0]["targets"]) == {"qat", "prune"}
    assert "PTQ full int8" in (out / "optimization_table.md").read_text()
    again = CliRunner().invoke(app, ["optimize", str(trained_models["stage1"]), "--table", "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
