"""MCU profiles: the figures the energy estimator needs for one board, read from TOML.

A built-in profile is ``cascade/profiles/<name>.toml``; a user profile is any .toml file with
the same fields. Power figures are given either in mW (``active_mw``) or as a current in mA
at the profile's ``voltage`` (``active_ma``); likewise ``sleep_*`` and ``frontend_*``.
Every figure of a built-in profile names its source (or says it is an estimate and why) in
the ``[sources]`` table; see cascade/published.py for the ones calibrated on measurements.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from cascade.energy.cost import FRONTEND_OPS, LAYER_KINDS, MAC_KINDS
from data_prep.errors import ConfigError

# "sqrt" came with the magnitude spectrum: profiles written before it still load, and only a
# front end that takes square roots asks for it (cascade.energy.estimate.frontend_stage).
REQUIRED_FRONTEND_OPS = tuple(op for op in FRONTEND_OPS if op != "sqrt")

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_POWERS = ("active", "sleep", "frontend")
_STRINGS = ("name", "board", "core", "runtime", "sleep_mode")
_POSITIVE_INTS = ("clock_hz", "flash_bytes", "sram_bytes")
_NONNEG_INTS = ("runtime_flash_bytes", "runtime_sram_bytes")
_NONNEG_FLOATS = ("per_layer_overhead_cycles", "per_invoke_overhead_cycles", "wakeup_us")
_OPTIONAL_FLOATS = {"wakeup_uj": 0.0}
_TABLES = ("cycles_per_mac", "frontend_cycles", "engine_factors", "sources")
_KNOWN = (
    set(_STRINGS) | set(_POSITIVE_INTS) | set(_NONNEG_INTS) | set(_NONNEG_FLOATS) | set(_OPTIONAL_FLOATS)
    | set(_TABLES) | {"voltage"} | {f"{p}_{u}" for p in _POWERS for u in ("mw", "ma")}
)


@dataclasses.dataclass(frozen=True)
class Profile:
    """One board running the default runtime; powers in mW, times in µs, energies in µJ."""

    name: str
    board: str
    core: str
    runtime: str
    clock_hz: int
    voltage: float
    active_mw: float
    sleep_mw: float
    sleep_mode: str
    frontend_mw: float
    flash_bytes: int
    sram_bytes: int
    runtime_flash_bytes: int
    runtime_sram_bytes: int
    cycles_per_mac: Mapping[str, float]
    per_layer_overhead_cycles: float
    per_invoke_overhead_cycles: float
    frontend_cycles: Mapping[str, float]
    wakeup_us: float
    wakeup_uj: float
    engine_factors: Mapping[str, float]
    sources: Mapping[str, str]
    path: str

    def cycles_for(self, kind: str) -> float:
        """Cycles per MAC (or per element op) of a layer kind; pool/add/other fall back to dense."""
        return self.cycles_per_mac.get(kind, self.cycles_per_mac["dense"])

    def engine_factor(self, engine: str | None) -> float:
        """Latency multiplier of a named engine relative to the default runtime (1 for None)."""
        if engine is None or engine == "default":
            return 1.0
        try:
            return self.engine_factors[engine]
        except KeyError:
            known = ", ".join(self.engine_factors) or "none"
            raise ConfigError(f"profile {self.name}: no engine factor {engine!r} (known: {known})") from None

    def with_clock(self, clock_hz: int) -> "Profile":
        """The same board and core at another clock (powers unchanged: a what-if, not a datasheet)."""
        return dataclasses.replace(self, clock_hz=int(clock_hz))


def builtin_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))


def load_profile(name_or_path: str | Path) -> Profile:
    """A built-in profile by name, or a user profile from a .toml path."""
    text = str(name_or_path)
    path = Path(text)
    if text.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"{path}: profile file not found")
        return _parse(path)
    builtin = PROFILE_DIR / f"{text}.toml"
    if not builtin.is_file():
        raise ConfigError(f"unknown profile {text!r} (built-in: {', '.join(builtin_names())}; or give a .toml path)")
    return _parse(builtin)


def load_all() -> list[Profile]:
    return [load_profile(name) for name in builtin_names()]


def _parse(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return _from_dict(data, path)


def _from_dict(data: dict[str, Any], path: Path) -> Profile:
    def bad(field: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: field '{field}': {problem}")

    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise bad(unknown[0], "unknown field")

    def number(field: str, *, positive: bool = False, integer: bool = False) -> float:
        if field not in data:
            raise bad(field, "missing")
        value = data[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            raise bad(field, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
        if value < 0 or (positive and value == 0):
            raise bad(field, f"must be {'positive' if positive else '>= 0'}, got {value}")
        return value

    for field in _STRINGS:
        if not isinstance(data.get(field), str) or not data[field].strip():
            raise bad(field, "missing" if field not in data else "expected a non-empty string")
    voltage = number("voltage", positive=True)

    def power(prefix: str) -> float:
        mw, ma = f"{prefix}_mw", f"{prefix}_ma"
        if (mw in data) == (ma in data):
            raise bad(mw, f"give exactly one of {mw} or {ma}")
        value = number(mw if mw in data else ma, positive=(prefix == "active"))
        return float(value) if mw in data else float(value) * voltage

    def table(field: str, allowed: tuple[str, ...] | None, required: tuple[str, ...]) -> dict[str, float]:
        raw = data.get(field, {})
        if not isinstance(raw, dict):
            raise bad(field, "expected a table")
        out = {}
        for key, value in raw.items():
            if allowed is not None and key not in allowed:
                raise bad(f"{field}.{key}", f"unknown key (known: {', '.join(allowed)})")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise bad(f"{field}.{key}", f"must be a positive number, got {value!r}")
            out[key] = float(value)
        for key in required:
            if key not in out:
                raise bad(f"{field}.{key}", "missing")
        return out

    sources = data.get("sources", {})
    if not isinstance(sources, dict) or not all(isinstance(v, str) for v in sources.values()):
        raise bad("sources", "expected a table of strings")
    return Profile(
        name=data["name"],
        board=data["board"],
        core=data["core"],
        runtime=data["runtime"],
        clock_hz=int(number("clock_hz", positive=True, integer=True)),
        voltage=float(voltage),
        active_mw=power("active"),
        sleep_mw=power("sleep"),
        sleep_mode=data["sleep_mode"],
        frontend_mw=power("frontend"),
        flash_bytes=int(number("flash_bytes", positive=True, integer=True)),
        sram_bytes=int(number("sram_bytes", positive=True, integer=True)),
        runtime_flash_bytes=int(number("runtime_flash_bytes", integer=True)),
        runtime_sram_bytes=int(number("runtime_sram_bytes", integer=True)),
        cycles_per_mac=MappingProxyType(table("cycles_per_mac", LAYER_KINDS, MAC_KINDS)),
        per_layer_overhead_cycles=float(number("per_layer_overhead_cycles")),
        per_invoke_overhead_cycles=float(number("per_invoke_overhead_cycles")),
        frontend_cycles=MappingProxyType(table("frontend_cycles", FRONTEND_OPS, REQUIRED_FRONTEND_OPS)),
        wakeup_us=float(number("wakeup_us")),
        wakeup_uj=float(number("wakeup_uj")) if "wakeup_uj" in data else _OPTIONAL_FLOATS["wakeup_uj"],
        engine_factors=MappingProxyType(table("engine_factors", None, ())),
        sources=MappingProxyType(dict(sources)),
        path=str(path),
    )


def figure_fields(data: dict[str, Any]) -> list[str]:
    """The names of every figure in a raw profile table that needs a source (for audits)."""
    fields = [k for k, v in data.items() if k not in _TABLES and k not in _STRINGS and not isinstance(v, dict)]
    for table_name in ("cycles_per_mac", "frontend_cycles", "engine_factors"):
        fields += [f"{table_name}.{k}" for k in data.get(table_name, {})]
    return fields
