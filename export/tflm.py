"""TensorFlow Lite Micro on the host: outputs, bit-exactness against TFLite, tensor arena size.

TFLM is the interpreter the firmware runs, so its outputs are the ground truth for the device.
It must equal the TFLite *reference* kernels bit for bit; the optimized (XNNPACK) kernels are
compared too, to show how far host-side evaluation with them would drift.

A TFLM interpreter given too small an arena may segfault the whole process, so in-process use
is only allowed with an arena at least as large as the one measured in subprocesses
(cascade.energy.arena).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from cascade.energy.arena import measure_arena
from cascade.runtime.int8_model import TFLiteModel, read_model_bytes
from data_prep.errors import ModelError


def tflm_interpreter(model_bytes: bytes, arena_size: int | None = None):
    """A TFLM interpreter with an arena proven (in a subprocess) to be large enough."""
    from tflite_micro.python.tflite_micro import runtime

    data, source = read_model_bytes(model_bytes)
    needed = measure_arena(data)
    if arena_size is None:
        arena_size = needed
    elif arena_size < needed:
        raise ModelError(f"{source}: tensor arena of {arena_size} B is too small (TFLM needs {needed} B)")
    return runtime.Interpreter.from_bytes(data, arena_size=arena_size)


def tflm_outputs(model_bytes: bytes, int8_inputs: np.ndarray, arena_size: int | None = None) -> np.ndarray:
    """Raw outputs (N, classes) of TFLite Micro for raw inputs (N, T, C), clip by clip."""
    it = tflm_interpreter(model_bytes, arena_size)
    detail = it.get_input_details(0)
    shape, dtype = tuple(int(d) for d in detail["shape"]), np.dtype(detail["dtype"])
    inputs = np.asarray(int8_inputs)
    if inputs.shape[1:] != shape[1:] or inputs.dtype != dtype:
        raise ModelError(f"TFLM inputs are {inputs.dtype}{inputs.shape}, the model takes {dtype}(N, {shape[1:]})")
    outputs = []
    for clip in inputs:
        it.set_input(clip.reshape(shape), 0)
        it.invoke()
        outputs.append(np.array(it.get_output(0)).reshape(-1))
    return np.stack(outputs) if outputs else np.empty((0, 0), dtype=dtype)


@dataclasses.dataclass(frozen=True)
class BitExactReport:
    """TFLM vs TFLite reference kernels (must be 0 LSB) and vs the optimized kernels (drift)."""

    samples: int
    mismatched_samples: int  # TFLM != reference kernels in any output
    max_lsb_reference: int
    max_lsb_optimized: int  # optimized kernels vs TFLM
    argmax_disagreements_optimized: int

    @property
    def bit_exact(self) -> bool:
        return self.mismatched_samples == 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"bit_exact": self.bit_exact}


def _max_lsb(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max(initial=0))


def verify_bit_exact(model_bytes: bytes, int8_inputs: np.ndarray, arena_size: int | None = None) -> BitExactReport:
    """Run the same raw inputs through TFLM, TFLite reference and TFLite optimized kernels."""
    micro = tflm_outputs(model_bytes, int8_inputs, arena_size)
    reference = TFLiteModel(model_bytes, reference_kernels=True).invoke_int8(int8_inputs)
    optimized = TFLiteModel(model_bytes, reference_kernels=False).invoke_int8(int8_inputs)
    return BitExactReport(
        samples=len(micro),
        mismatched_samples=int((micro != reference).any(axis=1).sum()),
        max_lsb_reference=_max_lsb(micro, reference),
        max_lsb_optimized=_max_lsb(micro, optimized),
        argmax_disagreements_optimized=int((micro.argmax(axis=1) != optimized.argmax(axis=1)).sum()),
    )
