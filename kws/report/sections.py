"""The report's sections, one builder each: found artefacts in, a ``Section`` out.

A builder whose inputs are missing returns a section with only a ``missing`` note naming
what it looked for, so a run directory assembled by hand still gets a report.
"""

from __future__ import annotations

from typing import Any

from cascade.energy.model_stats import collect_stats
from cascade.evaluation.calibrate import CURVE
from cascade.evaluation.keyword_free import read_keyword_free
from cascade.evaluation.stream_score import score_events
from cascade.runtime.bundle import Bundle
from cascade.runtime.model_dir import read_json
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from kws.report import plots
from kws.report.device import REFERENCE_PROFILE, reference_profile
from kws.report.doc import (
    DASH,
    Figure,
    Row,
    Section,
    Table,
    Text,
    count,
    days,
    nbytes,
    num,
    omitted,
    pct,
    ratio,
    rel,
    si,
)
from kws.report.find import Artefacts, ModelInfo


def open_bundle(a: Artefacts):
    """(Bundle, None) or (None, why not)."""
    if a.bundle is None:
        return None, "no cascade bundle (a folder with cascade.toml, from `kws cascade build`) in the run directory"

    try:
        return Bundle.open(a.bundle), None
    except KwsError as exc:
        return None, f"the cascade bundle could not be opened: {exc}"


def feature_config(a: Artefacts):
    if a.feature_config is not None:
        try:
            return FeatureConfig.load(a.feature_config)
        except KwsError:
            pass
    if a.feature_summary is not None:
        try:
            return FeatureConfig.from_dict(a.feature_summary["config"], "feature summary")
        except (KwsError, TypeError):
            return None
    return None


def features_section(a: Artefacts) -> Section:
    key, title = "features", "Feature configuration"
    cfg = feature_config(a)
    if cfg is None:
        return omitted(key, title, "no features.toml or feature summary found")
    rows = (
        ("sample rate", f"{cfg.sample_rate:,} Hz"),
        ("clip length L", f"{cfg.clip_ms:g} ms = {cfg.clip_samples:,} samples"),
        ("window l", f"{cfg.window_ms:g} ms = {cfg.window_samples:,} samples ({cfg.window})"),
        ("stride s", f"{cfg.stride_ms:g} ms = {cfg.stride_samples:,} samples"),
        ("FFT size", f"{cfg.n_fft:,} ({cfg.spectrum} spectrum)"),
        ("mel bands", f"{cfg.n_mels} from {cfg.fmin:g} to {cfg.fmax:g} Hz ({cfg.mel_bank} filterbank)"),
        ("MFCCs", f"{cfg.n_mfcc} (log floor {cfg.log_floor:g})"),
        ("frames T", f"T = 1 + (L − l) / s = 1 + ({cfg.clip_samples} − {cfg.window_samples}) / {cfg.stride_samples} "
                     f"= {cfg.num_frames}"),
        ("model input", f"{cfg.num_frames} × {cfg.n_mfcc} (T × n_mfcc)"),
        ("fingerprint", cfg.fingerprint()),
    )
    blocks: list = [Table(("setting", "value"), rows, "FeatureConfig")]
    counts = (a.feature_summary or {}).get("counts")
    if isinstance(counts, dict) and counts:
        splits = list(counts)
        labels = list(dict.fromkeys(label for s in splits for label in counts[s]))
        table_rows = tuple((s, *(count(counts[s].get(label, 0)) for label in labels), count(sum(counts[s].values())))
                           for s in splits)
        blocks.append(Table(("split", *labels, "total"), table_rows, "Clips per split and label"))
    return Section(key, title, tuple(blocks))


def _stage_name(m: ModelInfo) -> str:
    return {1: "stage 1 (gate)", 2: "stage 2 (classifier)"}.get(m.stage, "model")


def _arena_from_tflm(a: Artefacts, m: ModelInfo, flash: int) -> int | None:
    entry = (a.tflm or {}).get(f"stage{m.stage}")
    if isinstance(entry, dict) and entry.get("flash_bytes") == flash and entry.get("arena_bytes"):
        return int(entry["arena_bytes"])
    return None


def _accuracies(m: ModelInfo, split: str) -> str:
    r = m.metrics.get(split) or {}
    return f"{pct(r.get('float_accuracy'))} → {pct(r.get('int8_accuracy'))}"


def model_rows(a: Artefacts) -> tuple[list[tuple[str, ...]], list[str]]:
    """Table rows and the problems met (a model whose graph cannot be read keeps its row)."""

    rows, problems = [], []
    for m in a.models:
        params = macs = DASH
        flash = arena = None
        try:
            flash = (m.path / "model_int8.tflite").stat().st_size
            arena = _arena_from_tflm(a, m, flash)
            stats = collect_stats(m.path, arena=arena is None, keras_params=False)
            arena = arena if arena is not None else stats.arena_bytes
            params, macs = count(stats.params), si(stats.macs)
        except (KwsError, OSError) as exc:
            problems.append(str(exc))
        exact = (a.tflm or {}).get(f"stage{m.stage}", {}).get("bit_exact")
        rows.append((_stage_name(m), m.arch, rel(m.path, a.run_dir), params, macs, nbytes(flash), nbytes(arena),
                     _accuracies(m, "testing"), _accuracies(m, "validation"),
                     DASH if exact is None else ("yes" if exact else "NO")))
    return rows, problems


def models_section(a: Artefacts) -> Section:
    key, title = "models", "Models"
    if not a.models:
        return omitted(key, title, "no model directory (metrics.json + model_int8.tflite, from `kws train`) found")
    header = ("model", "arch", "folder", "params", "MACs", "int8 flash", "arena (TFLM)", "test: float → int8",
              "val: float → int8", "TFLM bit-exact")
    rows, problems = model_rows(a)
    blocks: list = [
        Table(header, tuple(rows)),
        Text("Parameters and MACs are counted on the int8 graph per inference (conv, depthwise, dense); flash is the "
             ".tflite size; the arena is measured in the TFLite Micro interpreter. Float and int8 accuracy are on "
             "the test and validation speakers."),
        *(Text(f"Could not read: {p}") for p in problems),
    ]
    histories = [(f"{_stage_name(m)}: {m.arch}", m.history) for m in a.models if m.history]
    if histories:
        blocks.append(Figure("training", plots.history_png(histories), "Accuracy per training epoch."))
    return Section(key, title, tuple(blocks))


def evaluation_section(a: Artefacts) -> Section:
    key, title = "evaluation", "Evaluation"
    ev = a.evaluation
    if ev is None:
        return omitted(key, title, "no evaluation JSON (from `kws eval --json`) found")
    split, n = ev.get("split", "test"), ev.get("n")
    if "stage2_accuracy" in ev:
        summary = (f"Cascade accuracy {pct(ev['accuracy'])} vs stage 2 alone {pct(ev['stage2_accuracy'])} on "
                   f"{count(n)} {split} clips; stage-1 recall {pct(ev.get('stage1_recall'))} at tau "
                   f"{num(ev.get('tau'), 3)}; stage 2 ran on {pct(ev.get('stage2_invocation_rate'))} of the clips"
                   f" ({pct(ev.get('stage2_invocation_rate_non_keyword'))} of the non-keyword ones).")
        what = "cascade (int8)"
        point = ev.get("operating_point")
        if isinstance(point, dict):  # kws eval --sensitivity
            summary += (f" Decided at operating point {point.get('name', '?')}: a keyword clip below its threshold "
                        "counts as not detected.")
    else:
        summary = f"Accuracy {pct(ev['accuracy'])} on {count(n)} {split} clips."
        what = "model (int8)"
    spread = ev.get("speakers")  # kws eval since the spread over speakers
    if ci := _ci95(spread):
        summary += (f" Over its {count(spread.get('speakers'))} speakers (whole speakers resampled) the 95 % interval is "
                    f"{pct(ci[0])}-{pct(ci[1])}; {pct(spread.get('largest_share'))} of the clips are one speaker's.")
    if ci := _ci95(ev.get("stage1_recall_speakers")):  # the gate's tau was set on the validation speakers
        summary += f" Stage-1 recall over the same speakers, 95 % interval: {pct(ci[0])}-{pct(ci[1])}."
    per_label = ev.get("per_label") or {}  # kws eval since per-label results: the cascade's gate and stage 2 per label
    cascade_rows = bool(per_label) and all("gate_closed" in per_label.get(label, {}) for label in ev["per_class"])
    per_class = tuple(
        (label, pct(m.get("precision")), pct(m.get("recall")), pct(m.get("f1")), count(m.get("support")),
         *((pct(per_label[label].get("stage2_recall")), count(per_label[label]["gate_closed"])) if cascade_rows else ()))
        for label, m in ev["per_class"].items()
    )
    header = ("label", "precision", "recall", "F1", "support", *(("stage 2 alone", "gate closed") if cascade_rows else ()))
    return Section(key, title, (
        Text(summary + f" Source: `{rel(a.evaluation_path, a.run_dir)}`." if a.evaluation_path else summary),
        Row((Figure("confusion", plots.confusion_matrix_png(ev, f"{what}, {split}"),
                    "Confusion matrix: rows are the true labels, columns the predictions."),
             Table(header, per_class, "Per class" + (": recall of stage 2 alone, clips on which the gate stayed "
                                                     "closed (for a keyword: lost before stage 2)" if cascade_rows else "")))),
    ))


def gate_section(a: Artefacts) -> Section:
    key, title = "gate", "Stage-1 gate"
    bundle, why = open_bundle(a)
    if bundle is None:
        return omitted(key, title, why)

    cal = bundle.calibration
    blocks: list = [Text(
        f"Gate threshold tau = {bundle.tau:.3f} on the stage-1 keyword probability, calibrated on the "
        f"{cal.get('split', 'validation')} split for a target keyword recall of {pct(cal.get('target_recall'))}: "
        f"recall {pct(cal.get('recall'))}, stage 2 invoked on {pct(cal.get('invocation_rate'))} of all clips and "
        f"{pct(cal.get('false_open_rate'))} of the non-keyword ones. Inference every "
        f"{bundle.inference_stride_ms:g} ms.")]
    f = read_keyword_free(bundle.path)
    if f is not None:
        blocks.append(Text(
            f"On {num(f.get('seconds'), 0)} s of keyword-free audio (background noise and non-keyword speech) the "
            f"gate opened {count(f.get('stage2_runs'))} times in {count(f.get('steps'))} steps: "
            f"{num(f.get('stage2_per_s'), 3)} stage-2 calls per second, the rate the energy estimate uses."))
    if (bundle.path / CURVE).is_file():
        curve = read_json(bundle.path / CURVE)
        blocks.append(Figure("threshold_curve", plots.threshold_curve_png(curve, bundle.tau, cal.get("target_recall")),
                             "Stage-1 threshold curve on the calibration split; the star is the chosen tau."))
    else:
        blocks.append(Text(f"(No {CURVE} in the bundle: threshold curve not shown.)"))
    blocks.append(operating_points_table(bundle))
    return Section(key, title, tuple(blocks))


def operating_points_table(bundle) -> Table:
    """The bundle's named operating points and what each measured on validation streams."""
    rows = []
    for name, p in bundle.operating_points.items():
        m = p.measured
        figures = ("-",) * 4 if m is None else (
            f"{pct(m.hit_rate)} ({m.hits}/{m.keywords})", f"{m.false_accepts_per_hour:.1f}",
            "{:.1f}-{:.1f}".format(*m.false_accepts_per_hour_ci95), f"{m.hours:.2f}")
        tau = bundle.at(name).tau  # the point's own, else the bundle's: what the point runs
        duty = "-" if m is None or m.stage2_duty is None else pct(m.stage2_duty)
        rows.append((name + (" (default)" if name == "balanced" else ""), f"{p.threshold:g}",
                     ", ".join(f"{k} {v:g}" for k, v in p.label_thresholds) or "-", *figures[:1], f"{tau:.3f}", duty,
                     *figures[1:]))
    return Table(("operating point", "threshold", "per keyword", "hit rate", "gate tau", "stage 2 on", "false accepts / h",
                  "95 % CI", "hours"),
                 tuple(rows), "Operating points (kws live/detect/export --sensitivity), measured on validation streams")


def _trace(a: Artefacts) -> dict[str, Any] | None:
    import numpy as np

    if a.trace is None:
        return None
    with np.load(a.trace) as z:
        return {k: z[k] for k in ("t", "p_keyword", "opened")}


def mark_hits(events: list[dict[str, Any]], keywords: list[dict[str, Any]], duration_s: float) -> list[dict[str, Any]]:
    """Each event with ``hit``: whether the stream scorer counts it as a hit. The scorer
    matches greedily in time order, so event i is a false accept exactly when scoring the
    first i+1 events adds one."""

    ordered = sorted(events, key=lambda e: e["t"])
    out, before = [], 0
    for i, e in enumerate(ordered):
        now = score_events(ordered[: i + 1], keywords, duration_s).false_accepts
        out.append({**e, "hit": now == before})
        before = now
    return out


def _ci95(spread: Any) -> tuple[float, float] | None:
    """A speaker spread's 95 % interval, when the JSON holds one (older kws eval files do not)."""
    ci = spread.get("ci95") if isinstance(spread, dict) else None
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def _stream_energy(det: dict[str, Any], a: Artefacts) -> str:
    """The energy at this recording's stage-2 rate, beside the keyword-free rate the energy
    section and headline use: a recording dense with words keeps stage 2 busier than a quiet room."""
    rows = {r.get("profile"): r for r in det.get("energy") or [] if isinstance(r, dict)}
    name = reference_profile(a.energy) if a.energy else REFERENCE_PROFILE
    row = rows.get(name)
    if row is None:
        return ""
    return (f" At that rate the cascade on the {name} uses {ratio(row.get('ratio'))} the energy of stage 2 always on "
            f"({days(row.get('battery_days'))}); the energy section and the headline use the rate on keyword-free "
            "audio.")


def stream_section(a: Artefacts) -> Section:
    key, title = "stream", "Long recording"
    det, truth, trace = a.detections, a.truth, _trace(a)
    events = (det or {}).get("events") or []
    if truth is None and trace is None and not events:
        return omitted(key, title, "no long recording (truth.json from `kws stream make`, detections from "
                                   "`kws detect`, or the demo's stage-1 trace) found")
    bundle, _ = open_bundle(a)
    keywords = (truth or {}).get("keywords", [])
    score = (det or {}).get("score")
    duration = float((truth or {}).get("duration_s") or (score or {}).get("duration_s") or (det or {}).get("duration_s")
                     or (float(trace["t"][-1]) if trace is not None else max(e["t"] for e in events) + 2.0))
    tau = (det or {}).get("tau", bundle.tau if bundle else None)
    if truth is not None:
        events = mark_hits(events, keywords, duration)
    blocks: list = []
    if score:
        blocks.append(Table(("keywords", "hits", "hit rate", "false accepts", "false accepts / hour", "duration"), ((
            count(score["keywords"]), count(score["hits"]), pct(score["hit_rate"]), count(score["false_accepts"]),
            num(score["false_accepts_per_hour"], 1), f"{num(score['duration_s'], 0)} s"),)))
    if det and det.get("stage2_runs") is not None and det.get("steps"):
        blocks.append(Text(f"Stage 2 ran on {count(det['stage2_runs'])} of {count(det['steps'])} inference steps "
                           f"({pct(det['stage2_runs'] / det['steps'])} of the time the recording lasts)."
                           + _stream_energy(det, a)))
    notes = [] if trace is not None else ["no stage-1 trace (.npz with t, p_keyword, opened): probability and gate not drawn"]
    if truth is None:
        notes.append("no truth.json: true keywords not drawn")
    blocks.append(Figure("timeline", plots.timeline_png(duration, keywords, events, trace, tau),
                         "The recording, one row per minute: " + (
                             "; ".join(notes) + "." if notes else
                             "stage-1 probability, the tau line, gate openings (band at the bottom), detections "
                             "(triangles at their score: green a hit, red a false accept) and the true keywords (green).")))
    if events:
        verdict = {True: ("hit",), False: ("false accept",), None: ()}
        blocks.append(Table(("time (s)", "label", "score", *(("verdict",) if truth is not None else ())),
                            tuple((num(e["t"], 2), e["label"], num(e.get("score"), 3), *verdict[e.get("hit")])
                                  for e in events), "Detections"))
    else:
        blocks.append(Text("No detections in this recording."))
    return Section(key, title, tuple(blocks))
