"""Build the two Speech Commands-layout folders of the custom-keyword benchmark (issue #17).

``data/``: the real "alexa" and "snowboy" recordings (../shared/data/wake_word_negatives), split by
file with a fixed hash (sha1("word/file") % 100: < 10 testing, < 20 validation, else training),
beside the 35 Speech Commands dev words (their own list entries) and their background noise.
``data_text/`` (with ``--kokoro DIR``, a ``kws data synth --engine kokoro`` folder): the same,
except that alexa/ and snowboy/ hold only the real *test* recordings plus the synthetic clips
(their validation voices listed for validation): no real recording of the words trains or
calibrates anything. Symlinks throughout; nothing is copied.

    python benchmarks/custom_keywords/build_data.py OUT [--kokoro KOKORO_DIR]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
WORDS = ("alexa", "snowboy")
LISTS = {"testing": "testing_list.txt", "validation": "validation_list.txt"}


def split_of(word: str, name: str) -> str:
    bucket = int(hashlib.sha1(f"{word}/{name}".encode()).hexdigest(), 16) % 100
    return "testing" if bucket < 10 else "validation" if bucket < 20 else "training"


def read_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        dst.symlink_to(src.resolve())


def build(out: Path, shared: Path, kokoro: Path | None) -> dict[str, dict[str, int]]:
    """Writes ``out``; returns clips per word and split (what the docs' table shows)."""
    dev = shared / "speech_commands_dev"
    lists: dict[str, list[str]] = {split: read_list(dev / name) for split, name in LISTS.items()}
    for entry in sorted(dev.iterdir()):
        if entry.is_dir():
            link(entry, out / entry.name)
    counts: dict[str, dict[str, int]] = {}
    for word in WORDS:
        counts[word] = {"training": 0, "validation": 0, "testing": 0}
        for clip in sorted((shared / "wake_word_negatives" / word).glob("*.flac")):
            split = split_of(word, clip.name)
            if kokoro is not None and split != "testing":
                continue  # text only: real recordings are for the test split alone
            link(clip, out / word / clip.name)
            counts[word][split] += 1
            if split in lists:
                lists[split].append(f"{word}/{clip.name}")
        if kokoro is not None:
            synth_lists = {split: set(read_list(kokoro / name)) for split, name in LISTS.items()}
            for clip in sorted((kokoro / word).glob("*.wav")):
                rel = f"{word}/{clip.name}"
                split = next((s for s, names in synth_lists.items() if rel in names), "training")
                if split == "testing":
                    continue  # synthetic test voices: the test split is real recordings only
                link(clip, out / word / clip.name)
                counts[word][split] += 1
                if split == "validation":
                    lists[split].append(rel)
    for split, name in LISTS.items():
        (out / name).write_text("".join(f"{entry}\n" for entry in lists[split]))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--kokoro", type=Path, help="kws data synth --engine kokoro output: text-only keywords")
    parser.add_argument("--shared", type=Path, default=SHARED)
    args = parser.parse_args()
    if not (args.shared / "speech_commands_dev").is_dir():
        raise SystemExit(f"error: {args.shared}: no speech_commands_dev folder (pass --shared DIR)")
    if args.out.exists():
        raise SystemExit(f"error: {args.out}: exists; remove it to rebuild")
    for word, splits in build(args.out, args.shared, args.kokoro).items():
        print(f"{word}: " + ", ".join(f"{split} {n}" for split, n in splits.items()))


if __name__ == "__main__":
    main()
