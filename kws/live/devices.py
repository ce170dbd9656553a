"""Audio input devices through PortAudio (python-sounddevice), imported only when needed.

``import sounddevice`` raises OSError at import time when the PortAudio shared library is
missing, so nothing imports it at module level: ``kws --help``, ``kws live --input FILE`` and
every other command work without PortAudio.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from data_prep.errors import AudioError

PORTAUDIO_HINT = "install the PortAudio library: apt-get install libportaudio2"


def sounddevice() -> Any:
    """The sounddevice module, or one clear AudioError when PortAudio is not installed."""
    try:
        import sounddevice as sd
    except OSError as exc:  # "PortAudio library not found"
        raise AudioError(f"cannot use the microphone: {exc} ({PORTAUDIO_HINT})") from None
    return sd


@dataclasses.dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: int
    is_default: bool

    def describe(self) -> str:
        return f"[{self.index}] {self.name} ({self.hostapi}, {self.channels} ch, {self.default_rate} Hz)"


def input_devices() -> list[InputDevice]:
    """Every device with at least one input channel, as PortAudio sees them now."""
    sd = sounddevice()
    try:
        devices, apis = sd.query_devices(), sd.query_hostapis()
        default = sd.default.device[0]
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices: {exc}") from None
    return [
        InputDevice(i, d["name"], apis[d["hostapi"]]["name"], int(d["max_input_channels"]),
                    int(round(d["default_samplerate"])), i == default)
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def resolve_device(spec: str | None) -> InputDevice:
    """``None``: the default input; a number: that device index; else a unique, case-insensitive
    part of a device name."""
    devices = input_devices()
    if not devices:
        raise AudioError("no audio input device found (is a microphone connected? `kws live --list-devices` lists inputs)")
    if spec is None:
        chosen = [d for d in devices if d.is_default] or devices[:1]
        return chosen[0]
    if spec.strip().lstrip("-").isdigit():
        index = int(spec)
        match = [d for d in devices if d.index == index]
        if not match:
            raise AudioError(f"--device {spec}: no input device with that index (`kws live --list-devices` lists inputs)")
        return match[0]
    match = [d for d in devices if spec.lower() in d.name.lower()]
    exact = [d for d in match if d.name.lower() == spec.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(match) != 1:
        problem = "no input device" if not match else f"{len(match)} input devices ({', '.join(d.name for d in match)})"
        raise AudioError(f"--device {spec!r}: {problem} match (`kws live --list-devices` lists inputs)")
    return match[0]


def supported(device: InputDevice, rate: int, channels: int) -> bool:
    sd = sounddevice()
    try:
        sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=rate)
    except (sd.PortAudioError, ValueError):
        return False
    return True


def choose_channels(device: InputDevice) -> int:
    """Mono when the device gives it; else all its channels (the loop mixes them down)."""
    return 1 if supported(device, device.default_rate, 1) else device.channels


def choose_rate(device: InputDevice, wanted: int, channels: int, forced: int | None = None) -> int:
    """The rate to open: ``forced`` if given, else the model's rate when the device offers it,
    else the device's native rate (the loop resamples)."""
    if forced is not None:
        if not supported(device, forced, channels):
            raise AudioError(f"input device {device.name!r} does not record at {forced} Hz")
        return forced
    return wanted if supported(device, wanted, channels) else device.default_rate
