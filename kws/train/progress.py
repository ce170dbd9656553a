"""A rich progress bar for Keras training: epochs, batches, loss and accuracy as they go."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from data_prep.tensorflow_quiet import keras


class RichProgress(keras.callbacks.Callback):
    """Keras callback driving one rich Progress; quiet when ``enabled`` is False."""

    def __init__(self, epochs: int, steps: int, enabled: bool = True) -> None:
        super().__init__()
        self.epochs, self.steps, self.enabled = epochs, steps, enabled
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), disable=not enabled,
        )
        self._epoch_task = self._batch_task = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.start()
        self._epoch_task = self.progress.add_task("epochs", total=self.epochs, metrics="")
        self._batch_task = self.progress.add_task("batches", total=self.steps, metrics="")

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self._epoch_task, completed=epoch)
        self.progress.reset(self._batch_task, total=self.steps, metrics="")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        text = f"loss {logs.get('loss', 0):.3f} acc {logs.get('accuracy', 0):.3f}"
        self.progress.update(self._batch_task, completed=batch + 1, metrics=text)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        text = f"val_acc {logs.get('val_accuracy', 0):.3f} val_loss {logs.get('val_loss', 0):.3f}"
        self.progress.update(self._epoch_task, completed=epoch + 1, metrics=text)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.stop()
