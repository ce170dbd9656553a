"""Model zoo: every architecture builds from its parameters, outputs probabilities, round-trips."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from data_prep.errors import ConfigError
from kws.train.config import ARCHS
from kws.train.models import arch_params, available_archs, build_model

SMALL = {"tiny": {"filters": 8}, "ds_cnn": {"filters": 16, "blocks": 2}, "tc_resnet": {"width": 0.5},
         "bc_resnet": {"width": 0.5}}


def _layers(model: keras.Model, kind: type) -> list:
    return [layer for layer in model.layers if type(layer) is kind]


def test_registry_lists_the_four_families():
    assert {"tiny", "ds_cnn", "tc_resnet", "bc_resnet"} <= set(available_archs())
    assert available_archs() == ARCHS  # what the CLI offers as --arch choices
    assert arch_params("ds_cnn")["filters"] == 64 and arch_params("ds_cnn")["blocks"] == 4


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_every_arch_maps_mfcc_to_probabilities(arch, config, rng):
    model = build_model(arch, config.input_shape, 5, **SMALL[arch])
    assert model.input_shape == (None, *config.input_shape)
    x = rng.normal(0, 5, (4, *config.input_shape)).astype(np.float32)
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (4, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert (probs >= 0).all()


def test_ds_cnn_defaults_are_the_mlperf_tiny_model(config):
    model = build_model("ds_cnn", config.input_shape, 12)
    convs = _layers(model, keras.layers.Conv2D)
    dws = _layers(model, keras.layers.DepthwiseConv2D)
    assert [c.filters for c in convs] == [64] * 5 + [12]  # the last is the dense layer as 1x1
    assert convs[0].kernel_size == (10, 4) and convs[0].strides == (2, 2)
    assert all(c.kernel_size == (1, 1) for c in convs[1:])
    assert len(dws) == 4 and all(d.kernel_size == (3, 3) for d in dws)
    (pool,) = _layers(model, keras.layers.AveragePooling2D)
    assert pool.pool_size == (24, 5)  # the reference's (T // 2, n_mfcc // 2) on a 25 x 5 map
    # Keras count by hand: stem 10*4*64 + BN 4*64, 4 x (DW 9*64 + BN + PW 64*64 + BN), dense 64*12+12
    bn = 4 * 64
    assert model.count_params() == 10 * 4 * 64 + bn + 4 * (9 * 64 + bn + 64 * 64 + bn) + 64 * 12 + 12


def test_width_and_depth_are_parameters_not_copies(config):
    narrow = build_model("ds_cnn", config.input_shape, 12, filters=32, blocks=2)
    assert len(_layers(narrow, keras.layers.DepthwiseConv2D)) == 2
    assert {c.filters for c in _layers(narrow, keras.layers.Conv2D)} == {32, 12}
    tc8 = build_model("tc_resnet", config.input_shape, 12, width=1.0)
    tc14 = build_model("tc_resnet", config.input_shape, 12, width=1.0, blocks_per_stage=2)
    assert len(_layers(tc8, keras.layers.Add)) == 3 and len(_layers(tc14, keras.layers.Add)) == 6
    assert [c.filters for c in _layers(tc8, keras.layers.Conv2D)][:4] == [16, 24, 24, 24]
    assert build_model("tc_resnet", config.input_shape, 12, width=0.5).count_params() < tc8.count_params() / 3


def test_tc_resnet_treats_coefficients_as_channels(config):
    model = build_model("tc_resnet", config.input_shape, 12)
    first = _layers(model, keras.layers.Conv2D)[0]
    t, c = config.input_shape
    assert first.input.shape[1:] == (t, 1, c)
    assert all(conv.kernel_size[1] == 1 for conv in _layers(model, keras.layers.Conv2D))


def test_bc_resnet_blocks_broadcast_the_temporal_branch_over_frequency(config):
    """Stem stride 2 over F only, then per block a (1 x k) depthwise over F, a (k x 1) depthwise
    over T dilated 2**stage on the F-averaged map, and an ADD of (T, F, C) + (T, 1, C)."""
    model = build_model("bc_resnet", config.input_shape, 12)
    t, f = config.input_shape
    stem = _layers(model, keras.layers.Conv2D)[0]
    assert stem.kernel_size == (5, 5) and stem.strides == (1, 2) and stem.filters == 28  # 16 tau, tau = 1.75
    dws = _layers(model, keras.layers.DepthwiseConv2D)[:-1]  # the last one is the head's
    frequency, temporal = dws[0::2], dws[1::2]
    assert len(frequency) == len(temporal) == sum(arch_params("bc_resnet")["blocks"]) == 6
    assert all(d.kernel_size == (1, 3) for d in frequency) and all(d.kernel_size == (3, 1) for d in temporal)
    assert [d.dilation_rate[0] for d in temporal] == [1, 2, 4, 4, 8, 8]
    assert all(d.input.shape[2] == 1 and d.input.shape[1] == t for d in temporal)  # averaged over F, full T
    assert [d.output.shape[2] for d in frequency] == [f // 2, 3, 2, 2, 2, 2]  # 10 -> 5 -> 3 -> 2
    adds = _layers(model, keras.layers.Add)
    broadcast = [a for a in adds if a.input[1].shape[2] == 1 and a.input[0].shape[2] > 1]
    assert len(broadcast) == 6 and len(adds) == 6 + 2  # + the identity of the two non-transition blocks
    assert 10_000 < model.count_params() < 20_000


def test_bc_resnet_width_and_depth_are_parameters(config):
    base = build_model("bc_resnet", config.input_shape, 12, width=1.0)
    deep = build_model("bc_resnet", config.input_shape, 12, width=1.0, blocks=(2, 2, 4, 4))
    assert len(_layers(deep, keras.layers.Add)) == 12 + 8 and len(_layers(base, keras.layers.Add)) == 6 + 2
    assert [c.filters for c in _layers(base, keras.layers.Conv2D)][:2] == [16, 8]
    assert build_model("bc_resnet", config.input_shape, 12, width=2.0).count_params() > 3 * base.count_params()
    with pytest.raises(ConfigError, match="channels needs len"):
        build_model("bc_resnet", config.input_shape, 12, blocks=(1, 1))
    with pytest.raises(ConfigError, match=r"blocks\[1\] must be positive"):
        build_model("bc_resnet", config.input_shape, 12, blocks=(1, 0, 1, 1))


@pytest.mark.parametrize("arch", ["tc_resnet", "bc_resnet"])
def test_saved_model_file_round_trips(arch, tmp_path, config, rng):
    model = build_model(arch, config.input_shape, 4, width=0.5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = rng.normal(0, 5, (3, *config.input_shape)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "arch, kwargs, shape, classes, message",
    [
        ("resnet50", {}, (49, 10), 12, "unknown model architecture 'resnet50'"),
        ("ds_cnn", {"width": 2}, (49, 10), 12, "unknown parameter(s) ['width']"),
        ("ds_cnn", {"filters": 0}, (49, 10), 12, "filters must be positive"),
        ("tiny", {}, (49, 10), 1, "num_classes must be >= 2"),
        ("tiny", {}, (49,), 3, "input_shape must be (T, n_mfcc)"),
    ],
)
def test_bad_requests_raise_one_clear_config_error(arch, kwargs, shape, classes, message):
    with pytest.raises(ConfigError) as err:
        build_model(arch, shape, classes, **kwargs)
    assert message in str(err.value)


def test_level_layer_removes_the_loudest_frame_of_c0_and_round_trips(tmp_path, config, rng):
    """ds_cnn(level=True): c0 minus its maximum over the window's frames, the other
    coefficients untouched (the reference's per-clip peak division, done in the model)."""
    model = build_model("ds_cnn", config.input_shape, 4, filters=16, blocks=1, level=True)
    after = keras.Model(model.input, _layers(model, keras.layers.Subtract)[0].output)
    x = rng.normal(0, 5, (3, *config.input_shape)).astype(np.float32)
    expected = x.copy()
    expected[..., 0] -= x[..., 0].max(axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(after(x)), expected, atol=1e-5)
    louder = x.copy()
    louder[..., 0] += 7.0  # every frame 7 units louder: the same input to the rest of the model
    np.testing.assert_allclose(np.asarray(model(louder)), np.asarray(model(x)), atol=1e-5)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
