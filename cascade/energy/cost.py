"""What a model and the MFCC frontend cost, in device-independent counts.

The energy estimator multiplies these counts by an MCU profile's cycles per operation, so
this module holds no cycle, clock or power figure: only MACs, element operations and bytes.

``LayerCost.macs`` counts multiply-accumulates for ``conv`` / ``depthwise`` / ``dense`` layers
(CONV_2D: out_h*out_w*out_c*k_h*k_w*in_c; DEPTHWISE_CONV_2D: out_h*out_w*out_c*k_h*k_w;
FULLY_CONNECTED: in*out) and element operations for ``pool`` (input elements summed),
``add`` (output elements) and ``other`` (e.g. softmax: output elements; reshape: 0).
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Mapping

import numpy as np

from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError
from data_prep.features import feature_tables

LAYER_KINDS = ("conv", "depthwise", "dense", "pool", "add", "other")
MAC_KINDS = ("conv", "depthwise", "dense")
FRONTEND_OPS = ("window", "fft_butterfly", "fft_post", "power", "sqrt", "mel", "log", "dct")

# Bytes per stored value on the device: int16 PCM audio, float32 frontend math and tables,
# int8 features (the model input is int8, so the feature ring is kept quantized).
_PCM_BYTES, _FLOAT_BYTES, _FEATURE_BYTES, _INDEX_BYTES = 2, 4, 1, 2


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One operator: its kind and its MACs (or element operations for pool/add/other)."""

    name: str
    kind: str
    macs: int

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise ConfigError(f"layer {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(LAYER_KINDS)})")
        if self.macs < 0:
            raise ConfigError(f"layer {self.name!r}: negative MAC count {self.macs}")


@dataclasses.dataclass(frozen=True)
class ModelCost:
    """The cost input of the estimator: layers, flash (the .tflite bytes) and TFLM arena bytes."""

    name: str
    layers: tuple[LayerCost, ...]
    flash_bytes: int
    arena_bytes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if self.flash_bytes < 0 or self.arena_bytes < 0:
            raise ConfigError(f"model {self.name!r}: flash and arena bytes must be >= 0")

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates of the conv, depthwise and dense layers (the usual 'MACs')."""
        return sum(layer.macs for layer in self.layers if layer.kind in MAC_KINDS)

    def macs_by_kind(self) -> dict[str, int]:
        totals = dict.fromkeys(LAYER_KINDS, 0)
        for layer in self.layers:
            totals[layer.kind] += layer.macs
        return totals


@dataclasses.dataclass(frozen=True)
class FrontendCost:
    """Operation counts of one hop of MFCC work, the RAM it holds and the tables it stores."""

    ops: Mapping[str, int]
    ram_bytes: Mapping[str, int]
    table_bytes: Mapping[str, int]

    @property
    def total_ram_bytes(self) -> int:
        return sum(self.ram_bytes.values())

    @property
    def total_table_bytes(self) -> int:
        return sum(self.table_bytes.values())


def fft_counts(n_fft: int) -> tuple[int, int]:
    """(radix-2 butterflies, post-processing steps) of a real FFT of ``n_fft`` points.

    A real FFT of N points is done as a complex FFT of M = N/2 points, (M/2)*log2(M)
    butterflies, followed by a split step over the M output bins (what CMSIS-DSP's
    arm_rfft_fast_f32 does). For N not a power of two log2 is rounded up (the device pads).
    """
    m = max(1, n_fft // 2)
    stages = math.ceil(math.log2(m)) if m > 1 else 0
    return (m // 2) * stages, m


def mel_nonzeros(config: FeatureConfig) -> int:
    """Non-zero weights of the mel filterbank: the device stores and multiplies only these."""

    _, mel, _ = feature_tables(config)
    return int(np.count_nonzero(mel))


def frontend_cost(config: FeatureConfig) -> FrontendCost:
    """Per-hop MFCC work for ``config``: window, real FFT, power (and its square root for a magnitude
    spectrum), mel (non-zeros), log, DCT.

    RAM: a ring of one window of int16 samples plus one stride for the DMA half being filled,
    the FFT input and output buffers (float32, n_fft each), and the T x n_mfcc int8 feature
    window both stages read. Flash tables: window, the mel non-zeros with a start/length per
    band, the DCT matrix and the FFT twiddles (about n_fft floats), all float32.
    """
    butterflies, post = fft_counts(config.n_fft)
    nnz = mel_nonzeros(config)
    ops = {
        "window": config.window_samples,
        "fft_butterfly": butterflies,
        "fft_post": post,
        "power": config.n_bins,
        "sqrt": config.n_bins if config.spectrum == "magnitude" else 0,  # |X| from |X|^2
        "mel": nnz,
        "log": config.n_mels,
        "dct": config.n_mfcc * config.n_mels,
    }
    ram = {
        "audio_ring": (config.window_samples + config.stride_samples) * _PCM_BYTES,
        "fft_buffers": 2 * config.n_fft * _FLOAT_BYTES,
        "feature_window": config.num_frames * config.n_mfcc * _FEATURE_BYTES,
    }
    tables = {
        "window": config.window_samples * _FLOAT_BYTES,
        "mel": nnz * _FLOAT_BYTES + 2 * config.n_mels * _INDEX_BYTES,
        "dct": config.n_mfcc * config.n_mels * _FLOAT_BYTES,
        "fft_twiddles": config.n_fft * _FLOAT_BYTES,
    }
    return FrontendCost(MappingProxyType(ops), MappingProxyType(ram), MappingProxyType(tables))

# --- from a parsed .tflite graph ---------------------------------------------------------
_OP_KINDS = {
    "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise",
    "FULLY_CONNECTED": "dense",
    "AVERAGE_POOL_2D": "pool",
    "MAX_POOL_2D": "pool",
    "MEAN": "pool",
    "ADD": "add",
}
_FREE_OPS = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")  # metadata only in TFLM: no element work


def layer_from_op(name: str, op: str, macs: int, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> LayerCost:
    """A LayerCost for one TFLite operator given its MACs (0 for non-MAC ops) and shapes."""
    kind = _OP_KINDS.get(op, "other")
    if kind in MAC_KINDS:
        count = macs
    elif kind == "pool":
        count = math.prod(input_shape) if input_shape else 0
    elif op in _FREE_OPS:
        count = 0
    else:
        count = math.prod(output_shape) if output_shape else 0
    return LayerCost(name=name, kind=kind, macs=int(count))
