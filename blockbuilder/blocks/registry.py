"""The block registry: a block type is a class registered under a name, never an if/elif.

A block type couples a typed spec (a pydantic model with unknown keys forbidden) with three rules:
how its output shape follows from its input shape (checked before any Keras call), how deep it is
(weight layers on its longest path) and how it is built from ``keras.layers``.

Plugins register their own types with :func:`register_block`; YAML files can only *name* types
that some Python code registered on purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from blockbuilder.errors import Location, SpecError

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expander

Shape = tuple[int, ...]
Field = tuple[int, int] | None


class BlockSpec(BaseModel):
    """Base of every block's typed arguments: unknown keys are errors, values are checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


@dataclass
class Node:
    """One block instance in the expanded network: the hierarchy the summary and diagrams show.

    Attributes:
        type: The registered block type that builds it (``conv``, ``residual`` ...).
        label: What the user called it: a user-defined block's name, else ``type``.
        path: Hierarchical name, also the prefix of every Keras layer it creates
            (``stage3.bottleneck2.conv1``).
        spec: The validated arguments.
        children: Sub-blocks per field (``{"body": [...], "shortcut": [...]}``).
        loc: Where the block was written.
        doc_path: Where in the document (``network[3].residual.body[1]``).
        input_shape / output_shape: Inferred before any Keras call.
        params_estimate: Weights of this block alone (not children), from shapes.
    """

    type: str
    label: str
    path: str
    spec: BlockSpec
    loc: Location | None
    doc_path: str
    children: dict[str, list[Node]] = field(default_factory=dict)
    input_shape: Shape = ()
    output_shape: Shape = ()
    params_estimate: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def all_children(self) -> list[Node]:
        return [child for group in self.children.values() for child in group]

    def error(self, message: str, key: str | None = None) -> SpecError:
        """A ``SpecError`` located at this block (``key`` names the offending argument)."""
        path = f"{self.doc_path}.{self.type}.{key}" if key else self.doc_path
        return SpecError(message, self.loc, path)


class Block:
    """Base class of a block type; subclasses are registered with :func:`register_block`.

    Class attributes:
        Spec: The pydantic spec class of the block's arguments.
        block_fields: Arguments that hold lists of blocks (expanded into ``Node.children``).
        scalar_key: The argument a scalar value stands for (``dropout: 0.5`` -> ``rate``).
        counts_depth: Whether the block is one weight layer for the depth rule.
    """

    type: ClassVar[str] = ""
    Spec: ClassVar[type[BlockSpec]] = BlockSpec
    block_fields: ClassVar[tuple[str, ...]] = ()
    scalar_key: ClassVar[str | None] = None
    counts_depth: ClassVar[bool] = False

    def infer(self, node: Node, shape: Shape, ex: Expander) -> Shape:
        """Return the output shape for input ``shape``; raise ``node.error(...)`` when it cannot work.

        Combinators expand their block fields here (``ex.expand_field``), since what a child
        becomes can depend on the shape that reaches it.
        """
        return shape

    def depth(self, node: Node, child_depth: Callable[[list[Node]], int]) -> int:
        """Weight layers on the longest path through the block."""
        own = 1 if self.counts_depth else 0
        return own + sum(child_depth(group) for group in node.children.values())

    def build(self, node: Node, x: Any, ctx: BuildContext) -> Any:
        """Create the block's Keras layers (named under ``node.path``) and apply them to ``x``."""
        raise NotImplementedError(f"block type '{self.type}' cannot be built")

    def params(self, node: Node) -> int:
        """Weights created by this block itself (children excluded), computed from shapes."""
        return 0

    def macs(self, node: Node) -> int:
        """Multiply-accumulates of this block itself (children excluded), computed from shapes."""
        return 0

    def receptive_field(self, node: Node, field: Field, chain: Callable[[list[Node], Field], Field]) -> Field:
        """``(size, jump)`` in input pixels after this block, given ``field`` before it.

        ``None`` where the idea stops applying (after a global pool, a dense layer, or inside a
        combinator that does not say). Blocks without children leave the field as it is.
        """
        return None if node.children else field


_REGISTRY: dict[str, Block] = {}
B = TypeVar("B", bound=type[Block])


def register_block(name: str, *, replace: bool = False) -> Callable[[B], B]:
    """Class decorator that makes a block type available to YAML files under ``name``.

    Example:
        >>> @register_block("squeeze_excite")
        ... class SqueezeExcite(Block):
        ...     class Spec(BlockSpec):
        ...         ratio: int = 16
        ...     def build(self, node, x, ctx): ...
    """

    def decorate(cls: B) -> B:
        if not name.isidentifier():
            raise ValueError(f"block name {name!r} must be an identifier")
        if name in _REGISTRY and not replace and type(_REGISTRY[name]) is not cls:
            raise ValueError(f"block type {name!r} is already registered")
        cls.type = name
        _REGISTRY[name] = cls()
        return cls

    return decorate


def get_block(name: str) -> Block | None:
    """The registered block type called ``name``, or ``None``."""
    _load_builtins()
    return _REGISTRY.get(name)


def block_names() -> list[str]:
    """All registered block type names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def _load_builtins() -> None:
    from blockbuilder.blocks import combinators, fractal, primitives  # noqa: F401  (registers on import)
