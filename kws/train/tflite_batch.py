"""Batched inference of a classifier .tflite, called from many threads: what every teacher runs.

tf.data calls a teacher from parallel native threads, whose Python thread state (and so any
``threading.local``) does not outlive one call: interpreters are kept in a pool instead, each
used by one call at a time, so there are as many as there are concurrent calls. Each one runs a
whole batch in one invoke (its input resized to the batch), with TFLite's optimised kernels:
a teacher is asked for soft targets on every training batch, so speed matters here and
bit-exactness with the firmware (cascade.runtime.int8_model) does not.
"""

from __future__ import annotations

import threading

import numpy as np

from cascade.runtime.int8_model import tensor_info
from data_prep.errors import ModelError


class BatchedTFLite:
    """Float inputs (B, *input_shape) -> float outputs (B, classes); int8 ends are (de)quantized."""

    def __init__(self, model_bytes: bytes, source: str):
        self.model_bytes, self.source = model_bytes, source
        self._idle: list[_Sized] = []
        self._lock = threading.Lock()
        first = self._take()
        # (de)quantization as the runtime does it; a float model's ends pass through as float32
        self.input_info, self.output_info = tensor_info(first.input), tensor_info(first.output)
        self.input_shape, self.num_classes = self.input_info.shape[1:], self.output_info.shape[-1]
        self._give(first)

    def _take(self) -> "_Sized":
        with self._lock:
            if self._idle:
                return self._idle.pop()
        from ai_edge_litert import interpreter as litert

        try:
            return _Sized(litert.Interpreter(model_content=self.model_bytes, num_threads=1))
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.source}: cannot load TFLite model ({exc})") from None

    def _give(self, sized: "_Sized") -> None:
        with self._lock:
            self._idle.append(sized)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32).reshape(len(x), *self.input_shape)
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        q = self.input_info.quantize(x)
        sized = self._take()
        try:
            out = sized.run(q)
        finally:
            self._give(sized)
        return self.output_info.dequantize(out)


class _Sized:
    """An interpreter and the batch size its tensors are allocated for. A graph whose reshapes
    fix the batch at 1 (what kws exports for the device) cannot be resized: it runs clip by clip."""

    def __init__(self, interpreter) -> None:
        self.interpreter, self.batch, self.resizable = interpreter, 1, True
        self.interpreter.allocate_tensors()
        self.input, self.output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def _resize(self, batch: int) -> bool:
        if batch != self.batch and self.resizable:
            try:
                self.interpreter.resize_tensor_input(self.input["index"], [batch, *self.input["shape"][1:]])
                self.interpreter.allocate_tensors()
                self.batch = batch
            except (RuntimeError, ValueError):
                self.resizable = False
                self.interpreter.resize_tensor_input(self.input["index"], [1, *self.input["shape"][1:]])
                self.interpreter.allocate_tensors()
                self.batch = 1
            self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        return self.batch == batch

    def run(self, x: np.ndarray) -> np.ndarray:
        """Input-dtype batch -> output-dtype batch (a copy)."""
        it = self.interpreter
        if self._resize(len(x)):
            it.set_tensor(self.input["index"], x)
            it.invoke()
            return it.get_tensor(self.output["index"]).copy()
        out = np.empty((len(x), *self.output["shape"][1:]), dtype=self.output["dtype"])
        for n, clip in enumerate(x):
            it.set_tensor(self.input["index"], clip[None])
            it.invoke()
            out[n] = it.get_tensor(self.output["index"])[0]
        return out
