"""``dropout``: zero a fraction ``rate`` of activations while training."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class DropoutSpec(BlockSpec):
    """``dropout: 0.5``."""

    rate: Annotated[float, Field(ge=0, lt=1)]


@register_block("dropout")
class Dropout(Block[DropoutSpec]):
    """Dropout (inactive at inference)."""

    Spec = DropoutSpec
    scalar_key = "rate"
    colour = "regularise"

    def build(self, node: Node[DropoutSpec], x: Any, ctx: BuildContext) -> Any:
        """A Keras ``Dropout`` with an explicit seed.

        The seed is drawn as Keras draws it for ``seed=None`` (Python's ``random``, which
        ``keras.utils.set_random_seed`` seeds), so TensorFlow and JAX compute what they did without it.
        On PyTorch, an unseeded ``Dropout`` uses torch's global generator, which no checkpoint holds;
        a seeded one draws from its ``SeedGenerator``, a variable that ``--resume`` restores.
        """
        seed = random.randint(1, int(1e9))  # keras.random.seed_generator.make_default_seed
        return ctx.layers.Dropout(node.spec.rate, seed=seed, name=node.path)(x)

    def describe(self, node: Node[DropoutSpec]) -> str:
        return f"dropout {node.spec.rate:g}"
