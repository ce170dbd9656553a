"""Keras callbacks that make training resumable: history on disk, best model, early stop.

Keras' own ModelCheckpoint/EarlyStopping forget their state when a run restarts; these read
it back from ``history.json`` so a resumed run keeps the real best model and patience.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from cascade import model_dir as artifact


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
    without improvement. Must run after HistoryWriter, whose entries it reads."""

    def __init__(self, path: Path, patience: int, entries: list[dict[str, Any]]) -> None:
        super().__init__()
        self.path, self.patience, self.entries = Path(path), patience, entries

    def _best(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        scored = [e for e in entries if "val_accuracy" in e]
        return max(scored, key=lambda e: (e["val_accuracy"], -e.get("val_loss", 0.0), -e["epoch"])) if scored else None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        best = self._best(self.entries)
        if best is not None and best["epoch"] == epoch:
            tmp = self.path.with_name(f".{self.path.stem}.tmp.keras")
            self.model.save(tmp)
            os.replace(tmp, self.path)
        if best is not None and epoch - best["epoch"] >= self.patience:
            self.model.stop_training = True
