"""A Keras import that keeps TensorFlow's C++ start-up chatter (oneDNN notices, cuInit errors) off stderr.

A leaf module (it imports nothing from blockbuilder): the Python API (``blockbuilder.build``,
``blockbuilder.load_model``) and every command import Keras through it.
"""

from __future__ import annotations

import os
import sys
from typing import Literal


def import_keras_quietly(module: Literal["keras", "tensorflow"] = "keras") -> None:
    """Import Keras (or ``module``: ``tensorflow``) with TensorFlow's C++ start-up chatter on stderr silenced.

    Does nothing once ``module`` is imported. ``TF_CPP_MIN_LOG_LEVEL`` defaults to 3 (a user's own
    setting is kept), which also hides what TensorFlow logs later, such as a failed ``cuInit``.
    """
    if module in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            if module == "tensorflow":
                import tensorflow  # noqa: F401
            else:
                import keras  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
