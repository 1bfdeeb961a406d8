"""Every custom Keras layer of blockbuilder's models, registered as serializable.

A saved ``model.keras`` loads in a fresh process once this module is imported (``keras.saving.load_model``
finds the layers by their registered names): the built-in blocks' own
(:mod:`~blockbuilder.compiler.custom_layers`, :mod:`~blockbuilder.compiler.drop_path`) and those every
registered block type brings (``Block.keras_layers``).
"""

from __future__ import annotations

import keras

from blockbuilder.compiler import drop_path  # noqa: F401  (FractalNet's drop-path layers)
from blockbuilder.compiler.custom_layers import ChannelPad, ChannelShuffle, ChannelSlice, ScaledTanh, StoredNormalization

__all__ = ["ChannelPad", "ChannelShuffle", "ChannelSlice", "ScaledTanh", "StoredNormalization", "register_block_layers"]


def register_block_layers() -> None:
    """Register the custom layers of every block type (so a saved ``.keras`` file finds them)."""
    from blockbuilder.blocks import block_names, get_block

    for name in block_names():
        block = get_block(name)
        if block is not None:
            block.keras_layers()


register_block_layers()

if keras.backend.backend() == "torch":
    from blockbuilder.compiler.torch_names import allow_dotted_names

    allow_dotted_names()
