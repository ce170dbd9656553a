"""Small helpers shared by CLI commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cascade.runtime.bundle import SAMPLES, Bundle, default_bundle, is_bundle  # noqa: F401  (re-exported for the commands)
from data_prep.config import FeatureConfig
from kws.commands.choices import Sensitivity

# --model of every command that runs a cascade bundle
BundleOption = Annotated[Optional[Path], typer.Option("--model", exists=True, file_okay=False,
                                                      help="Cascade bundle (default: samples/cascade).")]


# --sensitivity of every command that runs (or compiles) a bundle's decisions
SensitivityOption = Annotated[Optional[Sensitivity], typer.Option(
    help="Operating point: high (finds more, more false accepts), balanced (default), low.")]


def open_bundle(model: Optional[Path], sensitivity: Optional[str] = None, *, announce: bool = False) -> Bundle:
    """The bundle a user named with --model, or the shipped one, at the named operating point;
    ``announce``: say on stderr which point runs and what it measured (stdout may be JSON)."""
    bundle = Bundle.open(model or default_bundle()).at(sensitivity)
    if announce:
        say_operating_point(bundle)
    return bundle


def say_operating_point(bundle: Bundle) -> None:
    """Say on stderr which operating point runs and what it measured (stdout may be JSON)."""
    typer.echo(bundle.operating_point.describe(), err=True)


def load_feature_config(path: Optional[Path], clip_ms: Optional[float] = None) -> FeatureConfig:
    """The config a user named, or the defaults (16 kHz, 1 s, 40/20 ms, 40 mels, 10 MFCC);
    ``clip_ms`` overrides its clip length (a wake phrase longer than a second)."""
    config = FeatureConfig.load(path) if path is not None else FeatureConfig()
    return config if clip_ms is None else FeatureConfig.from_dict(config.to_dict() | {"clip_ms": clip_ms}, "--clip-ms")
