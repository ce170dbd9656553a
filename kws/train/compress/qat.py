"""Quantization-aware training for Keras 3 models, with TensorFlow's own fake-quant ops.

tensorflow-model-optimization 0.8 works on tf-keras (Keras 2) models only: given a Keras 3
model, ``quantize_model`` and ``prune_low_magnitude`` raise "can only be a keras Sequential or
Functional model" and ``cluster_weights`` returns None (measured with tfmot 0.8.1 + tf-keras
2.21 here). So the QAT graph is built here, and simulates exactly what the int8 converter
will do to the float model:

- every CONV_2D / DEPTHWISE_CONV_2D sees its BatchNormalization folded in (moving statistics,
  as the converter folds them) and the folded kernel fake-quantized per output channel,
  symmetric, to [-127, 127] (TFLite's int8 weight scheme); the bias stays float (int32 on
  the device, with a scale far finer than the weights');
- a ReLU right after conv + BN is fused, as the converter fuses it;
- the level layer of a warm-started stage 2 (kws/train/models.py ``_level_normalise``: a max
  pool, a fixed 1x1 "c0 only" Conv1D, a SUB and the 1x1 input map) is simulated the same way:
  its Conv1Ds as convolutions, the SUB as an ADD, the pool passing its input's range through;
- every int8 activation tensor (the model input, each conv / ADD / SUB output) is fake-quantized
  with a range tracked as an exponential moving average during training, initialised from a
  calibration pass over real features.

The QAT model *shares* the original model's variables (kernels, BN gamma/beta), so after
fine-tuning the original float model holds the trained weights and converts to int8 with the
usual full-integer converter (export.quantize), which keeps the graph TFLM runs bit-exactly.
BN moving statistics stay frozen during QAT: batch statistics would make the folded weights
jump from batch to batch, and the device uses the moving ones.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from data_prep.errors import ModelError
from kws.train.compress.keras_graph import body_layers, call_again, consumers, reads_input, rebuild, single_consumer

EMA_DECAY = 0.99
_PASS_THROUGH = ("Reshape", "Flatten", "Dropout", "AveragePooling2D", "MaxPooling1D", "MaxPooling2D", "Softmax")
_MERGES = ("Add", "Subtract")  # int8 ADD / SUB: an output range of their own


def _fake_quant_weights(w, channels: int):
    """Per-output-channel symmetric int8 fake quantization (straight-through gradient)."""
    import tensorflow as tf

    flat = tf.reshape(w, (-1, channels))
    bound = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(flat), axis=0), 1e-8))
    q = tf.quantization.fake_quant_with_min_max_vars_per_channel(flat, -bound, bound, num_bits=8, narrow_range=True)
    return tf.reshape(q, tf.shape(w))


def _layer_base():
    import keras

    class _RangeTracked(keras.layers.Layer):
        """A layer whose output is an int8 tensor on the device: fake-quantized with a range
        that is calibrated once, then tracked by EMA while training."""

        calibrating = False

        def build(self, input_shape):
            self.range_min = self.add_weight(shape=(), initializer="zeros", trainable=False, name="range_min")
            self.range_max = self.add_weight(shape=(), initializer="zeros", trainable=False, name="range_max")
            self.built = True

        def quantize_output(self, y, training):
            import tensorflow as tf

            if self.calibrating:  # eager float pass over calibration data: the overall min/max,
                self.range_min.assign(tf.minimum(self.range_min, tf.reduce_min(y)))  # as the converter
                self.range_max.assign(tf.maximum(self.range_max, tf.reduce_max(y)))  # calibrates
                return y
            if training:
                self.range_min.assign(EMA_DECAY * self.range_min + (1 - EMA_DECAY) * tf.reduce_min(y))
                self.range_max.assign(EMA_DECAY * self.range_max + (1 - EMA_DECAY) * tf.reduce_max(y))
            lo = tf.minimum(tf.convert_to_tensor(self.range_min), 0.0)
            hi = tf.maximum(tf.convert_to_tensor(self.range_max), lo + 1e-6)
            return tf.quantization.fake_quant_with_min_max_vars(y, lo, hi, num_bits=8)

    return _RangeTracked


@functools.cache
def _quant_layers() -> dict[str, Any]:
    """The QAT layer classes, made once (Keras is imported lazily)."""
    base = _layer_base()

    class QuantConv(base):
        """Conv1D / Conv2D / DepthwiseConv2D with its BN folded, weights and output fake-quantized
        (a Conv1D is an EXPAND_DIMS + CONV_2D on the device: the same per-channel scheme)."""

        def __init__(self, conv, bn=None, relu=None, **kwargs):
            super().__init__(name=f"qat_{conv.name}", **kwargs)
            self.conv, self.bn, self.relu = conv, bn, relu
            self.depthwise = type(conv).__name__ == "DepthwiseConv2D"
            if set(conv.dilation_rate) != {1} or conv.activation.__name__ != "linear":
                raise ModelError(f"layer {conv.name!r}: QAT supports undilated convolutions without activation")

        def folded(self):
            import tensorflow as tf

            kernel = self.conv.kernel  # (kh, kw, in, out) or depthwise (kh, kw, in, multiplier)
            kernel = tf.convert_to_tensor(kernel)
            channels = int(np.prod(kernel.shape[2:])) if self.depthwise else int(kernel.shape[-1])
            bias = tf.convert_to_tensor(self.conv.bias) if self.conv.use_bias else tf.zeros((channels,))
            if self.bn is not None:
                bn = self.bn
                gamma = tf.convert_to_tensor(bn.gamma) if bn.scale else tf.ones((channels,))
                beta = tf.convert_to_tensor(bn.beta) if bn.center else tf.zeros((channels,))
                factor = gamma * tf.math.rsqrt(tf.convert_to_tensor(bn.moving_variance) + bn.epsilon)
                bias = beta + (bias - tf.convert_to_tensor(bn.moving_mean)) * factor
                kernel = kernel * tf.reshape(factor, kernel.shape[2:] if self.depthwise else (channels,))
            return (kernel if self.calibrating else _fake_quant_weights(kernel, channels)), bias

        def call(self, x, training=None):
            import tensorflow as tf

            kernel, bias = self.folded()
            strides = (1, *self.conv.strides, 1)
            padding = self.conv.padding.upper()
            if type(self.conv).__name__ == "Conv1D":
                y = tf.nn.conv1d(x, kernel, self.conv.strides[0], padding)
            elif self.depthwise:
                y = tf.nn.depthwise_conv2d(x, kernel, strides, padding)
            else:
                y = tf.nn.conv2d(x, kernel, strides, padding)
            y = y + bias
            if self.relu is not None:
                y = self.relu(y)
            return self.quantize_output(y, training)

    class QuantAdd(base):
        """ADD or SUB (and a ReLU fused after it), output fake-quantized."""

        def __init__(self, add, relu=None, **kwargs):
            super().__init__(name=f"qat_{add.name}", **kwargs)
            self.add, self.relu = add, relu

        def call(self, inputs, training=None):
            y = self.add(inputs)
            if self.relu is not None:
                y = self.relu(y)
            return self.quantize_output(y, training)

    class QuantInput(base):
        """The int8 model input: quantized once, before any layer sees it."""

        def __init__(self, **kwargs):
            super().__init__(name="qat_input", **kwargs)

        def call(self, x, training=None):
            return self.quantize_output(x, training)

    return {"QuantConv": QuantConv, "QuantAdd": QuantAdd, "QuantInput": QuantInput, "base": base}


def qat_model(model):
    """The fake-quant training graph of ``model`` (sharing its variables)."""
    kinds = _quant_layers()
    users, from_input = consumers(model), reads_input(model)
    fused: set[str] = set()
    quantized_input: list[Any] = []  # the model input as the int8 graph sees it (made once)

    def quantize_input(layer, args):
        if not any(from_input[layer.name]):
            return args
        if not quantized_input:
            quantized_input.append(kinds["QuantInput"]()(args[from_input[layer.name].index(True)]))
        return [quantized_input[0] if first else arg for first, arg in zip(from_input[layer.name], args)]

    def fused_relu(layer):
        relu = single_consumer(users, layer, "ReLU")
        if relu is not None and relu.get_config().get("max_value") is None and not relu.get_config().get("negative_slope"):
            fused.add(relu.name)
            return relu
        return None

    def transform(layer, args):
        kind = type(layer).__name__
        if layer.name in fused:
            return args[0]
        args = quantize_input(layer, args)
        if kind in ("Conv1D", "Conv2D", "DepthwiseConv2D"):
            bn = single_consumer(users, layer, "BatchNormalization")
            if bn is not None:
                fused.add(bn.name)
            relu = fused_relu(bn if bn is not None else layer)
            return kinds["QuantConv"](layer, bn, relu)(args[0])
        if kind in _MERGES:
            return kinds["QuantAdd"](layer, fused_relu(layer))(args)
        if kind in _PASS_THROUGH or kind == "ReLU":
            return call_again(layer, args)
        raise ModelError(f"QAT: layer {layer.name!r} ({kind}) is not supported (it is not folded into a convolution)")

    return rebuild(model, transform, name=f"{model.name}_qat")


def quant_layers_of(model) -> list[Any]:
    """The fake-quant layers of a QAT model (each holds one activation range)."""
    return [layer for layer in body_layers(model) if isinstance(layer, _quant_layers()["base"])]


def calibrate(model, features: np.ndarray, batch_size: int = 128) -> int:
    """Set every activation range of a QAT model to the min/max over ``features`` of the
    *float* graph (no fake quantization during this pass), as the int8 converter calibrates;
    returns the number of ranges."""
    layers = quant_layers_of(model)
    for layer in layers:
        layer.range_min.assign(np.inf)
        layer.range_max.assign(-np.inf)
        layer.calibrating = True
    try:
        for start in range(0, len(features), batch_size):
            model(features[start : start + batch_size], training=False)
    finally:
        for layer in layers:
            layer.calibrating = False
    return len(layers)
