"""Why a stream keyword was missed: each reason on a constructed trace, then on a real stream
through `kws stream eval` (the counts add up to the misses)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cascade.evaluation.miss_reasons import REASONS, describe, miss_reasons, tally
from cascade.runtime.decision import SmoothingConfig
from kws.cli import app

LABELS = ("_silence_", "_unknown_", "yes", "no")


def test_each_reason_on_a_constructed_trace() -> None:
    smoothing = SmoothingConfig(threshold=0.5, label_thresholds=(("no", 0.8),))
    times = np.arange(0.0, 20.0, 0.1)
    opened = np.zeros(len(times), bool)
    top = np.zeros(len(times), np.int64)  # _silence_ on top unless set
    score = np.full(len(times), 0.9)

    def at(start: float, end: float) -> np.ndarray:
        return (times >= start - 1e-9) & (times <= end + 1e-9)

    opened[at(3.0, 4.0)] = True  # keyword 1: stage 2 ran, heard "no"
    top[at(3.0, 4.0)] = LABELS.index("no")
    opened[at(6.0, 7.0)] = True  # keyword 2: "no" on top at 0.6 < its bar 0.8
    top[at(6.0, 7.0)], score[at(6.0, 7.0)] = LABELS.index("no"), 0.6
    opened[at(9.0, 10.0)] = True  # keyword 3: "yes" on top at 0.9 >= 0.5, yet not reported
    top[at(9.0, 10.0)] = LABELS.index("yes")
    keywords = [{"start": s, "end": s + 0.5, "label": w}
                for s, w in ((0.5, "yes"), (3.0, "yes"), (6.0, "no"), (9.0, "yes"), (12.0, "no"))]
    reasons = miss_reasons(keywords, [False, False, False, False, True], times, opened, top, score, LABELS, smoothing)
    assert reasons == [("gate closed", ""), ("another word", "no"), ("under its bar", "no"), ("held back", "yes"), None]
    counts = tally(reasons)
    assert [counts[r] for r in REASONS] == [1, 1, 1, 1] and counts["heard_as"] == {"no": 1}
    assert describe(counts) == "gate closed 1, another word 1, under its bar 1, held back 1 (heard as no 1)"


def test_stream_eval_says_why_each_keyword_was_missed(samples_dir: Path, tmp_path: Path) -> None:
    bundle = samples_dir / "cascade"
    if not bundle.is_dir():
        pytest.skip("samples/cascade is not shipped in this checkout")
    runner = CliRunner()
    stream = tmp_path / "stream"
    made = runner.invoke(app, ["stream", "make", "--keywords", str(samples_dir / "speech_commands"), "--out", str(stream),
                               "--minutes", "1", "--seed", "2"])
    assert made.exit_code == 0, made.output
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["stream", "eval", str(stream), "--model", str(bundle), "--json", str(out),
                                 "--sensitivity", "low"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    misses, total = report["misses"], report["total"]
    assert sum(misses[r] for r in REASONS) == total["keywords"] - total["hits"] > 0
    assert sum(misses["heard_as"].values()) == misses["another word"]
    assert "misses: " + describe(misses) in result.output
