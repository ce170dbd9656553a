"""MCU profiles: the built-ins load, every figure names its source, user files validate."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cascade.energy.profiles import PROFILE_DIR, builtin_names, figure_fields, load_all, load_profile
from data_prep.errors import ConfigError

BOARDS = {"nrf52840", "stm32f746-disco", "nucleo-l4r5zi", "apollo3", "esp32s3", "rp2040"}


def test_builtin_profiles_are_the_six_boards():
    assert set(builtin_names()) == BOARDS
    profiles = load_all()
    assert {p.name for p in profiles} == BOARDS
    for p in profiles:
        assert Path(p.path).stem == p.name
        assert p.active_mw > p.sleep_mw >= 0, p.name
        assert p.frontend_mw > 0, p.name  # the microphone is never free
        assert {"conv", "depthwise", "dense"} <= set(p.cycles_per_mac)
        assert p.flash_bytes > p.runtime_flash_bytes and p.sram_bytes > p.runtime_sram_bytes


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_builtin_figure_has_a_source(name):
    data = tomllib.loads((PROFILE_DIR / f"{name}.toml").read_text())
    sources = data["sources"]
    missing = [f for f in figure_fields(data) if f not in sources and f.split(".")[0] not in sources]
    assert not missing, f"{name}: no [sources] entry for {missing}"
    assert data["sleep_mode"].strip() and "sleep_mode" in sources


def test_current_is_converted_with_the_profile_voltage():
    data = tomllib.loads((PROFILE_DIR / "nrf52840.toml").read_text())
    p = load_profile("nrf52840")
    assert p.active_mw == pytest.approx(data["active_ma"] * data["voltage"])
    assert p.frontend_mw == pytest.approx(data["frontend_ma"] * data["voltage"])


def _write(tmp_path: Path, text: str, name: str = "board.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _user_text(**changes: str) -> str:
    """The nrf52840 profile as a user would copy it, with some lines replaced or removed."""
    lines = (PROFILE_DIR / "nrf52840.toml").read_text().splitlines()
    out, in_sources = [], False
    for line in lines:
        in_sources = in_sources or line.strip() == "[sources]"
        key = line.split("=")[0].strip() if "=" in line and not in_sources else None
        if key in changes:
            if changes[key]:
                out.append(changes[key])
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def test_user_profile_from_a_path(tmp_path):
    path = _write(tmp_path, _user_text(name='name = "my-board"', clock_hz="clock_hz = 32_000_000"))
    p = load_profile(path)
    assert p.name == "my-board" and p.clock_hz == 32_000_000 and p.path == str(path)
    assert load_profile(str(path)).name == "my-board"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"voltage": ""}, "voltage"),
        ({"active_ma": ""}, "active_mw"),
        ({"sleep_ma": "sleep_ma = -0.5"}, "sleep_ma"),
        ({"active_ma": "active_mw = 0"}, "active_mw"),
        ({"conv": "convolution = 3.0"}, "cycles_per_mac.convolution"),
        ({"depthwise": ""}, "cycles_per_mac.depthwise"),
        ({"dct": ""}, "frontend_cycles.dct"),
        ({"clock_hz": 'clock_hz = "fast"'}, "clock_hz"),
        ({"board": "boards = 'x'"}, "boards"),
    ],
)
def test_bad_user_profile_names_file_and_field(tmp_path, changes, field):
    path = _write(tmp_path, _user_text(**changes))
    with pytest.raises(ConfigError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and f"'{field}'" in str(err.value)


def test_both_power_units_is_an_error(tmp_path):
    path = _write(tmp_path, _user_text(active_ma="active_ma = 3.3\nactive_mw = 9.9"))
    with pytest.raises(ConfigError, match="exactly one of active_mw or active_ma"):
        load_profile(path)


def test_unknown_name_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="unknown profile 'pdp11'.*nrf52840"):
        load_profile("pdp11")
    with pytest.raises(ConfigError, match="not found"):
        load_profile(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_profile(_write(tmp_path, "name = [unclosed\n"))


def test_engine_factor_lookup():
    p = load_profile("nucleo-l4r5zi")
    assert p.engine_factor(None) == 1.0 == p.engine_factor("default")
    assert 0 < p.engine_factor("x-cube-ai") < 1
    with pytest.raises(ConfigError, match="no engine factor 'tvm'"):
        p.engine_factor("tvm")
