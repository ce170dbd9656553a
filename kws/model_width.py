"""The width knob of each zoo architecture, and what a model of the zoo costs before training.

Channel pruning narrows a trained model and the MCUNet-style search scales a family by a
width multiplier W; both turn W into the builder parameter of kws.models that sets the
channel counts, and both count MACs on the Keras graph with kws.model_stats' rules (no
conversion needed to choose a width).
"""

from __future__ import annotations

import math
from typing import Any

from data_prep.errors import ConfigError

# builder parameter that scales every channel count of the architecture
WIDTH_PARAMS = {"ds_cnn": "filters", "tiny": "filters", "tc_resnet": "width"}


def width_param(arch: str) -> str:
    try:
        return WIDTH_PARAMS[arch]
    except KeyError:
        raise ConfigError(f"model {arch!r} has no width parameter (known: {', '.join(sorted(WIDTH_PARAMS))})") from None


def scaled_params(arch: str, params: dict[str, Any], factor: float) -> dict[str, Any]:
    """``params`` with the width scaled by ``factor`` (integer widths rounded, at least 1)."""
    from kws.models import arch_params

    if not factor > 0:
        raise ConfigError(f"width multiplier must be positive, got {factor}")
    key = width_param(arch)
    base = {**arch_params(arch), **params}[key]
    value = max(1, round(base * factor)) if isinstance(base, int) else round(float(base) * factor, 6)
    return {**params, key: value}


def keras_macs(model) -> int:
    """MACs per inference of a Keras model of the zoo, by kws.model_stats' counting rules
    (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED), from the layers' shapes."""
    from kws.model_stats import layer_macs

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
                   max_macs: float, steps: int = 40) -> tuple[dict[str, Any], int]:
    """The widest params (width multiplier <= 1) whose model has at most ``max_macs`` MACs,
    and its MACs; by bisection on the multiplier (MACs grow with width)."""
    from kws.models import build_model

    def macs(factor: float) -> tuple[dict[str, Any], int]:
        p = scaled_params(arch, params, factor)
        return p, keras_macs(build_model(arch, input_shape, classes, **p))

    lo, hi = 0.0, 1.0
    best = macs(1.0)
    if best[1] <= max_macs:
        return best
    found = None
    for _ in range(steps):
        mid = (lo + hi) / 2
        candidate = macs(mid)
        if candidate[1] <= max_macs:
            lo, found = mid, candidate
        else:
            hi = mid
        if found and hi - lo < 1e-3:
            break
    if found is None:
        raise ConfigError(f"model {arch!r}: no width reaches {max_macs:,.0f} MACs")
    return found
