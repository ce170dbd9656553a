"""Running a cascade bundle: on clips (batch evaluation) and on a stream (detect, live).

Both drivers use the same pieces: each stage's normalisation and int8 model
(``TFLiteModel``, reference kernels = what TFLite Micro computes), the gate, and the
decision code in ``cascade.runtime.decision``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from cascade.runtime.bundle import Bundle
from cascade.runtime.decision import Detection, Smoother, SmoothingConfig, clip_predictions, step_posterior
from cascade.runtime.digital_silence import silent_output, silent_windows
from cascade.runtime.gate import gate_open
from cascade.runtime.int8_model import TFLiteModel
from cascade.runtime.model_dir import ModelDir
from cascade.runtime.stages import KEYWORD
from data_prep.streaming import StreamingFrontend


class StageRunner:
    """One stage: raw MFCC -> its normalisation -> int8 model -> float probabilities."""

    def __init__(self, model: ModelDir, workers: int = 1) -> None:
        self.model = model
        self.tflite = TFLiteModel(model.int8_path)
        self.workers = workers
        self.invocations = 0

    def __call__(self, features: np.ndarray) -> np.ndarray:
        batch = features if features.ndim == 3 else features[None]
        self.invocations += len(batch)
        return self.tflite.predict(self.model.inputs(batch), workers=self.workers)

    def silent_raw(self) -> np.ndarray:
        """The int8 output taken for a digitally silent window (``digital_silence``), as the
        firmware's constant: the stage does not run there."""
        return self.tflite.output.quantize(silent_output(self.model.labels))

    def raw(self, features: np.ndarray) -> np.ndarray:
        """The int8 outputs (N, classes) themselves, as firmware sees them: what ``__call__``
        dequantizes. A stream step keeps them so golden vectors replay exactly these."""
        batch = features if features.ndim == 3 else features[None]
        self.invocations += len(batch)
        return self.tflite.invoke_int8(self.tflite.quantize_input(self.model.inputs(batch)))


class Cascade:
    def __init__(self, bundle: Bundle, workers: int = 1) -> None:
        self.bundle = bundle
        self.stage1 = StageRunner(bundle.stage1, workers)
        self.stage2 = StageRunner(bundle.stage2, workers)
        self.keyword_index = bundle.stage1.labels.index(KEYWORD)

    def classify_clips(self, features: np.ndarray, stage2_all: np.ndarray | None = None,
                       thresholds: SmoothingConfig | None = None) -> dict[str, np.ndarray]:
        """Per clip: stage-1 probabilities, gate, stage-2 probabilities (only where the gate
        opened, NaN elsewhere) and the cascade's predicted label index. ``stage2_all``: stage 2
        already run on every clip (an evaluation comparing with stage 2 alone), reused as is.
        ``thresholds``: an operating point's, applied as ``decision.clip_label`` says (None:
        the argmax, the classifier's own accuracy)."""
        silent = silent_windows(features, self.bundle.config)
        p1 = np.empty((len(features), len(self.bundle.stage1.labels)), np.float32)
        p1[silent] = self.stage1.tflite.dequantize_output(self.stage1.silent_raw())
        if not silent.all():
            p1[~silent] = self.stage1(features[~silent])
        opened = gate_open(p1[:, self.keyword_index], self.bundle.tau)
        p2 = np.full((len(features), len(self.bundle.labels)), np.nan, dtype=np.float32)
        if opened.any():
            p2[opened] = self.stage2(features[opened]) if stage2_all is None else stage2_all[opened]
        preds = clip_predictions(p1, p2, opened, self.bundle.stage1.labels, self.bundle.labels, thresholds)
        return {"p1": p1, "opened": opened, "p2": p2, "predictions": preds}

    def stage2_only(self, features: np.ndarray) -> np.ndarray:
        return self.stage2(features)


@dataclasses.dataclass(frozen=True)
class Step:
    """What happened at one inference stride of a stream."""

    t: float  # end of the analysed window, seconds from stream start
    p_keyword: float
    opened: bool
    label: str  # current smoothed top label
    score: float
    detection: Detection | None
    latency_ms: float  # host time to run the stage(s) for this step
    posterior: np.ndarray  # the step's posterior over the stage-2 labels (input of smoothing)
    frame: int  # frames emitted by the frontend when the step ran (its window ends there)
    stage1_raw: np.ndarray  # (stage-1 labels,) int8 output of stage 1
    stage2_raw: np.ndarray | None  # (labels,) int8 output of stage 2, None when the gate stayed closed
    p_stage1: np.ndarray  # (stage-1 labels,) stage 1's probabilities (stage1_raw dequantized)
    silent: bool = False  # the window was digital silence: neither stage ran (digital_silence.py)


def step_frames(emitted: int, new: int, num_frames: int, every: int) -> list[int]:
    """The frame counts among ``emitted + 1 .. emitted + new`` at which a stream runs a step:
    once the first full window of ``num_frames`` is in, then every ``every`` frames. The one
    schedule of the streaming cascade, of the firmware and of ``cascade search``'s windows."""
    first = max(emitted + 1, num_frames)
    first += (-(first - num_frames)) % every
    return list(range(first, emitted + new + 1, every))


class StreamingCascade:
    """Audio chunks in, one Step per inference stride out (after the first full window)."""

    def __init__(self, bundle: Bundle, cascade: Cascade | None = None) -> None:
        self.bundle = bundle
        self.cascade = cascade or Cascade(bundle)
        self.frontend = StreamingFrontend(bundle.config)
        self.smoother = Smoother(bundle.smoothing, bundle.labels)
        self.steps_run = 0
        self.stage2_runs = 0

    def reset(self) -> None:
        self.frontend.reset()
        self.smoother.reset()
        self.steps_run = self.stage2_runs = 0

    def push(self, samples: np.ndarray) -> list[Step]:
        cfg, every = self.bundle.config, self.bundle.inference_stride_frames
        before, history = self.frontend.frames_emitted, self.frontend.window
        rows = self.frontend.push(samples)
        # One push may complete several strides: the window of row k is the T rows ending there.
        full = np.concatenate([history, rows])
        t = cfg.num_frames
        steps = []
        for frame in step_frames(before, len(rows), t, every):
            end = len(history) + frame - before
            t_end = ((frame - 1) * cfg.stride_samples + cfg.window_samples) / cfg.sample_rate
            steps.append(self._step(full[end - t : end], t_end, frame))
        return steps

    def _step(self, window: np.ndarray, t_end: float, frame: int) -> Step:
        start = time.perf_counter()
        s1, s2 = self.cascade.stage1, self.cascade.stage2
        silent = bool(silent_windows(window[None], self.bundle.config)[0])
        raw1 = s1.silent_raw() if silent else s1.raw(window)[0]
        p1 = s1.tflite.dequantize_output(raw1)
        p_kw = float(p1[self.cascade.keyword_index])
        opened = bool(gate_open(p_kw, self.bundle.tau))
        raw2 = s2.raw(window)[0] if opened else None
        p2 = s2.tflite.dequantize_output(raw2) if raw2 is not None else None
        self.steps_run += 1
        self.stage2_runs += int(opened)
        posterior = step_posterior(p1, p2, self.bundle.stage1.labels, self.bundle.labels)
        detection, label, score = self.smoother.update(t_end, posterior)
        latency = (time.perf_counter() - start) * 1000.0
        return Step(t_end, p_kw, opened, label, score, detection, latency, posterior, frame, raw1, raw2, p1, silent)
