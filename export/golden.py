"""Golden vectors for the firmware's own tests: real clips and what Python computes from them.

Clips: two keywords, one other word (``_unknown_``) and one second of background noise
(``_silence_``) from a Speech Commands folder, as int16 (the device's PCM). For each: the
float MFCC of ``data_prep.features.mfcc`` on int16/32768, each stage's int8 input exactly as
the bundle runtime makes it (``ModelDir.inputs`` then ``TFLiteModel.quantize_input``) and
each stage's int8 output from the reference kernels (= TFLite Micro, checked at export).
A stream of the clips back to back is run through the real ``StreamingCascade``, recording
every step's raw stage outputs and decision, so the C decision logic can replay it. Written
as ``kws_golden.h`` plus ``.npy`` files and ``golden.json``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.pipeline import StreamingCascade
from data_prep.atomic import save_npy_atomic, write_text_atomic
from data_prep.audio import load_audio, load_clip, write_wav
from data_prep.errors import DatasetError
from data_prep.features import mfcc
from data_prep.labels import RESERVED, SILENCE, UNKNOWN
from data_prep.speech_commands import BACKGROUND_NOISE_DIR
from export.c_array import c_float, c_initializer, c_string
from export.header import gate_table

GOLDEN_HEADER = "kws_golden.h"
NOISE_GAIN = 0.5  # silence clips are background noise at a reduced volume, as in training
STEP_ARRAYS = ("step_frame", "step_stage1", "step_silent", "step_open", "step_stage2", "step_label", "step_score",
               "step_detected")


@dataclasses.dataclass(frozen=True)
class Clip:
    name: str
    label: str
    source: str
    samples: np.ndarray  # (L,) int16


@dataclasses.dataclass(frozen=True)
class Golden:
    clips: tuple[Clip, ...]
    arrays: dict[str, np.ndarray]  # samples, mfcc, stage{1,2}_input, stage{1,2}_output: (N, ...)
    gate: np.ndarray  # (256,) bool: Python's gate for stage-1 keyword output q = -128..127
    steps: dict[str, np.ndarray]  # STEP_ARRAYS, each (S, ...)


def to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 PCM -> float32 in [-1, 1), as soundfile reads a 16-bit WAV (exact)."""
    return (np.asarray(samples, np.float32) / np.float32(32768.0)).astype(np.float32)


def _first_wav(folder: Path) -> Path | None:
    wavs = sorted(folder.glob("*.wav")) if folder.is_dir() else []
    return wavs[0] if wavs else None


def pick_clips(data: Path, bundle: Bundle) -> tuple[Clip, ...]:
    """2 keywords, 1 other word, 1 s of background noise (first files in name order), 1 s of zeros."""
    cfg, data = bundle.config, Path(data)
    if not data.is_dir():
        raise DatasetError(f"{data}: golden data folder not found")
    picks: list[tuple[str, Path]] = []
    keywords = [w for w in bundle.labels if w not in RESERVED]
    picks += [(w, p) for w in keywords if (p := _first_wav(data / w))][:2]
    others = sorted(d.name for d in data.iterdir() if d.is_dir() and not d.name.startswith("_") and d.name not in keywords)
    picks += [(UNKNOWN, p) for w in others if (p := _first_wav(data / w))][:1]
    clips = [Clip(f"{label if label != UNKNOWN else 'unknown'}_{p.parent.name}", label, str(p.relative_to(data)),
                  to_int16(load_clip(p, cfg))) for label, p in picks]
    noise = _first_wav(data / BACKGROUND_NOISE_DIR)
    if noise is not None:
        audio = load_audio(noise, cfg.sample_rate)
        if len(audio) >= cfg.clip_samples:
            start = (len(audio) - cfg.clip_samples) // 2
            segment = audio[start : start + cfg.clip_samples] * np.float32(NOISE_GAIN)
            clips.append(Clip(f"silence_{noise.stem}", SILENCE, f"{noise.relative_to(data)}@{start}", to_int16(segment)))
    if not clips:
        raise DatasetError(f"{data}: no keyword, word or background-noise WAVs for golden vectors")
    # last, so the stream's final window is all zeros: a muted microphone (digital_silence.py)
    clips.append(Clip("silence_digital", SILENCE, "zeros", np.zeros(cfg.clip_samples, np.int16)))
    return tuple(clips)


def record_stream(bundle: Bundle, pcm: np.ndarray) -> dict[str, np.ndarray]:
    """Every step of the streaming cascade on ``pcm`` with the raw stage outputs it used."""

    steps = StreamingCascade(bundle).push(to_float(pcm))
    labels = bundle.labels
    stage1 = np.zeros((len(steps), len(bundle.stage1.labels)), np.int8)
    stage2 = np.zeros((len(steps), len(labels)), np.int8)
    for i, step in enumerate(steps):
        stage1[i] = step.stage1_raw
        if step.stage2_raw is not None:
            stage2[i] = step.stage2_raw
    return {
        "step_frame": np.asarray([s.frame for s in steps], np.uint32),
        "step_stage1": stage1,
        "step_open": np.asarray([s.opened for s in steps], np.uint8),
        "step_silent": np.asarray([s.silent for s in steps], np.uint8),
        "step_stage2": stage2,
        "step_label": np.asarray([labels.index(s.label) for s in steps], np.int16),
        "step_score": np.asarray([s.score for s in steps], np.float32),
        "step_detected": np.asarray([s.detection is not None for s in steps], np.uint8),
    }


def make_golden(bundle: Bundle, clips: tuple[Clip, ...]) -> Golden:
    pcm = np.stack([c.samples for c in clips])
    feats = mfcc(to_float(pcm), bundle.config)
    arrays: dict[str, np.ndarray] = {"samples": pcm, "mfcc": feats}
    for n, stage in ((1, bundle.stage1), (2, bundle.stage2)):
        model = TFLiteModel(stage.int8_path)
        arrays[f"stage{n}_input"] = model.quantize_input(stage.inputs(feats))
        arrays[f"stage{n}_output"] = model.invoke_int8(arrays[f"stage{n}_input"])
    gate = gate_table(bundle.tau, TFLiteModel(bundle.stage1.int8_path).output)
    return Golden(clips, arrays, gate, record_stream(bundle, pcm.reshape(-1)))


def _c_array(ctype: str, name: str, arr: np.ndarray, dims: list[str], per_line: int = 12) -> str:
    fmt = c_float if arr.dtype.kind == "f" else None
    return f"static const {ctype} {name}{''.join(f'[{d}]' for d in dims)} = {c_initializer(arr, fmt, per_line)};\n"


def golden_header(golden: Golden) -> str:
    a, s, n = golden.arrays, golden.steps, len(golden.clips)
    steps = len(s["step_frame"])
    clip_dims, feat_dims = ["KWS_GOLDEN_NUM_CLIPS"], ["KWS_NUM_FRAMES", "KWS_N_MFCC"]
    parts = [
        f"/* {GOLDEN_HEADER} - golden vectors of the kws cascade export (generated by `kws export`).\n"
        " * Clips as int16 PCM, their float MFCC (Python), int8 model inputs (bundle runtime) and outputs\n"
        " * (TFLite reference kernels = TFLite Micro), Python's gate for every int8 stage-1 output, and a\n"
        " * stream of the clips back to back with every cascade step Python took. For tests only: the\n"
        " * arrays are static, include this header in one test file. */\n"
        "#ifndef KWS_GOLDEN_H\n#define KWS_GOLDEN_H\n\n#include <stdint.h>\n\n#include \"kws_cascade_config.h\"\n\n"
        f"#define KWS_GOLDEN_NUM_CLIPS {n}\n#define KWS_GOLDEN_STREAM_STEPS {steps}\n\n",
        "static const char *const kws_golden_clip_names[KWS_GOLDEN_NUM_CLIPS] = {"
        + ", ".join(c_string(c.name) for c in golden.clips) + "};\n",
        "static const char *const kws_golden_clip_labels[KWS_GOLDEN_NUM_CLIPS] = {"
        + ", ".join(c_string(c.label) for c in golden.clips) + "};\n",
        _c_array("int16_t", "kws_golden_samples", a["samples"], clip_dims + ["KWS_CLIP_SAMPLES"], 16),
        _c_array("float", "kws_golden_mfcc", a["mfcc"], clip_dims + feat_dims, 10),
        _c_array("int8_t", "kws_golden_stage1_input", a["stage1_input"], clip_dims + feat_dims, 10),
        _c_array("int8_t", "kws_golden_stage2_input", a["stage2_input"], clip_dims + feat_dims, 10),
        _c_array("int8_t", "kws_golden_stage1_output", a["stage1_output"], clip_dims + ["KWS_STAGE1_NUM_LABELS"]),
        _c_array("int8_t", "kws_golden_stage2_output", a["stage2_output"], clip_dims + ["KWS_NUM_LABELS"]),
        "/* Python's gate for stage-1 keyword output q, at index q + 128 */\n",
        _c_array("uint8_t", "kws_golden_gate", golden.gate.astype(np.uint8), ["256"], 32),
        "/* the stream: per step the frame that completed it, the raw stage outputs (stage 2: zeros when\n"
        " * the gate stayed closed), whether the window was digital silence (stage 1's output then the\n"
        " * constant one), and Python's decision (label index, averaged score, detection) */\n",
    ]
    types = {"step_frame": "uint32_t", "step_stage1": "int8_t", "step_silent": "uint8_t", "step_open": "uint8_t",
             "step_stage2": "int8_t",
             "step_label": "int16_t", "step_score": "float", "step_detected": "uint8_t"}
    extra = {"step_stage1": ["KWS_STAGE1_NUM_LABELS"], "step_stage2": ["KWS_NUM_LABELS"]}
    for key in STEP_ARRAYS:
        dims = ["KWS_GOLDEN_STREAM_STEPS"] + extra.get(key, [])
        arr = s[key] if steps else np.zeros((1,) + s[key].shape[1:], s[key].dtype)  # C has no empty arrays
        if not steps:
            dims[0] = "1"
        parts.append(_c_array(types[key], f"kws_golden_{key}", arr, dims))
    parts.append("\n#endif /* KWS_GOLDEN_H */\n")
    return "".join(parts)


def write_golden(golden: Golden, folder: Path, bundle: Bundle) -> list[Path]:
    """kws_golden.h, one .npy per array, golden.json describing them, and the clips as WAVs."""
    folder = Path(folder)
    written = [write_text_atomic(folder / GOLDEN_HEADER, golden_header(golden))]
    for key, arr in {**golden.arrays, **golden.steps, "gate": golden.gate}.items():
        written.append(save_npy_atomic(folder / f"{key}.npy", arr))
    for clip in golden.clips:
        written.append(write_wav(folder / f"{clip.name}.wav", clip.samples, bundle.config.sample_rate))
    meta = {
        "config_fingerprint": bundle.config.fingerprint(),
        "clips": [{"name": c.name, "label": c.label, "source": c.source, "wav": f"{c.name}.wav"} for c in golden.clips],
        "arrays": {k: {"file": f"{k}.npy", "dtype": str(v.dtype), "shape": list(v.shape)}
                   for k, v in {**golden.arrays, **golden.steps, "gate": golden.gate}.items()},
        "stream": "the clips back to back, in the order above; one step per inference stride",
        "stream_detections": [
            {"step": int(i), "frame": int(golden.steps["step_frame"][i]), "label": bundle.labels[golden.steps["step_label"][i]]}
            for i in np.flatnonzero(golden.steps["step_detected"])
        ],
        "mfcc": "data_prep.features.mfcc(samples / 32768)",
        "inputs": "bundle runtime: TFLiteModel.quantize_input(ModelDir.inputs(mfcc)) (numpy round half to even)",
        "outputs": "TFLite reference kernels (BUILTIN_REF), equal to TFLite Micro",
    }
    written.append(write_text_atomic(folder / "golden.json", json.dumps(meta, indent=2) + "\n"))
    return written
