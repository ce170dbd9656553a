"""The exported C pieces against Python, compiled with real gcc, without a trained bundle:
C arrays, the config header's gate and quantization math, and the decision logic on random step
sequences (the MFCC frontend: tests/test_export_frontend_c.py)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from c_export import KEYWORDS, build, int8_tensor, needs_gcc, synthetic_export
from hypothesis import given, settings
from hypothesis import strategies as st

from cascade.runtime.decision import Smoother, SmoothingConfig, step_posterior
from cascade.runtime.gate import gate_open
from cascade.runtime.int8_model import TensorInfo
from cascade.runtime.operating_points import Measured, OperatingPoint
from data_prep.config import FeatureConfig
from data_prep.labels import SILENCE, UNKNOWN
from data_prep.normalize import FeatureStats
from export import frontend_c, header
from export.c_array import c_float


# ---- C literals ----------------------------------------------------------------------------------
@needs_gcc
def test_float_literals_parse_back_exactly(tmp_path, rng):
    values = np.concatenate([rng.normal(0, 100, 50), rng.uniform(0, 1e-6, 10), [1e-6, 0.7, 1 / 3, 4000]]).astype(np.float32)
    src = "#include <stdio.h>\nstatic const float v[] = {" + ", ".join(c_float(v) for v in values) + "};\n" \
          "int main(void) { unsigned i; for (i = 0; i < sizeof v / sizeof v[0]; ++i) printf(\"%a\\n\", (double)v[i]); return 0; }\n"
    out = subprocess.run([build(tmp_path, src, [])], capture_output=True, text=True, check=True).stdout.split()
    assert np.array_equal(np.float32([float.fromhex(x) for x in out]), values)


# ---- gate threshold and folded quantization ----------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(tau=st.floats(0, 1), scale=st.floats(1e-4, 0.05), zp=st.integers(-128, 127))
def test_int8_gate_equals_the_float_gate_on_all_256_values(tau, scale, zp):
    out = int8_tensor(scale, zp)
    q_tau = header.gate_threshold_q(tau, out)
    for q in range(-128, 128):
        p = float(out.dequantize(np.int8(q)))
        assert (q >= q_tau) == bool(gate_open(p, tau))


def test_gate_threshold_edges():
    out = int8_tensor(1 / 256, -128)
    assert header.gate_threshold_q(0.0, out) == -128
    assert header.gate_threshold_q(0.3515625, out) == -128 + 90  # exactly representable: q = 90 - 128
    assert header.gate_threshold_q(1.0, out) == 128  # (127 + 128) / 256 < 1: never opens


def test_folded_quantization_within_one_lsb_of_the_runtime(rng):
    stats = FeatureStats(tuple(rng.normal(0, 50, 10)), tuple(rng.uniform(3, 100, 10)))
    tensor = int8_tensor(0.0464787, -1, (1, 49, 10))
    x = (rng.normal(0, 1, (2000, 10)) * np.float32(stats.std) * 4 + np.float32(stats.mean)).astype(np.float32)
    runtime = tensor.quantize(stats.apply(x))
    folded = frontend_c.quantize_folded(x, *header.fold_quantization(stats, tensor))
    diff = np.abs(runtime.astype(int) - folded)
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99
    assert runtime.min() == -128 and runtime.max() == 127 and np.array_equal(runtime == 127, folded == 127)


def test_round_half_away_from_zero_twin():
    a, b = np.ones(6, np.float32), np.zeros(6, np.float32)
    v = np.float32([0.5, -0.5, 1.5, -2.5, 0.49999997, 300.0])
    assert frontend_c.quantize_folded(v, a, b).tolist() == [1, -1, 2, -3, 0, 127]


def test_arena_margin():
    assert header.arena_with_margin(3880) == 4272 and header.arena_with_margin(1600) % 16 == 0
    assert header.arena_with_margin(1600) >= 1760


# ---- the decision logic on random step sequences -------------------------------------------------
DECISION_MAIN = r"""
#include <stdio.h>
#include "kws_decision.h"
/* stdin per step: frame, stage-1 outputs, stage-2 outputs; stdout per step:
 * due open label score(hex) detected t */
int main(void) {
    kws_smoother_t s;
    unsigned frame;
    kws_smoother_reset(&s);
    while (scanf("%u", &frame) == 1) {
        int8_t o1[KWS_STAGE1_NUM_LABELS], o2[KWS_NUM_LABELS];
        int i, v, open;
        kws_decision_t d;
        for (i = 0; i < KWS_STAGE1_NUM_LABELS; ++i) { if (scanf("%d", &v) != 1) return 2; o1[i] = (int8_t)v; }
        for (i = 0; i < KWS_NUM_LABELS; ++i) { if (scanf("%d", &v) != 1) return 2; o2[i] = (int8_t)v; }
        open = kws_gate_open(o1[KWS_STAGE1_KEYWORD_INDEX]);
        kws_decide(&s, kws_step_time(frame), o1, open ? o2 : NULL, &d);
        printf("%d %d %d %a %d %.17g\n", kws_step_due(frame), open, d.label, (double)d.score, d.detected, d.t);
    }
    return 0;
}
"""


def _logits_to_int8(logits: np.ndarray, out: TensorInfo) -> np.ndarray:
    p = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return out.quantize(p / p.sum(axis=-1, keepdims=True))


def _sequence(rng, steps: int, n1: int, n2: int, kw: int) -> tuple[np.ndarray, np.ndarray]:
    """Stage logits with keyword episodes, so the gate opens and closes and detections and
    suppressions happen."""
    l1, l2 = rng.normal(0, 1, (steps, n1)), rng.normal(0, 1, (steps, n2))
    for start in rng.choice(steps - 12, 6, replace=False):
        word = rng.integers(n2 - len(KEYWORDS), n2)
        l1[start : start + 12, kw] += 4
        l2[start : start + 12, word] += rng.uniform(2, 7)
    return l1, l2


@needs_gcc
@pytest.mark.parametrize("case", [
    dict(),
    dict(tau=0.3, stride_ms=40.0, smoothing=SmoothingConfig(window_ms=500.0, threshold=0.5, suppression_ms=300.0,
                                                             min_count=3)),
    dict(tau=0.61, silence=False, out_scale=0.0051, out_zp=-100,
         smoothing=SmoothingConfig(window_ms=760.0, threshold=0.4, suppression_ms=0.0, min_count=1)),
    {"tau": 0.3, "smoothing": SmoothingConfig(threshold=0.7, label_thresholds=(("yes", 0.95), ("no", 0.35)))},
])
def test_c_decision_equals_python(case, tmp_path, rng):
    bundle = synthetic_export(tmp_path, FeatureConfig(), **case)
    exe = build(tmp_path, DECISION_MAIN, ["kws_decision.c"])
    cfg, labels, labels1 = bundle.config, bundle.labels, bundle.stage1.labels
    out = int8_tensor(case.get("out_scale", 1 / 256), case.get("out_zp", -128))
    kw = labels1.index("keyword")
    l1, l2 = _sequence(rng, 400, len(labels1), len(labels), kw)
    o1, o2 = _logits_to_int8(l1, out), _logits_to_int8(l2, out)
    every = bundle.inference_stride_frames
    frames = cfg.num_frames + every * np.arange(len(o1))
    stdin = "".join(f"{f} {' '.join(map(str, a))} {' '.join(map(str, b))}\n" for f, a, b in zip(frames, o1, o2))
    lines = subprocess.run([exe], input=stdin, capture_output=True, text=True, check=True).stdout.splitlines()
    smoother = Smoother(bundle.smoothing, labels)
    detections = opened_count = 0
    for frame, a, b, line in zip(frames, o1, o2, lines):
        due, c_open, c_label, c_score, c_det, c_t = line.split()
        t = ((frame - 1) * cfg.stride_samples + cfg.window_samples) / cfg.sample_rate  # cascade/pipeline.py
        p1 = out.dequantize(a)
        opened = bool(gate_open(float(p1[kw]), bundle.tau))
        post = step_posterior(p1, out.dequantize(b) if opened else None, labels1, labels)
        det, label, score = smoother.update(t, post)
        assert (int(due), int(c_open), float(c_t)) == (1, opened, t)
        assert (labels[int(c_label)], float.fromhex(c_score), bool(int(c_det))) == (label, score, det is not None)
        detections += det is not None
        opened_count += opened
    assert len(lines) == len(o1) and detections >= 2 and 0 < opened_count < len(o1)


@needs_gcc
def test_c_per_keyword_thresholds_equal_python(tmp_path):
    """Overrides that flip detections both ways against the global threshold (and a score
    exactly on one): C reports the same (time, label) list as Python, from the header's table."""
    smoothing = SmoothingConfig(threshold=0.7, label_thresholds=(("yes", 0.95), ("no", 0.375)))
    bundle = synthetic_export(tmp_path, FeatureConfig(), smoothing=smoothing)
    labels = bundle.labels
    assert labels == (SILENCE, UNKNOWN, "yes", "no", "up")
    assert "#define KWS_LABEL_THRESHOLD_INIT {0.7, 0.7, 0.95, 0.375, 0.7}" in (tmp_path / header.HEADER).read_text()
    src = ('#include <stdio.h>\n#include "kws_cascade_config.h"\nstatic const double v[] = KWS_LABEL_THRESHOLD_INIT;\n'
           'int main(void) { unsigned i; for (i = 0; i < KWS_NUM_LABELS; ++i) printf("%a\\n", v[i]); return 0; }\n')
    table = subprocess.run([build(tmp_path, src, [])], capture_output=True, text=True, check=True).stdout.split()
    assert [float.fromhex(x) for x in table] == [smoothing.threshold_for(label) for label in labels]
    # 8-step episodes, 2.5 s apart: (word, its int8 stage-2 output, _unknown_'s); yes 0.80 and
    # no 0.50 flip against the global 0.7, no 96/256 = 0.375 sits exactly on its bar, 95/256 misses.
    episodes = [("yes", 77, -78), ("no", 0, -1), ("up", 90, -91), ("yes", 123, -124), ("no", -32, -64), ("no", -33, -64)]
    o1, o2 = [], []
    for word, q, q_unknown in episodes:
        o1 += [[102, -102, -128]] * 25 + [[-128, -128, 127]] * 8  # silence, then the gate opens
        row = [-128] * len(labels)
        row[labels.index(word)], row[labels.index(UNKNOWN)] = q, q_unknown
        o2 += [[0] * len(labels)] * 25 + [row] * 8
    c_dets, py_dets = _detections(tmp_path, bundle, o1, o2, {"per_label": smoothing, "global": SmoothingConfig(threshold=0.7)})
    assert [lab for _, lab in py_dets["global"]] == ["yes", "up", "yes"]
    assert [lab for _, lab in py_dets["per_label"]] == ["no", "up", "yes", "no"]
    assert c_dets == py_dets["per_label"]


def _detections(tmp_path, bundle, o1, o2, smoothings: dict) -> tuple[list, dict]:
    """(time, label) detections of the C decision (the bundle's smoothing) and of a Python
    Smoother per named config, on int8 stage outputs o1/o2 (scale 1/256, zero point -128)."""
    cfg, labels, labels1 = bundle.config, bundle.labels, bundle.stage1.labels
    out = int8_tensor(1 / 256, -128)
    frames = cfg.num_frames + bundle.inference_stride_frames * np.arange(len(o1))
    stdin = "".join(f"{f} {' '.join(map(str, a))} {' '.join(map(str, b))}\n" for f, a, b in zip(frames, o1, o2))
    lines = subprocess.run([build(tmp_path, DECISION_MAIN, ["kws_decision.c"])], input=stdin, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    c_dets = [(float(x[5]), labels[int(x[2])]) for x in map(str.split, lines) if x[4] == "1"]
    py = {name: Smoother(sm, labels) for name, sm in smoothings.items()}
    py_dets = {name: [] for name in py}
    for frame, a, b in zip(frames, o1, o2):
        t = ((frame - 1) * cfg.stride_samples + cfg.window_samples) / cfg.sample_rate
        p1 = out.dequantize(np.int8(a))
        opened = gate_open(float(p1[labels1.index("keyword")]), bundle.tau)
        post = step_posterior(p1, out.dequantize(np.int8(b)) if opened else None, labels1, labels)
        for name, smoother in py.items():
            det = smoother.update(t, post)[0]
            py_dets[name] += [(det.t, det.label)] if det else []
    return c_dets, py_dets


@needs_gcc
def test_c_one_word_fires_once_like_python(tmp_path):
    """A word held for 2.5 s fired again after every suppression time before the re-arming
    rule (a double trigger); now once, in C as in Python. Another keyword right after it
    still fires once the suppression time passed, and the same word spoken again after a
    pause fires again."""
    smoothing = SmoothingConfig(threshold=0.7, suppression_ms=750.0)
    bundle = synthetic_export(tmp_path, FeatureConfig(), smoothing=smoothing)
    labels = bundle.labels
    header_text = (tmp_path / header.HEADER).read_text()
    assert "#define KWS_LABEL_RELEASE_INIT {0.35, 0.35, 0.35, 0.35, 0.35}" in header_text
    o1, o2 = [], []
    for word, steps, pause in (("yes", 25, 0), ("no", 8, 25), ("yes", 8, 25)):  # 100-ms steps
        row = [-128] * len(labels)
        row[labels.index(word)] = 127
        o1 += [[-128, -128, 127]] * steps + [[102, -102, -128]] * pause
        o2 += [row] * steps + [[0] * len(labels)] * pause
    c_dets, py_dets = _detections(tmp_path, bundle, o1, o2, {"rearm": smoothing})
    assert [lab for _, lab in py_dets["rearm"]] == ["yes", "no", "yes"]  # before: yes yes yes no yes
    assert c_dets == py_dets["rearm"]
    assert py_dets["rearm"][1][0] <= 1.0 + 2.5 + 0.5  # "no" right after "yes": not held back by its latch


@needs_gcc
def test_header_compiles_in_the_chosen_operating_point(tmp_path):
    """kws export --sensitivity high: the header carries high's thresholds, its name as
    KWS_OPERATING_POINT and its measured figures as a comment; C reads the same table."""
    measured = Measured(keywords=200, hits=196, false_accepts=9, hours=1.5)
    points = {"high": OperatingPoint(name="high", threshold=0.6, label_thresholds=(("yes", 0.8),), measured=measured),
              "balanced": OperatingPoint(name="balanced", threshold=0.7), "low": OperatingPoint(name="low", threshold=0.9)}
    bundle = synthetic_export(tmp_path, FeatureConfig(), points=points, sensitivity="high")
    text = (tmp_path / header.HEADER).read_text()
    assert '#define KWS_OPERATING_POINT "high"' in text and "operating point high of high, balanced, low" in text
    assert "hit rate 0.9800 (196/200), 9 false accepts in 1.500 h = 6.00/h" in text
    assert "(exact Poisson 95 % interval 2.74-11.39/h)" in text
    src = ('#include <stdio.h>\n#include "kws_cascade_config.h"\nstatic const double v[] = KWS_LABEL_THRESHOLD_INIT;\n'
           'int main(void) { unsigned i; printf("%s\\n", KWS_OPERATING_POINT); for (i = 0; i < KWS_NUM_LABELS; ++i) '
           'printf("%a\\n", v[i]); return 0; }\n')
    out = subprocess.run([build(tmp_path, src, [])], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "high" and [float.fromhex(x) for x in out[1:]] == [0.6, 0.6, 0.8, 0.6, 0.6]
    assert bundle.smoothing.threshold_for("yes") == 0.8


@needs_gcc
def test_c_step_schedule(tmp_path):
    bundle = synthetic_export(tmp_path, FeatureConfig(), stride_ms=60.0)
    exe = build(tmp_path, DECISION_MAIN, ["kws_decision.c"])
    frames = np.arange(1, 120)
    zeros = " ".join(["0"] * (len(bundle.stage1.labels) + len(bundle.labels)))
    lines = subprocess.run([exe], input="".join(f"{f} {zeros}\n" for f in frames), capture_output=True, text=True,
                           check=True).stdout.splitlines()
    due = [int(line.split()[0]) for line in lines]
    t = bundle.config.num_frames
    assert due == [int(f >= t and (f - t) % 3 == 0) for f in frames]


@needs_gcc
def test_c_rounding_equals_the_python_twin(tmp_path):
    values = np.float32([0.5, -0.5, 1.5, -1.5, 2.5, 0.49999997, -0.49999997, 126.5, -127.5, 8388607.5, 1e-30, 0.0])
    synthetic_export(tmp_path, FeatureConfig())
    src = ('#include <stdio.h>\n#include "kws_frontend.h"\nstatic const float v[] = {'
           + ", ".join(c_float(x) for x in values) + "};\nint main(void) { unsigned i; for (i = 0; i < sizeof v / "
           'sizeof v[0]; ++i) printf("%ld\\n", (long)kws_round_half_away(v[i])); return 0; }\n')
    out = subprocess.run([build(tmp_path, src, ["kws_frontend.c"])], capture_output=True, text=True, check=True)
    t = np.trunc(values.astype(np.float64))
    expected = t + (values - t >= 0.5) - (values - t <= -0.5)
    assert [int(x) for x in out.stdout.split()] == expected.astype(int).tolist() == [
        1, -1, 2, -2, 3, 0, 0, 127, -128, 8388608, 0, 0]


def test_header_compiles_in_the_chosen_points_gate_tau(tmp_path):
    """A point calibrated with its own gate tau takes it into the firmware: KWS_GATE_TAU and its
    int8 form are the exported point's, not the default's."""
    points = {"balanced": OperatingPoint(name="balanced", threshold=0.7, tau=0.4),
              "low": OperatingPoint(name="low", threshold=0.9, tau=0.75)}
    for name, tau in (("balanced", 0.4), ("low", 0.75)):
        folder = tmp_path / name
        folder.mkdir()
        bundle = synthetic_export(folder, FeatureConfig(), tau=0.3, points=points, sensitivity=name)
        text = (folder / header.HEADER).read_text()
        assert bundle.tau == tau
        assert f"#define KWS_GATE_TAU {header.c_double(tau)}" in text
        assert f"#define KWS_GATE_TAU_Q {header.gate_threshold_q(tau, int8_tensor(1 / 256, -128))}" in text
