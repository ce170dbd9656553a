"""Keras model -> TFLite flatbuffer: full-integer int8 by default, other modes for comparison.

The model is exported as a SavedModel with a fixed batch of 1 before conversion: with a
dynamic batch the converter adds SHAPE / STRIDED_SLICE / PACK ops in front of every RESHAPE,
which cost flash and arena on the device. int8 mode quantizes the input and output tensors too
(int8 in, int8 out), calibrated on a representative set of real training features.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_prep.errors import ModelError, first_line

MODES = ("int8", "int16x8", "float16", "dynamic", "float32")
NEEDS_REPRESENTATIVE = ("int8", "int16x8")
MAX_REPRESENTATIVE = 500  # calibration saturates after a few hundred clips


def _check_representative(model, representative: np.ndarray | None, mode: str) -> np.ndarray | None:
    if mode not in NEEDS_REPRESENTATIVE:
        return None
    if representative is None:
        raise ModelError(f"{mode} quantization needs representative features (N, T, n_mfcc)")
    rep = np.asarray(representative, dtype=np.float32)
    expected = tuple(model.input_shape[1:])
    if rep.ndim != 3 or rep.shape[1:] != expected or len(rep) == 0:
        raise ModelError(f"representative features have shape {rep.shape}, expected (N, {expected[0]}, {expected[1]})")
    if not np.isfinite(rep).all():
        raise ModelError("representative features contain NaN or infinite values")
    if len(rep) > MAX_REPRESENTATIVE:  # evenly spaced, so every class in a sorted set is seen
        rep = rep[np.linspace(0, len(rep) - 1, MAX_REPRESENTATIVE).round().astype(int)]
    return rep


def quantize(model, representative: np.ndarray | None = None, mode: str = "int8") -> bytes:
    """The .tflite bytes of ``model`` in ``mode`` (one of MODES)."""
    import tensorflow as tf

    if mode not in MODES:
        raise ModelError(f"unknown quantization mode {mode!r} (known: {', '.join(MODES)})")
    rep = _check_representative(model, representative, mode)
    spec = tf.TensorSpec((1, *model.input_shape[1:]), tf.float32, name=model.inputs[0].name)
    with tempfile.TemporaryDirectory(prefix="kws-savedmodel-") as tmp:
        model.export(tmp, format="tf_saved_model", input_signature=[spec], verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if rep is not None:
            def calibration() -> Iterator[list[np.ndarray]]:
                for clip in rep:
                    yield [clip[None]]

            converter.representative_dataset = calibration
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        elif mode == "int16x8":
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
            converter.inference_input_type = tf.int16
            converter.inference_output_type = tf.int16
        try:
            return bytes(converter.convert())
        except Exception as exc:  # the converter raises many types; name the model and mode
            raise ModelError(f"model {model.name!r}: {mode} conversion failed ({first_line(exc)})") from None


@dataclasses.dataclass(frozen=True)
class SizeRow:
    """One line of the size table: a format and its file size."""

    format: str
    bytes: int
    ratio_to_keras: float


def keras_file_bytes(model) -> int:
    """Size of the model saved as a .keras file (what training writes)."""
    with tempfile.TemporaryDirectory(prefix="kws-keras-") as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        return path.stat().st_size


def size_table(model, representative: np.ndarray, modes: tuple[str, ...] = ("float32", "int8")) -> list[SizeRow]:
    """Rows for .keras vs each TFLite mode, measured by really saving and converting."""
    sizes = [("keras", keras_file_bytes(model))]
    sizes += [(f"tflite {mode}", len(quantize(model, representative, mode))) for mode in modes]
    keras_bytes = sizes[0][1]
    return [SizeRow(name, n, n / keras_bytes) for name, n in sizes]
