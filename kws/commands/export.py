"""``kws export``: a cascade bundle -> a firmware folder (C, TFLite Micro or an Arduino library)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from export.firmware import Layout, check_destination, export_firmware
from kws.commands.choices import Target
from kws.commands.common import SAMPLES, BundleOption, SensitivityOption, default_bundle, open_bundle


def golden_data(explicit: Optional[Path], calibration: dict) -> Path:
    """Golden clips come from --data, else the folder the gate was calibrated on (when it is
    still there), else the embedded samples."""

    if explicit is not None:
        return explicit
    recorded = calibration.get("data")
    if recorded and Path(recorded).is_dir():
        return Path(recorded)
    return SAMPLES / "speech_commands"


def export(
    out: Annotated[Path, typer.Option(help="Folder to write (must be empty or absent unless --force).")],
    model: BundleOption = None,
    sensitivity: SensitivityOption = None,
    target: Annotated[Target, typer.Option(
        help="tflm: C sources + TFLite Micro driver (default); c: without the driver; "
             "arduino: an Arduino library.")] = "tflm",
    data: Annotated[Optional[Path], typer.Option(exists=True, file_okay=False, 
        help="Speech Commands folder for the golden clips (default: the bundle's calibration data, "
             "else samples/speech_commands).")] = None,
    force: Annotated[bool, typer.Option(help="Replace a previous export in --out.")] = False,
) -> None:
    """Export the cascade for firmware: int8 models as C arrays, a config header, a C99 MFCC
    frontend, the decision logic, golden vectors and a host self-test."""
    from rich.console import Console
    from rich.table import Table

    Layout.of(target)  # a bad target fails before anything slow runs
    check_destination(out, force)
    bundle_path = model or default_bundle()
    bundle = open_bundle(bundle_path, sensitivity, announce=True)  # an unknown point fails before the slow part
    console = Console()
    with console.status("exporting: checking models, measuring TFLite Micro arenas, making golden vectors"):
        result = export_firmware(bundle_path, out, target=target, force=force, sensitivity=bundle.sensitivity,
                                 data=golden_data(data, bundle.calibration))
    table = Table(title=f"flash and RAM (bytes), target {target}")
    for col in ("part", "flash", "arena\nmeasured", "arena\n+ margin", "other\nRAM", "RAM\ntotal"):
        table.add_column(col, justify="left" if col == "part" else "right", no_wrap=col == "part")
    for row in result.memory.rows():
        table.add_row(*(("" if v is None else f"{v:,}") if not isinstance(v, str) else v for v in row.values()))
    console.print(table)
    checks = ", ".join(f"{k} {'bit-exact' if v['bit_exact'] else 'MISMATCH'} on {v['clips']} golden clips"
                       for k, v in result.verification.items())
    console.print(f"TFLite Micro vs reference kernels: {checks}", soft_wrap=True)
    console.print(f"wrote {result.out} ({len(result.files)} files); build and test: see {result.out / 'README.md'}",
                  soft_wrap=True)
