"""The stage-1 gate: open when P(keyword) >= tau; tau calibrated for a target keyword recall.

Calibration runs on the int8 stage-1 outputs (what the device computes), so the recall it
promises is the recall the firmware gets. The target is pooled over the keywords; each keyword's
own recall is reported beside it, because a keyword with fewer or harder clips can sit well below
the pool (a floor per keyword was measured and not adopted: docs/custom_keywords.md, "The gate's
floor per keyword").
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.errors import ConfigError


def gate_open(p_keyword: np.ndarray | float, tau: float) -> np.ndarray:
    """Compared in float64 whatever the input dtype, so batch (float32 arrays) and stream
    (Python floats) make the same decision, and so does firmware's integer compare."""
    return np.asarray(p_keyword, dtype=np.float64) >= float(tau)


@dataclasses.dataclass(frozen=True)
class Calibration:
    tau: float
    target_recall: float
    recall: float  # share of keyword clips the gate passes at tau
    invocation_rate: float  # share of all clips that open the gate
    false_open_rate: float  # share of non-keyword clips that open the gate
    n_keyword: int
    n_other: int
    per_keyword: dict[str, float] = dataclasses.field(default_factory=dict)  # each keyword's recall at tau


def threshold_curve(p_keyword: np.ndarray, is_keyword: np.ndarray) -> list[dict[str, float]]:
    """Recall and invocation rate at every distinct score: the stage-1 threshold curve."""
    p, kw = np.asarray(p_keyword, np.float64), np.asarray(is_keyword, bool)
    out = []
    for tau in np.unique(p):
        opened = p >= tau
        out.append({
            "tau": float(tau),
            "recall": float(opened[kw].mean()) if kw.any() else 0.0,
            "invocation_rate": float(opened.mean()),
            "false_open_rate": float(opened[~kw].mean()) if (~kw).any() else 0.0,
        })
    return out


def calibrate(p_keyword: np.ndarray, is_keyword: np.ndarray, target_recall: float,
              keywords: np.ndarray | None = None) -> Calibration:
    """The largest tau whose recall on keyword clips is >= ``target_recall``; ``keywords`` (each
    clip's keyword, anything where ``is_keyword`` is False) adds each keyword's recall there."""
    if not 0 < target_recall <= 1:
        raise ConfigError(f"target recall must be in (0, 1], got {target_recall}")
    p, kw = np.asarray(p_keyword, np.float64), np.asarray(is_keyword, bool)
    if not kw.any():
        raise ConfigError("cannot calibrate the gate: no keyword clips in the calibration data")
    scores = np.sort(p[kw])
    # Keep at least ceil(target * n) keyword clips: tau is the score of the weakest kept one.
    keep = int(np.ceil(target_recall * len(scores) - 1e-9))
    tau = float(scores[len(scores) - keep])
    opened = p >= tau
    return Calibration(
        tau=tau,
        target_recall=float(target_recall),
        recall=float(opened[kw].mean()),
        invocation_rate=float(opened.mean()),
        false_open_rate=float(opened[~kw].mean()) if (~kw).any() else 0.0,
        n_keyword=int(kw.sum()),
        n_other=int((~kw).sum()),
        per_keyword={} if keywords is None else _recall_by_name(opened[kw], np.asarray(keywords).astype(str)[kw]),
    )


def _recall_by_name(opened: np.ndarray, names: np.ndarray) -> dict[str, float]:
    return {name: float(opened[names == name].mean()) for name in sorted(set(names))}


def lowest_keyword(per_keyword: dict[str, float]) -> str:
    """The keyword the gate passes least, for a one-line summary."""
    if not per_keyword:
        return "n/a"
    name = min(per_keyword, key=per_keyword.__getitem__)
    return f"{name} {per_keyword[name]:.1%}"
