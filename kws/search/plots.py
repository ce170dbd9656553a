"""The two pictures of a search: where the candidates sit in flash x SRAM (MCUNet's map) and
accuracy against MACs (the Pareto front)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cascade.evaluation.figures import pyplot, save_png
from kws.search.arch import SearchSpec


def _label(row: dict[str, Any]) -> str:
    return f"W{row['width']:g} {row['n_mfcc']}x{row['frames']}"


def memory_map_png(result: dict[str, Any], path: Path) -> Path:
    """Each candidate at (flash, SRAM) it needs; colour = int8 validation accuracy (trained),
    hollow = not trained, x = rejected; the board's limits dashed; the best starred."""
    fig, ax = pyplot().subplots(figsize=(7, 4.8))
    rows = list(result["candidates"].values())
    kb = 1024.0
    trained = [r for r in rows if r.get("val_accuracy") is not None]
    if trained:
        points = ax.scatter([r["flash_bytes"] / kb for r in trained], [r["sram_bytes"] / kb for r in trained],
                            c=[100 * r["val_accuracy"] for r in trained], cmap="viridis", s=60, edgecolors="k", zorder=3)
        fig.colorbar(points, ax=ax, label="int8 validation accuracy (%)")
    waiting = [r for r in rows if r["fits"] and r.get("val_accuracy") is None]
    ax.scatter([r["flash_bytes"] / kb for r in waiting], [r["sram_bytes"] / kb for r in waiting], s=60,
               facecolors="none", edgecolors="grey", label="fits, not trained", zorder=2)
    rejected = [r for r in rows if not r["fits"]]
    ax.scatter([r["flash_bytes"] / kb for r in rejected], [r["sram_bytes"] / kb for r in rejected], marker="x", s=50,
               c="red", label="rejected before training", zorder=2)
    for r in rows:
        ax.annotate(_label(r), (r["flash_bytes"] / kb, r["sram_bytes"] / kb), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    spec = SearchSpec.from_dict(result["spec"])
    ax.axvline(spec.flash_limit / kb, color="red", ls="--", lw=1, label=f"flash limit {spec.flash_limit / kb:.0f} KB")
    ax.axhline(spec.sram_limit / kb, color="orange", ls="--", lw=1, label=f"SRAM limit {spec.sram_limit / kb:.0f} KB")
    best = result.get("best")
    if best:
        ax.scatter([best["flash_bytes"] / kb], [best["sram_bytes"] / kb], marker="*", s=260, c="gold", edgecolors="k",
                   zorder=4, label=f"best: {_label(best)}")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("flash needed (KB, int8 model" + (" + stage 2" if spec.train.stage == 1 else "") + ")")
    ax.set_ylabel("SRAM needed (KB, arena + frontend buffers)")
    ax.set_title(f"stage {spec.train.stage} {spec.train.arch} on {spec.profile}")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return save_png(fig, path)


def pareto_png(result: dict[str, Any], path: Path) -> Path:
    """int8 validation accuracy against MACs of every trained candidate; the Pareto front
    (no cheaper candidate is as accurate) drawn, the best that fits starred."""
    fig, ax = pyplot().subplots(figsize=(7, 4.8))
    trained = [r for r in result["candidates"].values() if r.get("val_accuracy") is not None]
    for fits, style in ((True, {"c": "tab:blue", "label": "fits"}), (False, {"c": "tab:red", "label": "does not fit"})):
        pts = [r for r in trained if r["fits"] == fits]
        if pts:
            ax.scatter([r["macs"] for r in pts], [100 * r["val_accuracy"] for r in pts], s=40, **style)
    front, top = [], -1.0
    for r in sorted(trained, key=lambda r: (r["macs"], -r["val_accuracy"])):
        if r["val_accuracy"] > top:
            front.append(r)
            top = r["val_accuracy"]
    ax.plot([r["macs"] for r in front], [100 * r["val_accuracy"] for r in front], "k--", lw=1, label="Pareto front")
    for r in trained:
        ax.annotate(_label(r), (r["macs"], 100 * r["val_accuracy"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    best = result.get("best")
    if best:
        ax.scatter([best["macs"]], [100 * best["val_accuracy"]], marker="*", s=260, c="gold", edgecolors="k", zorder=4,
                   label=f"best that fits: {_label(best)}")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per inference")
    ax.set_ylabel("int8 validation accuracy (%)")
    spec = SearchSpec.from_dict(result["spec"])
    ax.set_title(f"stage {spec.train.stage} {spec.train.arch}: accuracy vs MACs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return save_png(fig, path)
