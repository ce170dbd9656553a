"""Weight clustering: each layer's kernel shares k values (k-means centroids).

A clustered kernel stores k distinct values, so the weight bytes repeat and compress well
(what the TensorFlow optimization guide's gzip column shows); the int8 model itself is the
same size and runs the same kernels. After the one-off k-means, fine-tuning keeps the
assignment of each weight fixed and trains the centroids straight-through: the optimizer
updates every weight, then ``project`` sets each weight back to the mean of its cluster, i.e.
each centroid moves by the average of its members' updates.

Per-channel int8 quantization then maps each output channel's k values onto its own grid
(scale = the channel's largest |value| / 127, and BN folding multiplies a channel by one
factor, which that scale cancels), so the int8 kernel keeps <= k distinct values per output
channel, not per layer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from data_prep.errors import ConfigError
from kws.train.compress.keras_graph import body_layers

CLUSTERED_KINDS = ("Conv2D", "DepthwiseConv2D", "Dense")


@dataclasses.dataclass
class LayerClusters:
    """One layer's fixed assignment of kernel elements to clusters."""

    layer: object
    assignment: np.ndarray  # same shape as the kernel, int32 cluster ids
    k: int


def kmeans_1d(values: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k',), assignment like ``values``) with k' = min(k, distinct values)."""
    from sklearn.cluster import KMeans

    flat = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    k = min(k, len(np.unique(flat)))
    fit = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(flat)
    return fit.cluster_centers_.reshape(-1).astype(np.float32), fit.labels_.reshape(np.shape(values)).astype(np.int32)


def cluster_model(model, k: int, seed: int = 0) -> list[LayerClusters]:
    """k-means each conv / depthwise / dense kernel of ``model`` in place; the assignments."""
    if k < 2:
        raise ConfigError(f"clustering needs at least 2 clusters, got {k}")
    out = []
    for layer in body_layers(model):
        if type(layer).__name__ not in CLUSTERED_KINDS:
            continue
        centroids, assignment = kmeans_1d(np.asarray(layer.kernel), k, seed)
        layer.kernel.assign(centroids[assignment])
        out.append(LayerClusters(layer, assignment, len(centroids)))
    return out


def project(clusters: list[LayerClusters]) -> None:
    """Set every clustered weight to the mean of its cluster (the straight-through step)."""
    for c in clusters:
        kernel = np.asarray(c.layer.kernel)
        ids = c.assignment.reshape(-1)
        sums = np.bincount(ids, weights=kernel.reshape(-1), minlength=c.k)
        counts = np.maximum(np.bincount(ids, minlength=c.k), 1)
        c.layer.kernel.assign((sums / counts).astype(np.float32)[c.assignment])


def unique_counts(model) -> dict[str, int]:
    """Distinct kernel values per clusterable layer (what clustering bounds by k)."""
    return {layer.name: len(np.unique(np.asarray(layer.kernel)))
            for layer in body_layers(model) if type(layer).__name__ in CLUSTERED_KINDS}


def projection_callback(clusters: list[LayerClusters]):
    """A Keras callback that projects after every training step."""
    import keras

    class Project(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            project(clusters)

    return Project()
