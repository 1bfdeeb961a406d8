"""``activation``: a non-linearity; also the activation every conv and dense may end with."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

ActivationName = Literal[
    "none", "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu",
    "tanh", "sigmoid", "hard_sigmoid", "softmax", "softplus", "scaled_tanh",
]


#: How a diagram box names an activation function (``none`` and ``linear`` add nothing to name).
SHORT_NAMES = {
    "relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU", "gelu": "GELU",
    "silu": "SiLU", "hard_sigmoid": "hard sigmoid", "scaled_tanh": "scaled tanh", "none": "", "linear": "",
}


def activation_text(function: str) -> str:
    """A diagram's short name of an activation: ``relu`` -> ``ReLU``, ``none`` -> ``""``."""
    return SHORT_NAMES.get(function, function)


class ActivationSpec(BlockSpec):
    """``activation: relu`` (``scaled_tanh`` is LeNet's 1.7159·tanh(2x/3))."""

    function: ActivationName


def activation_layer(function: str, name: str, ctx: BuildContext) -> Any:
    """The Keras layer of an activation function, named ``name``."""
    if function == "scaled_tanh":
        from blockbuilder.compiler.custom_layers import ScaledTanh

        return ScaledTanh(name=name)
    if function in ("none", "linear"):
        return ctx.layers.Identity(name=name)
    return ctx.layers.Activation(function, name=name)


def apply_activation(node: Node[Any], x: Any, function: str, ctx: BuildContext) -> Any:
    """A block's own activation, named ``<block>.<function>``; ``none`` adds nothing."""
    if function in ("none", "linear"):
        return x
    return activation_layer(function, f"{node.path}.{function}", ctx)(x)


@register_block("activation")
class Activation(Block[ActivationSpec]):
    """A non-linearity; shown in the hierarchy under its function's name (``relu1``)."""

    Spec = ActivationSpec
    scalar_key = "function"

    def build(self, node: Node[ActivationSpec], x: Any, ctx: BuildContext) -> Any:
        return activation_layer(node.spec.function, node.path, ctx)(x)

    def describe(self, node: Node[ActivationSpec]) -> str:
        return activation_text(node.spec.function) or str(node.spec.function)
