"""``kws soup``: the uniform weight average of fine-tunes of one warm start (a "model soup").

Fine-tunes of one pretrained start that differ only in their seed land in one basin: their
average is a network of its own, as cheap to run as any of them, and on unseen speakers
usually better than the average ingredient (Wortsman et al., 2022, "Model soups"). On the
stage 2 warm-started from the MLPerf reference, ten-epoch fine-tunes vary by +-2 points on the
401 test clips from seed alone; their soup removes most of that lottery (docs/distillation.md,
"Frozen batch norms and a soup of seeds").

Only fine-tunes of one warm start on one dataset are averaged (other seeds, or other
epochs or rates as the paper's greedy soups do): the warm start, data, architecture, labels and
front end must match, and the normalisations (measured per run on its own clips) must agree to
a few percent. Batch norms frozen at the start's statistics
(``kws train --frozen-bn``) average exactly; trained ones are averaged like any weight.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cascade.energy.model_stats import graph_layers
from cascade.runtime import model_dir as artifact
from cascade.runtime.model_dir import ModelDir, load_keras
from data_prep.atomic import atomic_dir
from data_prep.errors import ConfigError, KwsError, ModelError
from data_prep.tensorflow_quiet import import_tensorflow
from kws.train.compress.optimize import MODEL_MARKS, load_data, refuse_out, train_config_of, write_model

SOUP_JSON = "soup.json"
# Normalisations of one recipe differ only by which clips measured them (~0.1 % here): a larger
# gap means the ingredients did not see the same data.
STATS_TOLERANCE = 0.05


def average_weights(weight_lists: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """The element-wise mean of each weight over the ingredients (same shapes, same order)."""
    if len(weight_lists) < 2:
        raise ConfigError("a soup needs at least two models")
    shapes = [[w.shape for w in ws] for ws in weight_lists]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ConfigError("the models' weights differ in shape: a soup needs one architecture")
    return [np.mean([ws[i] for ws in weight_lists], axis=0).astype(weight_lists[0][i].dtype)
            for i in range(len(weight_lists[0]))]


def check_ingredients(sources: Sequence[ModelDir]) -> None:
    """Refuse, in one line naming the model, an ingredient that is not a fine-tune of the
    first one's warm start on its data, architecture, labels and front end."""
    first = sources[0]
    config, data = train_config_of(first)
    if not config.init_from:
        raise ConfigError(f"{first.path}: trained from scratch; a soup averages fine-tunes of one warm start "
                          "(kws train --init-from)")
    for other in sources[1:]:
        if other.path.resolve() == first.path.resolve():
            raise ConfigError(f"{other.path}: given twice")
        theirs, their_data = train_config_of(other)
        for what, mine, yours in (("warm start", config.init_from, theirs.init_from), ("data", data, their_data),
                                  ("arch", config.arch, theirs.arch), ("stage", config.stage, theirs.stage),
                                  ("arch params", json.dumps(config.arch_params, sort_keys=True),
                                   json.dumps(theirs.arch_params, sort_keys=True)),
                                  ("labels", list(first.labels), list(other.labels))):
            if mine != yours:
                raise ConfigError(f"{other.path}: its {what} ({yours}) differs from {first.path}'s ({mine}); "
                                  "a soup averages fine-tunes of one warm start on one dataset")
        if other.config != first.config:
            raise ConfigError(f"{other.path}: another front end (features.toml) than {first.path}")
        (mean_a, std_a), (mean_b, std_b) = ((np.asarray(s.mean), np.asarray(s.std)) for s in (first.stats, other.stats))
        if np.max(np.abs(mean_a - mean_b) / std_a) > STATS_TOLERANCE or np.max(np.abs(std_b / std_a - 1)) > STATS_TOLERANCE:
            raise ConfigError(f"{other.path}: its normalisation differs from {first.path}'s by more than "
                              f"{STATS_TOLERANCE:.0%}; not trained on the same data")


def soup(model_dirs: Sequence[Path], out: Path, *, data_dir: Path | None = None, force: bool = False,
         cache_dir: Path | None = None, verify_samples: int = 300) -> dict[str, Any]:
    """Average ``model_dirs`` into the model directory ``out`` (the first one's front end and
    normalisation), converted and measured as ``kws train`` does; returns what ``soup.json``
    records (written last: its presence marks a finished soup)."""
    sources = [ModelDir.open(p) for p in model_dirs]
    if len(sources) < 2:
        raise ConfigError("a soup needs at least two models")
    for source in sources:
        if not source.keras_path.is_file():
            raise ModelError(f"{source.path}: no {artifact.MODEL_KERAS}; a soup averages float models")
        if Path(out).resolve() == source.path.resolve():
            raise KwsError(f"{out}: the output must not be one of the models")
    check_ingredients(sources)
    refuse_out(out, force)
    import_tensorflow()
    data = load_data(sources[0], data_dir, cache_dir, teacher=False)
    models = [load_keras(s.keras_path) for s in sources]
    model = models[0]  # the first one carries the soup
    model.set_weights(average_weights([m.get_weights() for m in models]))
    ingredients = [{"model": str(s.path), **{split: s.metadata(artifact.METRICS).get(split, {})
                                             for split in ("validation", "testing")}} for s in sources]
    with atomic_dir(out, force, marks=MODEL_MARKS) as building:  # a previous result goes only now
        metrics, check, int8 = write_model(building, data, model, seed=0, verify_samples=verify_samples, label="soup")
        record = {"method": "soup", "ingredients": ingredients, "bit_exact": check.to_dict(), "metrics": metrics,
                  "int8_macs": sum(layer.macs for layer in graph_layers(int8)[0])}
        artifact.write_json(building / SOUP_JSON, record)
    return record
