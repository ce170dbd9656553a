"""Model zoo: named architectures on one clip's MFCC, built only from TFLite Micro ops.

Every model takes (T, n_mfcc) float32 features and returns softmax probabilities. Layers are
limited to what converts to CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, AVERAGE_POOL_2D,
RESHAPE, ADD and SOFTMAX in int8 (``ds_cnn(level=True)`` adds MAX_POOL_2D and SUB; the
classifier is a 1x1 CONV_2D, see ``_classifier``): BatchNormalization folds into the preceding
convolution at conversion and ReLU fuses into it; Dropout and the L2 regulariser vanish. Global
pooling is an AveragePooling2D over the whole map (GlobalAveragePooling2D would become MEAN).

Width and depth are parameters of one builder per family, never copies:

- ``tiny``: the always-on stage-1 gate, a narrow *temporal* DS-CNN (a few thousand params,
  <= 20 KB int8 flash and <= 4 KB TFLM arena at the defaults; measured in tests/test_tflm.py).
- ``ds_cnn``: the Hello Edge / MLPerf Tiny DS-CNN (mlcommons/tiny
  benchmark/training/keyword_spotting/keras_model.py): Conv 64 x (10, 4) stride 2 + BN + ReLU,
  4 x [DW 3x3 + BN + ReLU + PW 64 + BN + ReLU], average pool, dense; ~2.66 M MACs.
- ``tc_resnet``: TC-ResNet (Choi et al., Interspeech 2019, arXiv:1904.03814): MFCC
  coefficients as channels, (T, 1, n_mfcc), residual blocks of (k x 1) temporal convolutions.
  ``blocks_per_stage=1`` is TC-ResNet8, 2 is TC-ResNet14; ``width`` is the paper's k. The
  default k = 0.75 puts it in DS-CNN's flash class (~49 KB int8 vs ~43 KB) at ~1/6 of its MACs;
  k = 1 (the paper's TC-ResNet8) is ~80 KB int8 here, over the 64 KB stage-2 budget.
- ``bc_resnet``: BC-ResNet (Kim et al., Interspeech 2021, arXiv:2106.04140): the MFCC as an
  image, blocks of a frequency-wise depthwise conv plus a temporal depthwise conv on the
  frequency-averaged map, broadcast back over frequency by the residual ADD. At half the
  paper's depth and tau = 1.75: ~13.6 K params, ~0.94 M MACs, ~56 KB int8 (full depth: > 64 KB).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from data_prep.errors import ConfigError, first_line
from data_prep.tensorflow_quiet import keras

layers = keras.layers
Builder = Callable[..., keras.Model]
# Keras' default 0.99 needs hundreds of steps before the moving statistics used at
# validation (and folded into the int8 model) are meaningful; small KWS sets give a few
# dozen steps per epoch, so validation accuracy sat at chance for tens of epochs.
BN_MOMENTUM = 0.9

_REGISTRY: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    def add(builder: Builder) -> Builder:
        _REGISTRY[name] = builder
        return builder

    return add


def available_archs() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))


def arch_params(arch: str) -> dict[str, Any]:
    """The tunable parameters of ``arch`` with their defaults (what ``**params`` may set)."""
    return {
        name: p.default
        for name, p in inspect.signature(_builder(arch)).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def build_model(arch: str, input_shape: tuple[int, int], num_classes: int, **params: Any) -> keras.Model:
    """A fresh, uncompiled model of ``arch`` for ``input_shape`` = (T, n_mfcc)."""
    builder = _builder(arch)
    known = arch_params(arch)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ConfigError(f"model {arch!r}: unknown parameter(s) {unknown} (known: {sorted(known)})")
    if len(input_shape) != 2 or min(input_shape) < 1:
        raise ConfigError(f"model {arch!r}: input_shape must be (T, n_mfcc), got {tuple(input_shape)}")
    if num_classes < 2:
        raise ConfigError(f"model {arch!r}: num_classes must be >= 2, got {num_classes}")
    inputs = keras.Input(shape=tuple(int(d) for d in input_shape), name="mfcc")
    try:
        outputs = builder(inputs, int(num_classes), **params)
    except (TypeError, ValueError) as exc:
        if not params:
            raise  # the defaults always build: a bug, not the user's input
        raise ConfigError(f"model {arch!r}: cannot build with parameters {params}: {first_line(exc)}") from None
    return keras.Model(inputs, outputs, name=arch)


def _builder(arch: str) -> Builder:
    try:
        return _REGISTRY[arch]
    except KeyError:
        raise ConfigError(f"unknown model architecture {arch!r} (known: {', '.join(available_archs())})") from None


# --- shared pieces ------------------------------------------------------------------------------
def _regularizer(weight_decay: float) -> keras.regularizers.Regularizer | None:
    return keras.regularizers.L2(weight_decay) if weight_decay > 0 else None


def _conv_bn_relu(x, filters: int, kernel, strides=(1, 1), *, relu: bool = True, weight_decay: float = 0.0):
    """Conv (bias folded away with the BN) + BN (+ ReLU): one int8 CONV_2D after conversion."""
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False,
        kernel_regularizer=_regularizer(weight_decay),
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.ReLU()(x) if relu else x


def _dw_bn_relu(x, kernel=(3, 3), strides=(1, 1), *, dilation=(1, 1), relu: bool = True, weight_decay: float = 0.0):
    x = layers.DepthwiseConv2D(
        kernel, strides=strides, padding="same", use_bias=False, dilation_rate=dilation,
        depthwise_regularizer=_regularizer(weight_decay),
    )(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    return layers.ReLU()(x) if relu else x


def _classifier(x, num_classes: int, pool_size=None, dropout: float = 0.0):
    """Average pool over ``pool_size`` (default: the whole map), dense, softmax.

    The dense layer is a 1x1 Conv2D on the pooled 1x1 map (same weights, same MACs): TFLM's
    int8 FULLY_CONNECTED rounds differently from TFLite's reference kernel (TFLM double-rounds
    the requantization): 1 LSB at its output, up to 9 LSB after softmax, on ~0.5-3 % of real
    clips (measured on a trained DS-CNN and on random models), while CONV_2D is bit-exact.
    """
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    x = layers.AveragePooling2D(pool_size=pool_size or tuple(x.shape[1:3]))(x)
    x = layers.Conv2D(num_classes, (1, 1))(x)
    x = layers.Flatten()(x)
    return layers.Softmax()(x)


def _check_positive(arch: str, **values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ConfigError(f"model {arch!r}: {name} must be positive, got {value}")


def _ds_cnn_body(x, *, filters: int, blocks: int, kernel, strides, dw_kernel, temporal: bool,
                 weight_decay: float, dropout: float):
    """Strided full conv, then ``blocks`` depthwise-separable blocks (DW + PW 1x1).

    ``temporal=False`` sees the MFCC as an image (T, n_mfcc, 1); ``temporal=True`` as a
    sequence (T, 1, n_mfcc) with the coefficients as channels, which keeps every activation
    n_mfcc times smaller: what lets the stage-1 model fit a 4 KB arena.
    """
    t, c = x.shape[1:]
    x = layers.Reshape((t, 1, c) if temporal else (t, c, 1))(x)
    x = _conv_bn_relu(x, filters, tuple(kernel), tuple(strides), weight_decay=weight_decay)
    if dropout > 0:
        x = layers.Dropout(dropout / 2)(x)
    for _ in range(blocks):
        x = _dw_bn_relu(x, tuple(dw_kernel), weight_decay=weight_decay)
        x = _conv_bn_relu(x, filters, (1, 1), weight_decay=weight_decay)
    return x


LEVEL_LAYER, INPUT_MAP_LAYER = "level_shift", "input_map"


def _level_normalise(x):
    """c0 minus its maximum over the window's frames, then a per-frame 1x1 map of the coefficients.

    The MLPerf Tiny front end divides each clip by its peak, which only shifts c0 (a constant on
    every log-mel band); a stream cannot rescale shared frames per window, but the model can
    subtract the window's loudest frame from its own input: MAX_POOL_2D, a 1x1 CONV_2D ("c0
    only") and a broadcast SUB in int8. The input map (a 1x1 CONV_2D, identity at first) lets
    the int8 input stay normalised (one scale for every coefficient) while the layers after it
    see other units: a warm start sets it to the reference's (kws/train/warm_start.py).
    """
    t, c = x.shape[1:]
    peak = layers.MaxPooling1D(pool_size=t)(x)
    shift = layers.Conv1D(c, 1, use_bias=False, name=LEVEL_LAYER)
    level = shift(peak)
    mask = np.zeros((1, c, c), np.float32)
    mask[0, 0, 0] = 1.0
    shift.set_weights([mask])
    shift.trainable = False  # "subtract the loudest frame of c0" stays exactly that
    x = layers.Subtract()([x, level])
    input_map = layers.Conv1D(c, 1, name=INPUT_MAP_LAYER)
    x = input_map(x)
    input_map.set_weights([np.eye(c, dtype=np.float32)[None], np.zeros(c, np.float32)])
    return x


# --- architectures ------------------------------------------------------------------------------
@register("ds_cnn")
def ds_cnn(
    inputs, num_classes: int, *, filters: int = 64, blocks: int = 4, kernel=(10, 4), strides=(2, 2),
    weight_decay: float = 1e-4, dropout: float = 0.4, level: bool = False,
):
    """MLPerf Tiny DS-CNN: dropout 0.2 after the stem and 0.4 before pooling, L2 1e-4.

    The reference pools with ``(T // 2, n_mfcc // 2)`` = (24, 5) on the 25 x 5 map (it skips the
    last row); kept as is so the graph and MAC count match the benchmark model exactly.
    ``level``: loudness removed first (``_level_normalise``), as the reference's front end does;
    what a warm start from the reference weights needs (kws/train/warm_start.py).
    """
    _check_positive("ds_cnn", filters=filters, blocks=blocks)
    x = _level_normalise(inputs) if level else inputs
    x = _ds_cnn_body(x, filters=filters, blocks=blocks, kernel=kernel, strides=strides,
                     dw_kernel=(3, 3), temporal=False, weight_decay=weight_decay, dropout=dropout)
    t, c = inputs.shape[1:]
    pool = (max(1, min(t // 2, x.shape[1])), max(1, min(c // 2, x.shape[2])))
    return _classifier(x, num_classes, pool, dropout)


@register("tiny")
def tiny(
    inputs, num_classes: int, *, filters: int = 20, blocks: int = 1, kernel: int = 7, stride: int = 2,
    dw_kernel: int = 5, weight_decay: float = 0.0, dropout: float = 0.1,
):
    """Stage-1 gate: a temporal DS-CNN (coefficients as channels) for 20 KB flash, 4 KB arena.

    The arena is dominated by TFLM's fixed per-operator cost (~0.4 KB each: node, eval tensors,
    per-channel requantization data), so depth costs more arena than width: at 3 classes the
    defaults measure ~2.2 K params, ~48 K MACs, ~7.3 KB flash and 3,880 B arena; a second
    block or 24 filters push the arena past 4 KB.
    """
    _check_positive("tiny", filters=filters, blocks=blocks, kernel=kernel, stride=stride, dw_kernel=dw_kernel)
    x = _ds_cnn_body(inputs, filters=filters, blocks=blocks, kernel=(kernel, 1), strides=(stride, 1),
                     dw_kernel=(dw_kernel, 1), temporal=True, weight_decay=weight_decay, dropout=dropout)
    return _classifier(x, num_classes, dropout=dropout)


@register("tc_resnet")
def tc_resnet(
    inputs, num_classes: int, *, width: float = 0.75, blocks_per_stage: int = 1,
    channels=(16, 24, 32, 48), kernel: int = 9, first_kernel: int = 3,
    weight_decay: float = 1e-4, dropout: float = 0.1,
):
    """TC-ResNet: (T, n_mfcc) -> (T, 1, n_mfcc), 1-D convolutions along time as (k x 1) Conv2D.

    Each stage opens with a stride-2 block whose shortcut is a 1x1 conv + BN + ReLU (as in the
    paper), followed by ``blocks_per_stage - 1`` identity blocks; the residual ADD has equal
    shapes on both sides, so no broadcasting is needed on the device.
    """
    _check_positive("tc_resnet", width=width, blocks_per_stage=blocks_per_stage, kernel=kernel)
    widths = [max(1, round(c * width)) for c in channels]
    x = layers.Reshape((inputs.shape[1], 1, inputs.shape[2]))(inputs)
    x = _conv_bn_relu(x, widths[0], (first_kernel, 1), weight_decay=weight_decay)
    for out in widths[1:]:
        for i in range(blocks_per_stage):
            stride = (2, 1) if i == 0 else (1, 1)
            y = _conv_bn_relu(x, out, (kernel, 1), stride, weight_decay=weight_decay)
            y = _conv_bn_relu(y, out, (kernel, 1), relu=False, weight_decay=weight_decay)
            if i == 0:
                x = _conv_bn_relu(x, out, (1, 1), stride, weight_decay=weight_decay)
            x = layers.ReLU()(layers.Add()([x, y]))
    return _classifier(x, num_classes, dropout=dropout)




def _bc_block(x, out: int, *, freq_stride: int, dilation: int, kernel: int, weight_decay: float, dropout: float):
    """One BC-ResBlock on a (T, F, C) map: frequency branch f2 = [1x1 conv + BN + ReLU when the
    channels change] + depthwise (1 x k) over F + BN; temporal branch f1 = average over F ->
    (T, 1, C) -> depthwise (k x 1) over T, dilated + BN + ReLU -> 1x1 conv -> dropout; out =
    ReLU(f2 + f1 broadcast over F [+ identity unless the block changes channels or F])."""
    transition = x.shape[-1] != out or freq_stride != 1
    identity = x
    if x.shape[-1] != out:
        x = _conv_bn_relu(x, out, (1, 1), weight_decay=weight_decay)
    x = _dw_bn_relu(x, (1, kernel), (1, freq_stride), relu=False, weight_decay=weight_decay)
    y = layers.AveragePooling2D((1, x.shape[2]))(x)
    y = _dw_bn_relu(y, (kernel, 1), dilation=(dilation, 1), weight_decay=weight_decay)
    y = layers.Conv2D(out, (1, 1), use_bias=False, kernel_regularizer=_regularizer(weight_decay))(y)
    if dropout > 0:
        y = layers.Dropout(dropout)(y)
    if not transition:
        x = layers.Add()([x, identity])
    return layers.ReLU()(layers.Add()([x, y]))  # (T, F, C) + (T, 1, C): one broadcasting int8 ADD


@register("bc_resnet")
def bc_resnet(
    inputs, num_classes: int, *, width: float = 1.75, channels=(16, 8, 12, 16, 20, 32), blocks=(1, 1, 2, 2),
    freq_strides=(1, 2, 2, 1), stem_stride: int = 2, kernel: int = 3, weight_decay: float = 1e-4,
    dropout: float = 0.1,
):
    """BC-ResNet (Kim et al., Interspeech 2021, arXiv:2106.04140) on the MFCC as an image (T, F, 1).

    Stem 5x5 conv (stride ``stem_stride`` over F only) with ``channels[0]``, then one stage per
    entry of ``blocks`` with ``channels[1:-1]`` (the first block of a stage is a transition:
    1x1 conv to the new width, frequency stride ``freq_strides[stage]``, temporal dilation
    2**stage), then the paper's head: depthwise (5 x F) over what is left of F, 1x1 conv
    ``channels[-1]`` + BN + ReLU, average pool, 1x1 classifier. ``width`` is the paper's tau
    (BC-ResNet-tau); F = 10 goes 10 -> 5 -> 5 -> 3 -> 2 -> 2 at the defaults.

    Departures from the paper, each for TFLite Micro int8:
    - plain BatchNormalization instead of SubSpectral Norm: per-(sub-band, channel) statistics
      cannot fold into a depthwise conv's per-channel weights, so SSN would stay as extra
      MUL/ADD ops; with 10 coefficients there are few sub-bands to normalise anyway;
    - ReLU instead of swish in the temporal branch: it fuses into the conv;
    - the broadcast over F is the ADD's own broadcasting of (T, 1, C) onto (T, F, C): TFLM's
      int8 ADD broadcasts and equals TFLite's reference kernels bit for bit (tests/test_tflm.py),
      so no explicit tiling op (one more op, flash and arena per block) is needed;
    - half the paper's depth, ``blocks=(1, 1, 2, 2)`` instead of (2, 2, 4, 4), and tau = 1.75:
      flash, not parameters, is the limit. Every op costs ~1 KB of int8 flash whatever its
      weights (per-channel scales and zero points of weights and bias, the int32 bias, tensor
      names), and a depthwise conv has 3 weights per channel against ~30 B of that: the paper's
      full depth is ~69 KB at tau = 1 (8.4 K params) and ~86 KB at tau = 2, over the 64 KB
      stage-2 budget. The defaults measure ~13.6 K params, ~0.94 M MACs and ~56 KB int8 at 12
      classes (58 KB at 36), with trained (non-zero) BN biases; tau = 2 is ~62 KB at 12 classes.
    """
    _check_positive("bc_resnet", width=width, kernel=kernel, stem_stride=stem_stride)
    if len(channels) != len(blocks) + 2 or len(freq_strides) != len(blocks):
        raise ConfigError(f"model 'bc_resnet': channels needs len(blocks) + 2 = {len(blocks) + 2} values and "
                          f"freq_strides {len(blocks)}, got {len(channels)} and {len(freq_strides)}")
    _check_positive("bc_resnet", **{f"blocks[{i}]": b for i, b in enumerate(blocks)},
                    **{f"freq_strides[{i}]": s for i, s in enumerate(freq_strides)})
    widths = [max(1, round(c * width)) for c in channels]
    t, f = inputs.shape[1:]
    x = layers.Reshape((t, f, 1))(inputs)
    x = _conv_bn_relu(x, widths[0], (5, 5), (1, stem_stride), weight_decay=weight_decay)
    for stage, (out, repeat, stride) in enumerate(zip(widths[1:-1], blocks, freq_strides)):
        for i in range(repeat):
            x = _bc_block(x, out, freq_stride=stride if i == 0 else 1, dilation=2 ** stage, kernel=kernel,
                          weight_decay=weight_decay, dropout=dropout)
    x = layers.DepthwiseConv2D((min(5, x.shape[1]), x.shape[2]), use_bias=False,
                               depthwise_regularizer=_regularizer(weight_decay))(x)
    x = _conv_bn_relu(x, widths[-1], (1, 1), weight_decay=weight_decay)
    return _classifier(x, num_classes)
