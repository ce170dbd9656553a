"""Real TFLite conversion of real models on real MFCC: modes, op set, scales, size table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from cascade.energy.model_stats import graph_layers
from cascade.runtime.int8_model import TFLiteModel
from data_prep.cache import compute_features
from data_prep.errors import ModelError
from data_prep.normalize import FeatureStats
from export.quantize import quantize, size_table
from kws.train.models import build_model

TFLM_OPS = {"RESHAPE", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "ADD", "SOFTMAX"}
SMALL = {"tiny": {"filters": 8}, "ds_cnn": {"filters": 16, "blocks": 2}, "tc_resnet": {"width": 0.5},
         "bc_resnet": {"width": 0.5}}


@pytest.fixture(scope="module")
def features(dev_data, config) -> np.ndarray:
    """Normalised MFCC of 40 real clips over many words, as training would feed them."""
    paths = sorted(dev_data.glob("*/*_nohash_0.wav"))[::7][:40]
    raw = compute_features(paths, config)
    return FeatureStats.measure(raw).apply(raw)


@pytest.fixture(scope="module")
def small_model(config):
    return build_model("tc_resnet", config.input_shape, 4, width=0.5)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_int8_uses_only_tflm_ops_and_int8_io(arch, config, features):
    keras.utils.set_random_seed(11)
    model = build_model(arch, config.input_shape, 3, **SMALL[arch])
    runtime = TFLiteModel(quantize(model, features))
    assert runtime.input.dtype == np.int8 and runtime.output.dtype == np.int8
    assert runtime.input.shape == (1, *config.input_shape)
    layers, _ = graph_layers(runtime.model_bytes)
    assert {layer.op for layer in layers} <= TFLM_OPS
    # the classifier is a 1x1 CONV_2D: TFLM's FULLY_CONNECTED is not bit-exact with TFLite
    assert "FULLY_CONNECTED" not in {layer.op for layer in layers}
    # softmax output is fixed by the converter to 1/256 and -128; read, not assumed, by the runtime
    assert runtime.output.scale == pytest.approx(1 / 256) and runtime.output.zero_point == -128
    # an untrained model's classes nearly tie, so compare probabilities, not argmax
    float_probs = np.asarray(model(features, training=False))
    assert np.abs(runtime.predict(features) - float_probs).max() < 0.08


def test_input_scale_covers_the_representative_range(small_model, features):
    runtime = TFLiteModel(quantize(small_model, features))
    scale, zero = runtime.input.scale, runtime.input.zero_point
    lo, hi = (-128 - zero) * scale, (127 - zero) * scale
    assert lo <= features.min() + scale and hi >= features.max() - scale
    q = runtime.quantize_input(features)
    np.testing.assert_array_equal(q, np.clip(np.round(features / scale) + zero, -128, 127).astype(np.int8))


@pytest.mark.parametrize(
    "mode, input_dtype", [("float32", np.float32), ("float16", np.float32), ("dynamic", np.float32), ("int16x8", np.int16)]
)
def test_other_modes_convert_and_agree_with_keras(mode, input_dtype, small_model, features):
    runtime = TFLiteModel(quantize(small_model, features, mode), reference_kernels=(mode != "float16"))
    assert runtime.input.dtype == input_dtype
    expected = np.asarray(small_model(features[:10], training=False))
    tolerance = {"float32": 1e-4, "float16": 5e-3, "dynamic": 0.05, "int16x8": 0.02}[mode]
    np.testing.assert_allclose(runtime.predict(features[:10]), expected, atol=tolerance)


def test_size_table_orders_keras_float_int8(small_model, features):
    rows = {row.format: row for row in size_table(small_model, features, modes=("float32", "int8"))}
    assert list(rows) == ["keras", "tflite float32", "tflite int8"]
    params = small_model.count_params()
    assert rows["tflite float32"].bytes > 4 * params * 0.9
    assert rows["tflite int8"].bytes < rows["tflite float32"].bytes / 2
    assert rows["keras"].ratio_to_keras == 1.0


@pytest.mark.parametrize(
    "representative, mode, message",
    [
        (None, "int8", "needs representative features"),
        (np.zeros((5, 10, 49), np.float32), "int8", "expected (N, 49, 10)"),
        (np.full((5, 49, 10), np.nan, np.float32), "int16x8", "NaN or infinite"),
        (None, "int4", "unknown quantization mode 'int4'"),
    ],
)
def test_bad_requests_raise_model_error(small_model, representative, mode, message):
    with pytest.raises(ModelError) as err:
        quantize(small_model, representative, mode)
    assert message in str(err.value)

