"""Transfer learning: the first layers of a warm start keep the weights they came with.

A warm start from the MLPerf reference brings layers trained on ~2,600 real speakers; a
custom word learnt from synthetic voices only re-fits all of them to those voices. Freezing the
first ``n`` weighted layers (convolutions, depthwise convolutions, dense) and the batch norms
between them keeps what real speech taught them and trains only the layers after: what Edge
Impulse's transfer-learning keyword block does with its pretrained backbone.
"""

from __future__ import annotations

from data_prep.errors import ConfigError

WEIGHTED = ("Conv1D", "Conv2D", "DepthwiseConv2D", "Dense")


def weighted_layers(model) -> list:
    """The model's trainable layers with a kernel, in graph order (the level layer's fixed
    "c0 only" map is not one: it was never trained)."""
    return [layer for layer in model.layers if type(layer).__name__ in WEIGHTED and layer.trainable]


def freeze_first(model, n: int) -> list[str]:
    """Freeze the first ``n`` weighted layers and every batch norm before the next one (a frozen
    batch norm runs on its moving statistics, as at inference); returns the frozen layer names."""
    weighted = weighted_layers(model)
    if not 0 <= n < len(weighted):
        raise ConfigError(f"--freeze {n}: the model has {len(weighted)} weighted layers; "
                          f"freeze 0 to {len(weighted) - 1} (the classifier always trains)")
    if n == 0:
        return []
    boundary = model.layers.index(weighted[n])
    return _freeze(layer for layer in model.layers[:boundary] if layer.weights)


def freeze_batch_norms(model) -> list[str]:
    """Every batch norm keeps the warm start's statistics, scale and shift (it runs as at
    inference). A fine-tune's batches are noisier and fewer than the data the warm start saw:
    re-estimating the statistics on them moves every layer's input, which costs more on clean
    speech than the new data brings (docs/distillation.md, "Frozen batch norms")."""
    return _freeze(layer for layer in model.layers if type(layer).__name__ == "BatchNormalization")


def _freeze(layers) -> list[str]:
    """Make the still-trainable ``layers`` non-trainable; their names."""
    frozen = []
    for layer in layers:
        if layer.trainable:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen
