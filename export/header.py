"""``kws_cascade_config.h``: every constant the firmware needs, written from the bundle.

The feature config, labels, each stage's tensor scales and zero points, its normalisation and
the folded int8 input quantization, the gate threshold (as a probability and as the int8
value the firmware compares against), the inference stride, smoothing (with each label's
threshold), measured tensor arenas, the config fingerprint and the kws version. Nothing in
the C templates repeats any of these numbers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from cascade.runtime.bundle import Bundle, kws_version
from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.digital_silence import silent_c0, silent_output
from cascade.runtime.gate import gate_open
from cascade.runtime.int8_model import TensorInfo
from cascade.runtime.stages import KEYWORD
from data_prep.errors import ModelError
from data_prep.labels import RESERVED, SILENCE, UNKNOWN
from data_prep.normalize import FeatureStats
from export.c_array import c_double, c_float, c_initializer, c_string

ARENA_MARGIN = 0.10  # headroom over the measured arena: other TFLM builds and kernels differ
ARENA_ALIGN = 16
HEADER = "kws_cascade_config.h"
INT8_VALUES = np.arange(-128, 128, dtype=np.int32)


def arena_with_margin(measured: int, margin: float = ARENA_MARGIN) -> int:
    """Measured arena + margin, rounded up to 16 bytes (the arena's alignment)."""
    return int(math.ceil(measured * (1.0 + margin) / ARENA_ALIGN)) * ARENA_ALIGN


@dataclasses.dataclass(frozen=True)
class StageFacts:
    """What the export knows about one stage's int8 model."""

    stage: int
    labels: tuple[str, ...]
    stats: FeatureStats
    input: TensorInfo
    output: TensorInfo
    model_bytes: int
    arena_measured: int
    ops: tuple[str, ...]

    @property
    def arena_size(self) -> int:
        return arena_with_margin(self.arena_measured)


def gate_table(tau: float, output: TensorInfo) -> np.ndarray:
    """Python's gate decision for every int8 stage-1 keyword output, exactly as the streaming
    cascade takes it: the output dequantized (float32) and compared with tau (float64)."""
    probs = output.dequantize(INT8_VALUES.astype(np.int8))
    return np.array([bool(gate_open(float(p), tau)) for p in probs])


def gate_threshold_q(tau: float, output: TensorInfo) -> int:
    """The smallest int8 q whose dequantized value passes the gate (128: never opens), checked
    to reproduce the float gate on all 256 values."""
    opened = gate_table(tau, output)
    q_tau = int(INT8_VALUES[opened][0]) if opened.any() else 128
    if not np.array_equal(opened, INT8_VALUES >= q_tau):
        raise ModelError(f"stage-1 output scale {output.scale} gives a non-monotonic gate; cannot export it")
    return q_tau


def fold_quantization(stats: FeatureStats, tensor: TensorInfo) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation and input quantization as one affine map per coefficient:
    q = round(x * a + b) with a = 1/(std*scale), b = zp - mean/(std*scale) (float32)."""
    std, mean = np.asarray(stats.std, np.float64), np.asarray(stats.mean, np.float64)
    a = 1.0 / (std * tensor.scale)
    b = tensor.zero_point - mean * a
    return a.astype(np.float32), b.astype(np.float32)


def _index(labels: tuple[str, ...], name: str) -> int:
    return labels.index(name) if name in labels else -1


def _define(name: str, value: str, comment: str = "") -> str:
    return f"#define {name} {value}" + (f"  /* {comment} */" if comment else "")


def label_thresholds_init(smoothing: SmoothingConfig, labels: tuple[str, ...]) -> str:
    """``{...}`` of the bar each label's smoothed score must reach, in label order, as double
    literals equal to ``smoothing.threshold_for(label)`` (background labels: the default,
    never used since they are never reported)."""
    values = [smoothing.threshold_for(label) for label in labels]
    return c_initializer(np.float64(values), fmt=c_double, per_line=8).replace("\n", " \\\n    ")


def label_releases_init(smoothing: SmoothingConfig, labels: tuple[str, ...]) -> str:
    """``{...}`` of each label's release level (``smoothing.release_levels``) as double literals."""
    return c_initializer(smoothing.release_levels(labels), fmt=c_double, per_line=8).replace("\n", " \\\n    ")


def _operating_point_block(bundle: Bundle) -> list[str]:
    """Which named point's thresholds are compiled in, and what it measured (comments)."""
    point = bundle.operating_point
    m = point.measured
    figures = (" * not measured on validation streams" if m is None else
               f" * validation: hit rate {m.hit_rate:.4f} ({m.hits}/{m.keywords}), {m.false_accepts} false accepts in "
               f"{m.hours:.3f} h = {m.false_accepts_per_hour:.2f}/h\n * (exact Poisson 95 % interval "
               f"{m.false_accepts_per_hour_ci95[0]:.2f}-{m.false_accepts_per_hour_ci95[1]:.2f}/h)")
    if point.clean is not None:
        figures += (f"\n * clean near-mic keywords: hit rate {point.clean.hit_rate:.4f} "
                    f"({point.clean.hits}/{point.clean.keywords})")
    return [f"/* operating point {point.name} of {', '.join(bundle.operating_points)} (kws export --sensitivity):",
            *figures.split("\n"), " */", _define("KWS_OPERATING_POINT", c_string(point.name))]


def _stage_block(facts: StageFacts) -> list[str]:
    p = f"KWS_STAGE{facts.stage}"
    a, b = fold_quantization(facts.stats, facts.input)
    return [
        f"/* ---- stage {facts.stage}: {len(facts.labels)} outputs, ops {', '.join(facts.ops)} ---- */",
        _define(f"{p}_MODEL_BYTES", str(facts.model_bytes), "flash of the .tflite array"),
        _define(f"{p}_INPUT_SCALE", c_float(facts.input.scale)),
        _define(f"{p}_INPUT_ZERO_POINT", str(facts.input.zero_point)),
        _define(f"{p}_OUTPUT_SCALE", c_float(facts.output.scale)),
        _define(f"{p}_OUTPUT_ZERO_POINT", str(facts.output.zero_point)),
        "/* normalisation applied before quantization: x' = (mfcc - mean) / std */",
        _define(f"{p}_NORM_MEAN_INIT", c_initializer(np.float32(facts.stats.mean), per_line=5).replace("\n", " \\\n    ")),
        _define(f"{p}_NORM_STD_INIT", c_initializer(np.float32(facts.stats.std), per_line=5).replace("\n", " \\\n    ")),
        "/* folded: q = clamp(round_half_away(mfcc * A + B), -128, 127) */",
        _define(f"{p}_QUANT_A_INIT", c_initializer(a, per_line=5).replace("\n", " \\\n    ")),
        _define(f"{p}_QUANT_B_INIT", c_initializer(b, per_line=5).replace("\n", " \\\n    ")),
        _define(f"{p}_ARENA_MEASURED", str(facts.arena_measured), "smallest arena TFLite Micro (host build) ran in"),
        _define(f"{p}_ARENA_SIZE", str(facts.arena_size),
                f"measured + {ARENA_MARGIN:.0%}, rounded up to {ARENA_ALIGN} bytes"),
        "",
    ]


def cascade_config_header(bundle: Bundle, stage1: StageFacts, stage2: StageFacts) -> str:
    cfg, smooth = bundle.config, bundle.smoothing
    labels, labels1 = bundle.labels, bundle.stage1.labels
    q_tau = gate_threshold_q(bundle.tau, stage1.output)
    capacity = int(math.floor(smooth.window_ms / bundle.inference_stride_ms)) + 2
    strings = lambda names: "{" + ", ".join(c_string(n) for n in names) + "}"  # noqa: E731
    lines = [
        f"/* {HEADER} - constants of the kws cascade bundle {bundle.path.name!s}, generated by `kws export`.",
        " *",
        " * Every number the frontend, the decision logic and the TFLite Micro driver use comes from",
        " * here; regenerate the export rather than editing it. */",
        "#ifndef KWS_CASCADE_CONFIG_H",
        "#define KWS_CASCADE_CONFIG_H",
        "",
        _define("KWS_VERSION", c_string(kws_version()), "kws that wrote this export"),
        _define("KWS_CONFIG_FINGERPRINT", c_string(cfg.fingerprint()), "FeatureConfig.fingerprint()"),
        "",
        "/* ---- FeatureConfig ---- */",
        _define("KWS_SAMPLE_RATE", str(cfg.sample_rate), "Hz"),
        _define("KWS_CLIP_MS", c_double(cfg.clip_ms)),
        _define("KWS_CLIP_SAMPLES", str(cfg.clip_samples)),
        _define("KWS_WINDOW_MS", c_double(cfg.window_ms)),
        _define("KWS_WINDOW_SAMPLES", str(cfg.window_samples), "frame length l"),
        _define("KWS_STRIDE_MS", c_double(cfg.stride_ms)),
        _define("KWS_STRIDE_SAMPLES", str(cfg.stride_samples), "frame stride s"),
        _define("KWS_N_FFT", str(cfg.n_fft)),
        _define("KWS_N_BINS", str(cfg.n_bins), "n_fft / 2 + 1"),
        _define("KWS_WINDOW_FUNCTION", c_string(cfg.window), "tabulated in kws_frontend_tables.h"),
        _define("KWS_SPECTRUM_MAGNITUDE", str(int(cfg.spectrum == "magnitude")), "1: |X|, 0: |X|^2 under the mel filters"),
        _define("KWS_MEL_BANK", c_string(cfg.mel_bank), "filterbank recipe, tabulated in kws_frontend_tables.h"),
        _define("KWS_N_MELS", str(cfg.n_mels)),
        _define("KWS_FMIN", c_float(cfg.fmin), "Hz"),
        _define("KWS_FMAX", c_float(cfg.fmax), "Hz"),
        _define("KWS_N_MFCC", str(cfg.n_mfcc)),
        _define("KWS_LOG_FLOOR", c_float(cfg.log_floor), "mel energies below are clamped before the log"),
        _define("KWS_NUM_FRAMES", str(cfg.num_frames), "T = (L - l) / s + 1 rows per model input"),
        "",
        "/* ---- labels ---- */",
        _define("KWS_NUM_LABELS", str(len(labels)), "stage 2 = the cascade's labels"),
        _define("KWS_LABELS_INIT", strings(labels)),
        _define("KWS_LABEL_IS_BACKGROUND_INIT", "{" + ", ".join(str(int(n in RESERVED)) for n in labels) + "}"),
        _define("KWS_SILENCE_INDEX", str(_index(labels, SILENCE)), "-1: absent"),
        _define("KWS_UNKNOWN_INDEX", str(_index(labels, UNKNOWN)), "-1: absent"),
        _define("KWS_STAGE1_NUM_LABELS", str(len(labels1))),
        _define("KWS_STAGE1_LABELS_INIT", strings(labels1)),
        _define("KWS_STAGE1_KEYWORD_INDEX", str(labels1.index(KEYWORD))),
        _define("KWS_STAGE1_SILENCE_INDEX", str(_index(labels1, SILENCE))),
        _define("KWS_STAGE1_UNKNOWN_INDEX", str(_index(labels1, UNKNOWN))),
        "",
        *_stage_block(stage1),
        *_stage_block(stage2),
        "/* ---- gate: stage 2 runs when stage 1's keyword probability >= tau ---- */",
        _define("KWS_GATE_TAU", c_double(bundle.tau), "as a probability"),
        _define("KWS_GATE_TAU_Q", str(q_tau),
                "int8: q >= this <=> (q - zp) * scale >= tau, for all 256 q (128: never)"),
        "",
        "/* ---- digital silence (cascade/runtime/digital_silence.py): a window of zeros is silence ---- */",
        _define("KWS_SILENT_C0", c_float(silent_c0(cfg)),
                "a frame whose c0 <= this has every mel band at the log floor (exact zeros)"),
        _define("KWS_STAGE1_SILENT_OUTPUT_INIT",
                c_initializer(stage1.output.quantize(silent_output(labels1)), fmt=str),
                "stage 1's int8 output on a window of such frames: it does not run there"),
        "",
        "/* ---- schedule and smoothing (cascade/decision.py) ---- */",
        _define("KWS_INFERENCE_STRIDE_MS", c_double(bundle.inference_stride_ms)),
        _define("KWS_INFERENCE_STRIDE_FRAMES", str(bundle.inference_stride_frames), "a step every this many frames"),
        *_operating_point_block(bundle),
        _define("KWS_SMOOTHING_WINDOW_MS", c_double(smooth.window_ms)),
        _define("KWS_SMOOTHING_THRESHOLD", c_double(smooth.threshold), "default; per label: KWS_LABEL_THRESHOLD_INIT"),
        _define("KWS_LABEL_THRESHOLD_INIT", label_thresholds_init(smooth, labels),
                "threshold_for(label) per stage-2 label (per-keyword overrides)"),
        _define("KWS_SMOOTHING_RELEASE_RATIO", c_double(smooth.release_ratio), "release level / threshold"),
        _define("KWS_LABEL_RELEASE_INIT", label_releases_init(smooth, labels),
                "a detected label re-arms once its smoothed score < this"),
        _define("KWS_SUPPRESSION_MS", c_double(smooth.suppression_ms)),
        _define("KWS_SMOOTHING_MIN_COUNT", str(smooth.min_count)),
        _define("KWS_SMOOTHING_CAPACITY", str(capacity), "posteriors the window can hold"),
        "",
        "#endif /* KWS_CASCADE_CONFIG_H */",
        "",
    ]
    return "\n".join(lines)
