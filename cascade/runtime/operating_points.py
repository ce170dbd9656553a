"""Named operating points a person can choose: ``high``, ``balanced`` (the default), ``low``.

Each point is a set of detection thresholds (a default and per-keyword overrides) over the
bundle's one smoothing (window, suppression, release), and the gate's tau at that point (None:
the bundle's), with what it was measured to do on validation streams: hit rate, false accepts
per hour, the share of steps stage 2 ran on (the energy), the hours they were measured on and
an exact Poisson 95 % interval on the false-accept rate. A bundle written before points existed
has one: ``balanced`` = its smoothing thresholds (with the figures of its calibration, if any).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from cascade.runtime.decision import SmoothingConfig
from data_prep.errors import ModelError

SENSITIVITIES = ("high", "balanced", "low")
DEFAULT_SENSITIVITY = "balanced"


def poisson_interval(count: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval on the mean of a Poisson count: the means under which seeing
    ``count`` or fewer / ``count`` or more events has probability (1 - level) / 2."""
    tail = (1.0 - level) / 2.0

    def at_most(k: int, mean: float) -> float:  # P(X <= k)
        if k < 0:
            return 0.0
        if mean == 0.0:
            return 1.0
        return sum(math.exp(-mean + i * math.log(mean) - math.lgamma(i + 1)) for i in range(k + 1))

    def solve(f, target: float) -> float:  # f decreasing in the mean: bisection
        lo, hi = 0.0, count + 10.0 + 10.0 * math.sqrt(count + 1)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if count == 0 else solve(lambda m: at_most(count - 1, m), 1.0 - tail)
    return lower, solve(lambda m: at_most(count, m), tail)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Measured:
    """What a point did on validation streams."""

    keywords: int
    hits: int
    false_accepts: int
    hours: float
    stage2_duty: float | None = None  # share of the streams' steps stage 2 ran on (None: not measured)

    @property
    def hit_rate(self) -> float:
        return self.hits / self.keywords if self.keywords else 0.0

    @property
    def false_accepts_per_hour(self) -> float:
        return self.false_accepts / self.hours if self.hours else 0.0

    @property
    def false_accepts_per_hour_ci95(self) -> tuple[float, float]:
        lo, hi = poisson_interval(self.false_accepts)
        return (lo / self.hours, hi / self.hours) if self.hours else (0.0, math.inf)

    def to_dict(self) -> dict[str, Any]:
        return {"keywords": self.keywords, "hits": self.hits, "hit_rate": self.hit_rate,
                "false_accepts": self.false_accepts, "false_accepts_per_hour": self.false_accepts_per_hour,
                "false_accepts_per_hour_ci95": list(self.false_accepts_per_hour_ci95), "hours": self.hours,
                **({} if self.stage2_duty is None else {"stage2_duty": self.stage2_duty})}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Measured":
        duty = data.get("stage2_duty")
        return cls(keywords=int(data["keywords"]), hits=int(data["hits"]), false_accepts=int(data["false_accepts"]),
                   hours=float(data["hours"]), stage2_duty=None if duty is None else float(duty))


@dataclasses.dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    name: str
    threshold: float
    label_thresholds: tuple[tuple[str, float], ...] = ()
    measured: Measured | None = None  # on the validation streams (music, speech: false accepts)
    clean: Measured | None = None  # on clean near-mic keyword streams (what a person speaking to it gets)
    tau: float | None = None  # the gate's tau at this point (None: the bundle's)

    @classmethod
    def of(cls, name: str, smoothing: SmoothingConfig, measured: Measured | None = None,
           clean: Measured | None = None, tau: float | None = None) -> "OperatingPoint":
        return cls(name=name, threshold=smoothing.threshold, label_thresholds=smoothing.label_thresholds,
                   measured=measured, clean=clean, tau=tau)

    def smoothing(self, base: SmoothingConfig) -> SmoothingConfig:
        """``base`` (window, suppression, release) with this point's thresholds."""
        return dataclasses.replace(base, threshold=self.threshold, label_thresholds=self.label_thresholds)

    def describe(self) -> str:
        """The line every command prints about the point it runs."""
        head = f"operating point {self.name} (threshold {self.threshold:g}" + (
            f", {len(self.label_thresholds)} per-keyword" if self.label_thresholds else "") + (
            f", gate tau {self.tau:.3g})" if self.tau is not None else ")")
        m = self.measured
        if m is None:
            return head + ": not measured on validation streams"
        lo, hi = m.false_accepts_per_hour_ci95
        clean = "" if self.clean is None else (
            f"; clean near-mic keywords: {self.clean.hit_rate:.3f} ({self.clean.hits}/{self.clean.keywords})")
        duty = "" if m.stage2_duty is None else f", stage 2 on {m.stage2_duty:.1%} of steps"
        return (f"{head}: hit rate {m.hit_rate:.3f} ({m.hits}/{m.keywords}), {m.false_accepts_per_hour:.1f} false "
                f"accepts/h (95 % CI {lo:.1f}-{hi:.1f}){duty} on {m.hours:.2f} h of validation streams{clean}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"threshold": self.threshold, "label_thresholds": dict(self.label_thresholds)}
        if self.tau is not None:
            data["tau"] = self.tau
        if self.measured is not None:
            data["measured"] = self.measured.to_dict()
        if self.clean is not None:
            data["clean"] = self.clean.to_dict()
        return data

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> "OperatingPoint":
        measured = Measured.from_dict(data["measured"]) if "measured" in data else None
        clean = Measured.from_dict(data["clean"]) if "clean" in data else None
        pairs = tuple(sorted((str(k), float(v)) for k, v in dict(data.get("label_thresholds", {})).items()))
        tau = None if data.get("tau") is None else float(data["tau"])
        if tau is not None and not 0.0 <= tau <= 1.0:
            raise ValueError(f"operating point {name}: gate tau={tau} outside [0, 1]")
        return cls(name=name, threshold=float(data["threshold"]), label_thresholds=pairs, measured=measured, clean=clean,
                   tau=tau)


def read_points(manifest: dict[str, Any], smoothing: SmoothingConfig, calibration: dict[str, Any],
                where: str) -> dict[str, OperatingPoint]:
    """The points of a manifest; for a bundle without them, its smoothing as ``balanced``."""
    table = manifest.get("operating_points")
    if table is None:
        old = calibration.get("operating_point", {})
        measured = None
        if "validation" in old and "hours" in old:
            measured = Measured.from_dict({**old["validation"], "hours": old["hours"]})
        return {DEFAULT_SENSITIVITY: OperatingPoint.of(DEFAULT_SENSITIVITY, smoothing, measured)}
    unknown = sorted(set(table) - set(SENSITIVITIES))
    if unknown or DEFAULT_SENSITIVITY not in table:
        raise ModelError(f"{where}: operating points {sorted(table)}: expected {', '.join(SENSITIVITIES)} "
                         f"(with {DEFAULT_SENSITIVITY})")
    return {name: OperatingPoint.from_dict(name, table[name]) for name in SENSITIVITIES if name in table}
