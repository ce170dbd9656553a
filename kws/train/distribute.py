"""Where training runs: one device, every local GPU, or several workers (tf.distribute).

``--strategy`` names one of four placements; ``auto`` picks multi-worker when ``TF_CONFIG``
describes a cluster, mirrored with more than one GPU, else one device. ``TF_CONFIG`` is
TensorFlow's standard cluster description, one JSON object per process::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}

It is validated here so a typo is one clear line, not a hang or a gRPC traceback. The chief
(``chief:0`` if the cluster has a chief job, else ``worker:0``) is the only process that
writes the run's files; the others write their part of each checkpoint to a temporary
``workertemp_<id>`` folder and delete it, as TensorFlow recommends, and take the chief's
restored state by broadcast, so only the chief's disk has to hold the checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from data_prep.errors import ConfigError, KwsError
from data_prep.tensorflow_quiet import import_tensorflow

STRATEGIES = ("auto", "one-device", "mirrored", "multi-worker")
_JOBS = ("chief", "worker")  # the jobs MultiWorkerMirroredStrategy trains with


@dataclasses.dataclass(frozen=True)
class Cluster:
    """A validated TF_CONFIG: the cluster's jobs and this process's task."""

    jobs: Mapping[str, tuple[str, ...]]
    task_type: str
    task_index: int

    @property
    def tasks(self) -> list[tuple[str, int]]:
        """Every training task in TensorFlow's order: the chief first, then the workers."""
        return [(job, i) for job in _JOBS for i in range(len(self.jobs.get(job, ())))]

    @property
    def num_workers(self) -> int:
        return len(self.tasks)

    @property
    def worker_id(self) -> int:
        """This task's position in ``tasks`` (0 = chief): its input pipeline and temp folder."""
        return self.tasks.index((self.task_type, self.task_index))

    @property
    def is_chief(self) -> bool:
        return self.worker_id == 0

    @property
    def address(self) -> str:
        return self.jobs[self.task_type][self.task_index]


def _address_ok(address: Any) -> bool:
    if not isinstance(address, str) or ":" not in address:
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def parse_tf_config(text: str | None) -> Cluster | None:
    """The cluster in a TF_CONFIG string (None when unset or empty); ConfigError on any flaw."""
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cluster"), dict) or not isinstance(data.get("task"), dict):
        raise ConfigError('TF_CONFIG needs a "cluster" object and a "task" object')
    jobs: dict[str, tuple[str, ...]] = {}
    for job, addresses in data["cluster"].items():
        if job not in _JOBS:
            raise ConfigError(f'TF_CONFIG: job "{job}" is not supported by multi-worker training (use "worker" and optionally one "chief")')
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f'TF_CONFIG: cluster "{job}" must be a non-empty list of "host:port" strings')
        for address in addresses:
            if not _address_ok(address):
                raise ConfigError(f'TF_CONFIG: cluster "{job}" has {address!r}, expected "host:port"')
        jobs[job] = tuple(addresses)
    if not jobs:
        raise ConfigError('TF_CONFIG: the cluster lists no "worker" addresses')
    if len(jobs.get("chief", ())) > 1:
        raise ConfigError(f'TF_CONFIG: at most one "chief" address, got {len(jobs["chief"])}')
    everyone = [a for addresses in jobs.values() for a in addresses]
    duplicates = sorted({a for a in everyone if everyone.count(a) > 1})
    if duplicates:
        raise ConfigError(f"TF_CONFIG: address {duplicates[0]} is listed twice")
    task_type, index = data["task"].get("type"), data["task"].get("index", 0)
    if task_type not in jobs:
        raise ConfigError(f'TF_CONFIG: task type {task_type!r} is not a job of the cluster ({", ".join(jobs)})')
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[task_type]):
        raise ConfigError(f'TF_CONFIG: task index {index!r} is out of range for the {len(jobs[task_type])} "{task_type}" address(es)')
    return Cluster(jobs, task_type, index)


def resolve_strategy(requested: str, gpus: int, cluster: Cluster | None) -> str:
    """The placement ``requested`` means on this machine (pure: testable without devices).

    ``auto`` prefers the cluster over local GPUs because multi-worker training also uses
    every GPU of each worker.
    """
    if requested not in STRATEGIES:
        raise ConfigError(f"--strategy {requested!r}: choose one of {', '.join(STRATEGIES)}")
    if requested == "auto":
        if cluster is not None:
            return "multi-worker"
        return "mirrored" if gpus > 1 else "one-device"
    if requested == "multi-worker" and cluster is None:
        raise ConfigError("--strategy multi-worker needs TF_CONFIG (the cluster and this task; see README 'Scaling out')")
    if requested != "multi-worker" and cluster is not None:
        raise ConfigError(f"--strategy {requested} runs on one machine, but TF_CONFIG is set: unset it or use --strategy multi-worker")
    return requested


@dataclasses.dataclass(frozen=True)
class Placement:
    """The chosen tf.distribute strategy and this process's role in it."""

    name: str
    strategy: Any  # tf.distribute.Strategy
    worker_id: int = 0
    num_workers: int = 1
    note: str = ""

    @property
    def is_chief(self) -> bool:
        return self.worker_id == 0

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    def describe(self, global_batch: int) -> str:
        """One line for the CLI: what runs where, and the batch each replica computes."""
        role = "chief" if self.is_chief else "worker"
        per = per_replica_batch(global_batch, self.replicas)
        where = f"{self.num_workers} worker(s), {self.replicas} replica(s)"
        line = f"strategy {self.name}: {where}; global batch {global_batch} ({per} per replica); this is {role} {self.worker_id}"
        return f"{line}; {self.note}" if self.note else line


def per_replica_batch(global_batch: int, replicas: int) -> str:
    """How a global batch splits: every replica gets the same share, or shares differ by one."""
    low, high = global_batch // replicas, -(-global_batch // replicas)
    return str(low) if low == high else f"{low}-{high}"


def make_placement(requested: str = "auto", environ: Mapping[str, str] | None = None) -> Placement:
    """Create the strategy. Call it before any other TensorFlow op: a multi-worker strategy
    must configure the runtime first, which is why ``kws train`` does it right after import."""

    tf = import_tensorflow()
    environ = os.environ if environ is None else environ
    cluster = parse_tf_config(environ.get("TF_CONFIG"))
    gpus = tf.config.list_physical_devices("GPU")
    name = resolve_strategy(requested, len(gpus), cluster)
    if name == "multi-worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        note = "" if gpus else "CPU workers"
        return Placement(name, strategy, cluster.worker_id, cluster.num_workers, note)
    if name == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        note = f"{len(gpus)} GPU(s)" if gpus else "no GPU found: running on the CPU as one replica"
        return Placement(name, strategy, note=note)
    device = "/gpu:0" if gpus else "/cpu:0"
    return Placement(name, tf.distribute.OneDeviceStrategy(device), note=device.strip("/"))


@contextlib.contextmanager
def lost_worker_is_one_line(placement: Placement) -> Iterator[None]:
    """When another worker dies, collectives fail on the survivors (after a few seconds, by
    socket or heartbeat): say so in one line, with what to do, instead of a gRPC traceback."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError) as exc:
        if placement.num_workers == 1:
            raise
        raise KwsError(f"multi-worker training lost a worker ({type(exc).__name__}); restart every worker with "
                       "the same command and TF_CONFIG to resume from the last checkpoint") from None


def write_dir(directory: Path, placement: Placement) -> Path:
    """Where this process writes files the chief owns: the real path on the chief, a
    ``workertemp_<id>`` folder inside it on the others (TensorFlow's convention for checkpoints
    that every worker must write while only the chief's copy is kept)."""
    return Path(directory) if placement.is_chief else Path(directory) / f"workertemp_{placement.worker_id}"


def broadcast_from_chief(placement: Placement, values: Sequence[Any]) -> list[Any]:
    """The chief's values of ``values`` (tensors or variables) on every worker.

    An all-reduce in which every replica but the chief's first contributes zeros: exact in
    every dtype and needs no shared filesystem. On one machine the values are returned as read.
    """
    import tensorflow as tf

    tensors = [tf.convert_to_tensor(v) for v in values]
    if placement.num_workers == 1:
        return tensors
    strategy = placement.strategy
    key = (id(strategy), tuple((t.dtype, tuple(t.shape)) for t in tensors))
    if key not in _BROADCASTS:
        _BROADCASTS[key] = tf.function(_keep_chiefs)
    result = strategy.run(_BROADCASTS[key], args=(tensors,))
    return [strategy.experimental_local_results(v)[0] for v in result]

_BROADCASTS: dict[tuple, Any] = {}  # one traced function per strategy and value layout


def _keep_chiefs(tensors: list[Any]) -> list[Any]:
    """Replica function: SUM all-reduce of the values, zeroed on every replica but the first."""
    import tensorflow as tf

    ctx = tf.distribute.get_replica_context()
    first = tf.equal(ctx.replica_id_in_sync_group, 0)
    out: list[Any] = [None] * len(tensors)
    for dtype in {t.dtype for t in tensors}:  # one packed all-reduce per dtype
        where = [i for i, t in enumerate(tensors) if t.dtype == dtype]
        summed = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [tf.where(first, tensors[i], tf.zeros_like(tensors[i])) for i in where])
        for i, value in zip(where, summed):
            out[i] = value
    return out
