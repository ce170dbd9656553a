"""Walking and rebuilding a Keras 3 functional model, layer by layer.

QAT, channel pruning and clustering all need the same two things from a model of the zoo:
who feeds whom (to fold a BatchNormalization into the convolution before it, or to keep the
channels of both inputs of an ADD aligned), and a way to rebuild the graph with some layers
replaced. Keras' ``clone_model`` replaces layers one for one; folding conv + BN + ReLU into
one layer needs to drop layers, so the rebuild here maps tensors instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data_prep.errors import ModelError


def inputs_of(layer) -> list[Any]:
    """The KerasTensors ``layer`` was called on when its model was built (its first call:
    a rebuild calls some layers again, on the new model's tensors)."""
    return list(layer._inbound_nodes[0].input_tensors)


def output_of(layer) -> Any:
    outputs = layer._inbound_nodes[0].output_tensors
    if len(outputs) != 1:
        raise ModelError(f"layer {layer.name!r} has {len(outputs)} outputs; expected one")
    return outputs[0]


def body_layers(model) -> list[Any]:
    """Every layer but the InputLayer, in topological order."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def producers(model) -> dict[str, list[Any]]:
    """layer name -> the layers whose outputs it consumes ([] for the model input)."""
    made_by = {id(output_of(layer)): layer for layer in body_layers(model)}
    return {layer.name: [made_by[id(t)] for t in inputs_of(layer) if id(t) in made_by] for layer in body_layers(model)}


def reads_input(model) -> dict[str, list[bool]]:
    """layer name -> for each of its inputs, whether it is the model input itself."""
    made_by = {id(output_of(layer)) for layer in body_layers(model)}
    return {layer.name: [id(t) not in made_by for t in inputs_of(layer)] for layer in body_layers(model)}


def consumers(model) -> dict[str, list[Any]]:
    """layer name -> the layers that consume its output."""
    out: dict[str, list[Any]] = {layer.name: [] for layer in body_layers(model)}
    for layer, sources in zip(body_layers(model), producers(model).values()):
        for source in sources:
            out[source.name].append(layer)
    return out


def single_consumer(users_of: dict[str, list[Any]], layer, kind: str) -> Any | None:
    """The only consumer of ``layer`` (per ``consumers(model)``) if its class is ``kind``."""
    users = users_of[layer.name]
    return users[0] if len(users) == 1 and type(users[0]).__name__ == kind else None


Transform = Callable[[Any, list[Any]], Any]


def rebuild(model, transform: Transform, name: str | None = None):
    """A new functional model: each layer's output is ``transform(layer, new_inputs)``.

    ``transform`` may return a new tensor (replace or wrap the layer) or one of its inputs
    (drop the layer). Layer objects it reuses keep sharing their variables with ``model``.
    """
    import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model {model.name!r}: expected one input and one output")
    source = model.inputs[0]
    new_input = keras.Input(shape=tuple(source.shape[1:]), name=source.name)
    tensors = {id(source): new_input}
    for layer in body_layers(model):
        args = [tensors[id(t)] for t in inputs_of(layer)]
        tensors[id(output_of(layer))] = transform(layer, args)
    return keras.Model(new_input, tensors[id(model.outputs[0])], name=name or model.name)


def call_again(layer, args: list[Any]):
    """Call an existing layer on new inputs (its variables are shared)."""
    return layer(args if len(args) > 1 else args[0])
