"""Train the search candidates that fit: parallel ``kws train`` processes within a time budget.

Each candidate is one ``kws train`` run in its own process (and its own session, so a Ctrl-C
reaches this scheduler, which then stops the runs itself). ``kws train`` backs up every
epoch, so a run stopped at the end of the budget, by Ctrl-C or by a crash resumes from its
last finished epoch when the search is run again. Largest candidates (by MACs) start first:
within a budget they are the likeliest to be the most accurate, and the small ones are quick.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cascade.evaluation.search import pareto_png as cascade_pareto_png
from cascade.runtime import model_dir as artifact
from kws.search.arch import SearchSpec, SearchState, best, cascade_choice, collect, measure_all, model_path, train_command
from kws.search.plots import memory_map_png, pareto_png

CLI = "from kws.cli import main; main()"
GRACE_S = 10.0


def _env(threads: int) -> dict[str, str]:
    """One process per core: TF's thread pools sized to match (the env vars TF reads at start)."""
    env = dict(os.environ)
    env.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
    env.setdefault("TF_NUM_INTEROP_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def _clear_stillborn(path: Path) -> None:
    """A run interrupted before it wrote its train config holds no progress; kws train would
    refuse the folder, so it goes."""
    if path.is_dir() and any(path.iterdir()) and not (path / artifact.TRAIN_CONFIG).is_file():
        shutil.rmtree(path)


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM, then SIGKILL. Not SIGINT: inside TensorFlow the KeyboardInterrupt often lands
    in a weakref or __del__ callback, where Python prints and ignores it, and the run goes on
    (seen here). Killing is safe: kws train's backups, history and best model are written
    atomically after each epoch, so the rerun resumes from the last finished one."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        if proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()] if path.is_file() else []
    return lines[-1][:300] if lines else "no output"


def train_candidates(state: SearchState, *, budget_s: float, parallel: int = 2, log=None,
                     poll_s: float = 0.5, grace_s: float = GRACE_S) -> dict[str, int]:
    """Train every fitting candidate not trained yet, ``parallel`` at a time; stop starting
    new ones once ``budget_s`` seconds have passed and interrupt those still running.
    Returns how many finished, failed and were interrupted in this call."""
    log = log or (lambda line: None)
    collect(state)
    todo = sorted((r for r in state.candidates.values() if r["fits"] and r["status"] != "trained"),
                  key=lambda r: -r["macs"])
    threads = max(1, (os.cpu_count() or 1) // max(1, parallel))
    logs = state.out / "logs"
    logs.mkdir(exist_ok=True)
    start = time.monotonic()
    running: dict[str, tuple[subprocess.Popen, Any, float]] = {}
    counts = {"trained": 0, "failed": 0, "interrupted": 0}

    def over() -> bool:
        return time.monotonic() - start >= budget_s

    def finish(cid: str, status: str) -> None:
        _, handle, started = running.pop(cid)
        handle.close()
        state.data["training_seconds"] += time.monotonic() - started
        extra = {"error": _tail(logs / f"{cid}.log")} if status == "failed" else {}
        state.update(cid, status=status, **extra)
        counts[status] += 1
        log(f"{cid}: {status}" + (f" ({extra['error']})" if extra else ""))

    def interrupt_all() -> None:
        for cid, (proc, _, _) in list(running.items()):
            _stop(proc, grace_s)
            finish(cid, "trained" if (model_path(state.out, cid) / artifact.METRICS).is_file() else "interrupted")

    try:
        while todo or running:
            while todo and len(running) < parallel and not over():
                row = todo.pop(0)
                _clear_stillborn(model_path(state.out, row["id"]))
                handle = open(logs / f"{row['id']}.log", "a")
                cmd = [sys.executable, "-c", CLI, *train_command(state.spec, row, state.out)]
                running[row["id"]] = (subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=_env(threads),
                                                       start_new_session=True), handle, time.monotonic())
                resuming = (model_path(state.out, row["id"]) / artifact.TRAIN_CONFIG).is_file()
                state.update(row["id"], status="training")
                log(f"{row['id']}: {'resuming' if resuming else 'training'} ({row['macs']:,} MACs)")
            for cid, (proc, _, _) in list(running.items()):
                if proc.poll() is not None:
                    done = proc.returncode == 0 and (model_path(state.out, cid) / artifact.METRICS).is_file()
                    finish(cid, "trained" if done else "failed")
            if over() and running:
                log(f"time budget of {budget_s / 60:g} min spent: stopping {len(running)} run(s); rerun to resume them")
                interrupt_all()
            if not running and (over() or not todo):
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        interrupt_all()
        raise
    collect(state)
    return counts


def run_search(spec: SearchSpec, out: Path, *, budget_s: float, parallel: int = 2, force: bool = False,
               inference_stride_ms: float = 100.0, max_drop: float = 0.01, log=None) -> dict[str, Any]:
    """Measure, reject, train within the budget, choose; writes search.json and both plots."""

    state = SearchState(out, spec, force)
    measure_all(state, log)
    counts = train_candidates(state, budget_s=budget_s, parallel=parallel, log=log)
    fitting = [r for r in state.candidates.values() if r["fits"]]
    state.data["complete"] = all(r["status"] == "trained" for r in fitting)
    state.data["this_run"] = counts
    state.data["best"] = best(state)
    if spec.train.stage == 1:
        state.data["cascade"] = cascade_choice(state, inference_stride_ms, max_drop)
    state.save()
    memory_map_png(state.data, state.out / "memory_map.png")
    pareto_png(state.data, state.out / "pareto.png")
    if state.data.get("cascade"):

        cascade_pareto_png(state.data["cascade"], state.out / "cascade_pareto.png")
    return state.data
