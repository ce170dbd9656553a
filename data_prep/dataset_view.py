"""A Speech Commands-layout folder of links: a dataset's clips plus the clips of words it lacks
from another such folder (a text-only keyword's synthetic voices), with list files that keep
every clip's split.

Why links and lists rather than a second dataset argument: everything downstream (training,
the gate's calibration, the validation stream, ``kws report``) reads one Speech Commands
folder, so a keyword with no recordings needs no second code path. Each clip is linked on its
own (a linked *folder* would hide its files from the folder fingerprint that makes changed
recordings retrain), the lists are rewritten only when their text changes (their mtime is part
of that fingerprint), and a rebuild drops links whose clip is gone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from data_prep.atomic import write_text_atomic
from data_prep.errors import DatasetError
from data_prep.speech_commands import BACKGROUND_NOISE_DIR, TESTING_LIST, VALIDATION_LIST, scan_folder, split_of_clips


def build_view(data: Path, added: Path, words: Sequence[str], out: Path) -> dict[str, dict[str, int]]:
    """``out`` := every clip and noise file of ``data`` (in its own split, whatever its layout)
    plus the clips of ``words`` in ``added`` (in theirs). ``words`` must not be folders of
    ``data``. Returns clips per split of each added word."""
    data, added, out = Path(data), Path(added), Path(out)
    base, extra = scan_folder(data), scan_folder(added)
    clash = sorted(set(words) & set(base.words))
    if clash:
        raise DatasetError(f"{data}: already has {', '.join(clash)}; only words it lacks are added")
    splits = split_of_clips(base)
    extra_splits = split_of_clips(extra)
    links = {clip: data / clip for clip in base.clips}
    links |= {f"{BACKGROUND_NOISE_DIR}/{p.name}": p for p in base.noise_files}
    counts = {word: {"training": 0, "validation": 0, "testing": 0} for word in words}
    for clip in extra.clips:
        word = clip.split("/", 1)[0]
        if word in counts:
            links[clip] = added / clip
            splits[clip] = extra_splits[clip]
            counts[word][extra_splits[clip]] += 1
    missing = [w for w, c in counts.items() if not sum(c.values())]
    if missing:
        raise DatasetError(f"{added}: no clips of {', '.join(missing)}")
    _link_all(links, out)
    for name, split in ((VALIDATION_LIST, "validation"), (TESTING_LIST, "testing")):
        _write_if_changed(out / name, "".join(f"{c}\n" for c in sorted(c for c in links if splits.get(c) == split)))
    return counts


def _link_all(links: dict[str, Path], out: Path) -> None:
    """Make ``out/<relative>`` a link to each target; remove links no longer wanted."""
    for relative, target in links.items():
        path = out / relative
        target = target.resolve()
        if path.is_symlink() and Path(os.readlink(path)) == target:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
    wanted = {out / r for r in links}
    for path in sorted(out.rglob("*"), reverse=True):
        if path.is_symlink() and path not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_text_atomic(path, text)
