"""The report's plots as PNG bytes (matplotlib, Agg backend: no display needed).

Each function takes the plain data the artefacts hold (JSON dicts, arrays) and returns the
PNG, so the same bytes go into report.html (base64) and next to report.md (files).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cascade.energy.results import EnergyEstimate
from cascade.evaluation.det import keyword_det_figure
from cascade.evaluation.eval_report import ClassReport
from cascade.evaluation.figures import png_bytes, pyplot
from cascade.evaluation.model_eval import confusion_png
from cascade.evaluation.search import pareto_png

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.spines.top": False,
    "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "legend.fontsize": 8,
    "legend.frameon": False, "figure.dpi": 110,
}
CASCADE, ALWAYS, GATE, TRUTH, TAU = "#2563eb", "#dc2626", "#f59e0b", "#16a34a", "#dc2626"
HIT, MISS = "#15803d", "#dc2626"


def _png(fig) -> bytes:
    return png_bytes(fig, bbox_inches="tight", pad_inches=0.08)


def _subplots(*args, **kwargs):
    return pyplot().subplots(*args, **kwargs)


def _styled(fn):
    """Run a plot function under the report's rc style (fonts, grid, spines)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with pyplot().rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


@_styled
def threshold_curve_png(curve: Sequence[dict[str, float]], tau: float | None, target_recall: float | None) -> bytes:
    """Left: recall against invocation rate (the trade-off tau moves along); right: recall,
    invocation rate and false-open rate as functions of tau. The chosen tau is marked on both."""
    pts = sorted(curve, key=lambda p: p["tau"])
    t = np.array([p["tau"] for p in pts])
    rec = np.array([p["recall"] for p in pts])
    inv = np.array([p["invocation_rate"] for p in pts])
    fo = np.array([p.get("false_open_rate", np.nan) for p in pts])
    fig, (a, b) = _subplots(1, 2, figsize=(10, 3.6))
    a.plot(inv, rec, "-o", color=CASCADE, ms=3, lw=1.5, label="stage-1 operating points")
    b.plot(t, rec, color=CASCADE, lw=1.5, label="keyword recall")
    b.plot(t, inv, color=GATE, lw=1.5, label="invocation rate (all clips)")
    if np.isfinite(fo).any():
        b.plot(t, fo, color="#6b7280", lw=1.2, ls="--", label="false-open rate (non-keywords)")
    if tau is not None and len(t):
        i = int(np.argmin(np.abs(t - tau)))
        a.scatter([inv[i]], [rec[i]], marker="*", s=220, color="gold", edgecolors="k", zorder=5,
                  label=f"chosen tau = {tau:.3f}")
        a.annotate(f"recall {rec[i]:.2f}\ninvocation {inv[i]:.2f}", (inv[i], rec[i]), xytext=(12, -30),
                   textcoords="offset points", fontsize=8, arrowprops={"arrowstyle": "-", "color": "0.4"})
        b.axvline(tau, color=TAU, lw=1, ls=":", label=f"tau = {tau:.3f}")
    if target_recall is not None:
        a.axhline(target_recall, color="0.5", lw=0.8, ls=":", label=f"target recall {target_recall:.2f}")
    a.set(xlabel="stage-2 invocation rate (share of validation clips)", ylabel="stage-1 keyword recall",
          title="Recall vs invocation rate", xlim=(-0.02, 1.02), ylim=(-0.02, 1.05))
    b.set(xlabel="gate threshold tau (stage-1 keyword probability)", ylabel="rate", title="Rates vs tau",
          ylim=(-0.02, 1.05))
    a.legend(loc="lower right")
    b.legend(loc="upper right")
    fig.tight_layout()
    return _png(fig)


@_styled
def timeline_png(duration_s: float, keywords: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]],
                 trace: dict[str, np.ndarray] | None, tau: float | None, row_seconds: float = 60.0) -> bytes:
    """The long recording in rows of about a minute: stage-1 keyword probability, the tau
    line, gate openings (shaded band at the bottom), detections (triangles with their label,
    at their score; green when ``e["hit"]``, red when a false accept, grey when unscored) and
    the true keywords (green spans with their label)."""
    plt = pyplot()
    rows = max(1, min(8, math.ceil(duration_s / row_seconds)))
    span = duration_s / rows
    fig, axes = _subplots(rows, 1, figsize=(12, 2.3 * rows + 0.5), squeeze=False)
    for r, ax in enumerate(axes[:, 0]):
        lo, hi = r * span, (r + 1) * span
        for k in keywords:
            if k["end"] >= lo and k["start"] <= hi:
                ax.axvspan(k["start"], k["end"], color=TRUTH, alpha=0.15, lw=0)
                ax.text((k["start"] + k["end"]) / 2, 1.13, k["label"], ha="center", va="bottom", fontsize=8,
                        color=TRUTH, fontweight="bold", clip_on=True)
        if trace is not None:
            t, p, opened = trace["t"], trace["p_keyword"], trace["opened"].astype(bool)
            sel = (t >= lo - 1) & (t <= hi + 1)
            ax.fill_between(t[sel], 0, 0.1, where=opened[sel], step="mid", color=GATE, alpha=0.75, lw=0,
                            transform=ax.get_xaxis_transform())
            ax.plot(t[sel], p[sel], color=CASCADE, lw=0.9)
        if tau is not None:
            ax.axhline(tau, color=TAU, lw=1, ls="--")
        for e in events:
            if lo <= e["t"] <= hi:
                y = float(e.get("score", 1.0))
                colour = {True: HIT, False: MISS}.get(e.get("hit"), "0.5")
                ax.plot([e["t"]], [y], marker="v", ms=8, color=colour, mec="k", mew=0.6, zorder=5)
                ax.annotate(e["label"], (e["t"], y), xytext=(0, 6), textcoords="offset points", ha="center",
                            fontsize=8, fontweight="bold", color="0.15", zorder=6)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.2)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel("p(keyword)")
        ax.grid(axis="y", alpha=0.3)
        ax.grid(axis="x", alpha=0.15)
    axes[-1, 0].set_xlabel("time in the recording (s)")
    handles = [plt.Line2D([], [], color=TRUTH, lw=8, alpha=0.3, label="true keyword")] if keywords else []
    if trace is not None:
        handles += [plt.Line2D([], [], color=CASCADE, lw=1.2, label="stage-1 keyword probability"),
                    plt.Line2D([], [], color=GATE, lw=6, alpha=0.75, label="gate open (stage 2 runs)")]
    if tau is not None:
        handles.append(plt.Line2D([], [], color=TAU, lw=1, ls="--", label=f"tau = {tau:.3f}"))
    if any("hit" in e for e in events):
        handles += [plt.Line2D([], [], marker="v", ls="", color=HIT, mec="k", ms=8, label="detection: hit"),
                    plt.Line2D([], [], marker="v", ls="", color=MISS, mec="k", ms=8, label="detection: false accept")]
    else:
        handles.append(plt.Line2D([], [], marker="v", ls="", color="0.5", mec="k", ms=8, label="detection (at its score)"))
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (2.3 * rows + 0.5)))
    return _png(fig)


@_styled
def energy_bars_png(energy: dict[str, EnergyEstimate]) -> bytes:
    """Energy per hour of listening, cascade vs stage 2 always on, per profile; each bar is
    labelled with the battery life it gives; hatched when the board cannot keep up."""
    names = list(energy)
    y = np.arange(len(names))
    casc = [energy[n].energy_j_per_hour for n in names]
    always = [energy[n].stage2_always_on.energy_j_per_hour for n in names]
    fig, ax = _subplots(figsize=(10, 0.75 * len(names) + 1.3))
    h = 0.38
    bars = [(y - h / 2, casc, CASCADE, "cascade", lambda n: energy[n]),
            (y + h / 2, always, ALWAYS, "stage 2 always on", lambda n: energy[n].stage2_always_on)]
    top, floor = max(always + casc), min(always + casc) / 3
    for pos, values, colour, label, rec in bars:
        drawn = ax.barh(pos, [v - floor for v in values], h, left=floor, color=colour, alpha=0.85, label=label)
        for bar, n, v in zip(drawn, names, values):
            r = rec(n)
            slow = r.realtime is not None and not r.realtime.ok
            if slow:
                bar.set_hatch("///")
                bar.set_edgecolor("white")
            ax.text(v * 1.06, bar.get_y() + h / 2, f"{r.battery_days:.1f} days" + ("  (cannot keep up)" if slow else ""),
                    va="center", fontsize=8)
    ax.set_yticks(y, [f"{n}\n{energy[n].clock_mhz:g} MHz" for n in names])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(floor, top * 6)
    battery = next(iter(energy.values())).battery or "battery"
    ax.set_xlabel(f"energy per hour of listening (J, log scale); labels: {battery} battery life")
    ax.set_title("Cascade vs stage 2 always on, per MCU profile")
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _png(fig)


@_styled
def pareto_points_png(energy: dict[str, EnergyEstimate], cascade_accuracy: float, stage2_accuracy: float) -> bytes:
    """Accuracy against energy per hour: per profile, stage 2 always on (square) and the
    cascade (circle), an arrow from one to the other; log energy axis (profiles differ a lot)."""
    plt = pyplot()
    fig, ax = _subplots(figsize=(8, 4.2))
    cmap = plt.get_cmap("tab10")
    for i, (name, r) in enumerate(energy.items()):
        c = cmap(i % 10)
        x0, x1 = r.stage2_always_on.energy_j_per_hour, r.energy_j_per_hour
        ax.annotate("", (x1, cascade_accuracy), (x0, stage2_accuracy),
                    arrowprops={"arrowstyle": "->", "color": c, "lw": 1.2, "alpha": 0.8})
        ax.scatter([x0], [stage2_accuracy], marker="s", s=45, color=c, edgecolors="k", lw=0.5, zorder=4)
        ax.scatter([x1], [cascade_accuracy], marker="o", s=55, color=c, edgecolors="k", lw=0.5, zorder=4, label=name)
    ax.set_xscale("log")
    lo, hi = min(cascade_accuracy, stage2_accuracy), max(cascade_accuracy, stage2_accuracy)
    pad = max(0.05, (hi - lo) * 0.5)
    ax.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) + 0.01)
    ax.set_xlabel("energy per hour of listening (J, log scale)")
    ax.set_ylabel("accuracy (test)")
    ax.set_title("Accuracy vs energy: square = stage 2 always on, circle = cascade")
    ax.legend(loc="best", ncol=2)
    fig.tight_layout()
    return _png(fig)


@_styled
def history_png(histories: Sequence[tuple[str, list[dict[str, Any]]]]) -> bytes:
    """Training and validation accuracy per epoch, one panel per model."""
    fig, axes = _subplots(1, len(histories), figsize=(5 * len(histories), 3.0), squeeze=False)
    for ax, (title, hist) in zip(axes[0], histories):
        epochs = [h.get("epoch", i) + 1 for i, h in enumerate(hist)]
        for key, colour, label in (("accuracy", "0.55", "training"), ("val_accuracy", CASCADE, "validation")):
            values = [h.get(key) for h in hist]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], color=colour, lw=1.4, label=label)
        ax.set(title=title, xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        ax.legend(loc="lower right")
    fig.tight_layout()
    return _png(fig)


def search_png(result: dict[str, Any]) -> bytes:
    """``kws cascade search``'s own Pareto plot, as bytes."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return pareto_png(result, Path(tmp) / "pareto.png").read_bytes()


def confusion_matrix_png(evaluation: dict[str, Any], title: str) -> bytes:
    """The evaluation's confusion matrix, drawn by the same code as ``kws eval --png``."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return confusion_png(ClassReport.from_json(evaluation), Path(tmp) / "confusion.png", title).read_bytes()


@_styled
def keyword_det_png(curves: dict[str, list[dict[str, float]]], overall: list[dict[str, float]] | None,
                    marks: dict[str, tuple[float, float]], title: str) -> bytes:
    """A DET curve per keyword, drawn by the same code as ``kws stream eval --det-per-keyword``."""
    fig = keyword_det_figure(curves, title, overall, marks)
    fig.tight_layout()
    return _png(fig)
