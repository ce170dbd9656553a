"""A cascade bundle: one directory with both int8 stages and every constant they run with.

    cascade.toml      manifest: feature config fingerprint, labels, gate tau, inference
                      stride, smoothing, named operating points ([operating_points.high|
                      balanced|low], thresholds + measured figures), calibration figures,
                      kws version
    features.toml     the FeatureConfig shared by both stages
    stage1/, stage2/  model directories (labels.txt, normalization.json, model_int8.tflite,
                      features.toml, metrics.json)

Everything that runs a cascade (eval, detect, live, energy, export) opens it through
``Bundle.open``, which refuses a bundle whose files are missing or whose stages disagree,
and checks each int8 model against its labels and the feature config (once, on open).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cascade.runtime.decision import SmoothingConfig
from cascade.runtime.model_dir import FEATURES, LABELS, METRICS, MODEL_INT8, NORMALIZATION, TRAIN_CONFIG, ModelDir
from cascade.runtime.operating_points import DEFAULT_SENSITIVITY, OperatingPoint, read_points
from cascade.runtime.stages import KEYWORD, STAGE1_LABELS
from data_prep.atomic import atomic_dir, write_text_atomic
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError, KwsError, ModelError
from data_prep.toml_io import dumps

MANIFEST = "cascade.toml"
FORMAT = 1
STAGE_FILES = (FEATURES, LABELS, NORMALIZATION, MODEL_INT8)
SAMPLES = Path(__file__).resolve().parents[2] / "samples"  # the repository's shipped models and clips
SHIPPED = SAMPLES / "cascade"


def check_stage_roles(stage1: ModelDir, stage2: ModelDir) -> None:
    """Each model in its slot: the gate (its classes, ``keyword`` among them) first, a
    classifier without ``keyword`` second."""
    if KEYWORD not in stage1.labels or [l for l in STAGE1_LABELS if l in stage1.labels] != list(stage1.labels):
        raise ModelError(f"{stage1.path}: not a stage-1 model (labels {list(stage1.labels)}, expected "
                         f"{KEYWORD!r} and the gate classes {list(STAGE1_LABELS)} in that order)")
    if KEYWORD in stage2.labels:
        raise ModelError(f"{stage2.path}: a stage-1 model in the stage-2 slot (labels {list(stage2.labels)})")


def check_inference_stride(inference_stride_ms: float, config: FeatureConfig, where: object) -> None:
    """A stride a streaming cascade can run: a whole number (>= 1) of feature hops."""
    frames = inference_stride_ms / config.stride_ms
    if not math.isfinite(frames):
        raise ConfigError(f"{where}: inference stride {inference_stride_ms} ms is not a finite number")
    if frames < 1:
        raise ConfigError(f"{where}: inference stride {inference_stride_ms} ms is shorter than the "
                          f"feature stride {config.stride_ms} ms")
    if abs(frames - round(frames)) > 1e-9:
        raise ConfigError(f"{where}: inference stride {inference_stride_ms} ms is not a multiple of the "
                          f"feature stride {config.stride_ms} ms")


def is_bundle(path: Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def default_bundle() -> Path:
    """The cascade shipped in samples/cascade: the default --model of every cascade command
    and of ``Detector.open()``."""
    if not is_bundle(SHIPPED):
        raise ModelError(f"{SHIPPED}: no shipped cascade bundle here; pass --model BUNDLE")
    return SHIPPED


def kws_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kws")
    except PackageNotFoundError:
        return "0+unknown"


@dataclasses.dataclass(frozen=True)
class Bundle:
    path: Path
    config: FeatureConfig
    stage1: ModelDir
    stage2: ModelDir
    tau: float
    inference_stride_ms: float
    smoothing: SmoothingConfig  # with the thresholds of ``sensitivity``
    calibration: dict[str, Any]
    operating_points: dict[str, OperatingPoint] = dataclasses.field(default_factory=dict)
    sensitivity: str = DEFAULT_SENSITIVITY
    base_tau: float | None = None  # the manifest's tau: a point without its own runs at it

    def __post_init__(self) -> None:
        if not self.operating_points:  # built in memory without points: its smoothing is the one point
            object.__setattr__(self, "operating_points", {DEFAULT_SENSITIVITY: OperatingPoint.of(DEFAULT_SENSITIVITY, self.smoothing)})
        if self.base_tau is None:
            object.__setattr__(self, "base_tau", self.tau)

    @property
    def operating_point(self) -> OperatingPoint:
        """The point this bundle runs at."""
        return self.operating_points[self.sensitivity]

    def at(self, sensitivity: str | None) -> "Bundle":
        """This bundle running at the named operating point (None: the default, balanced)."""
        name = sensitivity or DEFAULT_SENSITIVITY
        if name not in self.operating_points:
            raise ModelError(f"{self.path}: no operating point {name!r} (has: {', '.join(self.operating_points)}; "
                             "`kws stream calibrate` writes high, balanced and low)")
        point = self.operating_points[name]
        tau = point.tau if point.tau is not None else self.base_tau
        return dataclasses.replace(self, smoothing=point.smoothing(self.smoothing), sensitivity=name, tau=tau)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.stage2.labels

    @property
    def inference_stride_frames(self) -> int:
        return round(self.inference_stride_ms / self.config.stride_ms)

    @classmethod
    def open(cls, path: Path) -> "Bundle":
        path = Path(path)
        manifest = path / MANIFEST
        if not manifest.is_file():
            raise ModelError(f"{path}: not a cascade bundle (no {MANIFEST})")
        try:
            data = tomllib.loads(manifest.read_text())
            head, gate = data["cascade"], data["gate"]
            check_format(head.get("format", FORMAT), head.get("kws_version"), manifest)
            config = FeatureConfig.load(path / head["features"])
            stage1 = ModelDir.open(path / data["stage1"]["dir"])
            stage2 = ModelDir.open(path / data["stage2"]["dir"])
            smoothing = SmoothingConfig.from_dict(data.get("smoothing", {}))
            tau, stride = float(gate["tau"]), float(head["inference_stride_ms"])
            points = read_points(data, smoothing, dict(data.get("calibration", {})), str(manifest))
        except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
            raise ModelError(f"{manifest}: invalid manifest ({type(exc).__name__}: {exc})") from None
        except KwsError as exc:
            raise ModelError(f"{path}: {exc}") from None
        for stage in (stage1, stage2):
            stage.config.require_same(config, f"{stage.path} vs {path / head['features']}")
        if head.get("fingerprint") and head["fingerprint"] != config.fingerprint():
            raise ModelError(f"{manifest}: fingerprint {head['fingerprint']} does not match {path / head['features']}")
        check_stage_roles(stage1, stage2)
        for stage in (stage1, stage2):
            stage.check_int8()
        if list(stage2.labels) != list(head.get("labels", stage2.labels)):
            raise ModelError(f"{manifest}: labels do not match {stage2.path / LABELS}")
        bundle = cls(path, config, stage1, stage2, tau, stride, smoothing, dict(data.get("calibration", {})), points)
        bundle.validate()
        return bundle.at(DEFAULT_SENSITIVITY)

    def validate(self) -> None:
        if not 0.0 <= self.tau <= 1.0:
            raise ConfigError(f"{self.path}: gate tau={self.tau} outside [0, 1]")
        check_inference_stride(self.inference_stride_ms, self.config, self.path)

    def require_config(self, other: FeatureConfig, what: str) -> None:
        self.config.require_same(other, f"{what} vs bundle {self.path}")


def check_format(found: object, version: object, manifest: Path) -> None:
    """A bundle from a newer kws may hold what this one would silently misread: refuse it by name."""
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        raise ModelError(f"{manifest}: [cascade] format = {found!r} is not a bundle format (a whole number >= 1)")
    if found > FORMAT:
        by = f" (written by kws {version})" if isinstance(version, str) else ""
        raise ModelError(f"{manifest}: bundle format {found}{by} is newer than this kws reads ({FORMAT}); "
                         "upgrade kws or rebuild the bundle with this one")


def write_bundle(
    out: Path,
    stage1_dir: Path,
    stage2_dir: Path,
    *,
    tau: float,
    inference_stride_ms: float,
    smoothing: SmoothingConfig,
    calibration: dict[str, Any],
    force: bool = False,
    extras: Callable[[Bundle], None] | None = None,
    operating_points: dict[str, OperatingPoint] | None = None,
) -> Bundle:
    """Copy both stages into a new bundle directory, atomically (temp dir + rename).

    ``extras(bundle)`` writes further files (calibration figures) into the bundle while it is
    still the temporary folder: a kill at any moment leaves the previous bundle or the whole
    new one, never one without its figures."""
    stage1, stage2 = ModelDir.open(stage1_dir), ModelDir.open(stage2_dir)
    stage1.config.require_same(stage2.config, f"{stage1_dir} vs {stage2_dir}")
    out = Path(out)
    with atomic_dir(out, force, marks=(MANIFEST,)) as tmp:
        _write_contents(tmp, stage1, stage2, tau=tau, inference_stride_ms=inference_stride_ms,
                        smoothing=smoothing, calibration=calibration, operating_points=operating_points)
        draft = Bundle.open(tmp)  # refuse to publish a bundle that would not open
        if extras is not None:
            extras(draft)
    return Bundle.open(out)


def copy_bundle(source: Path, out: Path, *, force: bool = False) -> Bundle:
    """A finished bundle copied whole to ``out`` (atomically, under the same ``--force`` rule
    as ``write_bundle``): calibration figures and operating points travel with it."""
    Bundle.open(source)
    with atomic_dir(Path(out), force, marks=(MANIFEST,)) as tmp:
        shutil.copytree(source, tmp, dirs_exist_ok=True)
        Bundle.open(tmp)
    return Bundle.open(out)


def _write_contents(tmp: Path, stage1: ModelDir, stage2: ModelDir, *, tau: float, inference_stride_ms: float,
                    smoothing: SmoothingConfig, calibration: dict[str, Any],
                    operating_points: dict[str, OperatingPoint] | None) -> None:
    for name, stage in (("stage1", stage1), ("stage2", stage2)):
        (tmp / name).mkdir(parents=True)
        for file in (*STAGE_FILES, METRICS, TRAIN_CONFIG):
            if (stage.path / file).is_file():
                shutil.copy2(stage.path / file, tmp / name / file)
    stage1.config.save(tmp / FEATURES)
    manifest = {
        "cascade": {
            "format": FORMAT,
            "kws_version": kws_version(),
            "features": FEATURES,
            "fingerprint": stage1.config.fingerprint(),
            "labels": list(stage2.labels),
            "inference_stride_ms": float(inference_stride_ms),
        },
        "gate": {"tau": float(tau), "stage1_keyword_label": KEYWORD},
        "smoothing": smoothing.to_dict(),
        "stage1": {"dir": "stage1", "labels": list(stage1.labels)},
        "stage2": {"dir": "stage2", "labels": list(stage2.labels)},
        "calibration": calibration,
    }
    if operating_points:  # [smoothing] and [gate] hold the default's settings: what older kws versions run
        default = operating_points[DEFAULT_SENSITIVITY]
        manifest["smoothing"] = default.smoothing(smoothing).to_dict()
        if default.tau is not None:
            manifest["gate"]["tau"] = float(default.tau)
        manifest["operating_points"] = {name: point.to_dict() for name, point in operating_points.items()}
    write_text_atomic(tmp / MANIFEST, dumps(manifest))
