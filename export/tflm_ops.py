"""The ops a .tflite model uses, and the TFLite Micro op-resolver registration for them.

A ``MicroMutableOpResolver`` should register exactly the ops the models need (each one
costs flash), so the list is read from the flatbuffers' operator codes, not written by hand.
"""

from __future__ import annotations

from data_prep.errors import ModelError

OPS_HEADER = "kws_ops.h"

# Resolver methods whose names do not follow CamelCase of the builtin name.
_METHOD_EXCEPTIONS = {
    "BATCH_MATMUL": "BatchMatMul",
    "PADV2": "PadV2",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM",
    "BATCH_TO_SPACE_ND": "BatchToSpaceNd",
    "SPACE_TO_BATCH_ND": "SpaceToBatchNd",
    "GATHER_ND": "GatherNd",
}


def model_ops(model_bytes: bytes) -> tuple[str, ...]:
    """Builtin op names (e.g. ``CONV_2D``) of every operator code in the model, in order."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    try:
        model = schema.Model.GetRootAsModel(model_bytes, 0)
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        ops = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                raise ModelError(f"custom op {code.CustomCode()!r} cannot be registered automatically")
            ops.append(names[builtin])
    except (KeyError, IndexError, ValueError, TypeError) as exc:  # malformed flatbuffer
        raise ModelError(f"cannot read the operator codes of the model ({exc})") from None
    return tuple(ops)


def resolver_method(op: str) -> str:
    """``CONV_2D`` -> ``AddConv2D``: the MicroMutableOpResolver method for a builtin op."""
    if op in _METHOD_EXCEPTIONS:
        return "Add" + _METHOD_EXCEPTIONS[op]
    parts = []
    for part in op.split("_"):
        parts.append(part if part[:1].isdigit() else part.capitalize())
    return "Add" + "".join(parts)


def union_ops(*op_lists: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for ops in op_lists:
        seen.update(dict.fromkeys(ops))
    return tuple(seen)


def ops_header(ops: tuple[str, ...]) -> str:
    """``kws_ops.h``: the resolver type and a function registering exactly ``ops``."""
    calls = "\n".join(
        f"  if (resolver.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;  // {op}" for op in ops
    )
    return f"""// {OPS_HEADER} - the TFLite Micro ops both stages use, read from the .tflite files by
// `kws export`. C++ only; included by kws_cascade.cc.
#ifndef KWS_OPS_H
#define KWS_OPS_H

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

#define KWS_NUM_OPS {len(ops)}

using KwsOpResolver = tflite::MicroMutableOpResolver<KWS_NUM_OPS>;

inline TfLiteStatus kws_register_ops(KwsOpResolver& resolver) {{
{calls}
  return kTfLiteOk;
}}

#endif  // KWS_OPS_H
"""
