"""A custom block written in Python and used from YAML: squeeze-and-excitation (Hu et al. 2018).

Run it:

    python examples/squeeze_excite.py examples/se_resnet_cifar.yaml

The same gate can be written in YAML as a user block (README, *User-defined blocks*); this file
shows the Python route, for blocks that need layers of their own. Registering happens here, in
Python code the user runs on purpose; a YAML file can only *name* ``squeeze_excite`` once this
module has been imported.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field, PositiveInt

import blockbuilder
from typing import Any

from blockbuilder import Block, BlockSpec, Node, Shape, Site, register_block


class SqueezeExciteSpec(BlockSpec):
    """``squeeze_excite: {ratio: 16}``."""

    ratio: PositiveInt = Field(16, le=1024)


@register_block("squeeze_excite")
class SqueezeExcite(Block[SqueezeExciteSpec]):
    """Rescales channels by weights learned from their global averages."""

    Spec = SqueezeExciteSpec
    scalar_key = "ratio"
    counts_depth = False  # a gate beside the main path, not a layer on it

    colour = "gate"

    def infer(self, spec: SqueezeExciteSpec, shape: Shape, site: Site) -> Shape:
        if len(shape) != 3:
            raise site.error(f"expects an image input, got shape {list(shape)}")
        if shape[-1] // spec.ratio < 1:
            raise site.error(f"ratio {spec.ratio} leaves no channels of {shape[-1]}", "ratio")
        return shape

    def params(self, node: Node[SqueezeExciteSpec]) -> int:
        channels = node.input_shape[-1]
        hidden = channels // node.spec.ratio
        return channels * hidden + hidden + hidden * channels + channels

    def macs(self, node: Node[SqueezeExciteSpec]) -> int:
        channels = node.input_shape[-1]
        return 2 * channels * (channels // node.spec.ratio)

    def build(self, node: Node[SqueezeExciteSpec], x: Any, ctx: Any) -> Any:
        channels = node.input_shape[-1]
        layers = ctx.layers
        s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{node.path}.squeeze")(x)
        s = layers.Dense(channels // node.spec.ratio, activation="relu", name=f"{node.path}.reduce")(s)
        s = layers.Dense(channels, activation="sigmoid", name=f"{node.path}.expand")(s)
        return layers.Multiply(name=f"{node.path}.scale")([x, s])

    def describe(self, node: Node[SqueezeExciteSpec]) -> str:
        return f"squeeze-excite /{node.spec.ratio}"


if __name__ == "__main__":
    arch = blockbuilder.load(sys.argv[1] if len(sys.argv) > 1 else "examples/se_resnet_cifar.yaml")
    summary = blockbuilder.summarize(arch)
    print(f"{arch.name}: {summary.params_total:,} params, depth {summary.depth}")
