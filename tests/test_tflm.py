"""Real TensorFlow Lite Micro: bit-exact with TFLite reference kernels, measured arenas, budgets."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from cascade.energy.arena import allocates, measure_arena
from cascade.runtime.int8_model import TFLiteModel
from data_prep.cache import compute_features
from data_prep.config import FeatureConfig
from data_prep.errors import ModelError
from data_prep.normalize import FeatureStats
from export.quantize import quantize
from export.tflm import tflm_outputs, verify_bit_exact
from export.tflm_ops import model_ops
from kws.train.models import build_model

SMALL = {"tiny": {}, "ds_cnn": {"filters": 16, "blocks": 2}, "tc_resnet": {"width": 0.5},
         "bc_resnet": {"width": 0.5}}
STAGE1_FLASH, STAGE1_ARENA = 20 * 1024, 4 * 1024
STAGE2_FLASH = 64 * 1024


@pytest.fixture(scope="module")
def features(dev_data, config) -> np.ndarray:
    """Normalised MFCC of 30 real clips of many words."""
    paths = sorted(dev_data.glob("*/*_nohash_2.wav"))[::4][:30]
    raw = compute_features(paths, config)
    return FeatureStats.measure(raw).apply(raw)


def _trained_looking(model: keras.Model, seed: int, features: np.ndarray) -> keras.Model:
    """Spread BatchNorm and bias values the way training does, so outputs are far from uniform
    and rounding differences between interpreters have a chance to show. Each BN first takes
    the statistics of its input on ``features``, as training would: with the initial ones, an
    untrained BC-ResNet gave every clip the same output."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            seen = np.asarray(keras.Model(model.inputs, layer.input)(features, training=False))
            mean, var = seen.mean(axis=(0, 1, 2)), seen.var(axis=(0, 1, 2))
            layer.set_weights([gamma * rng.uniform(0.5, 2, gamma.shape), rng.normal(0, 0.3, beta.shape), mean, var])
        elif getattr(layer, "use_bias", False):  # the classifier: confident, varied outputs
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel * 4, rng.normal(0, 0.5, bias.shape)])
    return model


@pytest.fixture(scope="module")
def models(config, features) -> dict[str, bytes]:
    keras.utils.set_random_seed(5)
    return {
        arch: quantize(_trained_looking(build_model(arch, config.input_shape, 3, **kw), seed, features), features)
        for seed, (arch, kw) in enumerate(SMALL.items())
    }


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_tflm_equals_reference_kernels_bit_for_bit(arch, models, features):
    data = models[arch]
    inputs = TFLiteModel(data).quantize_input(features)
    report = verify_bit_exact(data, inputs)
    assert report.samples == len(features) == 30
    assert report.bit_exact and report.max_lsb_reference == 0
    assert 0 <= report.argmax_disagreements_optimized <= report.samples
    # the TFLM outputs really are the model's outputs, not a constant
    outputs = tflm_outputs(data, inputs)
    assert outputs.dtype == np.int8 and outputs.shape == (30, 3) and len(np.unique(outputs)) > 4


def test_arena_is_the_smallest_that_allocates(models):
    data = models["tc_resnet"]
    arena = measure_arena(data)
    assert allocates(data, arena)
    assert not allocates(data, arena - 1)
    assert not allocates(data, arena - 16)


def test_arena_is_cached_by_content(models):
    data = models["ds_cnn"]
    first = measure_arena(data)
    start = time.perf_counter()
    assert measure_arena(bytes(data)) == first
    assert time.perf_counter() - start < 0.05  # no subprocess the second time


def test_stage1_tiny_fits_its_budget(models):
    data = models["tiny"]
    assert len(data) <= STAGE1_FLASH
    assert measure_arena(data) <= STAGE1_ARENA


def test_bc_resnet_default_fits_stage2_and_broadcasts_in_tflm(config, features):
    """The default BC-ResNet, at 36 classes (the largest named label set, 35+silence) and with
    trained-looking (non-zero, so not deduplicated) BN biases, is within the 64 KB stage-2 flash
    budget; its int8 graph keeps the (T, F, C) + (T, 1, C) broadcasting ADDs; TFLM runs them
    bit-exactly."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    keras.utils.set_random_seed(7)
    data = quantize(_trained_looking(build_model("bc_resnet", config.input_shape, 36), 7, features), features)
    assert 25 * 1024 <= len(data) <= STAGE2_FLASH
    graph = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    ops = graph.subgraphs[0].operators
    tensors = graph.subgraphs[0].tensors
    add = next(i for i, code in enumerate(graph.operatorCodes)
               if max(code.builtinCode, code.deprecatedBuiltinCode) == schema.BuiltinOperator.ADD)
    adds = [[tuple(tensors[i].shape) for i in op.inputs] for op in ops if op.opcodeIndex == add]
    broadcast = [a for a in adds if a[0] != a[1]]
    assert len(broadcast) == 6
    for a, b in broadcast:  # (1, T, F, C) + (1, T, 1, C), either way round
        assert min(a[2], b[2]) == 1 < max(a[2], b[2]) and (a[:2], a[3]) == (b[:2], b[3])
    report = verify_bit_exact(data, TFLiteModel(data).quantize_input(features))
    assert report.bit_exact and report.max_lsb_reference == 0
    assert measure_arena(data) < 48 * 1024


def test_too_small_arena_is_refused_not_a_segfault(models, features):
    data = models["tiny"]
    inputs = TFLiteModel(data).quantize_input(features[:2])
    with pytest.raises(ModelError, match="too small"):
        tflm_outputs(data, inputs, arena_size=256)
    np.testing.assert_array_equal(
        tflm_outputs(data, inputs, arena_size=measure_arena(data) + 1024), tflm_outputs(data, inputs)
    )


def test_wrong_inputs_and_files_are_model_errors(models, features):
    with pytest.raises(ModelError, match="TFLM inputs are float32"):
        tflm_outputs(models["tiny"], features)
    with pytest.raises(ModelError, match="not a TFLite model"):
        measure_arena(b"garbage bytes that are no flatbuffer")


@pytest.mark.slow
def test_mlperf_sized_ds_cnn_arena_and_bit_exactness(config, features):
    """The MLPerf Tiny DS-CNN allocates in 24,273 B; ours adds only the input RESHAPE."""
    data = quantize(build_model("ds_cnn", config.input_shape, 12), features)
    arena = measure_arena(data)
    assert 24_273 <= arena <= 24_273 * 1.02
    assert verify_bit_exact(data, TFLiteModel(data).quantize_input(features)).bit_exact


def test_model_tflm_cannot_run_is_named_not_probed_forever(config):
    """A float16 model's DEQUANTIZE of float16 weights is not in TFLM: say so at once."""
    data = quantize(build_model("tiny", config.input_shape, 3, filters=4), None, "float16")
    with pytest.raises(ModelError, match="TFLite Micro cannot run the model"):
        measure_arena(data)


def test_level_layer_is_bit_exact_in_tflm(samples_dir):
    """The level layer's MAX_POOL_2D, 1x1 CONV_2D and broadcast SUB (ds_cnn level=True) on real
    sample clips through the MLPerf preset front end."""
    preset = FeatureConfig.load(samples_dir / "features" / "mlperf.toml")
    raw = compute_features(sorted((samples_dir / "speech_commands").glob("*/*.wav"))[::8][:30], preset)
    x = FeatureStats.measure(raw).apply(raw)
    keras.utils.set_random_seed(7)
    data = quantize(_trained_looking(build_model("ds_cnn", preset.input_shape, 3, filters=16, blocks=2, level=True),
                                     7, x), x)
    assert {"MAX_POOL_2D", "SUB"} <= set(model_ops(data))
    report = verify_bit_exact(data, TFLiteModel(data).quantize_input(x))
    assert report.samples == len(x) == 30 and report.bit_exact
