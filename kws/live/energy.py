"""The energy panel of ``kws live``: the cascade's average power and battery life on an MCU
profile at the stage-2 invocation rate measured so far.

Model costs are read once (layer MACs and flash from the int8 files; no TFLM arena probe,
which only the fit check needs); each refresh is then one call of the estimator.
"""

from __future__ import annotations

import dataclasses

from cascade.energy.battery import get_battery
from cascade.energy.bundle_energy import model_cost
from cascade.energy.estimate import estimate_cascade
from cascade.energy.profiles import load_profile
from cascade.runtime.bundle import Bundle


@dataclasses.dataclass(frozen=True)
class EnergyFigures:
    profile: str
    battery: str
    stage2_per_s: float
    duty_cycle: float
    avg_power_mw: float
    battery_days: float
    always_on_mw: float  # stage 2 at every inference stride, no gate
    always_on_days: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class LiveEnergy:
    def __init__(self, bundle: Bundle, profile: str = "nrf52840", battery: str = "cr2032") -> None:
        self.bundle = bundle
        self.profile = load_profile(profile)
        self.battery = get_battery(battery)
        self.stage1 = model_cost(bundle.stage1.path, measure_arena=False)
        self.stage2 = model_cost(bundle.stage2.path, measure_arena=False)
        self.max_rate = 1000.0 / bundle.inference_stride_ms

    def at(self, stage2_per_s: float) -> EnergyFigures:
        rate = min(max(0.0, stage2_per_s), self.max_rate)
        r = estimate_cascade(self.stage1, self.stage2, self.bundle.config, self.profile,
                             inference_stride_ms=self.bundle.inference_stride_ms, stage2_rate_per_s=rate,
                             battery=self.battery)
        always = r.stage2_always_on
        return EnergyFigures(self.profile.name, self.battery.name, rate, r.duty_cycle, r.avg_power_mw,
                             r.battery_days, always.avg_power_mw, always.battery_days)
