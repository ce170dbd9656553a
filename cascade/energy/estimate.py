"""Latency, energy, duty cycle, battery life and fit of a model or cascade on an MCU profile.

Pure functions of (ModelCost, FeatureConfig, Profile). The model:

  cycles(model)   = sum over layers of count x cycles_per_mac[kind]
                    + layers x per_layer_overhead + per_invoke_overhead, x engine factor
  latency         = cycles / clock;  energy per inference = latency x active power
  frontend / hop  = sum over MFCC ops of count x frontend_cycles[op] / clock
  per second      = hops/s x frontend + inferences/s x stage 1 + rate x stage 2 + wake-ups
  duty cycle      = active seconds per second; the rest is spent in the profile's sleep mode
  average power   = active energy/s + wake-up energy/s + sleep power x (1 - duty)
                    + always-on audio front end (microphone + PDM/I2S/ADC capture)

A hop is one feature stride; an inference every ``inference_stride_ms`` (a whole number of hops)
runs in the wake-up of the hop it falls in, so there is one wake-up per hop. "Stage 2 always on" runs stage 2 at every inference stride with no stage 1.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cascade.energy.battery import Battery, get_battery
from cascade.energy.cost import ModelCost, frontend_cost
from cascade.energy.profiles import Profile
from cascade.energy.results import AlwaysOn, Budget, EnergyEstimate, Fit, Realtime
from cascade.runtime.bundle import check_inference_stride
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class StageCost:
    """One unit of work on a profile: a model inference or one hop of features."""

    cycles: float
    latency_ms: float
    energy_uj: float


def _stage(cycles: float, profile: Profile) -> StageCost:
    seconds = cycles / profile.clock_hz
    return StageCost(cycles=cycles, latency_ms=seconds * 1e3, energy_uj=seconds * profile.active_mw * 1e3)


def model_cycles(model: ModelCost, profile: Profile, engine: str | None = None) -> float:
    compute = sum(layer.macs * profile.cycles_for(layer.kind) for layer in model.layers)
    overhead = len(model.layers) * profile.per_layer_overhead_cycles + profile.per_invoke_overhead_cycles
    return (compute + overhead) * profile.engine_factor(engine)


def model_stage(model: ModelCost, profile: Profile, engine: str | None = None) -> StageCost:
    """Latency and energy of one inference of ``model``."""
    return _stage(model_cycles(model, profile, engine), profile)


def frontend_stage(config: FeatureConfig, profile: Profile) -> StageCost:
    """Latency and energy of one hop of MFCC work (window, FFT, power, sqrt, mel, log, DCT)."""
    ops = {op: count for op, count in frontend_cost(config).ops.items() if count}
    missing = sorted(set(ops) - set(profile.frontend_cycles))
    if missing:
        raise ConfigError(f"{profile.path}: no frontend_cycles.{missing[0]} (the front end of this feature config needs it)")
    return _stage(sum(count * profile.frontend_cycles[op] for op, count in ops.items()), profile)


def _check_rates(config: FeatureConfig, inference_stride_ms: float, stage2_rate_per_s: float) -> None:
    # what a streaming cascade can run (a whole number of hops), or the estimate is of no device
    check_inference_stride(inference_stride_ms, config, "--inference-stride-ms")
    if not stage2_rate_per_s >= 0:
        raise ConfigError(f"stage-2 invocation rate {stage2_rate_per_s}/s must be a number >= 0")
    if stage2_rate_per_s > 1000.0 / inference_stride_ms + 1e-9:
        raise ConfigError(
            f"stage-2 invocation rate {stage2_rate_per_s}/s exceeds the stage-1 rate {1000.0 / inference_stride_ms:g}/s"
        )


def listening(
    profile: Profile,
    config: FeatureConfig,
    work: list[tuple[StageCost, float]],
    battery: Battery,
) -> Budget:
    """Per-second budget of a listener doing ``work`` = [(stage, runs per second), ...]
    besides one hop of features per stride."""
    hops = 1000.0 / config.stride_ms
    frontend = frontend_stage(config, profile)
    runs = [(frontend, hops)] + work
    wake_s = hops * profile.wakeup_us * 1e-6
    active_s = sum(stage.latency_ms * 1e-3 * rate for stage, rate in runs) + wake_s
    duty = active_s
    idle = max(0.0, 1.0 - duty)
    breakdown = {
        "compute_mw": sum(stage.energy_uj * rate for stage, rate in runs) * 1e-3,
        "wakeup_mw": wake_s * profile.active_mw + hops * profile.wakeup_uj * 1e-3,
        "sleep_mw": idle * profile.sleep_mw,
        "audio_frontend_mw": profile.frontend_mw,
    }
    avg = sum(breakdown.values())
    return Budget(duty_cycle=duty, avg_power_mw=avg, energy_j_per_hour=avg * 3.6,
                  compute_energy_j_per_hour=(breakdown["compute_mw"] + breakdown["wakeup_mw"]) * 3.6,
                  battery_days=battery.days(avg), power_breakdown_mw=breakdown)


def realtime(config: FeatureConfig, inference_stride_ms: float, hop_ms: float, always_ms: float, duty: float,
             always_duty: float, stage2_ms: float = 0.0) -> Realtime:
    """Can the board keep up? One hop's features must finish within the stride, the always-on
    step (features + the model run at every inference stride) within the inference stride,
    and a second's work within a second. Stage 2 of a cascade runs at low priority, preempted
    by the per-hop work, so it only delays its own decision: by about its latency stretched
    by the time the always-on path takes."""
    problems = []
    if hop_ms > config.stride_ms:
        problems.append(f"features take {hop_ms:.2f} ms per {config.stride_ms:g} ms hop")
    if always_ms > inference_stride_ms:
        problems.append(f"the always-on step takes {always_ms:.2f} ms per {inference_stride_ms:g} ms inference stride")
    if duty > 1.0:
        problems.append(f"needs {duty:.2f} s of work per second")
    verdict = "keeps up" if not problems else "cannot keep up: " + "; ".join(problems)
    delay = stage2_ms / (1.0 - always_duty) if stage2_ms and always_duty < 1.0 else (float("inf") if stage2_ms else 0.0)
    if not problems and stage2_ms:
        verdict += f" (stage 2 answers {delay:.1f} ms after the gate opens)"
    return Realtime(ok=not problems, verdict=verdict, always_on_step_ms=always_ms, budget_ms=inference_stride_ms,
                    stage2_delay_ms=delay)


def fits(profile: Profile, config: FeatureConfig, models: list[ModelCost]) -> Fit:
    """Flash: every model + frontend tables + runtime/code estimate; SRAM: the SUM of the
    arenas (one TFLM interpreter per stage, each with its own arena, as the cascade runtime
    allocates them; sharing one arena would need only the largest) + frontend buffers +
    runtime/stack/DMA estimate."""
    front = frontend_cost(config)
    flash = sum(m.flash_bytes for m in models) + front.total_table_bytes + profile.runtime_flash_bytes
    sram = sum(m.arena_bytes for m in models) + front.total_ram_bytes + profile.runtime_sram_bytes
    reasons = []
    if flash > profile.flash_bytes:
        reasons.append(f"flash needs {flash:,} B > {profile.flash_bytes:,} B")
    if sram > profile.sram_bytes:
        reasons.append(f"SRAM needs {sram:,} B > {profile.sram_bytes:,} B (arenas {', '.join(f'{m.arena_bytes:,}' for m in models)} B)")
    return Fit(
        ok=not reasons,
        flash=flash <= profile.flash_bytes,
        sram=sram <= profile.sram_bytes,
        flash_bytes_needed=flash,
        sram_bytes_needed=sram,
        sram_if_shared_arena=max((m.arena_bytes for m in models), default=0) + front.total_ram_bytes + profile.runtime_sram_bytes,
        reason="does not fit: " + "; ".join(reasons) if reasons else None,
    )


def _battery(battery: str | Battery) -> Battery:
    return battery if isinstance(battery, Battery) else get_battery(battery)


def _header(profile: Profile, engine: str | None, battery: Battery, config: FeatureConfig, stride: float) -> dict:
    return {
        "profile": profile.name,
        "board": profile.board,
        "runtime": profile.runtime if engine in (None, "default") else engine,
        "clock_mhz": profile.clock_hz / 1e6,
        "battery": battery.name,
        "hop_ms": config.stride_ms,
        "inference_stride_ms": stride,
    }


def estimate_single(model: ModelCost, features: FeatureConfig, profile: Profile, *, inference_stride_ms: float,
                    **options: Any) -> EnergyEstimate:
    """One model run at every inference stride (no gate): latency, energy, duty, life, fit.
    ``options``: ``battery`` and ``engine``, as for ``estimate_cascade``."""
    return estimate_cascade(None, model, features, profile, inference_stride_ms=inference_stride_ms,
                            stage2_rate_per_s=0.0, **options)


def estimate_cascade(
    stage1: ModelCost | None,
    stage2: ModelCost,
    features: FeatureConfig,
    profile: Profile,
    *,
    inference_stride_ms: float,
    stage2_rate_per_s: float,
    battery: str | Battery = "cr2032",
    engine: str | None = None,
) -> EnergyEstimate:
    """The cascade (stage 1 every inference stride, stage 2 at ``stage2_rate_per_s``) and,
    for comparison, stage 2 alone at every inference stride. ``stage1`` None: no cascade,
    ``stage2`` alone at every inference stride (``estimate_single``)."""
    _check_rates(features, inference_stride_ms, stage2_rate_per_s)
    bat = _battery(battery)
    inferences = 1000.0 / inference_stride_ms
    s2 = model_stage(stage2, profile, engine)
    front = frontend_stage(features, profile)
    header = _header(profile, engine, bat, features, inference_stride_ms)
    always = listening(profile, features, [(s2, inferences)], bat)
    always_rt = realtime(features, inference_stride_ms, front.latency_ms, front.latency_ms + s2.latency_ms,
                         always.duty_cycle, always.duty_cycle)
    if stage1 is None:
        return EnergyEstimate(**header, latency_ms={"frontend": front.latency_ms, "model": s2.latency_ms},
                              energy_uj={"frontend": front.energy_uj, "model": s2.energy_uj}, **vars(always),
                              fits=fits(profile, features, [stage2]), realtime=always_rt)
    s1 = model_stage(stage1, profile, engine)
    cascade = listening(profile, features, [(s1, inferences), (s2, stage2_rate_per_s)], bat)
    gate_duty = listening(profile, features, [(s1, inferences)], bat).duty_cycle
    return EnergyEstimate(
        **header,
        stage2_rate_per_s=stage2_rate_per_s,
        latency_ms={"frontend": front.latency_ms, "stage1": s1.latency_ms, "stage2": s2.latency_ms},
        energy_uj={"frontend": front.energy_uj, "stage1": s1.energy_uj, "stage2": s2.energy_uj},
        **vars(cascade),
        fits=fits(profile, features, [stage1, stage2]),
        realtime=realtime(features, inference_stride_ms, front.latency_ms, front.latency_ms + s1.latency_ms,
                          cascade.duty_cycle, gate_duty, s2.latency_ms if stage2_rate_per_s > 0 else 0.0),
        stage2_always_on=AlwaysOn(always.duty_cycle, always.avg_power_mw, always.energy_j_per_hour,
                                  always.battery_days, always_rt),
        cascade_vs_stage2_energy=cascade.energy_j_per_hour / always.energy_j_per_hour,
        cascade_vs_stage2_compute_energy=cascade.compute_energy_j_per_hour / always.compute_energy_j_per_hour,
    )
