"""Run one ``kws`` command in a child process and measure it: wall time and peak RSS.

A child per measurement, because a process's peak RSS never goes down: measuring two sizes in
one process would report the larger for both.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from data_prep.errors import KwsError

KWS = (sys.executable, "-c", "from kws.cli import main; main()")


@dataclasses.dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_bytes: int


def measure_kws(args: Sequence[str], env: Mapping[str, str] | None = None) -> ChildRun:
    """``kws ARGS`` in a child (this interpreter, this checkout); its own peak RSS from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen([*KWS, *args], env=dict(env) if env is not None else None,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # stderr is read after the wait: kws writes at most a few lines there, far below a pipe's buffer
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.returncode}"
        raise KwsError(f"kws {' '.join(args[:2])} failed: {last}")
    return ChildRun(seconds, usage.ru_maxrss * 1024)  # ru_maxrss is in KiB on Linux
