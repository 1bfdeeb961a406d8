"""Resolved document -> frozen tree of blocks with inferred shapes (no Keras involved).

Expansion is a sequence of pure steps for every block entry, top-down:

1. **read** the entry: its type, its arguments and its written name (:func:`read_entry`);
2. **normalise** it: a scalar or list shorthand becomes the full argument (``dropout: 0.5`` ->
   ``{rate: 0.5}``), ``defaults:`` are merged in, the block type's own ``normalize`` rewrites its
   shorthands (``after: relu``);
3. **evaluate** ``$name`` / ``${expr}`` values in the current scope (:func:`substitute`);
4. **validate** the arguments with the block's typed spec;
5. **infer** the output shape (leaves: ``Block.infer``), or **expand** the block fields into
   children (combinators: ``Block.expand``, through an :class:`Expansion`);
6. **freeze** the result in a :class:`~blockbuilder.blocks.registry.Node`.

Nothing is rewritten after it is made; the scope travels as a value
(:class:`~blockbuilder.language.scope.Scope`), never swapped.
Names are unique by construction: a written name that clashes is an error at its line, and automatic
names (``conv1``, ``conv2`` ...) skip every name written or reserved in the same block.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from blockbuilder.blocks import Children, Node, Shape, Site, block_names, get_block
from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq, loc_of
from blockbuilder.language.entries import (Entry, condition, entry_label, input_count, joined, known_block, located,
                                           plain_top, read_defaults, sequence_spec, source_keys, used_at,
                                           validate_spec)
from blockbuilder.language.graph import Region, Source, check_read
from blockbuilder.language.resolve import plain
from blockbuilder.language.scope import (MAX_BLOCK_PARAMS, MAX_BLOCKS, MAX_CALL_DEPTH, MAX_NESTING, Budget, Namer,
                                         Scope, recursion_room)
from blockbuilder.language.substitute import substitute
from blockbuilder.language.user_blocks import UserBlock, user_blocks

NAME = re.compile(r"[A-Za-z_][\w-]{0,99}")
#: The keys of an entry that are not its block type or an argument: its name, its condition, what it reads.
ENTRY_KEYS = ("name", "if", "from")
MAX_SOURCES = 64


# -- what a combinator sees -----------------------------------------------------------------------


@dataclass(frozen=True)
class Expansion:
    """The handle a combinator's ``expand`` gets: expands lists of blocks under the combinator.

    Attributes:
        site: Where the combinator was written (``site.error(...)`` reports at it).
        path: The combinator's hierarchical name.
    """

    expander: Expander
    site: Site
    path: str
    scope: Scope
    namer: Namer
    region: Region
    shared: bool = False  # the children are written in the combinator's place (a sequence, a repeat)

    def chain(self, raw: Any, shape: Shape, field_name: str, *, bindings: Mapping[str, Any] | None = None,
              group: str | None = None, doc_path: str | None = None) -> tuple[tuple[Node[Any], ...], Shape]:
        """Expand a list of blocks (or one block) written in ``field_name``, applied one after another.

        Args:
            raw: The blocks as written.
            shape: The input shape of the first one.
            bindings: Extra names for the expressions inside (a repeat's index).
            group: Wrap the blocks in a sequence node of this name (``unit1``, ``path2`` ...).
            doc_path: Where the list is in the document (default: ``<combinator>.<field>``).

        Returns:
            The child nodes and the output shape of the last one.
        """
        doc_path = doc_path or f"{self.site.doc_path}.{self.site.type}.{field_name}"
        scope = self.scope.bind(bindings or {})
        region = self.region if self.shared else self.region.part(
            f"the {field_name} of {self.site.type} '{self.path.rpartition('.')[2]}'")
        if group is None:
            return self.expander.chain(raw, shape, scope, self.path, self.namer, doc_path, self.site, region)
        path = joined(self.path, self.namer.written(group, self.site.loc, doc_path))
        inner = scope.inside()
        self.expander.enter(inner, self.site.loc, doc_path)
        children, out = self.expander.chain(raw, shape, inner, path, Namer(owner=group), doc_path, self.site,
                                            region)
        site = Site("sequence", self.site.loc, doc_path)
        wrapper = self.expander.make_node("sequence", "sequence", path, sequence_spec(), site,
                                          shape, out, {"body": children})
        return (wrapper,), out

    def child(self, block_type: str, args: dict[str, Any], name: str, shape: Shape, field_name: str) -> Node[Any]:
        """A block the combinator adds itself (a projection shortcut, say), with ``defaults:`` applied."""
        doc_path = f"{self.site.doc_path}.{self.site.type}.{field_name}"
        block = known_block(block_type)
        merged = {**self.expander.defaults_for(block_type), **args}
        spec = validate_spec(block, merged, Map(merged, loc=self.site.loc), self.site.loc, f"{doc_path}.{block_type}")
        site = Site(block_type, self.site.loc, doc_path)
        out = block.infer(spec, shape, site)
        return self.expander.make_node(block_type, block_type, joined(self.path, name), spec, site, shape, out, {})

    def reserve(self, count: int, key: str) -> None:
        """Refuse a count of blocks that would exceed the budget, before expanding any (a repeat's)."""
        if self.expander.budget.blocks + count > self.expander.budget.limit:
            raise self.site.error(f"repeat {count:,} times exceeds the limit of {self.expander.budget.limit:,} "
                                  "blocks", key)


# -- the expander ------------------------------------------------------------------------------


class Expander:
    """Expands one document's ``network`` into a frozen tree of :class:`Node`."""

    def __init__(self, document: Map, max_blocks: int = MAX_BLOCKS) -> None:
        self.user_blocks: dict[str, UserBlock] = user_blocks(document)
        self.defaults = read_defaults(document, self.user_blocks)
        self.budget = Budget(limit=max_blocks)
        self.globals: Mapping[str, Any] = {}
        self.written_at: dict[str, tuple[Location | None, str]] = {}  # each block's entry, by path

    def network(self, network: Any, input_shape: Shape, scope: Scope, input_name: str,
                where: Location | None) -> Node[Any]:
        """The root node (path ``""``) of the top-level ``network`` list; ``scope`` holds the global names."""
        self.globals = scope.names
        if not isinstance(network, Seq) or not network:
            raise SpecError("'network' is a non-empty list of blocks", where, "network")
        site = Site("sequence", where, "network")
        model_input = Source(":input", input_shape, input_name)
        region = Region("the network", start=(model_input,), named={input_name: model_input})
        with recursion_room():
            children, out = self.chain(network, input_shape, scope, "", Namer((input_name,), "the model input"),
                                       "network", site, region)
            root = self.make_node("sequence", "network", "", sequence_spec(), site, input_shape, out,
                                  {"body": children})
            check_read(root, self.written_at)
        return root

    # -- lists and entries -----------------------------------------------------------------------

    def chain(self, raw: Any, shape: Shape, scope: Scope, parent: str, namer: Namer, doc_path: str,
              owner: Site, region: Region) -> tuple[tuple[Node[Any], ...], Shape]:
        items, locs, paths = self._items(raw, owner, doc_path)
        read = [self.read_entry(item, where, path, scope) for item, where, path in zip(items, locs, paths)]
        entries = [entry for entry in read if entry is not None]
        written = [entry.name for entry in entries if entry.name is not None]
        namer.expect(written)
        region.announce(written)
        nodes = []
        for entry in entries:
            node = self.entry(entry, shape, scope, parent, namer, region)
            nodes.append(node)
            shape = node.output_shape
            in_place = entry.type not in self.user_blocks and known_block(entry.type).chains_body
            region.define(entry.name, Source(node.path, shape, node.name), counted=not in_place)
        return tuple(nodes), shape

    def read_entry(self, item: Any, where: Location | None, doc_path: str, scope: Scope) -> Entry | None:
        """Step 1: an entry's type, arguments (shorthands made full) and written name; ``None`` for an entry
        its ``if:`` leaves out.

        An entry written as ``$name`` or ``${expr}`` is evaluated first: to a block name, or to a block
        entry (a block-valued parameter such as ``act: {activation: relu}``, read at its own line).
        """
        if isinstance(item, str) and "$" in item:
            item = substitute(item, scope.names, where, doc_path)
            if isinstance(item, Map):
                return self.read_entry(item, item.loc or where, doc_path, scope)
        if isinstance(item, str):
            return Entry(self._known_type(item, where, doc_path), Map(loc=where), None, where, doc_path, where)
        if not isinstance(item, Map) or not item:
            raise SpecError(f"expected a block (a name, or a mapping like {{conv: {{filters: 32}}}}), "
                            f"got {shown(plain(item))}", where, doc_path)
        if "if" in item and not condition(item, scope, doc_path):
            return None
        keys = [key for key in item if key not in ENTRY_KEYS]
        types = [key for key in keys if self._is_type(key)]
        if len(types) != 1:
            if not types and keys:
                self._known_type(keys[0], item.key_loc(keys[0]), doc_path)
            raise SpecError(f"a block entry names exactly one block type, got {shown(', '.join(map(str, keys)))}",
                            where, doc_path)
        block_type = types[0]
        args = self._shorthand(block_type, item[block_type], item.loc_of(block_type), doc_path)
        for key in keys:
            if key != block_type:
                if key in args:
                    raise SpecError(f"'{key}' is given twice", item.key_loc(key), f"{doc_path}.{key}")
                args[key] = item[key]
                args.locs[key], args.key_locs[key] = item.loc_of(key), item.key_loc(key)
        sources, source_locs = self._sources(item, scope, doc_path)
        name = None
        if "name" in item:
            value = substitute(item["name"], scope.names, item.loc_of("name"), f"{doc_path}.name")
            if not isinstance(value, str) or not NAME.fullmatch(value):
                raise SpecError(f"a block name is letters, digits, '_' and '-' (at most 100), got {shown(value)}",
                                item.loc_of("name"), f"{doc_path}.name")
            name = value
        return Entry(block_type, args, name, where, doc_path, item.loc_of("name") if name else where, sources,
                     source_locs)

    def _sources(self, item: Map, scope: Scope, doc_path: str) -> tuple[tuple[str, ...] | None,
                                                                       tuple[Location | None, ...]]:
        """An entry's ``from:``: the names of the blocks it reads (``None``: it reads the previous block)."""
        if "from" not in item:
            return None, ()
        where, path = item.loc_of("from"), f"{doc_path}.from"
        value = substitute(item["from"], scope.names, where, path)
        names, locs = (list(value), [value.loc_of(i) or where for i in range(len(value))]) \
            if isinstance(value, Seq) else ([value], [where])
        if not 1 <= len(names) <= MAX_SOURCES:
            raise SpecError(f"'from' names an earlier block or a list of 1 to {MAX_SOURCES} of them, "
                            f"got {shown(plain(value))}", where, path)
        for name, at in zip(names, locs):
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise SpecError(f"'from' names blocks by the name: written on them, got {shown(plain(name))}",
                                at, path)
        return tuple(names), tuple(locs)

    def entry(self, entry: Entry, shape: Shape, scope: Scope, parent: str, namer: Namer,
              region: Region) -> Node[Any]:
        """Steps 2-6 for one entry: a frozen node."""
        label = entry_label(entry)
        name = (namer.written(entry.name, entry.name_loc, f"{entry.doc_path}.name") if entry.name
                else namer.automatic(label))
        path = joined(parent, name)
        self.written_at[path] = (entry.where, entry.doc_path)
        region.open(Source(f"{path}:input", shape, "the input"))
        inputs = self._inputs(entry, region)
        inner = scope.inside()
        self.enter(inner, entry.where, entry.doc_path)
        if entry.type in self.user_blocks:
            return self._user(entry, path, shape, inner, region, inputs)
        return self._builtin(entry, path, shape, inner, region, inputs)

    def _inputs(self, entry: Entry, region: Region) -> tuple[Source, ...] | None:
        """What an entry reads when not the previous block: the blocks its ``from:`` names, or, for a block
        that takes several inputs, the blocks written last before it."""
        user = self.user_blocks.get(entry.type)
        low, high = (max(len(user.inputs), 1),) * 2 if user else known_block(entry.type).inputs
        what = (f"block '{entry.type}'" if user else f"'{entry.type}'") + f" takes {input_count(low, high)}"
        if user and user.inputs:
            what += f" ({', '.join(user.inputs)})"
        path = f"{entry.doc_path}.from"
        if entry.sources is not None:
            if not low <= len(entry.sources) <= high:
                raise SpecError(f"{what}, got {len(entry.sources)} in 'from'", entry.source_locs[0], path)
            return tuple(region.resolve(name, at, path) for name, at in zip(entry.sources, entry.source_locs))
        if low == 1:
            return None
        found = region.recent(low)
        if found is None:
            before = len(region.written)
            raise SpecError(f"{what}, but {before} {'block comes' if before == 1 else 'blocks come'} before it "
                            "here: name them in 'from'", entry.where, entry.doc_path)
        return found

    def enter(self, scope: Scope, where: Location | None, doc_path: str) -> None:
        if scope.nesting > MAX_NESTING:
            raise SpecError(f"blocks nested deeper than {MAX_NESTING} levels (does a block or a default "
                            "contain itself?)", where, doc_path)

    # -- built-in and user blocks ----------------------------------------------------------------

    def _builtin(self, entry: Entry, path: str, shape: Shape, scope: Scope, region: Region,
                 inputs: tuple[Source, ...] | None) -> Node[Any]:
        block = known_block(entry.type)
        shape = inputs[0].shape if inputs else shape
        where, doc_path = entry.where, entry.doc_path
        args = self._with_defaults(entry.type, entry.args)
        fields = {key: args.pop(key) for key in list(args) if block.holds_blocks(key, args[key])}
        fields = {key: substitute(value, scope.names, args.loc_of(key) or where, f"{doc_path}.{entry.type}.{key}")
                  if isinstance(value, str) else value for key, value in fields.items()}
        values = substitute(args, scope.names, where, f"{doc_path}.{entry.type}")
        site = Site(entry.type, where, doc_path)
        plain_values, fields = block.normalize(plain_top(values), fields, site)
        spec = validate_spec(block, plain_values, values, where, f"{doc_path}.{entry.type}")
        if block.block_fields:
            expansion = Expansion(self, site, path, scope, Namer(block.layer_names(spec), f"a {entry.type}"),
                                  region, block.chains_body)
            children, out = block.expand(spec, fields, shape, expansion)
        elif inputs:
            children, out = {}, block.infer_inputs(spec, [s.shape for s in inputs], [s.name for s in inputs], site)
        else:
            children, out = {}, block.infer(spec, shape, site)
        node = self.make_node(entry.type, entry_label(entry), path, spec, site, shape, out, children,
                              source_keys(inputs))
        own = block.params(node)
        if own > MAX_BLOCK_PARAMS:
            raise node.error(f"this block alone would have {own:,} parameters (at most {MAX_BLOCK_PARAMS:,})")
        return node

    def _user(self, entry: Entry, path: str, shape: Shape, scope: Scope, region: Region,
              inputs: tuple[Source, ...] | None) -> Node[Any]:
        name, where, doc_path = entry.type, entry.where, entry.doc_path
        shape = inputs[0].shape if inputs else shape
        if name in scope.calls:
            chain = " -> ".join([*scope.calls[scope.calls.index(name):], name])
            raise SpecError(f"block '{name}' uses itself ({chain})", where, doc_path)
        if len(scope.calls) >= MAX_CALL_DEPTH:
            raise SpecError(f"user blocks nested deeper than {MAX_CALL_DEPTH}", where, doc_path)
        user = self.user_blocks[name]
        values = substitute(self._with_defaults(name, entry.args), scope.names, where, f"{doc_path}.{name}")
        params = user.bind(values, where, f"{doc_path}.{name}")
        for key, param in user.params.items():  # a block argument names a known block, checked at its line
            if param.kind == "block" and key in values:
                self.read_entry(values[key], values.loc_of(key), f"{doc_path}.{name}.{key}", scope)
        # The body sees the global names, its parameters, and the shape of its (first) input; from: its inputs.
        body_scope = Scope({**self.globals, "in_channels": shape[-1] if shape else 0, "in_shape": list(shape),
                            **params}, (*scope.calls, name), scope.nesting)
        start = inputs or (Source(f"{path}:input", shape, user.inputs[0] if user.inputs else "the input"),)
        body_region = Region(f"block '{name}'", region, start, dict(zip(user.inputs, start)))
        try:
            # A body that is one block becomes that block, with the user's name (one its 'if' leaves out: nothing).
            inner = (self.read_entry(user.body, user.body_loc, f"{user.doc_path}.body", body_scope)
                     if isinstance(user.body, Map) else None)
            if inner is not None:
                inner = replace(inner, name=None)
                reads = self._inputs(inner, body_region) or inputs
                node = (self._user(inner, path, shape, body_scope, body_region, reads)
                        if inner.type in self.user_blocks else
                        self._builtin(inner, path, shape, body_scope, body_region, reads))
                return replace(node, label=name)
            site = Site("sequence", user.loc, user.doc_path)
            children, out = self.chain(user.body, shape, body_scope, path, Namer(owner=f"block '{name}'"),
                                       f"{user.doc_path}.body", site, body_region)
            return self.make_node("sequence", name, path, sequence_spec(), site, shape, out, {"body": children},
                                  source_keys(inputs))
        except SpecError as exc:
            raise used_at(exc, name, where) from None

    # -- helpers ---------------------------------------------------------------------------------

    def make_node(self, block_type: str, label: str, path: str, spec: Any, site: Site, shape: Shape,
                  out: Shape, children: Children, sources: tuple[str, ...] = ()) -> Node[Any]:
        self.budget.add(1, site.loc, site.doc_path)
        return Node(type=block_type, label=label, path=path, spec=spec, site=site, input_shape=shape,
                    output_shape=out, children=children, sources=sources)

    def defaults_for(self, block_type: str) -> dict[str, Any]:
        found = self.defaults.get(block_type)
        return dict(found) if isinstance(found, Map) else {}

    def _with_defaults(self, block_type: str, args: Map) -> Map:
        defaults = self.defaults.get(block_type)
        merged = Map({**self.defaults_for(block_type), **args}, loc=args.loc)
        merged.locs = {**{k: loc_of(defaults, k) for k in merged}, **args.locs}
        merged.key_locs = {**{k: defaults.key_loc(k) for k in merged if isinstance(defaults, Map) and k in defaults},
                           **args.key_locs}
        return merged

    def _shorthand(self, block_type: str, value: Any, where: Location | None, doc_path: str) -> Map:
        """``dropout: 0.5`` -> ``{rate: 0.5}``; ``sequence: [...]`` -> ``{body: [...]}``."""
        if value is None:
            return Map(loc=where)
        if isinstance(value, Map):
            args = Map(value, loc=value.loc)
            args.locs, args.key_locs = dict(value.locs), dict(value.key_locs)
            return args
        block = get_block(block_type)
        key = None
        if isinstance(value, Seq) and block is not None and block.block_fields:
            key = block.block_fields[0]
        elif block is not None and block.scalar_key and not isinstance(value, Seq):
            key = block.scalar_key
        if key is None:
            raise SpecError(f"the arguments of '{block_type}' are a mapping, got {shown(plain(value))}",
                            where, f"{doc_path}.{block_type}")
        args = Map({key: value}, loc=where)
        args.locs[key] = where
        return args

    def _is_type(self, name: Any) -> bool:
        return isinstance(name, str) and (name in self.user_blocks or get_block(name) is not None)

    def _known_type(self, name: Any, where: Location | None, doc_path: str) -> str:
        if not self._is_type(name):
            choices = [*block_names(), *self.user_blocks]
            raise SpecError(f"unknown block type {shown(name)}{did_you_mean(name, choices)}", where, doc_path)
        return str(name)

    @staticmethod
    def _items(raw: Any, owner: Site, doc_path: str) -> tuple[list[Any], list[Location | None], list[str]]:
        raw = located(raw, owner.loc)
        if isinstance(raw, Seq):
            return list(raw), [raw.loc_of(i) or owner.loc for i in range(len(raw))], \
                [f"{doc_path}[{i}]" for i in range(len(raw))]
        if isinstance(raw, (Map, str)):
            return [raw], [getattr(raw, "loc", None) or owner.loc], [doc_path]
        raise SpecError(f"expected a list of blocks, got {shown(plain(raw))}", owner.loc, doc_path)
