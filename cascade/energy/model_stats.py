"""What a model costs on the device, read from the int8 .tflite graph itself.

MODEL is a .tflite file or a model directory (cascade.runtime.model_dir names its files); here only
  model_int8.tflite  the deployable full-integer model (required) and
  model.keras        the float Keras model (optional: its file size and parameter count)
are read.

Counting rules (per operator of the flatbuffer, batch 1):
  CONV_2D            MACs = out_h * out_w * out_c * k_h * k_w * in_c
  DEPTHWISE_CONV_2D  MACs = out_h * out_w * out_c * k_h * k_w
  FULLY_CONNECTED    MACs = rows * in * out
  everything else (AVERAGE_POOL_2D, MAX_POOL_2D, ADD, RESHAPE, SOFTMAX, ...) is listed as an
  operator with 0 MACs: its cost is a few ops per output element, not multiply-accumulates.
Parameters are the elements of the constant tensors (weights and biases) of the MAC operators;
BatchNorm is already folded in, so the count is what the device stores, not Keras' count.
Flash is the .tflite file size; the tensor arena is measured in TFLite Micro (export.tflm).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from cascade.energy.arena import measure_arena
from cascade.runtime.bundle import is_bundle
from cascade.runtime.int8_model import read_model_bytes
from cascade.runtime.model_dir import MODEL_INT8, MODEL_KERAS, load_keras
from data_prep.errors import ModelError

MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8"}


@dataclasses.dataclass(frozen=True)
class LayerStats:
    index: int
    op: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class ModelStats:
    source: str
    flash_bytes: int
    arena_bytes: int | None
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...]
    output_dtype: str
    layers: tuple[LayerStats, ...]
    keras_bytes: int | None = None
    keras_params: int | None = None

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def macs_by_op(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for layer in self.layers:
            totals[layer.op] = totals.get(layer.op, 0) + layer.macs
        return totals

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {
            "params": self.params,
            "macs": self.macs,
            "macs_by_op": self.macs_by_op(),
        }


def _op_names() -> dict[int, str]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def layer_macs(op: str, weight_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """MACs of one operator from its shapes (TFLite layouts: OHWI conv, 1HWO depthwise, OI dense)."""
    out = math.prod(output_shape)
    if op == "CONV_2D":
        _, kh, kw, cin = weight_shape
        return out * kh * kw * cin
    if op == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = weight_shape
        return out * kh * kw
    if op == "FULLY_CONNECTED":
        return out * weight_shape[1]
    return 0


def graph_layers(model_bytes: bytes, source: str | None = None) -> tuple[list[LayerStats], dict]:
    """Per-operator shapes, parameters and MACs of subgraph 0, plus its input/output description;
    ``source``: the file the bytes came from, for messages."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    data, name = read_model_bytes(model_bytes)
    source = source or name
    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        graph = model.subgraphs[0]
    except Exception as exc:  # a damaged flatbuffer fails anywhere inside the generated code
        raise ModelError(f"{source}: cannot parse the TFLite flatbuffer ({type(exc).__name__})") from None
    names = _op_names()

    def shape(i: int) -> tuple[int, ...]:
        s = graph.tensors[i].shape
        return tuple(int(d) for d in s) if s is not None else ()

    def is_constant(i: int) -> bool:
        buffer = model.buffers[graph.tensors[i].buffer]
        return buffer.data is not None or (getattr(buffer, "size", 0) or 0) > 0

    layers, counted = [], set()
    for n, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
        inputs = [i for i in op.inputs if i >= 0]
        params = 0
        if name in MAC_OPS:
            for i in inputs[1:]:
                if is_constant(i) and i not in counted:
                    counted.add(i)
                    params += math.prod(shape(i))
        weight = shape(inputs[1]) if name in MAC_OPS and len(inputs) > 1 else ()
        out_shape = shape(op.outputs[0])
        in_shape = shape(inputs[0]) if inputs else ()
        layers.append(LayerStats(n, name, in_shape, out_shape, params, layer_macs(name, weight, out_shape)))
    io = {
        "input_shape": shape(graph.inputs[0]),
        "input_dtype": _TYPE_NAMES.get(graph.tensors[graph.inputs[0]].type, "other"),
        "output_shape": shape(graph.outputs[0]),
        "output_dtype": _TYPE_NAMES.get(graph.tensors[graph.outputs[0]].type, "other"),
    }
    return layers, io


def resolve_model(path: Path) -> tuple[Path, Path | None]:
    """(.tflite path, .keras path or None) for a .tflite file or a model directory."""
    path = Path(path)
    if is_bundle(path):  # two models: which one is meant cannot be guessed
        raise ModelError(f"{path}: a cascade bundle, not one model: give {path / 'stage1'} or {path / 'stage2'}")
    if path.is_dir():
        tflite = path / MODEL_INT8
        if not tflite.is_file():
            raise ModelError(f"{path}: model directory has no {MODEL_INT8}")
        keras_path = path / MODEL_KERAS
        return tflite, keras_path if keras_path.is_file() else None
    if not path.exists():
        raise ModelError(f"{path}: no such model file or directory")
    return path, None


def _keras_params(path: Path) -> int:
    try:
        return int(load_keras(path, compile=False).count_params())
    except ModelError:
        raise
    except Exception as exc:  # keras raises ValueError, OSError, zipfile errors...
        raise ModelError(f"{path}: cannot load Keras model ({type(exc).__name__})") from None


def collect_stats(path: Path, arena: bool = True, keras_params: bool = True) -> ModelStats:
    """Stats of a .tflite file or model directory; ``arena=False`` skips the TFLM probes."""
    tflite, keras_path = resolve_model(path)
    data, source = read_model_bytes(tflite)
    layers, io = graph_layers(data, source)
    arena_bytes = None
    if arena:

        arena_bytes = measure_arena(data)
    return ModelStats(
        source=source,
        flash_bytes=len(data),
        arena_bytes=arena_bytes,
        layers=tuple(layers),
        keras_bytes=keras_path.stat().st_size if keras_path else None,
        keras_params=_keras_params(keras_path) if keras_path and keras_params else None,
        **io,
    )
