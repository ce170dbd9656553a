"""The output folder of a synth run: may we write into it, its split lists, its manifest.

A run writes ``synth.json`` (its settings, ``complete: false``) before the first clip and again
at the end with the counts, so a rerun after an interruption recognises its own folder and
continues, while a folder written with other settings needs ``--force``. A folder kws did not
write is refused even with ``--force``: Kokoro rewrites the split lists, which in a person's
own dataset would move every recorded clip into training.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from data_prep.atomic import write_text_atomic
from data_prep.errors import KwsError
from data_prep.outputs import already_exists, refuse_existing
from data_prep.speech_commands import TESTING_LIST, VALIDATION_LIST
from data_prep.splits import speaker_id
from data_prep.synth_clips import looks_synthesized

MANIFEST = "synth.json"
CONFUSABLES_MANIFEST = "confusables.json"  # a confusables folder holds a synth run


def read_manifest(out: Path) -> dict[str, Any] | None:
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KwsError(f"{path}: unreadable synth manifest ({exc}); use --force to write over it") from None


def write_manifest(out: Path, manifest: Mapping[str, Any]) -> Path:
    return write_text_atomic(Path(out) / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def check_output_folder(out: Path, settings: Mapping[str, Any], *, force: bool = False) -> bool:
    """Whether ``out`` may be written: new or empty, a previous run with the same settings
    (resumed), or with ``force`` one kws wrote. Returns True when it resumes a previous run."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise KwsError(f"{out}: exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return False
    if not looks_synthesized(out):
        refuse_existing(out, True, marks=(MANIFEST, CONFUSABLES_MANIFEST))
    if force:
        return True
    previous = read_manifest(out)
    if previous is not None:
        before, now = previous.get("settings", {}), json.loads(json.dumps(dict(settings)))
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        if changed:
            raise KwsError(f"{out}: written by a synth run with other settings ({', '.join(changed)}); "
                           "use the same settings to resume, or --force to add to it")
        return True
    if looks_synthesized(out):
        return True
    raise already_exists(out, "add to it")  # a confusables folder


def write_split_lists(out: Path, folders: Iterable[str], split_of_speaker: Mapping[str, str]) -> dict[str, int]:
    """``validation_list.txt`` and ``testing_list.txt`` (both, possibly empty, as the dataset
    reader needs both) listing the clips on disk whose speaker is in those splits; every
    other clip trains. Returns the clip count per split."""
    out = Path(out)
    listed: dict[str, list[str]] = {"training": [], "validation": [], "testing": []}
    for folder in sorted(set(folders)):
        directory = out / folder
        if not directory.is_dir():
            continue
        for wav in sorted(p.name for p in directory.iterdir() if p.suffix == ".wav" and p.is_file()):
            listed[split_of_speaker.get(speaker_id(wav), "training")].append(f"{folder}/{wav}")
    for name, split in ((VALIDATION_LIST, "validation"), (TESTING_LIST, "testing")):
        write_text_atomic(out / name, "".join(f"{entry}\n" for entry in listed[split]))
    return {split: len(entries) for split, entries in listed.items()}
