"""``kws report``: one page a person would rather look at than a folder of JSON files.

``build_report(run_dir)`` finds the run's artefacts by their content (kws.report_find lists
what is recognised), builds the sections once (kws.report_sections, kws.report_device) and
writes them twice:

  RUN_DIR/report.html            self-contained: inline CSS, plots as base64 PNG, no scripts
  RUN_DIR/report.md              the same content in Markdown
  RUN_DIR/report_files/*.png     the plots report.md links to

Sections whose inputs are missing are replaced by a one-line note. The expected layout is
the one ``kws demo`` writes (features/, train_stage1/model/, train_stage2/model/, tflm/,
cascade/bundle/, evaluate/, stream/, energy/, export/), but any layout works. A previous
report is replaced; any other file in the way is kept unless ``force``.
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from pathlib import Path

from cascade.runtime.bundle import kws_version
from data_prep.atomic import publish_dir, remove_stale, temp_sibling, write_bytes_atomic, write_text_atomic
from data_prep.errors import KwsError
from data_prep.outputs import make_dirs
from kws.report.device import energy_section, export_section, is_cascade_energy, pareto_section, reference_profile
from kws.report.doc import Headline, Report, count, days, num, pct, ratio
from kws.report.find import Artefacts, find_artefacts
from kws.report.html import GENERATOR, render_html
from kws.report.keywords import keywords_section
from kws.report.markdown import MARKER, render_md
from kws.report.sections import evaluation_section, features_section, gate_section, models_section, stream_section

HTML_NAME, MD_NAME, FILES_DIR = "report.html", "report.md", "report_files"


def headline(a: Artefacts) -> tuple[Headline, ...]:
    """The numbers at the top; a figure the run does not have reads '—'."""

    ev = a.evaluation or {}
    cascade_eval = "stage2_accuracy" in ev
    score = (a.detections or {}).get("score") or {}
    n = f"{count(ev['n'])} {ev.get('split', 'test')} clips" if "n" in ev else "no evaluation in this run"
    items = [
        Headline("Cascade accuracy" if cascade_eval else "Accuracy", pct(ev.get("accuracy")), n),
        Headline("Stage 2 alone", pct(ev.get("stage2_accuracy")), "same clips, no gate" if cascade_eval else "no cascade evaluation"),
        Headline("Stage-1 recall", pct(ev.get("stage1_recall")),
                 f"keywords passed at tau {ev['tau']:.3f}" if ev.get("tau") is not None else "keywords passed by the gate"),
        Headline("Invocation rate", pct(ev.get("stage2_invocation_rate")), f"of {ev.get('split', 'test')} clips reach stage 2"),
        Headline("Hit rate", pct(score.get("hit_rate")),
                 f"{count(score['hits'])} of {count(score['keywords'])} keywords, long recording" if score else "no scored recording"),
        Headline("False accepts / hour", num(score.get("false_accepts_per_hour"), 1),
                 f"{count(score['false_accepts'])} in {num(score['duration_s'], 0)} s" if score else "no scored recording"),
    ]
    if is_cascade_energy(a.energy):
        name = reference_profile(a.energy)
        r = a.energy[name]
        items += [
            Headline(f"Energy ratio ({name})", ratio(r.cascade_vs_stage2_energy), "cascade / stage 2 always on"),
            Headline(f"Battery life ({name})", days(r.battery_days),
                     f"vs {days(r.stage2_always_on.battery_days)} always on, {r.battery or '?'}"),
        ]
    else:
        items += [Headline("Energy ratio", ratio(None), "no cascade energy in this run"),
                  Headline("Battery life", days(None), "no cascade energy in this run")]
    return tuple(items)


def make_report(run_dir: Path, log: Callable[[str], None] | None = None) -> Report:
    """Find the artefacts and build every section (plots rendered in memory); ``log`` hears
    about each artefact skipped for a malformed value."""

    a = find_artefacts(run_dir)
    for note in a.notes:
        (log or (lambda line: None))(note)
    if a.empty():
        raise KwsError(f"{run_dir}: nothing to report (no model, bundle, evaluation, stream, energy or export "
                       "output of kws found under it)")
    sections = tuple(build(a) for build in (
        features_section, models_section, evaluation_section, gate_section, stream_section, keywords_section, energy_section,
        pareto_section, export_section))
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    return Report("Keyword-spotting cascade report",
                  f"run {Path(run_dir).resolve()} · kws {kws_version()} · {when}", headline(a), sections)


def _is_ours(path: Path) -> bool:
    """A file or folder a previous ``kws report`` wrote (safe to replace)."""

    if not path.exists():
        return True
    if path.is_dir():
        return all(p.is_file() and p.suffix == ".png" for p in path.iterdir())
    head = path.read_text(errors="replace")[:2000]
    return (GENERATOR in head) if path.suffix == ".html" else head.startswith(MARKER)


def build_report(run_dir: Path, out: Path | None = None, *, force: bool = False,
                 log: Callable[[str], None] | None = None) -> tuple[Path, Path]:
    """Write report.html, report.md and report_files/ into ``out`` (default: ``run_dir``)."""

    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir
    html_path, md_path, files = out / HTML_NAME, out / MD_NAME, out / FILES_DIR
    if files.exists() and not (files.is_dir() and _is_ours(files)):  # --force replaces a file, never a user's folder
        raise KwsError(f"{files}: not written by kws report (not only its .png plots); "
                       "refusing to replace it even with --force")
    for path in (html_path, md_path):
        if not force and not _is_ours(path):
            raise KwsError(f"{path}: exists and is not a previous kws report (use --force to replace it)")
    report = make_report(run_dir, log)
    make_dirs(out)
    remove_stale(files)
    tmp = temp_sibling(files)
    tmp.mkdir()
    try:
        for fig in report.figures():
            write_bytes_atomic(tmp / f"{fig.name}.png", fig.png)
        publish_dir(tmp, files)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(md_path, render_md(report, FILES_DIR))
    write_text_atomic(html_path, render_html(report))
    return html_path, md_path
