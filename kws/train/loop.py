"""The training loop: one code path for one device, local GPUs and several workers.

Keras' ``model.fit`` cannot drive MultiWorkerMirroredStrategy in Keras 3 (it reduces the
first batch and the step logs with collective calls that fail, keras-team/keras#20585), so
training runs TensorFlow's own way: ``strategy.run`` of a step on each replica's slice,
gradients summed across replicas by the optimizer, the loss of each slice divided by the
*global* batch size (``tf.nn.compute_average_loss``), and BatchNormalization synchronised
across replicas, so N replicas compute what one device computes on the whole batch. Under
distillation the per-example loss is the cross-entropy against the batch's soft targets;
class weights and the division by the global batch apply unchanged.

The Keras callbacks of the run (history, best model, progress) still receive the usual
``loss``/``accuracy``/``val_loss``/``val_accuracy`` logs, on the chief only; whether to stop
early is the chief's decision, broadcast to the others so every worker leaves the loop at
the same epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from kws.train.distribute import Placement, broadcast_from_chief

_EVAL_BATCH = 256


def synchronise_batch_norm(model) -> int:
    """Make every BatchNormalization layer compute its batch moments over all replicas (a
    no-op on one replica); returns how many layers it changed."""
    import keras

    def walk(layer):
        yield layer
        for inner in getattr(layer, "layers", ()):
            yield from walk(inner)

    layers = [l for l in walk(model) if isinstance(l, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized = True
    return len(layers)


def _loss_fn(model):
    import keras
    import tensorflow as tf

    def per_example(y, probs, soft=None):
        """Cross-entropy against the class index, or against soft targets (B, K) when given
        (distillation: the teacher's probabilities mixed with the one-hot)."""
        if soft is not None:
            return keras.losses.categorical_crossentropy(soft, probs)
        return keras.losses.sparse_categorical_crossentropy(y, probs)

    def regularization():
        return tf.add_n(model.losses) if model.losses else tf.constant(0.0)

    return per_example, regularization


def make_train_step(model, optimizer, placement: Placement) -> Callable[[Any], Any]:
    """A tf.function running one global step; returns [sum loss*n, correct, n] over replicas."""
    import tensorflow as tf

    strategy = placement.strategy
    per_example, regularization = _loss_fn(model)

    def replica_step(x, y, w, global_len, soft=None):
        # soft: the element's optional 5th field (kws.train.data); fixed per dataset, so
        # each trace takes one branch
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            loss = tf.nn.compute_average_loss(per_example(y, probs, soft), sample_weight=w, global_batch_size=global_len)
            loss += tf.nn.scale_regularization_loss(regularization())
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        # accuracy against the true label, also under distillation
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32))
        n = tf.cast(tf.shape(y)[0], tf.float32)
        # loss is this replica's share of the global batch loss: the shares sum to it
        return tf.stack([loss * tf.cast(global_len, tf.float32), correct, n])

    @tf.function
    def train_step(iterator):
        per_replica = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return train_step


def make_evaluate(model) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """(x, y) -> val_loss and val_accuracy as Keras reports them (mean loss incl.
    regularisation), in batches of bounded size; traced once per batch shape."""
    import tensorflow as tf

    per_example, regularization = _loss_fn(model)

    @tf.function(reduce_retracing=True)
    def batch_sums(xb, yb):
        probs = model(xb, training=False)
        correct = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), yb), tf.float32))
        return tf.reduce_sum(per_example(yb, probs)), correct, regularization()

    def evaluate(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        loss = correct = reg = 0.0
        for start in range(0, len(y), _EVAL_BATCH):
            l, c, r = batch_sums(x[start : start + _EVAL_BATCH], y[start : start + _EVAL_BATCH].astype(np.int32))
            loss, correct, reg = loss + float(l), correct + float(c), float(r)
        n = max(len(y), 1)
        return {"val_loss": loss / n + reg, "val_accuracy": correct / n}

    return evaluate


def run_epochs(
    model,
    optimizer,
    placement: Placement,
    make_dataset: Callable[[Any], Any],
    *,
    first_epoch: int,
    epochs: int,
    steps: int,
    validation: tuple[np.ndarray, np.ndarray],
    callbacks: Sequence[Any],
    save: Callable[[int], None],
) -> int:
    """Train epochs ``first_epoch .. epochs-1``; after each, the chief's callbacks see the logs,
    then ``save(epochs_done)`` runs on every worker. Returns the number of epochs done."""
    import keras
    import tensorflow as tf

    strategy = placement.strategy
    dataset = strategy.distribute_datasets_from_function(make_dataset)
    iterator = iter(dataset)
    train_step = make_train_step(model, optimizer, placement)
    evaluate = make_evaluate(model)
    hooks = keras.callbacks.CallbackList(list(callbacks) if placement.is_chief else [], model=model)
    model.stop_training = False
    hooks.on_train_begin()
    epoch = first_epoch
    try:  # a lost worker surfaces here as a tf.errors.UnavailableError: see kws.train.distribute
        while epoch < epochs:
            hooks.on_epoch_begin(epoch)
            totals = np.zeros(3)
            for step in range(steps):
                totals += train_step(iterator).numpy()
                hooks.on_train_batch_end(step, {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]})
            logs = {"loss": totals[0] / totals[2], "accuracy": totals[1] / totals[2]}
            if placement.is_chief:
                logs.update(evaluate(*validation))
                hooks.on_epoch_end(epoch, logs)
            stop = broadcast_from_chief(placement, [tf.constant(float(bool(model.stop_training)))])[0]
            epoch += 1
            save(epoch)
            if float(stop) > 0:
                break
    finally:
        hooks.on_train_end()
    return epoch
