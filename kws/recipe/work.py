"""Where ``kws cascade train`` keeps its steps: a work folder beside the bundle.

The bundle stays a clean bundle (what ``Bundle.open`` and ``--force`` recognise); the synthetic
clips, both training runs with their checkpoints and the step markers live in ``BUNDLE.work/``
(or ``--work``), which is kept so that a re-run after Ctrl-C, a kill or a change of settings
redoes only what is missing or stale. ``recipe.json`` marks the folder as kws's own.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from data_prep.atomic import write_text_atomic
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.outputs import DestinationError, check_writable, is_kws_output, make_dirs
from kws.recipe.config import CascadeRecipe

RECIPE = "recipe.json"
SUFFIX = ".work"


def default_work(bundle: Path) -> Path:
    """``BUNDLE.work`` beside the bundle."""
    bundle = Path(bundle)
    bundle = bundle if bundle.name else bundle.resolve()  # "." has no name to extend
    return bundle.with_name(bundle.name + SUFFIX)


def open_work(work: Path, bundle: Path, recipe: CascadeRecipe, features: FeatureConfig) -> bool:
    """Make ``work`` ready (new, empty, or a previous run's: True) and record the recipe in it.
    Refused: a folder of something else, one nested with the bundle, or one inside the audio
    folders (its clips would change their fingerprint on every run)."""
    work, bundle = Path(work), Path(bundle)
    for inner, outer in ((work, bundle), (bundle, work)):
        if _within(inner, outer):
            raise KwsError(f"{work}: the work folder and the bundle {bundle} must be separate folders")
    for folder in recipe.folders():
        if _within(work, Path(folder)):
            raise KwsError(f"{work}: the work folder is inside the audio folder {folder}; put it elsewhere (--work)")
    check_writable(work)
    if work.exists() and not work.is_dir():
        raise DestinationError(f"{work}: exists and is not a folder")
    resumed = work.is_dir() and any(work.iterdir())
    if resumed and not is_kws_output(work, (RECIPE,)):
        raise KwsError(f"{work}: exists and is not a kws cascade train work folder (no {RECIPE}); "
                       "refusing to write into it: pass another --work")
    make_dirs(work)
    record_recipe(work, bundle, recipe, features)
    return resumed


def record_recipe(work: Path, bundle: Path, recipe: CascadeRecipe, features: FeatureConfig) -> None:
    """``recipe.json``: what the steps ran with (a text-only run records the view it reads)."""
    record = {"recipe": dataclasses.asdict(recipe), "features": features.to_dict(), "bundle": str(bundle)}
    write_text_atomic(Path(work) / RECIPE, json.dumps(record, indent=2, default=str) + "\n")


def _within(inner: Path, outer: Path) -> bool:
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents
