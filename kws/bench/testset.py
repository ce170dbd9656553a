"""A canonical-test-set-sized folder made from a small dataset by repeating its clips.

The real test set (4,890 clips, 12 class folders) cannot be downloaded here; repeating the
dev test clips under distinct names gives the same number of files to decode, cache and
classify, which is what speed and memory benchmarks need.
"""

from __future__ import annotations

from pathlib import Path

from data_prep.audio import write_wav
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError
from data_prep.speech_commands import example_audio, load_dataset

CANONICAL_TEST_CLIPS = 4890


def repeated_test_set(source: Path, dest: Path, clips: int = CANONICAL_TEST_CLIPS, split: str = "testing",
                      config: FeatureConfig | None = None) -> Path:
    """Write ``clips`` WAVs into ``dest/<label>/`` (the test-set archive layout)."""
    config = config or FeatureConfig()
    examples = round_robin(load_dataset(source).examples(split))
    labels = len({e.label for e in examples})
    if clips < labels:  # the evaluation needs every label of the model in the folder
        raise ConfigError(f"--clips {clips}: fewer than the {labels} labels of {source}'s {split} split "
                          f"(every label needs a clip); use --clips {labels} or more")
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(clips):
        example = examples[i % len(examples)]
        name = example.path.name if example.path is not None else "noise.wav"
        target = dest / example.label / f"r{i:06d}_{name}"
        write_wav(target, example_audio(example, config), config.sample_rate)
    return dest


def round_robin(examples: list) -> list:
    """One clip of each label in turn: any prefix of the list covers as many labels as it can
    (the dataset lists a label's clips together, so a short pass held one label only)."""
    by_label: dict[str, list] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    queues = list(by_label.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]
