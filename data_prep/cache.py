"""On-disk MFCC cache: a second pass over a dataset does no decoding and no feature math.

Layout under ``<root>/<config fingerprint>-<locate rule>/``::

    config.json           the FeatureConfig these features were made with (for humans)
    index.sqlite          path -> (size, mtime_ns, shard, row)
    shards/<uuid>.npy     (n, T, n_mfcc) float32 blocks, read memory-mapped

A file's entry counts only while its absolute path, size and mtime_ns are unchanged, so an
edited file is recomputed. Shards are written atomically under fresh names and indexed only
after they are complete; two processes filling the same cache at worst compute the same clips
twice, and a reader never sees a partial shard. A shard that has gone missing or is unreadable
is treated as a miss. Reads go batch by batch through memory-mapped shards, so a pass needs
memory for one batch, not for the dataset.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_prep.atomic import save_npy_atomic, write_text_atomic
from data_prep.audio import load_clip
from data_prep.config import FeatureConfig
from data_prep.errors import KwsError
from data_prep.features import mfcc
from data_prep.locate import LOCATE_RULE

ComputeFn = Callable[[Sequence[Path]], np.ndarray]

_SQL_CHUNK = 500  # bound parameters per query, well under SQLite's limit
_OPEN_SHARDS = 32  # memory maps kept open between batches
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    shard TEXT NOT NULL,
    row INTEGER NOT NULL
)
"""


def default_cache_dir() -> Path:
    """``$KWS_CACHE_DIR`` if set, else ``~/.cache/kws``."""
    env = os.environ.get("KWS_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kws"


def cache_key(config: FeatureConfig) -> str:
    """The folder of a config's features: its fingerprint and the rule that cuts a long
    recording to a clip, so a new rule never serves features cut by the old one."""
    return f"{config.fingerprint()}-{LOCATE_RULE}"


def compute_features(paths: Sequence[Path], config: FeatureConfig) -> np.ndarray:
    """The uncached path: decode each clip, then one batched MFCC call -> (n, T, n_mfcc)."""

    if not paths:
        return np.zeros((0, *config.input_shape), dtype=np.float32)
    return mfcc(np.stack([load_clip(p, config) for p in paths]), config)


def clear_cache(root: Path | None = None) -> None:
    """Delete every cached feature under ``root`` (all configs)."""
    root = Path(root) if root is not None else default_cache_dir()
    if root.exists():
        shutil.rmtree(root)


@dataclasses.dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


class _Key(NamedTuple):
    """What makes an entry valid: a changed size or mtime means a changed file."""

    path: str
    size: int
    mtime_ns: int


class FeatureCache:
    """MFCC features of audio files for one FeatureConfig, computed once and memory-mapped after.

    ``compute_fn(paths) -> (n, T, n_mfcc)`` replaces the default decoder + MFCC (e.g. to decode
    in parallel); it must compute exactly this config's features, since entries are keyed by the
    config's fingerprint, not by the function.
    """

    def __init__(
        self,
        root: Path | None,
        config: FeatureConfig,
        *,
        compute_fn: ComputeFn | None = None,
        shard_size: int = 1024,
    ) -> None:
        if shard_size < 1:
            raise KwsError(f"feature cache: shard_size={shard_size} must be >= 1")
        self.config = config
        self.root = Path(root) if root is not None else default_cache_dir()
        self.dir = self.root / cache_key(config)
        self.shard_size = shard_size
        self.stats = CacheStats()
        self._compute = compute_fn or (lambda paths: compute_features(paths, config))
        self._shards: OrderedDict[str, np.ndarray] = OrderedDict()
        self._db: sqlite3.Connection | None = None

    # --- public API -------------------------------------------------------------------------
    def features_for(self, paths: Sequence[Path | str]) -> np.ndarray:
        """(N, T, n_mfcc) float32 for ``paths`` in order; misses are computed and stored."""
        paths = list(paths)
        out = np.empty((len(paths), *self.config.input_shape), dtype=np.float32)
        keys = [self._key(p) for p in paths]
        found = self._lookup(keys)
        lost = self._read_hits(keys, found, out)
        misses = sorted([i for i, k in enumerate(keys) if k not in found] + lost)
        for start in range(0, len(misses), self.shard_size):
            rows = misses[start : start + self.shard_size]
            out[rows] = self._compute_and_store([keys[i] for i in rows])
        self.stats.hits += len(paths) - len(misses)
        self.stats.misses += len(misses)
        return out

    def iter_batches(self, paths: Sequence[Path | str], batch_size: int) -> Iterator[np.ndarray]:
        """Features of ``paths`` in order, ``batch_size`` clips at a time (bounded memory)."""
        if batch_size < 1:
            raise KwsError(f"feature cache: batch_size={batch_size} must be >= 1")
        for start in range(0, len(paths), batch_size):
            yield self.features_for(paths[start : start + batch_size])

    def clear(self) -> None:
        """Delete this config's cached features (other configs' entries stay)."""
        self.close()
        if self.dir.exists():
            shutil.rmtree(self.dir)

    def close(self) -> None:
        self._shards.clear()
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- index --------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            (self.dir / "shards").mkdir(parents=True, exist_ok=True)
            config_file = self.dir / "config.json"
            if not config_file.exists():
                write_text_atomic(config_file, self.config.to_json())
            index = self.dir / "index.sqlite"
            try:
                db = sqlite3.connect(index, timeout=60.0, isolation_level=None)
                db.execute(_SCHEMA)
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
            self._db = db
        return self._db

    def _index_error(self, exc: sqlite3.Error) -> KwsError:
        return KwsError(f"{self.dir / 'index.sqlite'}: unusable feature cache index ({exc}); delete {self.dir}")

    @staticmethod
    def _key(path: Path | str) -> _Key:
        path = os.path.abspath(path)
        try:
            st = os.stat(path)
        except OSError:
            # Not cacheable: the loader reports the real problem (missing file, ...).
            return _Key(path, -1, -1)
        return _Key(path, st.st_size, st.st_mtime_ns)

    def _lookup(self, keys: list[_Key]) -> dict[_Key, tuple[str, int]]:
        db = self._connect()
        found: dict[_Key, tuple[str, int]] = {}
        wanted = {k.path: k for k in keys if k.size >= 0}
        names = list(wanted)
        for start in range(0, len(names), _SQL_CHUNK):
            chunk = names[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT path, size, mtime_ns, shard, row FROM entries WHERE path IN ({marks})"
            try:
                rows = db.execute(query, chunk).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
            for path, size, mtime_ns, shard, row in rows:
                key = wanted[path]
                if key.size == size and key.mtime_ns == mtime_ns:
                    found[key] = (shard, row)
        return found

    # --- shards -------------------------------------------------------------------------------
    def _shard(self, name: str) -> np.ndarray | None:
        """A memory-mapped shard, or None if it vanished or is not a shard of this config."""
        if name in self._shards:
            self._shards.move_to_end(name)
            return self._shards[name]
        try:
            data = np.load(self.dir / "shards" / name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if data.dtype != np.float32 or data.shape[1:] != self.config.input_shape:
            return None
        self._shards[name] = data
        if len(self._shards) > _OPEN_SHARDS:
            self._shards.popitem(last=False)
        return data

    def _read_hits(self, keys: list[_Key], found: dict[_Key, tuple[str, int]], out: np.ndarray) -> list[int]:
        """Fill ``out`` from the shards, one gather per shard; return the rows that could not be
        read (shard gone or damaged), which the caller recomputes."""
        by_shard: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in found:
                by_shard.setdefault(found[key][0], []).append(i)
        lost: list[int] = []
        for name, idx in by_shard.items():
            data = self._shard(name)
            rows = np.fromiter((found[keys[i]][1] for i in idx), dtype=np.int64, count=len(idx))
            if data is None or rows.max() >= data.shape[0]:
                lost.extend(idx)
                continue
            out[idx] = data[rows]
        return lost

    def _compute_and_store(self, keys: list[_Key]) -> np.ndarray:
        feats = np.asarray(self._compute([Path(k.path) for k in keys]), dtype=np.float32)
        expected = (len(keys), *self.config.input_shape)
        if feats.shape != expected:
            raise KwsError(f"feature cache: compute function returned shape {feats.shape}, expected {expected}")
        storable = [(row, k) for row, k in enumerate(keys) if k.size >= 0]
        if storable:
            name = f"{uuid.uuid4().hex}.npy"
            self._connect()
            save_npy_atomic(self.dir / "shards" / name, feats)
            db = self._connect()
            try:
                with db:  # one transaction: all rows of the shard or none
                    db.execute("BEGIN IMMEDIATE")
                    db.executemany(
                        "INSERT OR REPLACE INTO entries (path, size, mtime_ns, shard, row) VALUES (?, ?, ?, ?, ?)",
                        [(k.path, k.size, k.mtime_ns, name, row) for row, k in storable],
                    )
            except sqlite3.DatabaseError as exc:
                raise self._index_error(exc) from None
        return feats
