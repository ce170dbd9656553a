"""A small resumable step runner: each step writes into its own folder and a ``step.json``
marker last; a step whose marker matches its inputs is skipped on the next run.

This is what makes ``make demo`` and ``kws cascade train`` resumable after Ctrl-C and cheap to
re-run: only steps whose inputs (settings, upstream results) changed are redone; ``force``
redoes all. A step that resumes inside (training from its checkpoint) keeps its half-done
folder, but only when that folder was started with the same inputs (``step.started``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from data_prep.atomic import write_text_atomic
from data_prep.outputs import refuse_existing

MARKER = "step.json"
STARTED = "step.started"  # the digest a step began with: a partial folder of other inputs is stale


@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    title: str
    run: Callable[[Path], dict[str, Any]]  # writes into the folder, returns a summary
    inputs: dict[str, Any] = dataclasses.field(default_factory=dict)  # what makes outputs stale
    after: tuple[str, ...] = ()  # upstream steps whose results this one reads
    keep_partial: bool = False  # resumable inside (training): keep a half-done folder


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _started(folder: Path) -> str | None:
    try:
        return (folder / STARTED).read_text().strip()
    except OSError:
        return None


def run_steps(root: Path, steps: list[Step], *, force: bool = False, on_start=None, on_done=None) -> dict[str, dict[str, Any]]:
    """Run ``steps`` in order under ``root``; returns each step's summary (fresh or cached)."""
    results: dict[str, dict[str, Any]] = {}
    digests: dict[str, str] = {}
    for step in steps:  # before any step runs: a stale step folder is deleted, so it must be ours
        refuse_existing(root / step.name, True, marks=(MARKER, STARTED))
    for step in steps:
        folder = root / step.name
        digest = _digest({"inputs": step.inputs, "after": [digests[a] for a in step.after]})
        marker = read_marker(folder)
        if not force and marker is not None and marker.get("digest") == digest:
            results[step.name], digests[step.name] = marker["summary"], digest
            if on_done:
                on_done(step, marker["summary"], True)
            continue
        resumable = step.keep_partial and not force and marker is None and _started(folder) in (None, digest)
        if folder.exists() and not resumable:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / STARTED, digest + "\n")
        if on_start:
            on_start(step)
        start = time.perf_counter()
        summary = step.run(folder)
        summary = {**summary, "seconds": round(time.perf_counter() - start, 1)}
        write_text_atomic(folder / MARKER, json.dumps({"digest": digest, "summary": summary}, indent=2, default=str) + "\n")
        results[step.name], digests[step.name] = summary, digest
        if on_done:
            on_done(step, summary, False)
    return results
