"""The report's per-keyword section for streams: hits, misses and false accepts of each
keyword at the operating point, and its DET curve, from ``kws stream eval --json`` (pooled over
its streams) or, failing that, the demo's scored recording (``detections.json``)."""

from __future__ import annotations

from typing import Any

from cascade.evaluation.det import keyword_marks
from cascade.evaluation.miss_reasons import REASONS
from cascade.evaluation.miss_reasons import describe as describe_misses
from kws.report import plots
from kws.report.doc import Figure, Section, Table, Text, count, num, omitted, pct, rel
from kws.report.find import Artefacts


def keyword_source(a: Artefacts) -> tuple[dict[str, Any] | None, str]:
    """The artefact holding per-keyword stream figures, and what it is."""
    if a.stream_eval is not None and a.stream_eval.get("per_keyword"):
        hours = (a.stream_eval.get("total") or {}).get("hours")
        where = f" (`{rel(a.stream_eval_path, a.run_dir)}`)" if a.stream_eval_path else ""
        return a.stream_eval, f"{len(a.stream_eval.get('streams') or [])} stream(s), {num(hours, 2)} h{where}"
    if a.detections is not None and a.detections.get("per_keyword"):
        return a.detections, "the long recording"
    return None, ""


def keywords_section(a: Artefacts) -> Section:
    key, title = "keywords", "Keywords on streams"
    data, what = keyword_source(a)
    if data is None:
        return omitted(key, title, "no per-keyword stream figures (from `kws stream eval --json` or the demo's stream step)")
    rows = data["per_keyword"]
    table = Table(("keyword", "spoken", "hits", "misses", "hit rate", "false accepts", "false accepts / hour"),
                  tuple((name, count(r["keywords"]), count(r["hits"]), count(r["misses"]), pct(r["hit_rate"]),
                         count(r["false_accepts"]), num(r["false_accepts_per_hour"], 1)) for name, r in rows.items()),
                  "Per keyword at the operating point")
    spread = data.get("speakers")  # kws stream eval since the spread over speakers
    hit_rate = (data.get("total") or data.get("score") or {}).get("hit_rate")  # kws stream eval; the demo's run
    over_speakers = (f" The hit rate {pct(hit_rate)}: {spread['text']}." if isinstance(spread, dict)
                     and isinstance(spread.get("text"), str) else "")
    misses = data.get("misses")  # kws stream eval and the demo since the miss reasons
    why = (f" Why the missed ones were missed (cascade/evaluation/miss_reasons.py): {describe_misses(misses)}."
           if isinstance(misses, dict) and all(isinstance(misses.get(r), int) for r in REASONS)
           and isinstance(misses.get("heard_as"), dict) else "")
    blocks: list = [
        Text(f"On {what}: a keyword's false accepts are detections of it where it was not spoken (double "
             f"triggers included), per hour of the whole stream; the rows add up to the totals.{over_speakers}{why}"),
        table,
    ]
    curves = data.get("det_per_keyword") or {}
    if curves:
        blocks.append(Figure("keyword_det", plots.keyword_det_png(curves, data.get("det"), keyword_marks(rows),
                                                                  "DET per keyword"),
                             "Miss rate against false accepts per hour of that keyword, one panel per keyword spoken "
                             "in the streams, as all thresholds move together; grey: all keywords; star: the "
                             "operating point."))
    return Section(key, title, tuple(blocks))
