"""The device side of the report: energy per MCU profile, the accuracy/energy trade-off and
the exported firmware files."""

from __future__ import annotations

import os
from pathlib import Path

from cascade.energy.results import AlwaysOn, EnergyEstimate
from kws.report import plots
from kws.report.doc import DASH, Figure, Row, Section, Table, Text, count, days, num, omitted, pct, ratio, rel
from kws.report.find import Artefacts

REFERENCE_PROFILE = "nrf52840"


def is_cascade_energy(energy: dict[str, EnergyEstimate] | None) -> bool:
    return bool(energy) and all(r.is_cascade for r in energy.values())


def reference_profile(energy: dict[str, EnergyEstimate]) -> str:
    """The profile the headline quotes: the nRF52840 when present (a common BLE board)."""
    return REFERENCE_PROFILE if REFERENCE_PROFILE in energy else next(iter(energy))


def _ms(x: float | None) -> str:
    return DASH if x is None else f"{x:,.2f} ms"


def _uj(x: float | None) -> str:
    return DASH if x is None else f"{x:,.1f} µJ"


def _fit(r: EnergyEstimate) -> str:
    f = r.fits
    if f is None:
        return DASH
    return "yes" if f.ok else ("no: " + ", ".join(k for k in ("flash", "sram") if getattr(f, k) is False))


def _keeps_up(r: EnergyEstimate | AlwaysOn) -> str:
    rt = r.realtime
    return DASH if rt is None else ("yes" if rt.ok else "no")


def energy_section(a: Artefacts) -> Section:
    key, title = "energy", "Energy per MCU profile"
    energy = a.energy
    if not energy:
        return omitted(key, title, "no energy JSON (from `kws energy --json`) found")
    first = next(iter(energy.values()))
    if not is_cascade_energy(energy):
        rows = tuple((name, r.board or DASH, f"{r.clock_mhz or 0:g} MHz",
                      _ms(r.latency_ms.get("model")), _uj(r.energy_uj.get("model")),
                      pct(r.duty_cycle, 2), num(r.avg_power_mw, 3), days(r.battery_days),
                      _fit(r), _keeps_up(r)) for name, r in energy.items())
        return Section(key, title, (
            Text("A single model running at every inference stride (no cascade in this energy file)."),
            Table(("profile", "board", "clock", "latency", "energy / inference", "duty cycle", "avg power (mW)",
                   f"battery ({first.battery or '?'})", "fits", "keeps up"), rows)))
    per_inference = tuple(
        (name, f"{r.clock_mhz or 0:g} MHz", _ms(r.latency_ms.get("stage1")), _ms(r.latency_ms.get("stage2")),
         _uj(r.energy_uj.get("stage1")), _uj(r.energy_uj.get("stage2")), _fit(r),
         f"{r.board or DASH}; {r.runtime or DASH}")
        for name, r in energy.items())
    listening = tuple(
        (name, pct(r.duty_cycle, 2), pct(r.stage2_always_on.duty_cycle, 1),
         f"{num(r.avg_power_mw, 3)} / {num(r.stage2_always_on.avg_power_mw, 3)}",
         f"{num(r.energy_j_per_hour, 2)} / {num(r.stage2_always_on.energy_j_per_hour, 2)}",
         ratio(r.cascade_vs_stage2_energy),
         f"{num(r.battery_days, 1)} / {num(r.stage2_always_on.battery_days, 1)}",
         f"{_keeps_up(r)} / {_keeps_up(r.stage2_always_on)}")
        for name, r in energy.items())
    return Section(key, title, (
        Text(f"Stage 1 runs every {first.inference_stride_ms or 0:g} ms; stage 2 at "
             f"{num(first.stage2_rate_per_s, 3)} calls per second (measured on keyword-free audio); features "
             f"every {first.hop_ms or 0:g} ms hop. 'Stage 2 always on' runs stage 2 at every inference stride "
             f"with no gate. Battery: {first.battery or '?'}."),
        Table(("profile", "clock", "stage 1 latency", "stage 2 latency", "stage 1 energy", "stage 2 energy",
               "fits flash + SRAM", "board; runtime"), per_inference, "Per inference"),
        Table(("profile", "duty cycle", "always-on duty", "power (mW)", "J / hour", "energy ratio",
               f"battery days ({first.battery or '?'})", "keeps up in real time"),
              listening, "Listening for an hour: cascade / stage 2 always on"),
        Figure("energy", plots.energy_bars_png(energy),
               "Energy per hour of listening; each bar is labelled with the battery life it gives. "
               "Hatched: the board cannot keep up with that workload in real time."),
    ))


def pareto_section(a: Artefacts) -> Section:
    key, title = "pareto", "Accuracy vs energy"
    if a.search:
        s = a.search
        best = s.get("best")
        text = (f"`kws cascade search` on {s.get('profile')}: {count(len(s['candidates']))} (stage 1, tau) candidates "
                f"on the {s.get('split')} split; required accuracy {pct(s.get('required_accuracy'))}; stage 2 alone "
                f"{pct(s.get('stage2_accuracy'))} at {num(s.get('stage2_always_on_energy_j_per_hour'), 2)} J/hour.")
        if best:
            text += (f" Chosen: {rel(Path(best['stage1']), a.run_dir)} at tau {best['tau']:.3f}, accuracy {pct(best['accuracy'])}, "
                     f"{num(best['energy_j_per_hour'], 2)} J/hour.")
        return Section(key, title, (Text(text), Figure("pareto", plots.search_png(s),
                                                       "Every candidate's energy and accuracy; the dashed line is the "
                                                       "Pareto front, the star the chosen cascade.")))
    ev, energy = a.evaluation, a.energy
    if not (ev and "stage2_accuracy" in ev and is_cascade_energy(energy)):
        return omitted(key, title, "needs a cascade evaluation and a cascade energy JSON, or a cascade_search.json "
                                   "(from `kws cascade search`)")
    return Section(key, title, (
        Text("Only one cascade was built in this run, so each profile has two points: stage 2 always on and the "
             "cascade. Run `kws cascade search` into the run directory to plot every stage-1 / tau candidate."),
        Figure("pareto", plots.pareto_points_png(energy, ev["accuracy"], ev["stage2_accuracy"]),
               "Accuracy against energy per hour of listening, per MCU profile."),
    ))


def export_section(a: Artefacts) -> Section:
    key, title = "export", "Firmware export"
    if a.export_dir is None:
        return omitted(key, title, "no firmware export (a folder with kws_export.json, from `kws export`) found")
    groups: dict[str, list[tuple[str, int]]] = {}
    for root, dirs, names in os.walk(a.export_dir):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            top, _, rest = rel(path, a.export_dir).partition("/")
            folder, shown = (f"{top}/", rest) if rest else ("./", top)
            groups.setdefault(folder, []).append((shown, path.stat().st_size))
    files = [f for group in groups.values() for f in group]
    total = sum(size for _, size in files)
    tables = tuple(
        Table(("file", "bytes"), tuple((name, f"{size:,}") for name, size in group)
              + ((("total", f"{sum(size for _, size in group):,}"),) if len(group) > 1 else ()), folder)
        for folder, group in sorted(groups.items(), key=lambda kv: (kv[0] != "./", kv[0])))
    return Section(key, title, (
        Text(f"{count(len(files))} files, {total:,} bytes in all, in `{rel(a.export_dir, a.run_dir)}/`."),
        Row(tables),
    ))
