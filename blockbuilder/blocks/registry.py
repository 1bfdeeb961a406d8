"""The block registry: a block type is one class in one module, registered under a name.

A block type couples a typed spec (a pydantic model: unknown keys forbidden, strict scalars) with
its rules, all in one class:

* ``infer`` -- the output shape for an input shape (pure; leaves only), checked before any Keras call;
* ``expand`` -- for combinators: how the block's fields become child nodes (see :mod:`blockbuilder.language.expand`);
* ``params`` / ``macs`` / ``depth`` / ``receptive_field`` -- the figures of the summary, from shapes;
* ``build`` -- the Keras layers, named under the node's path;
* ``describe`` / ``colour`` -- what the diagram shows.

This module is a leaf: it imports nothing else of blockbuilder but the errors, so block modules can
import it without a cycle. Plugins register their own types with :func:`register_block`; YAML files
can only *name* types that some Python code registered on purpose.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, model_validator

from blockbuilder.errors import Location, SpecError
from blockbuilder.plugins import load_entry_points

if TYPE_CHECKING:  # pragma: no cover
    from blockbuilder.compiler.compile import BuildContext
    from blockbuilder.language.expand import Expansion

Shape = tuple[int, ...]
Field = tuple[int, int] | None
Children = Mapping[str, tuple["Node[Any]", ...]]


class BlockSpec(BaseModel):
    """Base of every block's typed arguments.

    Unknown keys are errors; scalars are strict (a boolean is never a number, a string never a
    number); YAML lists arrive as tuples (``kernel: [3, 1]``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: _tuples(value) for key, value in data.items()}
        return data


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


S = TypeVar("S", bound=BlockSpec)
S_co = TypeVar("S_co", bound=BlockSpec, covariant=True)


@dataclass(frozen=True)
class Site:
    """Where a block was written: enough to report an error at it before its node exists."""

    type: str
    loc: Location | None
    doc_path: str

    def error(self, message: str, key: str | None = None) -> SpecError:
        """A ``SpecError`` located at this block (``key`` names the offending argument)."""
        path = f"{self.doc_path}.{self.type}.{key}" if key else self.doc_path
        return SpecError(message, self.loc, path)


@dataclass(frozen=True)
class Node(Generic[S_co]):
    """One block instance in the expanded network; frozen once expansion made it.

    Attributes:
        type: The registered block type that builds it (``conv``, ``residual`` ...).
        label: What the user called it: a user-defined block's name, else ``type``.
        path: Hierarchical name, also the prefix of every Keras layer it creates
            (``stage3.bottleneck2.conv1``).
        spec: The validated arguments, exactly as written (never rewritten).
        site: Where the block was written.
        input_shape / output_shape: Inferred before any Keras call.
        children: Sub-blocks per field (``{"body": (...), "shortcut": (...)}``).
        sources: The tensors it reads when not the previous block's output (``from:``, or a block that
            takes several inputs): each a block's path, or ``PATH:input`` for what the chain handed the
            block at ``PATH`` (``:input`` is the model input). Empty: the previous block's output.
    """

    type: str
    label: str
    path: str
    spec: S_co
    site: Site
    input_shape: Shape
    output_shape: Shape
    children: Children = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def loc(self) -> Location | None:
        return self.site.loc

    @property
    def doc_path(self) -> str:
        return self.site.doc_path

    @property
    def block(self) -> Block[Any]:
        """The block type of this node."""
        found = get_block(self.type)
        assert found is not None, self.type
        return found

    def group(self, field_name: str) -> tuple[Node[Any], ...]:
        """The children in one field (empty when the field has none)."""
        return self.children.get(field_name, ())

    def all_children(self) -> list[Node[Any]]:
        return [child for group in self.children.values() for child in group]

    def walk(self) -> list[Node[Any]]:
        """This node and every node under it, depth first (iterative: deep trees are fine)."""
        found: list[Node[Any]] = []
        stack: list[Node[Any]] = [self]
        while stack:
            node = stack.pop()
            found.append(node)
            stack.extend(reversed(node.all_children()))
        return found

    def error(self, message: str, key: str | None = None) -> SpecError:
        return self.site.error(message, key)


DepthOf = Callable[[tuple[Node[Any], ...]], int]
Chain = Callable[[tuple[Node[Any], ...], Field], Field]
V = TypeVar("V")


def flow(nodes: tuple[Node[Any], ...], value: V, env: dict[str, V], step: Callable[[Node[Any], V], V],
         join: Callable[[list[V]], V], outside: V | None = None) -> V:
    """Carry a value (a tensor, a depth, a receptive field) through a chain of blocks.

    Each block gets the previous block's value, or, where it reads other blocks (``Node.sources``), theirs,
    ``join``-ed; ``env`` keeps every block's value and what the chain handed it (``PATH:input``), so a later
    block can read them. A source not in ``env`` (outside a block measured alone) is ``outside``, or else
    the value handed to the block.
    """
    for node in nodes:
        env[f"{node.path}:input"] = value
        if node.sources:
            value = join([env.get(key, value if outside is None else outside) for key in node.sources])
        value = step(node, value)
        env[node.path] = value
    return value


class Block(Generic[S]):
    """Base class of a block type; subclasses are registered with :func:`register_block`.

    Class attributes:
        Spec: The pydantic spec class of the block's arguments.
        block_fields: Arguments that hold lists of blocks (expanded into ``Node.children``).
        scalar_key: The argument a scalar value stands for (``dropout: 0.5`` -> ``rate``).
        counts_depth: Whether the block is one weight layer for the depth rule.
        inputs: How many inputs the block takes, ``(fewest, most)``; more than one come from ``from:``.
        chains_body: Whether the block's ``body`` is one chain from its input to its output (a sequence,
            a repeat): names written inside stay visible to ``from:`` after it, as if written in its place.
        colour: The diagram's fill colour class (``conv``, ``dense``, ``pool``, ``regularise``,
            ``plain``, ``combinator`` ...; see ``blockbuilder.report.diagram_marks.COLOURS``).
    """

    type: ClassVar[str] = ""
    Spec: ClassVar[builtins.type[BlockSpec]] = BlockSpec
    block_fields: ClassVar[tuple[str, ...]] = ()
    scalar_key: ClassVar[str | None] = None
    counts_depth: ClassVar[bool] = False
    inputs: ClassVar[tuple[int, int]] = (1, 1)
    chains_body: ClassVar[bool] = False
    colour: ClassVar[str] = "plain"

    # -- the document: shorthands ---------------------------------------------------------------

    def holds_blocks(self, key: str, value: Any) -> bool:
        """Whether argument ``key`` holds blocks (expanded later, in their own scope) rather than a value."""
        return key in self.block_fields

    def normalize(self, args: dict[str, Any], fields: dict[str, Any],
                  site: Site) -> tuple[dict[str, Any], dict[str, Any]]:
        """Rewrite shorthands into the full form, before the spec is validated.

        ``args`` are the evaluated arguments, ``fields`` the block lists as written. For example a
        residual's ``after: relu`` becomes ``after: [activation: relu]``. The default keeps both.
        """
        return args, fields

    # -- shapes ---------------------------------------------------------------------------------

    def infer(self, spec: S, shape: Shape, site: Site) -> Shape:
        """The output shape for input ``shape`` (leaves); raise ``site.error(...)`` when it cannot work."""
        return shape

    def infer_inputs(self, spec: S, shapes: Sequence[Shape], names: Sequence[str], site: Site) -> Shape:
        """The output shape for several inputs (``names`` as written in ``from:``, for messages); blocks that
        take one input keep ``infer``."""
        return self.infer(spec, shapes[0], site)

    def expand(self, spec: S, fields: Mapping[str, Any], shape: Shape, ex: Expansion) -> tuple[Children, Shape]:
        """Combinators: expand the block fields into children; return them and the output shape.

        ``fields`` holds the written (unexpanded) blocks per field. ``ex`` expands a list of blocks
        (``ex.chain``) or a block the combinator adds itself (``ex.child``). Leaves have no fields:
        the default returns no children and ``infer``'s shape.
        """
        return {}, self.infer(spec, shape, ex.site)

    def layer_names(self, spec: S) -> tuple[str, ...]:
        """Names of Keras layers the block creates directly under its own path (``add`` ...).

        Child blocks may not take these names.
        """
        return ()

    # -- figures --------------------------------------------------------------------------------

    def params(self, node: Node[S]) -> int:
        """Weights created by this block itself (children excluded), computed from shapes."""
        return 0

    def macs(self, node: Node[S]) -> int:
        """Multiply-accumulates of this block itself (children excluded), computed from shapes."""
        return 0

    def activations(self, node: Node[S]) -> int:
        """Values this block itself keeps per image (its output), for the activation-memory budget."""
        return math.prod(node.output_shape) if not node.children else 0

    def depth(self, node: Node[S], depth_of: DepthOf) -> int:
        """Weight layers on the longest path through the block (children chained field after field)."""
        own = 1 if self.counts_depth else 0
        return own + sum(depth_of(group) for group in node.children.values())

    def receptive_field(self, node: Node[S], field: Field, chain: Chain) -> Field:
        """``(size, jump)`` in input pixels after this block, given ``field`` before it.

        ``None`` where the idea stops applying (after a global pool, a dense layer, or inside a
        combinator that does not say). Blocks without children leave the field as it is.
        """
        return None if node.children else field

    # -- Keras ----------------------------------------------------------------------------------

    def build(self, node: Node[S], x: Any, ctx: BuildContext) -> Any:
        """Create the block's Keras layers (named under ``node.path``) and apply them to ``x``."""
        raise NotImplementedError(f"block type '{self.type}' cannot be built")

    def keras_layers(self) -> tuple[builtins.type, ...]:
        """Custom Keras layer classes this block builds with, registered as serializable.

        Define them inside this method (importing Keras here, not at module level, keeps
        ``validate`` free of TensorFlow) and cache them; :mod:`blockbuilder.compiler.layers` calls it
        for every registered block, so a saved ``.keras`` file finds them when it is loaded.
        """
        return ()

    # -- diagrams -------------------------------------------------------------------------------

    def describe(self, node: Node[S]) -> str:
        """What the block does, in a few words, for a diagram box (``conv 3×3 /2, 64``)."""
        return self.type.replace("_", " ")


_REGISTRY: dict[str, Block[Any]] = {}
B = TypeVar("B", bound=type[Block[Any]])


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


def get_block(name: str) -> Block[Any] | None:
    """The registered block type called ``name``, or ``None``.

    The built-in types are registered by importing :mod:`blockbuilder.blocks` (which any import of
    this module does first, as its package); those of installed plugin packages the first time a block
    type is looked up (:func:`blockbuilder.plugins.load_entry_points`).
    """
    load_entry_points()
    return _REGISTRY.get(name)


def block_names() -> list[str]:
    """All registered block type names, sorted."""
    load_entry_points()
    return sorted(_REGISTRY)
