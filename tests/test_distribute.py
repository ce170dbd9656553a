"""Distributed training: TF_CONFIG, strategy choice, the sharded input pipeline, and (slow)
two real workers on 127.0.0.1 killed mid-run, restarted, and equal to one device."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from data_prep.augment import AugmentConfig
from data_prep.config import FeatureConfig
from data_prep.errors import ConfigError
from data_prep.normalize import FeatureStats
from data_prep.spec_augment import MaskConfig
from kws.cli import app
from kws.train.data import TrainingArrays, epoch_order, replica_slice, steps_per_epoch, training_dataset
from kws.train.distribute import Cluster, parse_tf_config, per_replica_batch, resolve_strategy, write_dir

runner = CliRunner()


def tf_config(workers: list[str], index: int, task: str = "worker", chief: list[str] | None = None) -> str:
    cluster = {"worker": workers} | ({"chief": chief} if chief else {})
    return json.dumps({"cluster": cluster, "task": {"type": task, "index": index}})


# --- TF_CONFIG and the choice of strategy ------------------------------------------------------
def test_tf_config_workers_and_chief() -> None:
    two = ["127.0.0.1:2001", "127.0.0.1:2002"]
    first, second = parse_tf_config(tf_config(two, 0)), parse_tf_config(tf_config(two, 1))
    assert first.is_chief and first.worker_id == 0 and first.num_workers == 2
    assert not second.is_chief and second.worker_id == 1 and second.address == "127.0.0.1:2002"
    # with a chief job, the chief is chief:0 and the workers follow it
    with_chief = parse_tf_config(tf_config(two, 0, chief=["10.0.0.9:2000"]))
    assert not with_chief.is_chief and with_chief.worker_id == 1 and with_chief.num_workers == 3
    assert parse_tf_config(tf_config(two, 0, task="chief", chief=["10.0.0.9:2000"])).is_chief
    assert parse_tf_config(None) is None and parse_tf_config("  ") is None


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["h:1"]}}', '"task" object'),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}', 'job "ps"'),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "'localhost'"),
    ('{"cluster": {"worker": ["h:1", "h:1"]}, "task": {"type": "worker", "index": 0}}', "listed twice"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}', "task type 'chief'"),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}', "task index 2"),
])
def test_bad_tf_config_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="TF_CONFIG") as info:
        parse_tf_config(text)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_auto_strategy_and_its_refusals() -> None:
    cluster = Cluster({"worker": ("h:1", "h:2")}, "worker", 0)
    assert resolve_strategy("auto", 0, None) == "one-device"
    assert resolve_strategy("auto", 1, None) == "one-device"
    assert resolve_strategy("auto", 2, None) == "mirrored"
    assert resolve_strategy("auto", 4, cluster) == "multi-worker"  # MWMS uses the local GPUs too
    assert resolve_strategy("mirrored", 0, None) == "mirrored"  # falls back to the CPU, and says so
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        resolve_strategy("multi-worker", 2, None)
    with pytest.raises(ConfigError, match="TF_CONFIG is set"):
        resolve_strategy("one-device", 0, cluster)
    with pytest.raises(ConfigError, match="choose one of"):
        resolve_strategy("parameter-server", 0, None)


def test_chief_writes_the_real_path_others_a_temp_dir(tmp_path: Path) -> None:
    from kws.train.distribute import Placement

    assert write_dir(tmp_path, Placement("multi-worker", None, 0, 3)) == tmp_path
    assert write_dir(tmp_path, Placement("multi-worker", None, 2, 3)) == tmp_path / "workertemp_2"
    assert per_replica_batch(64, 2) == "32" and per_replica_batch(30, 4) == "7-8"


def test_mirrored_without_gpu_runs_on_cpu() -> None:
    from kws.train.distribute import make_placement

    placement = make_placement("mirrored", environ={})
    assert placement.replicas == 1 and placement.is_chief
    assert "no GPU found: running on the CPU" in placement.describe(32)


def test_cli_refuses_bad_strategy_and_tf_config(tmp_path: Path, samples_dir: Path) -> None:
    data, out = str(samples_dir / "speech_commands"), str(tmp_path / "m")
    result = runner.invoke(app, ["train", data, "--out", out, "--strategy", "multi-worker"], env={"TF_CONFIG": ""})
    assert result.exit_code == 1 and "needs TF_CONFIG" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", data, "--out", out, "--strategy", "auto"], env={"TF_CONFIG": '{"cluster": 3}'})
    assert result.exit_code == 1 and "error: TF_CONFIG" in result.output
    assert not Path(out).exists()


# --- the input pipeline: the same global batches whatever the number of replicas -------------
class _Context:
    """What tf.distribute passes to a dataset function (tf.distribute.InputContext's fields)."""

    def __init__(self, replicas: int, pipelines: int, pipeline: int) -> None:
        self.num_replicas_in_sync, self.num_input_pipelines, self.input_pipeline_id = replicas, pipelines, pipeline


def _arrays(n: int, config: FeatureConfig) -> TrainingArrays:
    rng = np.random.default_rng(5)
    clips = (0.1 * rng.standard_normal((n, config.clip_samples))).astype(np.float32)
    noise = (0.05 * rng.standard_normal(3 * config.clip_samples)).astype(np.float32)
    return TrainingArrays(clips, rng.integers(0, 3, n).astype(np.int32), (noise,))


def _elements(arrays: TrainingArrays, config: FeatureConfig, context, first_epoch: int = 0) -> list:
    ds = training_dataset(arrays, config, FeatureStats.identity(config.n_mfcc), AugmentConfig(), MaskConfig(),
                          batch_size=4, seed=3, class_weights=[1.0, 2.0, 0.5], first_epoch=first_epoch, epochs=2,
                          input_context=context)
    return [tuple(t.numpy() for t in element) for element in ds]


def test_replica_slices_rebuild_the_one_device_batches(config: FeatureConfig) -> None:
    """2 workers x 1 replica and 2 workers x 2 replicas see exactly the one-device batches,
    split in contiguous slices; a short last batch still reports the global length."""
    arrays = _arrays(10, config)  # batches of 4, 4, 2 per epoch
    whole = _elements(arrays, config, None)
    steps = steps_per_epoch(10, 4)
    assert len(whole) == 2 * steps and [len(e[1]) for e in whole[:steps]] == [4, 4, 2]
    assert sorted(np.concatenate([e[1] for e in whole[:steps]]).tolist()) == sorted(arrays.targets.tolist())
    for replicas, pipelines in ((2, 2), (4, 2)):
        local = replicas // pipelines
        per_worker = [_elements(arrays, config, _Context(replicas, pipelines, p)) for p in range(pipelines)]
        for step, (x, y, w, length) in enumerate(whole):
            parts = [per_worker[p][step * local + r] for p in range(pipelines) for r in range(local)]
            assert all(part[3] == length == len(y) for part in parts)
            np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), x)
            np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y)
            np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), w)
            assert [len(p[1]) for p in parts] == [np.subtract(*replica_slice(len(y), r, replicas)[::-1]) for r in range(replicas)]


def test_resumed_pipeline_continues_the_same_epochs(config: FeatureConfig) -> None:
    arrays = _arrays(6, config)
    whole, resumed = _elements(arrays, config, None), _elements(arrays, config, None, first_epoch=1)
    assert len(resumed) == steps_per_epoch(6, 4)
    for a, b in zip(whole[-len(resumed):], resumed):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(epoch_order(6, 3, 0), epoch_order(6, 3, 1))


def test_replica_slices_cover_a_batch_once() -> None:
    for length in range(0, 12):
        for replicas in (1, 2, 3, 4):
            bounds = [replica_slice(length, r, replicas) for r in range(replicas)]
            assert bounds[0][0] == 0 and bounds[-1][1] == length
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert max(e - s for s, e in bounds) - min(e - s for s, e in bounds) <= 1


def test_batch_norm_is_synchronised_across_replicas() -> None:
    import keras

    from kws.train.loop import synchronise_batch_norm
    from kws.train.models import build_model

    model = build_model("tiny", FeatureConfig().input_shape, 3)
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and not any(l.synchronized for l in norms)
    assert synchronise_batch_norm(model) == len(norms) and all(l.synchronized for l in norms)


# --- two workers on 127.0.0.1, one killed, all restarted --------------------------------------
def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _kws(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from kws.cli import main; main()", *args]
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, text=True)


def _wait(procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.time() + timeout
    for proc in procs:
        proc.wait(timeout=max(1.0, deadline - time.time()))


def _weights(run: Path) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(run / "model.keras", safe_mode=True).get_weights()


@pytest.mark.slow
def test_two_workers_resume_after_a_kill_and_match_one_device(tmp_path: Path, samples_dir: Path) -> None:
    """The exact commands of README "Scaling out", on one machine."""
    data = str(samples_dir / "speech_commands")
    epochs = 6
    # no dropout: its masks are drawn per replica, so only a dropout-free model can match
    # the one-device run number for number (BatchNormalization is synchronised)
    train = ["train", data, "--stage", "1", "--arch", "tiny", "--arch-params", '{"dropout": 0.0}',
             "--epochs", str(epochs), "--batch-size", "32", "--quiet"]
    base = dict(os.environ, KWS_CACHE_DIR=str(tmp_path / "cache"))
    base.pop("TF_CONFIG", None)
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    out = tmp_path / "multi"
    envs = [dict(base, TF_CONFIG=tf_config(workers, i)) for i in range(2)]
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    procs: list[subprocess.Popen] = []
    try:
        procs = [_kws([*train, "--out", str(out), "--strategy", "multi-worker"], envs[i], logs[i]) for i in range(2)]
        reference = _kws([*train, "--out", str(tmp_path / "single"), "--strategy", "one-device"], base, tmp_path / "one.log")
        procs.append(reference)
        deadline = time.time() + 180
        while not (out / "checkpoint" / "checkpoint").exists() and time.time() < deadline:
            assert procs[0].poll() is None and procs[1].poll() is None, logs[0].read_text()[-2000:]
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)  # a worker dies after the first checkpoint
        try:  # the chief notices (lost peer) and stops with one line, or we stop it
            procs[0].wait(timeout=60)
        except subprocess.TimeoutExpired:
            procs[0].kill()
        interrupted = json.loads((out / "history.json").read_text())
        assert 1 <= len(interrupted) < epochs and not (out / "metrics.json").exists()
        if procs[0].returncode == 1:
            assert "lost a worker" in logs[0].read_text() and "Traceback" not in logs[0].read_text()

        # the same commands, the same TF_CONFIG: training continues from the checkpoint
        procs[:2] = [_kws([*train, "--out", str(out), "--strategy", "multi-worker"], envs[i], logs[i]) for i in range(2)]
        _wait(procs, timeout=300)
        chief_log, worker_log = logs[0].read_text(), logs[1].read_text()
        assert [p.returncode for p in procs] == [0, 0, 0], chief_log[-3000:] + worker_log[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    resumed_at = int(chief_log.split("resuming at epoch ")[1].split()[0])
    assert 1 <= resumed_at <= len(interrupted) and "this is chief 0" in chief_log
    assert "training done on this worker" in worker_log and "this is worker 1" in worker_log
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history] == list(range(epochs))
    assert history[: resumed_at - 1] == interrupted[: resumed_at - 1]  # finished epochs kept
    assert (out / "metrics.json").is_file() and not (out / "checkpoint").exists()
    single = json.loads((tmp_path / "single" / "history.json").read_text())
    np.testing.assert_allclose([e["loss"] for e in history], [e["loss"] for e in single], rtol=1e-4)
    for a, b in zip(_weights(out), _weights(tmp_path / "single")):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)

