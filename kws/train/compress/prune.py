"""Structured (channel) pruning: keep the strongest filters of a trained model in a narrower copy.

Unstructured sparsity saves nothing on TFLite Micro (its int8 kernels store and multiply
every zero), so pruning here removes whole output channels: the caller builds the same
architecture with a smaller width, and ``transfer_channels`` fills it with the kept filters
of the trained model and the matching input slices of the layers that read them.

Which channels to keep: the largest L1 norms of the filters (Li et al., "Pruning Filters for
Efficient ConvNets", ICLR 2017), taken on the BN-*folded* filter: a convolution followed by
BatchNormalization is scale-invariant, so its raw kernel norm says nothing by itself; the
folded one (kernel x gamma / sqrt(var + eps)) is what the device multiplies. Channels joined
by an ADD (residual blocks) are one channel space and are kept or dropped together, scored by
the sum of their producers' normalised norms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_prep.errors import ModelError
from kws.train.compress.keras_graph import body_layers, consumers, inputs_of, output_of, single_consumer

_NEW_SPACE = ("Conv2D", "Dense")
_SAME_SPACE = ("BatchNormalization", "ReLU", "Dropout", "AveragePooling2D", "MaxPooling2D", "Softmax",
               "DepthwiseConv2D", "Activation")


class _Spaces:
    """Union-find over channel spaces (one per tensor that may be narrowed)."""

    def __init__(self) -> None:
        self.parent: list[int] = []

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, ids: list[int]) -> int:
        root = self.find(ids[0])
        for other in ids[1:]:
            self.parent[self.find(other)] = root
        return root


def _channel_spaces(model) -> tuple[_Spaces, dict[int, int]]:
    """tensor id -> channel space id, for every tensor of the model."""
    spaces = _Spaces()
    of: dict[int, int] = {id(model.inputs[0]): spaces.new()}
    for layer in body_layers(model):
        kind = type(layer).__name__
        ins = [of[id(t)] for t in inputs_of(layer)]
        out = output_of(layer)
        if kind in _NEW_SPACE:
            of[id(out)] = spaces.new()
        elif kind == "Add":
            of[id(out)] = spaces.union(ins)
        elif kind in _SAME_SPACE:
            if kind == "DepthwiseConv2D" and layer.depth_multiplier != 1:
                of[id(out)] = spaces.new()
            else:
                of[id(out)] = ins[0]
        elif inputs_of(layer)[0].shape[-1] == out.shape[-1] and kind in ("Flatten", "Reshape") and \
                int(np.prod(inputs_of(layer)[0].shape[1:-1])) == 1:
            of[id(out)] = ins[0]  # flattening a 1x1 map keeps the channels
        else:
            of[id(out)] = spaces.new()  # shapes are rearranged: must stay unpruned
    return spaces, {t: spaces.find(s) for t, s in of.items()}


def _folded_l1(layer, bn) -> np.ndarray:
    """Per-output-channel L1 norm of the filter, BN-folded when a BN follows."""
    kernel = np.asarray(layer.kernel)
    norms = np.abs(kernel).reshape(-1, kernel.shape[-1]).sum(axis=0)
    if bn is not None:
        gamma = np.asarray(bn.gamma) if bn.scale else np.ones_like(norms)
        norms = norms * np.abs(gamma) / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)
    return norms


def _check_pair(source, target) -> list[tuple[Any, Any]]:
    src, dst = body_layers(source), body_layers(target)
    if len(src) != len(dst) or any(type(a) is not type(b) for a, b in zip(src, dst)):
        raise ModelError(f"pruning: {target.name!r} does not have the layers of {source.name!r} "
                         "(the model was not built by the current model zoo?)")
    return list(zip(src, dst))


def _slice(values: np.ndarray, axis: int, keep: np.ndarray) -> np.ndarray:
    return np.take(values, keep, axis=axis) if len(keep) != values.shape[axis] else values


def transfer_channels(source, target) -> dict[str, tuple[int, int]]:
    """Fill ``target`` (same architecture, fewer channels) with the strongest channels of
    ``source``; returns (kept, original) output channels per narrowed layer of ``source``."""
    pairs = _check_pair(source, target)
    _, space_of = _channel_spaces(source)
    users = consumers(source)
    # sizes of each source space in source and target
    size: dict[int, tuple[int, int]] = {}
    size[space_of[id(source.inputs[0])]] = (source.inputs[0].shape[-1], target.inputs[0].shape[-1])
    for a, b in pairs:
        size[space_of[id(output_of(a))]] = (output_of(a).shape[-1], output_of(b).shape[-1])
    scores: dict[int, np.ndarray] = {}
    for a, _ in pairs:
        if type(a).__name__ in _NEW_SPACE:
            s = space_of[id(output_of(a))]
            norms = _folded_l1(a, single_consumer(users, a, "BatchNormalization"))
            norms = norms / max(float(norms.sum()), 1e-12)
            scores[s] = scores.get(s, 0) + norms
    keep: dict[int, np.ndarray] = {}
    for s, (old, new) in size.items():
        if new > old:
            raise ModelError(f"pruning: target has {new} channels where the source has {old}")
        if new == old:
            keep[s] = np.arange(old)
        elif s not in scores:
            raise ModelError("pruning: a channel dimension that no convolution produces would shrink")
        else:
            keep[s] = np.sort(np.argsort(-scores[s], kind="stable")[:new])
    kept: dict[str, tuple[int, int]] = {}
    for a, b in pairs:
        if not a.weights:
            continue
        cin = keep[space_of[id(inputs_of(a)[0])]]
        cout = keep[space_of[id(output_of(a))]]
        kind = type(a).__name__
        values = [np.asarray(w) for w in a.get_weights()]
        if kind == "Conv2D":
            new = [_slice(_slice(values[0], 2, cin), 3, cout)] + [_slice(v, 0, cout) for v in values[1:]]
        elif kind == "Dense":
            new = [_slice(_slice(values[0], 0, cin), 1, cout)] + [_slice(v, 0, cout) for v in values[1:]]
        elif kind == "DepthwiseConv2D":
            new = [_slice(values[0], 2, cin)] + [_slice(v, 0, cout) for v in values[1:]]
        elif kind == "BatchNormalization":
            new = [_slice(v, 0, cout) for v in values]
        else:
            raise ModelError(f"pruning: layer {a.name!r} ({kind}) has weights and is not supported")
        b.set_weights(new)
        if kind in _NEW_SPACE and len(cout) != values[0].shape[-1]:
            kept[a.name] = (len(cout), int(values[0].shape[-1]))
    return kept
