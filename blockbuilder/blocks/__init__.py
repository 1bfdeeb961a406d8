"""Block types: the registry and one module per built-in type (no Keras at import time).

Adding a built-in block type is adding its module here and one import line below; a plugin
registers its own with :func:`register_block` from its own module.
"""

# Built-in block types (each module registers its type on import).
from blockbuilder.blocks import activation as _activation  # noqa: E402,F401,I001
from blockbuilder.blocks import batchnorm as _batchnorm  # noqa: E402,F401
from blockbuilder.blocks import branch as _branch  # noqa: E402,F401
from blockbuilder.blocks import channel_pad as _channel_pad  # noqa: E402,F401
from blockbuilder.blocks import channel_shuffle as _channel_shuffle  # noqa: E402,F401
from blockbuilder.blocks import channel_slice as _channel_slice  # noqa: E402,F401
from blockbuilder.blocks import conv as _conv  # noqa: E402,F401
from blockbuilder.blocks import crop as _crop  # noqa: E402,F401
from blockbuilder.blocks import convnext as _convnext  # noqa: E402,F401
from blockbuilder.blocks import dense as _dense  # noqa: E402,F401
from blockbuilder.blocks import depthwise_conv as _depthwise_conv  # noqa: E402,F401
from blockbuilder.blocks import dropout as _dropout  # noqa: E402,F401
from blockbuilder.blocks import flatten as _flatten  # noqa: E402,F401
from blockbuilder.blocks import fractal as _fractal  # noqa: E402,F401
from blockbuilder.blocks import global_pool as _global_pool  # noqa: E402,F401
from blockbuilder.blocks import identity as _identity  # noqa: E402,F401
from blockbuilder.blocks import inverted_residual as _inverted_residual  # noqa: E402,F401
from blockbuilder.blocks import layer_norm as _layer_norm  # noqa: E402,F401
from blockbuilder.blocks import merge as _merge  # noqa: E402,F401
from blockbuilder.blocks import normalization as _normalization  # noqa: E402,F401
from blockbuilder.blocks import pool as _pool  # noqa: E402,F401
from blockbuilder.blocks import repeat as _repeat  # noqa: E402,F401
from blockbuilder.blocks import rescaling as _rescaling  # noqa: E402,F401
from blockbuilder.blocks import residual as _residual  # noqa: E402,F401
from blockbuilder.blocks import separable_conv as _separable_conv  # noqa: E402,F401
from blockbuilder.blocks import sequence as _sequence  # noqa: E402,F401
from blockbuilder.blocks import upsample as _upsample  # noqa: E402,F401
from blockbuilder.blocks import zero_pad as _zero_pad  # noqa: E402,F401
from blockbuilder.blocks.registry import (
    Block,
    BlockSpec,
    Chain,
    Children,
    DepthOf,
    Field,
    Node,
    Shape,
    Site,
    block_names,
    flow,
    get_block,
    register_block,
)

__all__ = [
    "Block", "BlockSpec", "Chain", "Children", "DepthOf", "Field", "Node", "Shape", "Site", "block_names",
    "flow", "get_block", "register_block",
]
