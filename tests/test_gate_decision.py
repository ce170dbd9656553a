"""Gate calibration and the streaming decision (smoothing, suppression): pure functions."""

from __future__ import annotations

import numpy as np
import pytest

from cascade.runtime.decision import Smoother, SmoothingConfig, background_posterior, clip_predictions
from cascade.runtime.gate import calibrate, gate_open, lowest_keyword, threshold_curve
from data_prep.errors import ConfigError

LABELS = ("_silence_", "_unknown_", "yes", "no")
S1 = ("_silence_", "_unknown_", "keyword")


def test_calibration_meets_the_target_recall_with_the_largest_tau(rng: np.random.Generator) -> None:
    p = rng.random(1000)
    kw = rng.random(1000) < 0.6
    cal = calibrate(p, kw, 0.95)
    assert cal.recall >= 0.95
    assert np.mean(p[kw] >= np.nextafter(cal.tau, 1)) < 0.95  # any larger tau misses the target
    assert cal.invocation_rate == pytest.approx(np.mean(p >= cal.tau))
    assert calibrate(p, kw, 1.0).tau == p[kw].min()


def test_each_keywords_recall_is_reported_beside_the_pooled_target(rng: np.random.Generator) -> None:
    # "hard" has few clips and low scores: the pooled floor is carried by "easy"'s clips
    p = np.concatenate([rng.uniform(0.6, 1.0, 300), rng.uniform(0.2, 1.0, 20), rng.uniform(0.0, 0.5, 100)])
    names = np.array(["easy"] * 300 + ["hard"] * 20 + ["_unknown_"] * 100)
    kw = names != "_unknown_"
    pooled, reported = calibrate(p, kw, 0.9), calibrate(p, kw, 0.9, names)
    assert reported.tau == pooled.tau and pooled.per_keyword == {}
    assert set(reported.per_keyword) == {"easy", "hard"}
    for word in ("easy", "hard"):
        assert reported.per_keyword[word] == np.mean(p[names == word] >= reported.tau)
    assert reported.per_keyword["hard"] < 0.9 <= reported.recall  # what the pool promises, "hard" does not get
    assert lowest_keyword(reported.per_keyword).startswith("hard ")


def test_calibration_refuses_nonsense() -> None:
    with pytest.raises(ConfigError):
        calibrate(np.array([0.5]), np.array([False]), 0.9)
    with pytest.raises(ConfigError):
        calibrate(np.array([0.5]), np.array([True]), 1.5)


def test_threshold_curve_is_monotonic(rng: np.random.Generator) -> None:
    curve = threshold_curve(rng.random(200), rng.random(200) < 0.5)
    recalls = [c["recall"] for c in curve]
    rates = [c["invocation_rate"] for c in curve]
    assert recalls == sorted(recalls, reverse=True) and rates == sorted(rates, reverse=True)
    assert gate_open(0.5, 0.5) and not gate_open(0.49, 0.5)


def test_closed_gate_gives_stage1_non_keyword_label() -> None:
    p1 = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.0, 0.1, 0.9]], np.float32)
    p2 = np.array([[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0.2, 0.8]], np.float32)
    opened = np.array([False, False, True])
    assert clip_predictions(p1, p2, opened, S1, LABELS).tolist() == [0, 1, 3]
    np.testing.assert_allclose(background_posterior(p1[0], S1, LABELS), [0.7 / 0.9, 0.2 / 0.9, 0, 0])


def test_smoother_needs_count_and_threshold_then_suppresses() -> None:
    sm = Smoother(SmoothingConfig(window_ms=500, threshold=0.6, suppression_ms=1000, min_count=2), LABELS)
    yes = np.array([0, 0, 1, 0], np.float32)
    no = np.array([0, 0, 0, 1], np.float32)
    assert sm.update(0.1, yes)[0] is None  # one result is not enough
    det = sm.update(0.2, yes)[0]
    assert det is not None and det.label == "yes" and det.t == 0.2
    assert sm.update(0.3, yes)[0] is None  # suppressed
    for t in (0.8, 0.9, 1.0):
        assert sm.update(t, no)[0] is None  # other label inside the suppression time
    assert sm.update(1.3, no)[0].label == "no"
    sm.reset()
    assert sm.update(0.0, np.array([0.5, 0.5, 0, 0], np.float32))[1] in ("_silence_", "_unknown_")


def test_smoother_averages_over_the_window() -> None:
    sm = Smoother(SmoothingConfig(window_ms=300, threshold=0.7, suppression_ms=0, min_count=1), LABELS)
    sm.update(0.0, np.array([0, 0, 0.5, 0.5], np.float32))
    det, label, score = sm.update(0.1, np.array([0, 0, 1.0, 0], np.float32))
    assert label == "yes" and score == pytest.approx(0.75) and det is not None
    _, _, score = sm.update(0.5, np.array([0, 0, 0.6, 0.4], np.float32))  # the first two left the window
    assert score == pytest.approx(0.6)


def test_smoother_fires_once_per_word_until_its_score_falls_below_release() -> None:
    """A word held past the suppression time used to fire again (a double trigger, a false
    accept); it re-arms only once its smoothed score drops below release_ratio x threshold."""
    sm = Smoother(SmoothingConfig(window_ms=300, threshold=0.6, suppression_ms=500, min_count=1, release_ratio=0.5), LABELS)
    yes, half, no = (np.array(v, np.float32) for v in ([0, 0, 1, 0], [0.6, 0, 0.4, 0], [0, 0, 0, 1]))
    fired = [sm.update(t / 10, yes)[0] is not None for t in range(30)]  # 3 s of one word
    assert fired.count(True) == 1
    assert sm.update(3.5, half)[0] is None and sm.update(3.6, yes)[0] is None  # 0.4 > 0.3: still latched
    assert sm.update(3.7, no)[0] is None and sm.update(3.8, no)[0].label == "no"
    assert sm._latched[LABELS.index("yes")]  # "no" fired while "yes" was still latched (1/3 > 0.3)
    assert sm.update(4.5, np.array([1, 0, 0, 0], np.float32))[0] is None  # "yes" fell to 0: re-armed
    assert sm.update(4.6, yes)[0] is None and sm.update(4.7, yes)[0].label == "yes"
    with pytest.raises(ConfigError):
        SmoothingConfig(release_ratio=0.0)
