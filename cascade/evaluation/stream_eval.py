"""A cascade on long streams: the figures a user lives with (hit rate, false accepts per hour,
the DET curve, each overall and per keyword, how often stage 2 runs and what that costs on
each MCU), and the calibration of the operating point on validation streams.

Every stream is run once through the streaming cascade (``run_stream``: the code path of
``kws detect`` and ``kws live``); thresholds and smoothing are then replayed on its trace.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cascade.energy.bundle_energy import model_cost
from cascade.energy.estimate import estimate_cascade
from cascade.energy.profiles import load_all, load_profile
from cascade.evaluation.calibrate import CURVE
from cascade.evaluation.det import SweepPoint, det_point, det_sweep, hits_at_rate, keyword_curves, pool_sweeps, rate_at_hits
from cascade.evaluation.gate_replay import CURVE_TAUS, choose_taus, gate_curve, open_trace, traces_at
from cascade.evaluation.keyword_free import KEYWORD_FREE
from cascade.evaluation.miss_reasons import tally, trace_misses
from cascade.evaluation.operating_point import Trace, calibrate_operating_point
from cascade.evaluation.sensitivity import operating_points
from cascade.evaluation.speaker_spread import speaker_spread
from cascade.evaluation.stream_score import (
    AUDIO,
    TRUTH,
    StreamScore,
    check_stream_folder,
    keyword_row,
    keywords_found,
    match_events,
    pool_by_label,
    read_truth,
    score_by_label,
    score_matches,
)
from cascade.evaluation.stream_sources import by_source, pool_sources
from cascade.runtime.bundle import MANIFEST, Bundle, write_bundle
from cascade.runtime.model_dir import write_json
from cascade.runtime.stream_run import StreamResult, detect_file
from data_prep.outputs import refuse_existing
from data_prep.splits import speaker_id

OPERATING_POINT = "operating_point.json"


def trace_stream(bundle: Bundle, folder: Path) -> tuple[Trace, StreamResult, dict[str, Any]]:
    """Run the cascade over ``folder``/stream.wav; its trace with the folder's truth, the run,
    and the truth file."""
    truth = read_truth(Path(folder) / TRUTH)
    result = detect_file(bundle, Path(folder) / AUDIO)
    return Trace(result.trace_t, result.trace_posterior, tuple(truth["keywords"]), result.duration_s), result, truth


@dataclasses.dataclass(frozen=True)
class JudgedRun:
    """One run of the cascade over a stream folder, its detections matched to the truth once:
    what `kws stream eval` and the demo's stream step both report."""

    trace: Trace
    result: StreamResult
    truth: dict[str, Any]
    events: list[dict[str, Any]]  # {t, label, score} per detection
    matches: list[int | None]  # per event: the keyword it hit (``match_events``)
    score: StreamScore
    found: list[bool]  # per spoken keyword: hit
    reasons: list[tuple[str, str] | None]  # per spoken keyword: why it was missed (``miss_reasons``)


def judge_stream(bundle: Bundle, folder: Path) -> JudgedRun:
    """Run the cascade over the stream folder and match its detections to the truth (once)."""
    trace, result, truth = trace_stream(bundle, folder)
    events = [{"t": d.t, "label": d.label, "score": d.score} for d in result.detections]
    matches = match_events([(e["t"], e["label"]) for e in events], trace.keywords)
    found = keywords_found(matches, len(trace.keywords))
    return JudgedRun(trace, result, truth, events, matches, score_matches(matches, len(trace.keywords), result.duration_s),
                     found, trace_misses(trace, result.trace_opened, found, bundle.labels, bundle.smoothing))


def model_costs(bundle: Bundle) -> tuple[Any, Any]:
    return model_cost(bundle.stage1.int8_path), model_cost(bundle.stage2.int8_path)


def energy_rows(bundle: Bundle, stage2_rate_per_s: float, profiles: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Energy per hour of listening at the measured stage-2 rate, cascade vs stage 2 always on."""

    s1, s2 = model_costs(bundle)
    rows = []
    for profile in [load_profile(p) for p in profiles] if profiles else load_all():
        est = estimate_cascade(s1, s2, bundle.config, profile, inference_stride_ms=bundle.inference_stride_ms,
                               stage2_rate_per_s=stage2_rate_per_s)
        always = est.stage2_always_on
        rows.append({"profile": profile.name, "energy_j_per_hour": est.energy_j_per_hour,
                     "stage2_always_on_j_per_hour": always.energy_j_per_hour,
                     "ratio": est.cascade_vs_stage2_energy, "battery_days": est.battery_days,
                     "stage2_always_on_battery_days": always.battery_days, "fits": est.fits.ok})
    return rows


def evaluate_streams(bundle: Bundle, folders: Sequence[Path], *, target_fa_per_hour: float = 5.0,
                     hit_target: float = 0.95, profiles: Sequence[str] | None = None) -> dict[str, Any]:
    """Score the bundle's own operating point on each stream and over all of them, plus the
    pooled DET curve, the rate at ``hit_target`` hits and the hits at ``target_fa_per_hour``;
    and per keyword: hits, misses, false accepts of that label per hour, and its DET curve."""
    per_stream, traces, detections = [], [], []
    found: list[bool] = []  # per spoken keyword, over all streams: hit at the operating point
    reasons: list = []  # per spoken keyword: None (hit) or why it was missed (miss_reasons)
    seconds = steps = runs = 0.0
    for folder in folders:
        check_stream_folder(folder)
    for folder in folders:
        run = judge_stream(bundle, folder)
        result = run.result
        found += run.found
        reasons += run.reasons
        sources = by_source(run.truth, result.trace_t, result.trace_opened,
                            [e["t"] for e, m in zip(run.events, run.matches) if m is None], result.duration_s)
        per_stream.append({"stream": str(folder), **run.score.to_json(), "stage2_runs": result.stage2_runs,
                           "stage2_per_hour": result.stage2_per_hour, "stage2_duty": result.stage2_duty,
                           "by_source": pool_sources([sources])})
        traces.append(run.trace)
        detections.append(run.events)
        seconds, steps, runs = seconds + result.duration_s, steps + result.steps, runs + result.stage2_runs
    sweep, keyword_figures = keyword_results(bundle, traces, detections)
    pooled = [det_point(p.threshold, p.total) for p in sweep]
    hits = sum(s["hits"] for s in per_stream)
    keywords = sum(s["keywords"] for s in per_stream)
    fa = sum(s["false_accepts"] for s in per_stream)
    rate = runs / seconds if seconds else 0.0
    return {
        "model": str(bundle.path), "smoothing": bundle.smoothing.to_dict(),
        "operating_point": {"name": bundle.sensitivity, **bundle.operating_point.to_dict()}, "streams": per_stream,
        "total": {"hours": seconds / 3600.0, "keywords": keywords, "hits": hits, "hit_rate": hits / keywords if keywords else 0.0,
                  "false_accepts": fa, "false_accepts_per_hour": fa * 3600.0 / seconds if seconds else 0.0,
                  "stage2_runs": int(runs), "stage2_duty": runs / steps if steps else 0.0,
                  "stage2_per_hour": rate * 3600.0},
        "by_source": pool_sources([s["by_source"] for s in per_stream]),
        "det": pooled,
        f"false_accepts_per_hour_at_{round(hit_target * 100)}pct_hits": rate_at_hits(pooled, hit_target),
        f"hit_rate_at_{target_fa_per_hour:g}_fa_per_hour": hits_at_rate(pooled, target_fa_per_hour),
        "energy": energy_rows(bundle, rate, profiles),
        "misses": tally(reasons),
        **keyword_figures,
        **hit_spread(found, [k for t in traces for k in t.keywords]),
    }


def hit_spread(found: Sequence[bool], keywords: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The hit rate's interval over the speakers of the keyword clips the streams play (truth
    files name each clip), as ``kws eval`` gives for clips; nothing when fewer than two are named."""
    spread = speaker_spread(found, [speaker_id(k["file"]) if k.get("file") else "" for k in keywords]) if found else None
    return {} if spread is None else {"speakers": spread.to_json() | {"text": spread.describe("keywords")}}


def keyword_results(bundle: Bundle, traces: Sequence[Trace], detections: Sequence[Sequence[dict[str, Any]]]
                    ) -> tuple[list[SweepPoint], dict[str, Any]]:
    """The pooled DET sweep of the traces, and per keyword: the detections' hits, misses and
    false accepts of that label (``per_keyword``) and its DET curve (``det_per_keyword``).
    ``detections``: each trace's events at the bundle's operating point."""
    sweep = pool_sweeps([det_sweep(t.times, t.posteriors, bundle.smoothing, bundle.labels, t.keywords, t.duration_s)
                         for t in traces])
    rows = pool_by_label([score_by_label(events, t.keywords, t.duration_s, bundle.labels)
                          for t, events in zip(traces, detections)], [t.duration_s for t in traces])
    return sweep, {"per_keyword": {name: keyword_row(score) for name, score in rows.items()},
                   "det_per_keyword": keyword_curves(sweep)}


def calibrate_bundle(bundle: Bundle, folders: Sequence[Path], out: Path, *, target_fa_per_hour: float,
                     per_keyword: bool = True, force: bool = False, hit_target: float = 0.95,
                     high_hit_target: float = 0.98, clean: Sequence[Path] = (), gate_loss: float = 0.0) -> dict[str, Any]:
    """Choose window, suppression and per-keyword thresholds on validation streams, then the
    named operating points around them (cascade/evaluation/sensitivity.py) and each point's gate
    tau (cascade/evaluation/gate_replay.py: at or above the clip-calibrated one, hits within
    ``gate_loss``), and write a new bundle carrying them (and how they were chosen); balanced is
    its default. ``clean``: streams of keywords spoken near the microphone over quiet noise, where
    balanced's hit target is judged."""
    refuse_existing(out, force, marks=(MANIFEST,), hint="replace it")  # before the costly tracing
    for folder in (*folders, *clean):
        check_stream_folder(folder)
    floor = float(bundle.calibration.get("tau", bundle.base_tau))
    opened = [open_trace(bundle, folder) for folder in folders]
    clean_opened = [open_trace(bundle, folder) for folder in clean]
    traces, clean_traces = traces_at(opened, floor)[0], traces_at(clean_opened, floor)[0]
    chosen = calibrate_operating_point(traces, bundle.labels, target_fa_per_hour,
                                       min_count=bundle.smoothing.min_count, release_ratio=bundle.smoothing.release_ratio,
                                       per_keyword=per_keyword)
    points = operating_points(traces, bundle.labels, chosen["smoothing"], hit_target=hit_target, clean=clean_traces,
                              high_hit_target=high_hit_target, target_fa_per_hour=target_fa_per_hour)
    points = choose_taus(points, chosen["smoothing"], bundle.labels, opened, clean_opened, floor, gate_loss)
    curve = gate_curve(points, chosen["smoothing"], bundle.labels, opened, clean_opened,
                       sorted({floor, *CURVE_TAUS, *(p.tau for p in points.values() if p.tau is not None)}))
    smoothing = points["balanced"].smoothing(chosen["smoothing"])
    calibration = dict(bundle.calibration)
    calibration["operating_point"] = {
        "target_false_accepts_per_hour": target_fa_per_hour, "per_keyword": per_keyword,
        "streams": [str(f) for f in folders], "validation": chosen["score"],
        "hours": sum(t.duration_s for t in traces) / 3600.0,
        "hit_target": hit_target, "high_hit_target": high_hit_target,
        "gate_floor_tau": floor, "gate_loss": gate_loss,
    }
    if clean:
        calibration["operating_point"]["clean_streams"] = [str(f) for f in clean]

    def figures(draft: Bundle) -> None:
        for name in (CURVE, KEYWORD_FREE):  # the gate's clip calibration is unchanged: carry its figures over
            if (bundle.path / name).is_file():
                shutil.copy2(bundle.path / name, draft.path / name)
        write_json(draft.path / OPERATING_POINT, {"chosen": chosen["smoothing"].to_dict(), "validation": chosen["score"],
                                                  "grid": chosen["grid"], "operating_points": named, "gate_curve": curve})

    named = {name: point.to_dict() for name, point in points.items()}
    write_bundle(out, bundle.stage1.path, bundle.stage2.path, tau=floor, inference_stride_ms=bundle.inference_stride_ms,
                 smoothing=smoothing, calibration=calibration, force=force, extras=figures, operating_points=points)
    return {"smoothing": smoothing.to_dict(), "validation": chosen["score"], "grid": chosen["grid"],
            "operating_points": points, "gate_curve": curve}
