"""C arrays of the models, the frontend's sparse tables and the TFLite Micro op resolver: the
parts of the export checked without a compiler (tests/test_export_c.py and
tests/test_export_frontend_c.py build the rest)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from data_prep.features import feature_tables
from export import frontend_c
from export.c_array import model_array_sources, parse_c_bytes, xxd_name
from export.tflm_ops import ops_header, resolver_method


# ---- C arrays --------------------------------------------------------------------------------
def test_model_array_is_the_file_with_xxd_names(tmp_path, rng):
    data = bytes(rng.integers(0, 256, 1000, dtype=np.uint8))
    h, cc = model_array_sources(data, "kws_stage1.tflite", "kws_stage1_model")
    assert parse_c_bytes(cc, "kws_stage1_tflite") == data
    assert "alignas(16) const unsigned char kws_stage1_tflite[]" in cc
    assert "const unsigned int kws_stage1_tflite_len = 1000;" in cc and "#define KWS_STAGE1_TFLITE_LEN 1000u" in h
    assert xxd_name("1st model.tflite") == "__1st_model_tflite"
    if shutil.which("xxd"):
        (tmp_path / "kws_stage1.tflite").write_bytes(data)
        dump = subprocess.run(["xxd", "-i", "kws_stage1.tflite"], cwd=tmp_path, capture_output=True, text=True,
                              check=True).stdout
        assert parse_c_bytes(dump, "kws_stage1_tflite") == data and "kws_stage1_tflite_len = 1000" in dump


# ---- tables and resolver ---------------------------------------------------------------------
def test_sparse_mel_and_twiddles(config):
    _, mel, _ = feature_tables(config)
    sparse = frontend_c.sparse_mel(mel)
    assert np.array_equal(sparse.dense(config.n_bins), mel)
    assert sparse.weights.size < mel.size / 10
    tw = frontend_c.twiddles(8)
    assert np.allclose(tw, [[1, 0], [0.70710677, 0.70710677], [0, 1], [-0.70710677, 0.70710677]], atol=1e-7)


def test_resolver_methods_and_header():
    assert [resolver_method(o) for o in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D",
                                        "RELU6", "L2_NORMALIZATION", "BATCH_MATMUL", "PADV2")] == [
        "AddConv2D", "AddDepthwiseConv2D", "AddFullyConnected", "AddAveragePool2D", "AddRelu6",
        "AddL2Normalization", "AddBatchMatMul", "AddPadV2"]
    text = ops_header(("RESHAPE", "SOFTMAX"))
    assert "MicroMutableOpResolver<KWS_NUM_OPS>" in text and "#define KWS_NUM_OPS 2" in text
    assert text.count("resolver.Add") == 2
