"""``activation``: a non-linearity; also the activation every conv and dense may end with."""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Any, Literal

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext

#: Every activation of ``keras.activations`` by its Keras name, but ``glu`` (it halves the channels: a
#: shape change, not an activation) and ``threshold`` (it has no default arguments); plus ``none``
#: (no layer) and ``scaled_tanh``. ``tests/blocks/test_new_blocks.py`` checks the list against the installed
#: Keras, so a Keras that adds one fails a test until it is here (the language cannot import Keras).
ActivationName = Literal[
    "none", "linear", "scaled_tanh",
    "celu", "elu", "exponential", "gelu", "hard_shrink", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "leaky_relu", "log_sigmoid", "log_softmax", "mish", "relu", "relu6", "selu", "sigmoid", "silu",
    "soft_shrink", "softmax", "softplus", "softsign", "sparse_plus", "sparse_sigmoid", "sparsemax",
    "squareplus", "swish", "tanh", "tanh_shrink",
]
#: The names of :data:`ActivationName`, in its order.
ACTIVATIONS: tuple[str, ...] = typing.get_args(ActivationName)
#: Activations blockbuilder defines itself (not in ``keras.activations``).
OWN_ACTIVATIONS = ("none", "scaled_tanh")


#: How a diagram box names an activation function (``none`` and ``linear`` add nothing to name).
SHORT_NAMES = {
    "relu": "ReLU", "relu6": "ReLU6", "leaky_relu": "LeakyReLU", "elu": "ELU", "selu": "SELU", "gelu": "GELU",
    "celu": "CELU", "silu": "SiLU", "hard_silu": "hard SiLU", "hard_swish": "hard swish", "mish": "Mish",
    "hard_sigmoid": "hard sigmoid", "scaled_tanh": "scaled tanh", "none": "", "linear": "",
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
