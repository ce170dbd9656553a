"""``kws live``: the cascade on a microphone (or a file played like one), in real time."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from data_prep.atomic import write_text_atomic
from data_prep.errors import AudioError
from data_prep.outputs import refuse_existing
from kws.commands.choices import Battery
from kws.commands.common import BundleOption, SensitivityOption, open_bundle, say_operating_point
from kws.live.blocks import BlockQueue
from kws.live.devices import input_devices
from kws.live.display import render
from kws.live.energy import LiveEnergy
from kws.live.report import summary_dict, summary_table
from kws.live.session import make_source, run_live


def _list_devices() -> None:
    from rich.console import Console
    from rich.table import Table

    devices = input_devices()
    if not devices:
        typer.echo("no audio input devices found")
        return
    table = Table(title="audio inputs (PortAudio)")
    for col in ("id", "name", "host API", "channels", "native rate", "default"):
        table.add_column(col)
    for d in devices:
        table.add_row(str(d.index), d.name, d.hostapi, str(d.channels), f"{d.default_rate} Hz", "*" if d.is_default else "")
    Console().print(table)


def live(
    model: BundleOption = None,
    sensitivity: SensitivityOption = None,
    device: Annotated[Optional[str], typer.Option(help="Input device: index or part of its name (default: the system's default input).")] = None,
    profile: Annotated[str, typer.Option(help="MCU profile for the energy estimate (name or .toml).")] = "nrf52840",
    battery: Annotated[Battery, typer.Option(case_sensitive=False, help="Battery for the life estimate.")] = "cr2032",
    seconds: Annotated[Optional[float], typer.Option(help="Stop after this many seconds of audio.")] = None,
    json_events: Annotated[bool, typer.Option("--json-events", help="One JSON line per detection on stdout (no live display).")] = False,
    input_file: Annotated[Optional[Path], typer.Option("--input", exists=True, dir_okay=False, help="Play this audio file through the live loop instead of a microphone.")] = None,
    fast: Annotated[bool, typer.Option("--fast", help="With --input: as fast as possible instead of in real time.")] = False,
    list_devices: Annotated[bool, typer.Option("--list-devices", help="List audio inputs and exit.")] = False,
    device_rate: Annotated[Optional[int], typer.Option(help="Open the device at this rate (default: the model's if offered, else the device's native rate; resampled in the stream).")] = None,
    block_ms: Annotated[float, typer.Option(help="Audio block per callback, in ms.")] = 20.0,
    summary_json: Annotated[Optional[Path], typer.Option("--summary-json", help="Write the end-of-run summary as JSON.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --summary-json file.")] = False,
) -> None:
    """Listen and spot keywords live: level, stage-1 gate, stage-2 label, detections, duty and energy."""
    if list_devices:
        _list_devices()
        return
    from rich.console import Console

    refuse_existing(summary_json, force)
    bundle = open_bundle(model, sensitivity)
    energy = LiveEnergy(bundle, profile, battery)
    blocks = BlockQueue()
    source = make_source(bundle, blocks, input_file=input_file, fast=fast, device=device,
                         device_rate=device_rate, block_ms=block_ms)
    say_operating_point(bundle)  # after the source: a missing microphone is the only line
    err = Console(stderr=True)
    if json_events:
        def on_event(event) -> None:
            sys.stdout.write(json.dumps(event.to_dict()) + "\n")
            sys.stdout.flush()

        def on_start() -> None:
            err.print(f"listening: {source.name}; model {bundle.path}", soft_wrap=True, highlight=False)

        status = run_live(bundle, source, blocks, seconds=seconds, on_event=on_event, on_start=on_start)
        out = err
    else:
        from rich.live import Live

        out = Console()
        with Live(console=out, auto_refresh=False, transient=False) as display:
            def on_update(s) -> None:
                display.update(render(s, energy.at(s.stage2_per_s)), refresh=True)

            status = run_live(bundle, source, blocks, seconds=seconds, on_update=on_update)
        if not out.is_terminal:
            out.line()  # Live leaves its last frame without a newline when not on a terminal
    summary = summary_dict(status, energy.at(status.stage2_per_s))
    out.print(summary_table(summary))
    if summary_json is not None:
        write_text_atomic(summary_json, json.dumps(summary, indent=2) + "\n")
    if status.error:  # the summary of what was heard is out; now say why it stopped, and fail
        raise AudioError(status.error)
