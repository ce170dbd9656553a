"""Find a run's artefacts by what they contain, not by where a particular command put them.

``kws demo`` lays a run out as ``<step>/...``, but a user who ran the commands by hand puts
files wherever they like, so the report walks the run directory and recognises:

  model directory   a folder with metrics.json + model_int8.tflite (``kws train``)
  cascade bundle    a folder with cascade.toml (``kws cascade build``)
  feature summary   JSON with config, fingerprint, T (the demo's features step)
  feature config    features.toml (any; the summary's, a model's or the bundle's)
  TFLM check        JSON keyed by stage whose entries have bit_exact and arena_bytes
  evaluation        JSON with accuracy, labels, confusion, per_class (``kws eval --json``)
  energy            JSON keyed by MCU profile, entries with energy_j_per_hour (``kws energy --json``)
  stream truth      JSON with keywords + duration_s (``kws stream make``)
  stream evaluation JSON with streams, total and det (``kws stream eval --json``)
  detections        JSON with events (the demo) or a score (``kws detect --json``), or JSON
                    lines of {t, label, score} (``kws detect --events``, *.jsonl)
  stage-1 trace     .npz with t, p_keyword, opened (the demo's stream step)
  cascade search    JSON with candidates (``kws cascade search``)
  firmware export   a folder with kws_export.json (``kws export``)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cascade.energy.results import EnergyEstimate
from cascade.evaluation.stream_score import score_events
from cascade.runtime.bundle import MANIFEST as BUNDLE_MANIFEST
from cascade.runtime.model_dir import HISTORY, METRICS, MODEL_INT8, MODEL_KERAS
from data_prep.errors import KwsError

EXPORT_MANIFEST = "kws_export.json"  # export.firmware.MANIFEST, named here to keep TF imports out
MAX_JSON_BYTES = 20_000_000
SKIP_DIRS = {"report_files", "__pycache__", "checkpoints"}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    path: Path
    stage: int | None
    arch: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]] | None


@dataclasses.dataclass(frozen=True)
class Artefacts:
    run_dir: Path
    models: tuple[ModelInfo, ...] = ()
    bundle: Path | None = None
    feature_summary: dict[str, Any] | None = None
    feature_config: Path | None = None
    tflm: dict[str, Any] | None = None
    evaluation: dict[str, Any] | None = None
    evaluation_path: Path | None = None
    energy: dict[str, EnergyEstimate] | None = None  # per profile, read back from energy JSON
    truth: dict[str, Any] | None = None
    stream_eval: dict[str, Any] | None = None
    stream_eval_path: Path | None = None
    detections: dict[str, Any] | None = None  # {"events": [...], "score": {...} | None, ...}
    trace: Path | None = None
    search: dict[str, Any] | None = None
    export_dir: Path | None = None
    notes: tuple[str, ...] = ()  # artefacts skipped because a value has the wrong type

    def empty(self) -> bool:
        """Nothing the report could show: the wrong folder, which a blank report would hide."""
        return not any(getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("run_dir", "notes"))


def _is_entries(data: Any, *keys: str) -> bool:
    """A non-empty dict whose every value is a dict holding ``keys``."""
    return (isinstance(data, dict) and bool(data)
            and all(isinstance(v, dict) and all(k in v for k in keys) for v in data.values()))


def json_kind(data: Any) -> str | None:
    """What a parsed JSON artefact is, judged by its keys."""
    if isinstance(data, dict):
        if {"config", "fingerprint", "T"} <= data.keys():
            return "feature_summary"
        if {"accuracy", "labels", "confusion", "per_class"} <= data.keys():
            return "evaluation"
        if {"candidates", "stage2_always_on_energy_j_per_hour"} <= data.keys():
            return "search"
        if {"keywords", "duration_s"} <= data.keys() and isinstance(data["keywords"], list):
            return "truth"
        if {"streams", "total", "det"} <= data.keys():
            return "stream_eval"
        if isinstance(data.get("events"), list) or (isinstance(data.get("score"), dict) and "hit_rate" in data["score"]):
            return "detections"
        if _is_entries(data, "profile", "energy_j_per_hour"):
            return "energy"
        if _is_entries(data, "bit_exact", "arena_bytes"):
            return "tflm"
    return None


# Keys the report reads as numbers (or as tables of numbers: ``latency_ms`` per stage, a
# detection's ``score``, a truth file's ``keywords``). A JSON edited by hand
# (``"accuracy": "high"``) is skipped with a note instead of failing deep inside a table or plot.
NUMERIC_KEYS = frozenset({
    "accuracy", "arena_bytes", "clip_se", "largest_share", "speakers", "avg_power_mw", "battery_days", "cascade_vs_stage2_energy", "duration_s",
    "duty_cycle", "end", "energy_j_per_hour", "energy_uj", "epoch", "f1", "false_accepts", "false_accepts_per_hour",
    "false_open_rate", "flash_bytes", "gate_closed", "hit_rate", "hits", "invocation_rate", "keywords", "latency_ms",
    "miss_rate", "misses", "n", "p_keyword", "precision", "ratio", "recall", "score", "stage", "stage1_recall", "stage2_accuracy",
    "stage2_invocation_rate", "stage2_recall", "stage2_runs", "start", "steps", "support", "t", "target_recall", "tau",
})


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def malformed(data: Any, where: str = "") -> str | None:
    """The first value of a JSON artefact whose type the report cannot use, described; else None."""
    if isinstance(data, list):
        for i, item in enumerate(data):
            if problem := malformed(item, f"{where}[{i}]"):
                return problem
        return None
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        name = f"{where}.{key}" if where else str(key)
        if key in NUMERIC_KEYS and isinstance(value, (str, bool)):
            return f"{name} is {json.dumps(value)[:40]}, not a number"
        # a stream's truth.json names its label spec ("12", "alexa,snowboy"); elsewhere labels are a list
        spec = isinstance(value, str) and "keywords" in data
        if key == "labels" and not spec and not (isinstance(value, list) and all(isinstance(x, str) for x in value)):
            return f"{name} is not a list of names"
        if key == "confusion" and not (isinstance(value, list) and all(
                isinstance(row, list) and all(_number(x) for x in row) for row in value)):
            return f"{name} is not a matrix of counts"
        if key == "per_class" and not (isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())):
            return f"{name} is not a table of classes"
        if problem := malformed(value, name):
            return problem
    return None


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _read_events(path: Path) -> list[dict[str, Any]] | None:
    """JSON lines of detections ({t, label, ...} per line), else None."""
    try:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ok = all(isinstance(r, dict) and "t" in r and "label" in r for r in rows)
    return rows if ok else None


def _is_trace(path: Path) -> bool:
    import numpy as np

    try:
        with np.load(path) as z:
            return {"t", "p_keyword", "opened"} <= set(z.files)
    except (OSError, ValueError):
        return False


def _model_info(folder: Path) -> ModelInfo:
    metrics = _read_json(folder / METRICS) or {}
    history = _read_json(folder / HISTORY)
    stage = metrics.get("stage")
    return ModelInfo(folder, int(stage) if isinstance(stage, int) else None, str(metrics.get("arch", "?")),
                     metrics if isinstance(metrics, dict) else {}, history if isinstance(history, list) else None)


def _richness(m: ModelInfo) -> tuple:
    """Prefer the training folder (history, Keras model) over a bundle's copy of the same model."""
    return (-(m.history is not None), -(m.path / MODEL_KERAS).is_file(), len(m.path.parts), str(m.path))


def _dedupe(models: list[ModelInfo]) -> tuple[ModelInfo, ...]:
    """One entry per distinct int8 model (the bundle holds copies of the trained ones)."""
    by_hash: dict[str, ModelInfo] = {}
    for m in sorted(models, key=_richness):
        digest = hashlib.sha256((m.path / MODEL_INT8).read_bytes()).hexdigest()
        by_hash.setdefault(digest, m)
    return tuple(sorted(by_hash.values(), key=lambda m: (m.stage or 99, str(m.path))))


def _first(found: dict[str, list], kind: str, prefer=None):
    items = found.get(kind, [])
    if prefer:
        items = sorted(items, key=lambda item: not prefer(item[1]))
    return items[0] if items else (None, None)


def _nearest(items: list[tuple[Path, Any]], to: Path | None) -> tuple[Path, Any] | tuple[None, None]:
    """The item sharing the longest folder prefix with ``to`` (walk order breaks ties)."""
    if not items:
        return None, None
    if to is None:
        return items[0]
    shared = [len(os.path.commonpath([path.parent, to.parent]).split(os.sep)) for path, _ in items]
    return items[shared.index(max(shared))]


def _reproduces(truth: dict[str, Any], detections: dict[str, Any]) -> bool:
    """Whether scoring the detections' events on this truth gives the score they carry."""
    score, events = detections.get("score"), detections.get("events")
    if not (isinstance(score, dict) and isinstance(events, list)):
        return False
    try:
        mine = score_events(events, truth["keywords"], float(truth["duration_s"]))
    except (KeyError, TypeError, ValueError):
        return False
    return (mine.keywords, mine.hits, mine.false_accepts) == (score.get("keywords"), score.get("hits"),
                                                              score.get("false_accepts"))


def _paired_truth(truths: list[tuple[Path, Any]], detections: dict[str, Any] | None,
                  near: Path | None) -> dict[str, Any] | None:
    """The truth file the detections were scored on. A run can hold several streams (the demo
    tunes its operating point on a validation stream and reports on a test one): the one whose
    keywords reproduce the detections' score, else the nearest to them."""
    matching = [item for item in truths if detections and _reproduces(item[1], detections)]
    return _nearest(matching or truths, near)[1]


def find_artefacts(run_dir: Path) -> Artefacts:
    """Walk ``run_dir`` (hidden folders and report output skipped) and classify what is there."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KwsError(f"{run_dir}: no such run directory")
    found: dict[str, list[tuple[Path, Any]]] = {}
    models, bundles, exports, configs, traces, notes = [], [], [], [], [], []

    def usable(path: Path, data: Any) -> bool:
        problem = malformed(data)
        if problem:
            notes.append(f"{path}: {problem}; skipped")
        return problem is None

    for root, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        folder, names = Path(root), set(files)
        if METRICS in names and MODEL_INT8 in names:
            model = _model_info(folder)
            if usable(folder / METRICS, model.metrics) and usable(folder / HISTORY, model.history):
                models.append(model)
        if BUNDLE_MANIFEST in names:
            bundles.append(folder)
        if EXPORT_MANIFEST in names:
            exports.append(folder)
            dirs[:] = []  # C sources and golden vectors: nothing for the report inside
        for name in sorted(files):
            path = folder / name
            if name == "features.toml":
                configs.append(path)
            elif name.endswith(".npz") and _is_trace(path):
                traces.append(path)
            elif name.endswith((".jsonl", ".ndjson")):
                events = _read_events(path)
                if events is not None and usable(path, events):
                    found.setdefault("events", []).append((path, events))
            elif name.endswith(".json") and name not in ("step.json", METRICS, HISTORY, EXPORT_MANIFEST):
                data = _read_json(path)
                kind = json_kind(data)
                if kind and usable(path, data):
                    found.setdefault(kind, []).append((path, data))
    eval_path, evaluation = _first(found, "evaluation", prefer=lambda d: "stage1_recall" in d)
    _, energy = _first(found, "energy", prefer=lambda d: all("stage2_always_on" in v for v in d.values()))
    detections_path, detections = _first(found, "detections", prefer=lambda d: isinstance(d.get("events"), list))
    if detections is not None and not isinstance(detections.get("events"), list):
        _, events = _first(found, "events")
        detections = {**detections, "events": events} if events is not None else detections
    elif detections is None and found.get("events"):
        detections = {"events": found["events"][0][1]}
    summary_path, summary = _first(found, "feature_summary")
    stream_eval_path, stream_eval = _first(found, "stream_eval", prefer=lambda d: "per_keyword" in d)
    config = next((c for c in configs if summary_path and c.parent == summary_path.parent), configs[0] if configs else None)
    return Artefacts(
        run_dir=run_dir,
        models=_dedupe(models),
        bundle=bundles[0] if bundles else None,
        feature_summary=summary,
        feature_config=config,
        tflm=_first(found, "tflm")[1],
        evaluation=evaluation,
        evaluation_path=eval_path,
        energy={name: EnergyEstimate.from_json(r) for name, r in energy.items()} if energy else None,
        truth=_paired_truth(found.get("truth", []), detections, detections_path),
        stream_eval=stream_eval,
        stream_eval_path=stream_eval_path,
        detections=detections,
        trace=_nearest([(t, None) for t in traces], detections_path)[0],
        search=_first(found, "search")[1],
        export_dir=exports[0] if exports else None,
        notes=tuple(notes),
    )
