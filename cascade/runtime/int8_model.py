"""An int8 TFLite model as the host runs it: bit-exact with TensorFlow Lite Micro by default.

The interpreter uses TFLite's *reference* kernels (``OpResolverType.BUILTIN_REF``), which TFLM
matches bit for bit; the default optimized kernels (XNNPACK) differ by a few LSB and are an
option only for comparison. Scales and zero points are always read from the model's own
tensors. Batches are run one clip at a time: the deployable graph has batch 1 with a constant
RESHAPE shape, so the input cannot be resized (measured: resizing fails in RESHAPE's prepare).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from data_prep.errors import ModelError, first_line

TFLITE_IDENTIFIER = b"TFL3"


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """What a caller needs to feed or read one tensor (scale 0 means "not quantized")."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return np.issubdtype(self.dtype, np.integer) and self.scale > 0

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Float -> this tensor's dtype: round(x / scale) + zero_point, saturated."""
        values = np.asarray(values, dtype=np.float32)
        if not self.quantized:
            return values.astype(self.dtype)
        info = np.iinfo(self.dtype)
        q = np.round(values / np.float32(self.scale)) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values)
        if not self.quantized:
            return values.astype(np.float32)
        return ((values.astype(np.int32) - self.zero_point) * np.float32(self.scale)).astype(np.float32)


def read_model_bytes(model: bytes | bytearray | str | Path) -> tuple[bytes, str]:
    """(flatbuffer bytes, a name for messages); refuses anything that is not a .tflite model."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, source = bytes(model), "<in-memory model>"
    else:
        source = str(model)
        try:
            data = Path(model).read_bytes()
        except OSError as exc:
            raise ModelError(f"{source}: cannot read model ({exc.strerror})") from None
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(f"{source}: not a TFLite model (no {TFLITE_IDENTIFIER.decode()} flatbuffer identifier)")
    return data, source


def tensor_info(detail: dict) -> TensorInfo:
    """A TFLite interpreter's tensor detail as a TensorInfo."""
    scale, zero_point = detail["quantization"]
    return TensorInfo(
        name=detail["name"],
        index=int(detail["index"]),
        shape=tuple(int(d) for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )


class TFLiteModel:
    """One single-input, single-output classifier .tflite on the host interpreter."""

    def __init__(self, model: bytes | bytearray | str | Path, reference_kernels: bool = True, num_threads: int = 1):
        from ai_edge_litert import interpreter as litert

        self.model_bytes, self.source = read_model_bytes(model)
        self.reference_kernels = reference_kernels
        self._clones: list[TFLiteModel] = []
        kwargs = {"experimental_op_resolver_type": litert.OpResolverType.BUILTIN_REF} if reference_kernels else {}
        try:
            self._interpreter = litert.Interpreter(
                model_content=self.model_bytes, num_threads=num_threads, **kwargs
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.source}: cannot load TFLite model ({first_line(exc)})") from None
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(
                f"{self.source}: expected one input and one output, got {len(inputs)} and {len(outputs)}"
            )
        self.input = tensor_info(inputs[0])
        self.output = tensor_info(outputs[0])
        if self.input.shape[0] != 1:
            raise ModelError(f"{self.source}: expected batch-1 input, got shape {self.input.shape}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One clip's feature shape, (T, n_mfcc)."""
        return self.input.shape[1:]

    @property
    def num_classes(self) -> int:
        return self.output.shape[-1]

    def quantize_input(self, features: np.ndarray) -> np.ndarray:
        """Float features (N, T, C) or (T, C) -> the input tensor's dtype (int8 for int8 models)."""
        return self.input.quantize(features)

    def dequantize_output(self, values: np.ndarray) -> np.ndarray:
        return self.output.dequantize(values)

    def _batch(self, values: np.ndarray, what: str) -> np.ndarray:
        values = np.asarray(values)
        if values.shape == self.input_shape:
            values = values[None]
        if values.shape[1:] != self.input_shape:
            raise ModelError(
                f"{self.source}: {what} of shape {values.shape} do not match the model input "
                f"(N, {', '.join(map(str, self.input_shape))})"
            )
        return values

    def invoke_int8(self, batch: np.ndarray) -> np.ndarray:
        """Raw input-dtype batch (N, T, C) -> raw output-dtype (N, classes), clip by clip."""
        batch = self._batch(batch, "inputs")
        if batch.dtype != self.input.dtype:
            raise ModelError(f"{self.source}: inputs are {batch.dtype}, the model takes {self.input.dtype}")
        it, i, o = self._interpreter, self.input.index, self.output.index
        out = np.empty((len(batch), self.num_classes), dtype=self.output.dtype)
        for n, clip in enumerate(batch):
            it.set_tensor(i, clip[None])
            it.invoke()
            out[n] = it.get_tensor(o)[0]
        return out

    def predict(self, features: np.ndarray, workers: int = 1) -> np.ndarray:
        """Float features (N, T, C) -> float probabilities (N, classes), via the model's own params.

        ``workers`` > 1 splits the batch over that many interpreters in threads (the
        interpreter releases the GIL while invoking): reference kernels are slow, and a full
        test set is thousands of clips.
        """
        features = self._batch(features, "features")
        q = self.quantize_input(features)
        if workers <= 1 or len(q) < 2 * workers:
            return self.dequantize_output(self.invoke_int8(q))
        from concurrent.futures import ThreadPoolExecutor

        while len(self._clones) < workers - 1:
            self._clones.append(TFLiteModel(self.model_bytes, self.reference_kernels))
        runners = [self, *self._clones[: workers - 1]]
        chunks = np.array_split(q, workers)
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(lambda rc: rc[0].invoke_int8(rc[1]), zip(runners, chunks)))
        return self.dequantize_output(np.concatenate(parts))
