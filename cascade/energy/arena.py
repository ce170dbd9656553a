"""The tensor arena a model needs in TensorFlow Lite Micro: measured, not guessed.

The arena is the model's RAM on the device, a cost figure like MACs and flash. A TFLM
interpreter given too small an arena may segfault the whole process, so every probe runs in
its own subprocess (two at a time).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cascade.runtime.int8_model import read_model_bytes
from data_prep.errors import ModelError

ARENA_CAP = 64 << 20  # nothing that fits a microcontroller needs more
PROBE_TIMEOUT_S = 120
_PROBE = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], "rb").read()
it = runtime.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]))
d = it.get_input_details(0)
it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
it.invoke()
if len(sys.argv) > 3:
    it.print_allocations()
"""
_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_arena_cache: dict[str, int] = {}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _run_probe(path: Path, size: int, report: bool = False) -> subprocess.CompletedProcess:
    args = [sys.executable, "-c", _PROBE, str(path), str(size)] + (["report"] if report else [])
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, returncode=-1, stdout="", stderr="timeout")


def _allocates(path: Path, size: int) -> bool:
    return _run_probe(path, size).returncode == 0


def allocates(model_bytes: bytes, arena_size: int) -> bool:
    """Whether TFLM allocates and invokes the model in ``arena_size`` bytes (one subprocess)."""
    data, _ = read_model_bytes(model_bytes)
    with tempfile.TemporaryDirectory(prefix="kws-arena-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        return _allocates(path, arena_size)


def _recorded_total(path: Path, model_size: int) -> int:
    """An arena that allocates and the allocator's own total: the bisection's starting point."""
    size = max(1 << 16, 4 * model_size)
    while size <= ARENA_CAP:
        done = _run_probe(path, size, report=True)
        if done.returncode == 0:
            found = _TOTAL.search(done.stderr + done.stdout)
            return min(size, int(found.group(1))) if found else size
        if done.returncode > 0 and "failed to allocate" not in done.stderr.lower().split("runtimeerror")[0]:
            first = (done.stderr.strip().splitlines() or ["no message"])[0]  # not an arena problem
            raise ModelError(f"TFLite Micro cannot run the model ({first})")
        size *= 2
    raise ModelError(f"model does not allocate in TFLite Micro even with a {ARENA_CAP} B arena")


def measure_arena(model_bytes: bytes, workers: int = 2) -> int:
    """The smallest tensor arena (bytes) in which TFLM allocates and invokes the model.

    Starts from the recording allocator's total, checks it allocates and that 64 B less fails,
    then narrows by parallel k-ary search: every probe is its own subprocess.
    """
    data, _ = read_model_bytes(model_bytes)
    key = _sha256(data)
    if key in _arena_cache:
        return _arena_cache[key]
    with tempfile.TemporaryDirectory(prefix="kws-arena-") as tmp, ThreadPoolExecutor(workers) as pool:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        total = _recorded_total(path, len(data))
        below = max(0, total - 64)
        total_ok, below_ok = pool.map(lambda s: _allocates(path, s), [total, below])
        # invariant: hi allocates, lo does not (-1: nothing below hi was tried)
        if not total_ok:
            hi, lo = _first_allocating(path, total), total
        elif below_ok:
            hi, lo = below, -1
        else:
            hi, lo = total, below
        while hi - lo > 1:
            step = (hi - lo) / (workers + 1)
            points = sorted({min(hi - 1, max(lo + 1, round(lo + step * (k + 1)))) for k in range(workers)})
            for size, ok in zip(points, pool.map(lambda s: _allocates(path, s), points)):
                if ok:
                    hi = min(hi, size)
                else:
                    lo = max(lo, size)
    _arena_cache[key] = hi
    return hi


def _first_allocating(path: Path, start: int) -> int:
    size = start
    while size <= ARENA_CAP:
        size *= 2
        if _allocates(path, size):
            return size
    raise ModelError(f"model does not allocate in TFLite Micro even with a {ARENA_CAP} B arena")
