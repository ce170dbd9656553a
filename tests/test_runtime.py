"""TFLiteModel: tensor parameters read from the model, int8 batches, bad files refused."""

from __future__ import annotations

import numpy as np
import pytest

from cascade.runtime.int8_model import TFLiteModel
from data_prep.cache import compute_features
from data_prep.errors import ModelError
from data_prep.normalize import FeatureStats
from export.quantize import quantize
from kws.train.models import build_model


@pytest.fixture(scope="module")
def features(dev_data, config) -> np.ndarray:
    raw = compute_features(sorted(dev_data.glob("*/*_nohash_1.wav"))[::9][:24], config)
    return FeatureStats.measure(raw).apply(raw)


@pytest.fixture(scope="module")
def int8_bytes(config, features) -> bytes:
    return quantize(build_model("tiny", config.input_shape, 3, filters=8), features)


def test_details_come_from_the_model(int8_bytes, config):
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_content=int8_bytes)
    (scale, zero), (out_scale, out_zero) = (it.get_input_details()[0]["quantization"],
                                            it.get_output_details()[0]["quantization"])
    model = TFLiteModel(int8_bytes)
    assert (model.input.scale, model.input.zero_point) == (pytest.approx(scale), zero)
    assert (model.output.scale, model.output.zero_point) == (pytest.approx(out_scale), out_zero)
    assert model.input_shape == config.input_shape and model.num_classes == 3


def test_predict_is_dequantized_invoke_int8(int8_bytes, features):
    model = TFLiteModel(int8_bytes)
    raw = model.invoke_int8(model.quantize_input(features))
    assert raw.dtype == np.int8 and raw.shape == (len(features), 3)
    probs = model.predict(features)
    np.testing.assert_allclose(probs, (raw.astype(np.float32) + 128) / 256, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=3 * 3 / 256)
    # one clip without the batch axis gives the same row as inside the batch
    np.testing.assert_array_equal(model.predict(features[5]), probs[5:6])


def test_clip_by_clip_equals_separate_interpreters(int8_bytes, features):
    """The shared interpreter keeps no state between clips."""
    q = TFLiteModel(int8_bytes).quantize_input(features[:6])
    batch = TFLiteModel(int8_bytes).invoke_int8(q)
    single = np.concatenate([TFLiteModel(int8_bytes).invoke_int8(clip) for clip in q[::-1]])[::-1]
    np.testing.assert_array_equal(batch, single)


def test_optimized_kernels_are_an_option(int8_bytes, features):
    ref = TFLiteModel(int8_bytes, reference_kernels=True)
    opt = TFLiteModel(int8_bytes, reference_kernels=False)
    q = ref.quantize_input(features)
    diff = np.abs(ref.invoke_int8(q).astype(int) - opt.invoke_int8(q).astype(int))
    assert diff.max() <= 16  # a few LSB at most; exactness is only promised for the reference


def test_wrong_inputs_are_refused(int8_bytes, features):
    model = TFLiteModel(int8_bytes)
    with pytest.raises(ModelError, match="do not match the model input"):
        model.predict(features[:, :20])
    with pytest.raises(ModelError, match="inputs are float32"):
        model.invoke_int8(features)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x00" * 64])
def test_non_tflite_file_is_a_model_error_naming_it(tmp_path, content):
    path = tmp_path / "model_int8.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelError) as err:
        TFLiteModel(path)
    assert str(path) in str(err.value) and "not a TFLite model" in str(err.value)


def test_truncated_model_is_a_model_error(tmp_path, int8_bytes):
    path = tmp_path / "cut.tflite"
    path.write_bytes(int8_bytes[: len(int8_bytes) // 3])
    with pytest.raises(ModelError, match=str(path)):
        TFLiteModel(path)


def test_missing_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="cannot read model"):
        TFLiteModel(tmp_path / "absent.tflite")


def test_parallel_predict_equals_serial(tmp_path) -> None:
    """Splitting a batch over interpreter threads changes nothing in the outputs."""
    import numpy as np

    from cascade.runtime.int8_model import TFLiteModel
    from export.quantize import quantize
    from kws.train.models import build_model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 49, 10)).astype(np.float32)
    model = TFLiteModel(quantize(build_model("tiny", (49, 10), 3), x, "int8"))
    np.testing.assert_array_equal(model.predict(x, workers=3), model.predict(x))
