"""Feature cache on real clips copied into tmp_path (so they can be touched and broken)."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from data_prep.cache import FeatureCache, cache_key, clear_cache, compute_features, default_cache_dir
from data_prep.config import FeatureConfig
from data_prep.errors import AudioError, KwsError


@pytest.fixture()
def wavs(dev_data: Path, tmp_path: Path) -> list[Path]:
    sources = sorted((dev_data / "yes").glob("*.wav"))[:4] + sorted((dev_data / "no").glob("*.wav"))[:4]
    out = tmp_path / "clips"
    out.mkdir()
    return [Path(shutil.copy(src, out / f"{i}_{src.name}")) for i, src in enumerate(sources)]


class Counting:
    """The real decoder + MFCC, counting the clips it had to compute."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config, self.clips = config, 0

    def __call__(self, paths):
        self.clips += len(paths)
        return compute_features(paths, self.config)


def test_second_pass_hits_everything_and_is_identical(wavs, tmp_path, config):
    counting = Counting(config)
    cache = FeatureCache(tmp_path / "cache", config, compute_fn=counting)
    first = cache.features_for(wavs)
    assert first.shape == (len(wavs), *config.input_shape) and first.dtype == np.float32
    np.testing.assert_array_equal(first, compute_features(wavs, config))
    assert (cache.stats.hits, cache.stats.misses, counting.clips) == (0, len(wavs), len(wavs))

    second = cache.features_for(wavs)
    assert (cache.stats.hits, counting.clips) == (len(wavs), len(wavs))
    np.testing.assert_array_equal(second, first)

    # a new object (as in a new process) reads the same entries from disk, in any order
    again = FeatureCache(tmp_path / "cache", config, compute_fn=counting)
    order = [3, 0, 7, 7, 1]
    np.testing.assert_array_equal(again.features_for([wavs[i] for i in order]), first[order])
    assert again.stats.hit_rate == 1.0 and counting.clips == len(wavs)


def test_touched_or_modified_file_is_recomputed(wavs, tmp_path, config):
    counting = Counting(config)
    cache = FeatureCache(tmp_path / "cache", config, compute_fn=counting)
    before = cache.features_for(wavs)

    st = wavs[0].stat()
    os.utime(wavs[0], ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    np.testing.assert_array_equal(cache.features_for(wavs), before)
    assert counting.clips == len(wavs) + 1

    shutil.copy(wavs[5], wavs[1])  # new content under the old name
    after = cache.features_for(wavs)
    assert counting.clips == len(wavs) + 2
    np.testing.assert_array_equal(after[1], before[5])
    assert not np.array_equal(after[1], before[1])


def test_other_config_uses_other_entries(wavs, tmp_path, config):
    other = FeatureConfig(stride_ms=10.0, n_mfcc=13)
    a = FeatureCache(tmp_path / "cache", config)
    b = FeatureCache(tmp_path / "cache", other)
    a.features_for(wavs)
    feats = b.features_for(wavs)
    assert b.stats.misses == len(wavs) and feats.shape == (len(wavs), *other.input_shape)
    assert a.dir != b.dir and {p.name for p in (tmp_path / "cache").iterdir()} == {
        cache_key(config),
        cache_key(other),
    }
    assert FeatureConfig.load(b.dir / "config.json") == other


def test_bad_audio_names_the_file_and_caches_nothing(wavs, tmp_path, config):
    bad = wavs[0].parent / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    cache = FeatureCache(tmp_path / "cache", config)
    with pytest.raises(AudioError, match="broken.wav"):
        cache.features_for([*wavs[:3], bad])
    assert not list((cache.dir / "shards").glob("*.npy"))
    with sqlite3.connect(cache.dir / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM entries").fetchone() == (0,)

    with pytest.raises(AudioError, match="missing.wav"):
        cache.features_for([wavs[0].parent / "missing.wav"])

    shutil.copy(wavs[4], bad)  # repaired: real features now, nothing stale
    np.testing.assert_array_equal(cache.features_for([bad])[0], compute_features([wavs[4]], config)[0])


def test_iter_batches_bounded_and_in_order(wavs, tmp_path, config):
    cache = FeatureCache(tmp_path / "cache", config, shard_size=3)
    whole = compute_features(wavs, config)
    batches = list(cache.iter_batches(wavs, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 2]
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    np.testing.assert_array_equal(np.concatenate(list(cache.iter_batches(wavs, 5))), whole)
    assert cache.stats.hits == len(wavs)
    with pytest.raises(KwsError):
        next(cache.iter_batches(wavs, 0))


def test_lost_or_damaged_shard_is_recomputed(wavs, tmp_path, config):
    cache = FeatureCache(tmp_path / "cache", config, shard_size=4)
    first = cache.features_for(wavs)
    shards = sorted((cache.dir / "shards").glob("*.npy"), key=lambda p: p.stat().st_mtime_ns)
    assert len(shards) == 2
    shards[0].unlink()
    shards[1].write_bytes(b"\x93NUMPY garbage")
    fresh = FeatureCache(tmp_path / "cache", config)
    np.testing.assert_array_equal(fresh.features_for(wavs), first)
    assert fresh.stats.misses == len(wavs)


def test_clear_and_default_dir(wavs, tmp_path, config, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "env-cache"))
    assert default_cache_dir() == tmp_path / "env-cache"
    cache = FeatureCache(None, config)
    assert cache.dir == tmp_path / "env-cache" / cache_key(config)
    cache.features_for(wavs[:2])
    cache.clear()
    assert not cache.dir.exists()
    cache.features_for(wavs[:2])
    assert cache.stats.misses == 4
    clear_cache()
    assert not (tmp_path / "env-cache").exists()
    monkeypatch.delenv("KWS_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "kws"


def test_compute_fn_with_wrong_shape_is_refused(wavs, tmp_path, config):
    cache = FeatureCache(tmp_path / "cache", config, compute_fn=lambda paths: np.zeros((len(paths), 3, 3)))
    with pytest.raises(KwsError, match="shape"):
        cache.features_for(wavs[:1])


def test_corrupt_index_is_one_clear_error(wavs, tmp_path, config):
    index = tmp_path / "cache" / cache_key(config) / "index.sqlite"
    index.parent.mkdir(parents=True)
    index.write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(KwsError, match="index.sqlite: unusable feature cache index"):
        FeatureCache(tmp_path / "cache", config).features_for(wavs[:1])


def _fill(root: str, paths: list[str]) -> int:
    cache = FeatureCache(Path(root), FeatureConfig(), shard_size=2)
    cache.features_for(paths)
    return cache.stats.misses


def test_two_processes_filling_at_once_leave_a_consistent_cache(wavs, tmp_path, config):
    paths = [str(p) for p in wavs]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        misses = pool.starmap(_fill, [(str(tmp_path / "cache"), paths), (str(tmp_path / "cache"), paths[::-1])])
    assert all(0 <= m <= len(paths) for m in misses)
    reader = FeatureCache(tmp_path / "cache", config)
    np.testing.assert_array_equal(reader.features_for(wavs), compute_features(wavs, config))
    assert reader.stats.hits == len(wavs)
