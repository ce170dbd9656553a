"""Import TensorFlow without its start-up chatter on stderr.

TF 2.21 logs oneDNN/CUDA notices through absl before TF_CPP_MIN_LOG_LEVEL is read, so the
only way to keep a CLI's output readable is to silence file descriptor 2 during the import.
Errors still surface: a failed import raises as usual.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """TensorFlow (and Keras) imported once, quietly; returns the ``tensorflow`` module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


def __getattr__(name: str):
    """``from data_prep.tensorflow_quiet import keras``: Keras through the quiet import above, for
    modules that need it at import time (a Keras import pulls in TensorFlow and its chatter)."""
    if name == "keras":
        import_tensorflow()
        return sys.modules["keras"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
