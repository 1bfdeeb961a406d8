"""``batchnorm``: batch normalisation; also the ``norm`` a conv may carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field

from blockbuilder.blocks.registry import Block, BlockSpec, Node, register_block

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext


class BatchNormSpec(BlockSpec):
    """Batch normalisation settings (``batchnorm`` block, or a conv's ``norm``)."""

    epsilon: Annotated[float, Field(gt=0)] = 1e-3
    momentum: Annotated[float, Field(ge=0, le=1)] = 0.99
    center: bool = True
    scale: bool = True


Norm = Union[Literal["none", "batchnorm"], BatchNormSpec]


def norm_spec(norm: Norm) -> BatchNormSpec | None:
    """The batch-norm settings a conv asks for, or ``None``."""
    if norm == "none":
        return None
    return BatchNormSpec() if norm == "batchnorm" else norm  # type: ignore[return-value]


def norm_text(norm: Norm) -> str:
    """A diagram's short name of a conv's ``norm``: ``BN``, or ``""`` for none."""
    return "" if norm_spec(norm) is None else "BN"


def norm_params(norm: BatchNormSpec | None, channels: int) -> int:
    """Weights of a batch norm over ``channels`` (moving mean and variance included)."""
    if norm is None:
        return 0
    return channels * (2 + int(norm.center) + int(norm.scale))


def batch_norm_layer(settings: BatchNormSpec, name: str, ctx: BuildContext) -> Any:
    return ctx.layers.BatchNormalization(epsilon=settings.epsilon, momentum=settings.momentum,
                                         center=settings.center, scale=settings.scale, name=name)


def apply_norm(node: Node[Any], x: Any, norm: Norm, ctx: BuildContext) -> Any:
    """The batch normalisation a conv asks for, named ``<conv>.bn``."""
    settings = norm_spec(norm)
    return x if settings is None else batch_norm_layer(settings, f"{node.path}.bn", ctx)(x)


@register_block("batchnorm")
class BatchNorm(Block[BatchNormSpec]):
    """``batchnorm: {epsilon: 1.001e-5}``."""

    Spec = BatchNormSpec

    def params(self, node: Node[BatchNormSpec]) -> int:
        return norm_params(node.spec, node.output_shape[-1])

    def build(self, node: Node[BatchNormSpec], x: Any, ctx: BuildContext) -> Any:
        return batch_norm_layer(node.spec, node.path, ctx)(x)
