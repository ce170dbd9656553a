"""The width knob of each zoo architecture, and what a model of the zoo costs before training.

Channel pruning narrows a trained model and the MCUNet-style search scales a family by a
width multiplier W; both turn W into the builder parameter of kws.train.models that sets the
channel counts, and both count MACs on the Keras graph with cascade.energy.model_stats' rules (no
conversion needed to choose a width).
"""

from __future__ import annotations

import math
from typing import Any

from cascade.energy.model_stats import layer_macs
from data_prep.errors import ConfigError

# builder parameter that scales every channel count of the architecture
WIDTH_PARAMS = {"bc_resnet": "width", "ds_cnn": "filters", "tiny": "filters", "tc_resnet": "width"}


def width_param(arch: str) -> str:
    try:
        return WIDTH_PARAMS[arch]
    except KeyError:
        raise ConfigError(f"model {arch!r} has no width parameter (known: {', '.join(sorted(WIDTH_PARAMS))})") from None


def scaled_params(arch: str, params: dict[str, Any], factor: float) -> dict[str, Any]:
    """``params`` with the width scaled by ``factor`` (integer widths rounded, at least 1)."""
    from kws.train.models import arch_params  # lazy: the model zoo imports Keras (seconds); only training needs it

    if not factor > 0:
        raise ConfigError(f"width multiplier must be positive, got {factor}")
    key = width_param(arch)
    base = {**arch_params(arch), **params}[key]
    value = max(1, round(base * factor)) if isinstance(base, int) else round(float(base) * factor, 6)
    return {**params, key: value}


def keras_macs(model) -> int:
    """MACs per inference of a Keras model of the zoo, by cascade.energy.model_stats' counting rules
    (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), from the layers' shapes."""

    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        kernel = tuple(layer.kernel.shape)
        out = (1, *layer.output.shape[1:])
        if kind == "Conv2D":
            total += layer_macs("CONV_2D", (kernel[3], kernel[0], kernel[1], kernel[2]), out)
        elif kind == "DepthwiseConv2D":
            total += layer_macs("DEPTHWISE_CONV_2D", (1, kernel[0], kernel[1], kernel[2] * kernel[3]), out)
        else:
            total += layer_macs("FULLY_CONNECTED", (kernel[1], kernel[0]), (math.prod(out[:-1]), out[-1]))
    return int(total)


def width_for_macs(arch: str, params: dict[str, Any], input_shape: tuple[int, int], classes: int,
                   max_macs: float) -> tuple[dict[str, Any], int]:
    """The widest params (width at most the current one) whose model has at most
    ``max_macs`` MACs, and its MACs: bisection, since MACs grow with the width (integer
    widths over the integers, fractional ones to 1/1000 of the current width)."""
    from kws.train.models import arch_params, build_model  # lazy: the model zoo imports Keras (seconds); only training needs it

    key = width_param(arch)
    current = {**arch_params(arch), **params}[key]
    integer = isinstance(current, int)

    def macs(value) -> int:
        return keras_macs(build_model(arch, input_shape, classes, **{**params, key: value}))

    top = macs(current)
    if top <= max_macs:
        return {**params, key: current}, top
    lo, hi = (0, current) if integer else (0.0, float(current))  # invariant: hi too many MACs
    found = None
    while (hi - lo > 1) if integer else (hi - lo > current / 1000):
        mid = (lo + hi) // 2 if integer else round((lo + hi) / 2, 6)
        count = macs(mid) if mid > 0 else 0
        if mid > 0 and count <= max_macs:
            lo, found = mid, ({**params, key: mid}, count)
        else:
            hi = mid
    if found is None:
        raise ConfigError(f"model {arch!r}: no width reaches {max_macs:,.0f} MACs")
    return found
