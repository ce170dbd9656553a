"""What makes training resumable: the backup of the training state, history on disk, best
model, early stop.

Keras' own ModelCheckpoint/EarlyStopping forget their state when a run restarts; these read
it back from ``history.json`` so a resumed run keeps the real best model and patience.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cascade.runtime import model_dir as artifact
from data_prep.tensorflow_quiet import keras
from kws.train.distribute import Placement, broadcast_from_chief, write_dir


class TrainingBackup:
    """Weights, optimizer state (slots, step count) and finished epochs, saved after every
    epoch with ``tf.train.CheckpointManager``. The previous checkpoint is kept beside the
    newest one, and ``restore`` falls back to it when the newest is damaged or the state file
    naming it is (a kill or power cut mid-save costs at most one epoch, never the run).

    Every worker saves, as TensorFlow requires of multi-worker checkpoints, but only the
    chief's copy in ``directory`` is kept; the others write to ``workertemp_<id>`` and delete
    it. On restart the chief restores and every worker takes its state by broadcast.
    """

    def __init__(self, directory: Path, model, optimizer, placement: Placement) -> None:
        import tensorflow as tf

        self.directory, self.placement = Path(directory), placement
        self.model, self.optimizer = model, optimizer
        self.epochs_done = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, epochs_done=self.epochs_done)
        # Created lazily by the first save or restore: made here, on every worker alike, since
        # under a multi-worker strategy each variable creation is a collective broadcast.
        _ = self.checkpoint.save_counter
        self._write_dir = write_dir(self.directory, placement)
        if placement.is_chief:
            for partial in self.directory.glob("ckpt-*_temp"):  # what a save killed mid-way leaves
                shutil.rmtree(partial, ignore_errors=True)
            if readable_state(self.directory) is None:  # damaged: restore() finds the files on disk
                (self.directory / "checkpoint").unlink(missing_ok=True)
        self._manager = tf.train.CheckpointManager(self.checkpoint, str(self._write_dir), max_to_keep=KEEP)

    def _state(self) -> list[Any]:
        return [*self.model.variables, *self.optimizer.variables, self.epochs_done]

    def restore(self) -> int:
        """Load the chief's latest backup (if any) on every worker; the finished epochs."""
        import tensorflow as tf

        if self.placement.is_chief:
            for candidate in checkpoint_candidates(self.directory):
                try:
                    self.checkpoint.restore(str(candidate)).assert_existing_objects_matched()
                    break
                except (tf.errors.OpError, ValueError, AssertionError):
                    self.epochs_done.assign(0)  # damaged: try the one before
        if self.placement.num_workers > 1:
            state = self._state()
            for variable, value in zip(state, broadcast_from_chief(self.placement, state)):
                variable.assign(value)
        return int(self.epochs_done.numpy())

    def save(self, epochs_done: int) -> None:
        self.epochs_done.assign(epochs_done)
        self._manager.save(checkpoint_number=epochs_done)
        if not self.placement.is_chief:
            shutil.rmtree(self._write_dir, ignore_errors=True)


KEEP = 2  # the newest checkpoint and the one before it


def readable_state(directory: Path):
    """TensorFlow's checkpoint state file of ``directory``, or None when missing or damaged."""
    import tensorflow as tf

    try:
        return tf.train.get_checkpoint_state(str(directory))
    except (tf.errors.OpError, ValueError):
        return None


def checkpoint_candidates(directory: Path) -> list[Path]:
    """Checkpoint prefixes in ``directory``, newest first: those the state file names and any
    other complete-looking ``ckpt-N.index`` on disk (the state file itself may be damaged)."""
    found: dict[int, Path] = {}
    for index in Path(directory).glob("ckpt-*.index"):
        number = index.name[len("ckpt-"):-len(".index")]
        if number.isdigit():
            found[int(number)] = index.with_suffix("")
    state = readable_state(directory)
    named = [Path(p) for p in (state.all_model_checkpoint_paths if state else [])]
    ordered = sorted(found.items(), reverse=True)
    return list(dict.fromkeys([p for _, p in ordered] + [p for p in reversed(named) if p.with_suffix(".index").is_file()]))


class HistoryWriter(keras.callbacks.Callback):
    """Append each epoch's logs to history.json (atomically), kept across resumes."""

    def __init__(self, path: Path, resuming: bool) -> None:
        super().__init__()
        self.path = path
        self.entries: list[dict[str, Any]] = artifact.read_json(path) if resuming and path.is_file() else []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.entries[:] = [e for e in self.entries if e["epoch"] < epoch]
        self.entries.append({"epoch": epoch, **{k: float(v) for k, v in (logs or {}).items()}})
        artifact.write_json(self.path, self.entries)


class BestAndStop(keras.callbacks.Callback):
    """Save the model whenever validation accuracy improves; stop after ``patience`` epochs
    without improvement. Must run after HistoryWriter, whose entries it reads.

    ``keep="last"``: save every epoch and never stop early. With a validation set of a few
    speakers, the best-scoring epoch is often a noisy one from mid-schedule, at a high learning
    rate; the end of the cosine schedule is the better pick (what fixed-epoch recipes ship)."""

    def __init__(self, path: Path, patience: int, entries: list[dict[str, Any]], keep: str = "best") -> None:
        super().__init__()
        self.path, self.patience, self.entries, self.keep = Path(path), patience, entries, keep

    def _best(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        scored = [e for e in entries if "val_accuracy" in e]
        if self.keep == "last":  # the end of the schedule is the model: never "out of patience"
            return scored[-1] if scored else None
        return max(scored, key=lambda e: (e["val_accuracy"], -e.get("val_loss", 0.0), -e["epoch"])) if scored else None

    def out_of_patience(self) -> bool:
        """True once the last recorded epoch is ``patience`` epochs past the best one."""
        best = self._best(self.entries)
        return best is not None and self.entries[-1]["epoch"] - best["epoch"] >= self.patience

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        best = self._best(self.entries)
        if best is not None and best["epoch"] == epoch:
            tmp = self.path.with_name(f".{self.path.stem}.tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, self.path)
        if self.out_of_patience():
            self.model.stop_training = True
