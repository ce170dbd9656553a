"""What the energy estimator returns: typed results, so every user reads ``est.battery_days``
or ``est.stage2_always_on.energy_j_per_hour`` instead of spelling dictionary keys.

``to_json`` writes the JSON ``kws energy --json`` has always written (same keys, same order),
and ``from_json`` reads it back, tolerating files from older runs or other tools that lack
some keys (the report reads whatever it finds): a missing figure is None.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Fit:
    """Whether the models, frontend and runtime fit the profile's flash and SRAM."""

    ok: bool
    flash: bool
    sram: bool
    flash_bytes_needed: int
    sram_bytes_needed: int
    sram_if_shared_arena: int
    reason: str | None


@dataclasses.dataclass(frozen=True)
class Realtime:
    """Whether the board keeps up with the workload (and how late stage 2 answers)."""

    ok: bool
    verdict: str
    always_on_step_ms: float
    budget_ms: float
    stage2_delay_ms: float


def _flat(cls: type, data: dict[str, Any] | None) -> Any:
    """A flat result (Fit, Realtime) from JSON; None when the file has none."""
    return cls(*(data.get(f.name) for f in dataclasses.fields(cls))) if data else None


@dataclasses.dataclass(frozen=True)
class Budget:
    """A listener's per-second budget: duty cycle, average power and what follows from it."""

    duty_cycle: float
    avg_power_mw: float
    energy_j_per_hour: float
    compute_energy_j_per_hour: float
    battery_days: float
    power_breakdown_mw: dict[str, float]


@dataclasses.dataclass(frozen=True)
class AlwaysOn:
    """The comparison point: stage 2 alone at every inference stride."""

    duty_cycle: float
    avg_power_mw: float
    energy_j_per_hour: float
    battery_days: float
    realtime: Realtime | None

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> AlwaysOn | None:
        if data is None:
            return None
        return cls(data.get("duty_cycle"), data.get("avg_power_mw"), data.get("energy_j_per_hour"),
                   data.get("battery_days"), _flat(Realtime, data.get("realtime")))


_CASCADE_ONLY = ("stage2_rate_per_s", "stage2_always_on", "cascade_vs_stage2_energy", "cascade_vs_stage2_compute_energy")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EnergyEstimate:
    """A model (``latency_ms``/``energy_uj`` keys frontend, model) or a cascade (frontend,
    stage1, stage2; then the cascade-only fields are set) on one MCU profile."""

    profile: str
    board: str | None = None
    runtime: str | None = None
    clock_mhz: float | None = None
    battery: str | None = None
    hop_ms: float | None = None
    inference_stride_ms: float | None = None
    stage2_rate_per_s: float | None = None
    latency_ms: dict[str, float] = dataclasses.field(default_factory=dict)  # per stage, one run
    energy_uj: dict[str, float] = dataclasses.field(default_factory=dict)
    duty_cycle: float | None = None
    avg_power_mw: float | None = None
    energy_j_per_hour: float | None = None
    compute_energy_j_per_hour: float | None = None
    battery_days: float | None = None
    power_breakdown_mw: dict[str, float] = dataclasses.field(default_factory=dict)
    fits: Fit | None = None
    realtime: Realtime | None = None
    stage2_always_on: AlwaysOn | None = None
    cascade_vs_stage2_energy: float | None = None
    cascade_vs_stage2_compute_energy: float | None = None

    @property
    def is_cascade(self) -> bool:
        return self.stage2_always_on is not None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.is_cascade:
            for key in _CASCADE_ONLY:
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EnergyEstimate:
        known = {f.name for f in dataclasses.fields(cls)}
        plain = {k: v for k, v in data.items() if k in known and k not in ("fits", "realtime", "stage2_always_on")}
        plain.setdefault("profile", "?")
        for key in ("latency_ms", "energy_uj", "power_breakdown_mw"):
            plain[key] = dict(plain.get(key) or {})
        return cls(**plain, fits=_flat(Fit, data.get("fits")), realtime=_flat(Realtime, data.get("realtime")),
                   stage2_always_on=AlwaysOn.from_json(data.get("stage2_always_on")))


def estimates_json(results: dict[str, EnergyEstimate]) -> dict[str, dict[str, Any]]:
    """``{profile: estimate}`` as written to energy JSON files."""
    return {name: est.to_json() for name, est in results.items()}
