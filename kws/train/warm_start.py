"""Warm start from the MLPerf Tiny reference DS-CNN's weights: ``kws train --init-from TEACHER``.

Trained from scratch, a student knows the ~80 speakers of its training clips; the reference
model heard ~2,600. It cannot be used as it is (its front end divides each clip by its peak, which
a stream cannot do, and its features are in natural-log units), but with our front end set to its
recipe (``spectrum = "magnitude"``, ``mel_bank = "tensorflow"``: samples/features/mlperf.toml) and
``ds_cnn`` with ``level`` (the loudness removed inside the model) our features differ from its
inputs by one affine map per coefficient. The map is fitted on the run's training clips and
becomes the model's input map (behind the run's own normalisation); the weights are copied, batch
norms set to the statistics of their inputs on those clips (so training mode starts from the same
function), and the classifier rows follow the run's labels: labels the reference does not know
start from a fresh init.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cascade.runtime.bundle import SAMPLES
from cascade.runtime.model_dir import TRAIN_CONFIG
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, ModelError
from data_prep.normalize import FeatureStats
from kws.train import teacher_mlperf as reference

# The reference's front end in our FeatureConfig terms (teachers/mlperf_tiny_ds_cnn/README.md),
# also written out for --config; the reference itself ships in samples/ (Apache-2.0).
REFERENCE_FEATURES = FeatureConfig(spectrum="magnitude", mel_bank="tensorflow")
REFERENCE_CONFIG = SAMPLES / "features" / "mlperf.toml"
SHIPPED_REFERENCE = SAMPLES / "teachers" / "mlperf_tiny_ds_cnn"
LEARNING_RATE = 0.001  # fine-tuning from the reference: a third of training's default, so the start is kept
REFERENCE_ARCH = "ds_cnn"
_WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
FIT_CLIPS = 4000  # clips the map and the batch-norm statistics are measured on (plenty: 2 x 10^5 frames)


def is_reference(path: Path) -> bool:
    """A folder (or file) holding the reference .tflite rather than a trained kws model dir."""
    return reference.model_file(Path(path)) is not None and not (Path(path) / TRAIN_CONFIG).exists()


def check_compatible(stage: int, arch: str, params: dict, features: FeatureConfig, source: Path) -> None:
    """Refuse, in one line naming what to change, a run the reference weights cannot start."""
    from kws.train.models import arch_params  # lazy: the model zoo imports Keras (seconds)

    defaults = arch_params(REFERENCE_ARCH) if arch == REFERENCE_ARCH else {}
    shape_params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()
                    if k not in ("dropout", "weight_decay", "level")}  # JSON gives lists for tuples
    if stage != 2 or arch != REFERENCE_ARCH or any(defaults.get(k) != v for k, v in shape_params.items()):
        raise ConfigError(f"{source}: a warm start from the MLPerf reference needs --stage 2 --arch ds_cnn at its "
                          f"default shape (got stage {stage}, {arch} {shape_params or ''})".rstrip())
    if not params.get("level"):
        raise ConfigError(f"{source}: a warm start from the MLPerf reference needs --arch-params '{{\"level\": true}}' "
                          "(the loudness removed in the model, as its front end does per clip)")
    if features != REFERENCE_FEATURES:
        diff = [f"{f.name}={getattr(features, f.name)!r} (needs {getattr(REFERENCE_FEATURES, f.name)!r})"
                for f in dataclasses.fields(features) if getattr(features, f.name) != getattr(REFERENCE_FEATURES, f.name)]
        raise ConfigError(f"{source}: a warm start from the MLPerf reference needs its front end "
                          f"(--config samples/features/mlperf.toml): {', '.join(diff)}")


def reference_layers(source: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(op, kernel, bias) of each weighted op of the float reference, in graph order, with its
    weight-only int8 kernels dequantized (per output channel)."""
    from ai_edge_litert import interpreter as litert  # lazy: only a warm start reads a .tflite here

    path = reference.model_file(Path(source))
    if path is None or path.name != reference.MODEL_FILES[0]:
        raise ModelError(f"{source}: a warm start needs the float reference {reference.MODEL_FILES[0]}")
    interpreter = litert.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}

    def value(index: int) -> np.ndarray:
        v = interpreter.get_tensor(index).astype(np.float32)
        q = details[index]["quantization_parameters"]
        if details[index]["dtype"] == np.int8:
            shape = [1] * v.ndim
            shape[q["quantized_dimension"]] = -1
            v = (v - q["zero_points"].reshape(shape)) * q["scales"].reshape(shape).astype(np.float32)
        return v

    ops = [op for op in interpreter._get_ops_details() if op["op_name"] in _WEIGHTED_OPS]
    return [(op["op_name"], value(op["inputs"][1]), value(op["inputs"][2])) for op in ops]


@dataclasses.dataclass(frozen=True)
class Bridge:
    """Our features -> the reference's inputs, per coefficient k: the run's own normalisation
    ``stats`` (so the int8 input keeps one scale for every coefficient), then
    ``scale[k] * normalised + offset[k]`` (the model's input map), c0 after the level layer."""

    stats: FeatureStats
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    fit_r2: tuple[float, ...]


def fit_bridge(ours: np.ndarray, theirs: np.ndarray) -> Bridge:
    """Least squares per coefficient on (N, T, n) features of the same clips. c0 is fitted after
    removing each clip's loudest frame (what the level layer does), so its mean does not matter."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    stats = FeatureStats.measure(ours)
    x = ours.copy()
    x[..., 0] -= x[..., 0].max(axis=1, keepdims=True)
    x, y = x.reshape(-1, x.shape[-1]), theirs.reshape(-1, theirs.shape[-1])
    scale, offset, r2 = [], [], []
    for k in range(x.shape[1]):
        (a, b), *_ = np.linalg.lstsq(np.c_[x[:, k], np.ones(len(x))], y[:, k], rcond=None)
        if not a > 0:
            raise ModelError(f"features do not follow the reference's (coefficient {k}: slope {a:.3g})")
        r2.append(float(1.0 - np.var(y[:, k] - (a * x[:, k] + b)) / max(np.var(y[:, k]), 1e-12)))
        # normalised n = (f - mean) / std; c0 after the level layer: (f0 - max f0) / std0
        scale.append(float(a * stats.std[k]))
        offset.append(float(b if k == 0 else a * stats.mean[k] + b))
    return Bridge(stats, tuple(scale), tuple(offset), tuple(r2))


def measure_bridge(clips: np.ndarray, ours: np.ndarray) -> Bridge:
    """The map fitted on the training ``clips`` that have a positive sample (the reference
    divides by the peak, so digital silence has no reference features); ``ours``: their MFCC
    under the run's front end, which the caller keeps for the batch-norm statistics."""
    clips = np.asarray(clips, np.float32)
    sound = clips.max(axis=1) > 0
    if not sound.any():
        raise ModelError("no training clip with sound to fit the warm start on")
    return fit_bridge(np.asarray(ours)[sound], reference.features(clips[sound], reference.MlperfFrontEnd()))


def load_reference(model, source: Path, labels: Sequence[str], bridge: Bridge, normalised: np.ndarray) -> None:
    """Copy the reference weights into ``model`` (a ``ds_cnn`` with ``level``); ``normalised``:
    training features under ``bridge.stats`` for the batch-norm statistics."""
    import keras  # lazy: Keras costs seconds to import; only training gets here

    from kws.train.models import INPUT_MAP_LAYER, LEVEL_LAYER  # lazy: the model zoo imports Keras (seconds)

    weighted = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                and l.name not in (LEVEL_LAYER, INPUT_MAP_LAYER)]
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    layers = reference_layers(source)
    if len(layers) != len(weighted) or len(norms) != len(weighted) - 1:
        raise ModelError(f"{source}: {len(layers)} weighted layers, the model has {len(weighted)}")
    for layer, (_, kernel, bias) in zip(weighted[:-1], layers[:-1]):
        layer.set_weights([np.transpose(kernel, (1, 2, 3, 0))])  # (out|1, h, w, in|ch) -> (h, w, in|ch, out|1)
    dense_kernel, dense_bias = weighted[-1].get_weights()
    for row, name in enumerate(labels):
        if name in reference.LABELS:
            j = reference.LABELS.index(name)
            dense_kernel[0, 0, :, row], dense_bias[row] = layers[-1][1][j], layers[-1][2][j]
    weighted[-1].set_weights([dense_kernel, dense_bias])
    model.get_layer(INPUT_MAP_LAYER).set_weights([np.diag(np.asarray(bridge.scale, np.float32))[None],
                                                  np.asarray(bridge.offset, np.float32)])
    # Folded biases go into the batch norms; each is set to its input's statistics first so that
    # training mode (batch statistics) starts from the reference's function too.
    for norm, (_, _, bias) in zip(norms, layers):
        norm.set_weights([np.ones_like(bias), bias, np.zeros_like(bias), np.full_like(bias, 1.0 - norm.epsilon)])
    probe = keras.Model(model.input, [n.input for n in norms])
    for norm, z, (_, _, bias) in zip(norms, probe.predict(normalised[: FIT_CLIPS], batch_size=256, verbose=0), layers):
        mu, var = z.mean(axis=(0, 1, 2)), z.var(axis=(0, 1, 2))
        norm.set_weights([np.sqrt(var + norm.epsilon), bias + mu, mu, var])
