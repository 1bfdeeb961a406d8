"""Resolved document -> validated tree of blocks with inferred shapes (no Keras involved).

Walks ``network`` top-down: evaluates ``$name`` / ``${expr}`` values in the current scope, applies
``defaults:``, expands user-defined blocks and ``repeat``, validates every block's arguments with
its typed spec and infers every output shape, so that mistakes are reported at the line where they
were written, before TensorFlow is imported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import ValidationError

from blockbuilder.language.document import Map, Seq, loc_of
from blockbuilder.errors import Location, SpecError, did_you_mean
from blockbuilder.language.expressions import ExprError, evaluate
from blockbuilder.blocks.registry import Block, Node, Shape, block_names, get_block

MAX_BLOCKS = 20_000
MAX_CALL_DEPTH = 32
MAX_PARAMS = 1_000_000_000
PARAM_TYPES = {"int": int, "float": (int, float), "number": (int, float), "bool": bool,
               "str": str, "list": list, "any": object}

_FULL_EXPR = re.compile(r"\$\{(.*)\}", re.S)
_NAME_REF = re.compile(r"\$([A-Za-z_]\w*)")
_INLINE_EXPR = re.compile(r"\$\{([^}]*)\}")


class UserBlock:
    """A block defined in YAML under ``blocks:`` with typed parameters and a body."""

    def __init__(self, name: str, definition: Any, where: Location | None) -> None:
        self.name = name
        self.loc = where
        self.doc_path = f"blocks.{name}"
        if not isinstance(definition, Map):
            raise SpecError("a block definition is a mapping with 'params' and 'body'", where, self.doc_path)
        unknown = set(definition) - {"params", "body", "doc"}
        for key in unknown:
            raise SpecError(f"unknown key '{key}'{did_you_mean(key, ['params', 'body', 'doc'])}",
                            definition.loc_of(key), self.doc_path)
        if "body" not in definition:
            raise SpecError("a block definition needs a 'body'", where, self.doc_path)
        self.body = definition["body"]
        self.body_loc = definition.loc_of("body")
        self.params = self._parse_params(definition.get("params") or Map())

    def _parse_params(self, params: Any) -> dict[str, tuple[Any, bool, Any]]:
        """name -> (type, required, default)."""
        if not isinstance(params, Map):
            raise SpecError("'params' maps each parameter to a type (int, float, bool, str, list, any) "
                            "or a default value", loc_of(params, 0), f"{self.doc_path}.params")
        parsed = {}
        for name, declared in params.items():
            where, path = params.loc_of(name), f"{self.doc_path}.params.{name}"
            if not str(name).isidentifier():
                raise SpecError(f"parameter name '{name}' is not an identifier", where, path)
            if isinstance(declared, Map):
                extra = set(declared) - {"type", "default"}
                if extra or "type" not in declared:
                    raise SpecError("write a parameter as a type, a default, or {type: T, default: V}",
                                    where, path)
                parsed[name] = (self._type(declared["type"], where, path), "default" not in declared,
                                declared.get("default"))
            elif isinstance(declared, str) and declared in PARAM_TYPES:
                parsed[name] = (PARAM_TYPES[declared], True, None)
            else:
                parsed[name] = (object, False, declared)
        return parsed

    @staticmethod
    def _type(name: Any, where: Location | None, path: str) -> Any:
        if name not in PARAM_TYPES:
            raise SpecError(f"unknown parameter type '{name}'{did_you_mean(name, PARAM_TYPES)} "
                            f"(types: {', '.join(PARAM_TYPES)})", where, path)
        return PARAM_TYPES[name]

    def bind(self, args: Map, where: Location | None, path: str) -> dict[str, Any]:
        """Check call arguments against the parameters; return the parameter values."""
        values = {}
        for key in args:
            if key not in self.params:
                raise SpecError(f"block '{self.name}' has no parameter '{key}'"
                                f"{did_you_mean(key, self.params)}", args.key_loc(key), f"{path}.{key}")
        for name, (kind, required, default) in self.params.items():
            if name not in args:
                if required:
                    raise SpecError(f"block '{self.name}' needs parameter '{name}'", where, path)
                values[name] = default
                continue
            value = args[name]
            if kind is not object and (not isinstance(value, kind) or
                                       (isinstance(value, bool) and kind is not bool)):
                expected = next(k for k, v in PARAM_TYPES.items() if v == kind)
                raise SpecError(f"expected {expected} for parameter '{name}', got {value!r}",
                                args.loc_of(name), f"{path}.{name}")
            values[name] = value
        return values


class Expander:
    """Expands one document's ``network`` into a tree of :class:`Node`."""

    def __init__(self, document: Map) -> None:
        self.document = document
        self.user_blocks = self._user_blocks(document.get("blocks") or Map())
        self.defaults = document.get("defaults") or Map()
        self.globals: dict[str, Any] = {}
        self.scope: dict[str, Any] = {}
        self.count = 0
        self.calls: list[str] = []

    # -- entry point -------------------------------------------------------------------------

    def expand_network(self, network: Any, input_shape: Shape, scope: dict[str, Any]) -> Node:
        """Expand the top-level ``network`` list into a root node (path ``""``)."""
        self.globals = dict(scope)
        self.scope = dict(scope)
        self._check_defaults()
        root = Node(type="sequence", label="network", path="", spec=get_block("sequence").Spec(),
                    loc=loc_of(self.document, "network"), doc_path="network")
        root.raw["body"] = network
        root.input_shape = input_shape
        root.output_shape = self.expand_field(root, "body", input_shape, doc_path="network")
        return root

    # -- used by combinators -------------------------------------------------------------------

    def expand_field(self, node: Node, field: str, shape: Shape, *, raw: Any = None,
                     bindings: dict[str, Any] | None = None,
                     counters: dict[str, int] | None = None, group: str | None = None,
                     doc_path: str | None = None) -> Shape:
        """Expand ``node.raw[field]`` (blocks) into ``node.children[field]``; return the output shape.

        Args:
            raw: Blocks to expand instead of ``node.raw[field]`` (one path of a branch).
            bindings: Extra names for the expressions inside (a repeat's index).
            counters: Shared per-label counters, so repeated blocks are numbered across iterations.
            group: Wrap the expanded blocks in a sequence node of this name.
        """
        raw = node.raw.get(field) if raw is None else raw
        doc_path = doc_path or f"{node.doc_path}.{node.type}.{field}"
        target = node.children.setdefault(field, [])
        if raw is None:
            return shape
        items, locs = self._as_items(raw, node, field)
        parent_path = node.path
        if group:
            wrapper = self._new_node("sequence", group, _join(parent_path, group),
                                     get_block("sequence").Spec(), node.loc, doc_path)
            wrapper.input_shape = shape
            target.append(wrapper)
            target, parent_path, counters = wrapper.children.setdefault("body", []), wrapper.path, None
        with self._bound(bindings or {}):
            counters = {} if counters is None else counters
            for index, (item, where) in enumerate(zip(items, locs)):
                item_path = f"{doc_path}[{index}]" if isinstance(raw, Seq) else doc_path
                child = self.expand_item(item, where, item_path, parent_path, shape, counters)
                target.append(child)
                shape = child.output_shape
        if group:
            wrapper.output_shape = shape
        return shape

    def make_child(self, node: Node, field: str, block_type: str, args: dict[str, Any], name: str,
                   shape: Shape) -> Shape:
        """Add a block the combinator decides on itself (a projection shortcut, say)."""
        merged = Map({**self._defaults_for(block_type), **args}, loc=node.loc)
        child = self._primitive(block_type, merged, node.loc, f"{node.doc_path}.{node.type}.{field}",
                                _join(node.path, name), block_type, shape)
        node.children.setdefault(field, []).append(child)
        return child.output_shape

    def depth(self, nodes: list[Node]) -> int:
        """Weight layers on the longest path through a chain of nodes."""
        return sum(get_block(n.type).depth(n, self.depth) for n in nodes)

    # -- items ---------------------------------------------------------------------------------

    def expand_item(self, item: Any, where: Location | None, doc_path: str, parent_path: str,
                    shape: Shape, counters: dict[str, int]) -> Node:
        """One entry of a block list -> a node (user blocks expanded, shapes inferred)."""
        block_type, args, explicit_name = self._parse_item(item, where, doc_path)
        label = self._label(block_type, args)
        counters[label] = counters.get(label, 0) + 1
        name = explicit_name or f"{label}{counters[label]}"
        path = _join(parent_path, name)
        if block_type in self.user_blocks:
            return self._user(block_type, args, where, doc_path, path, shape)
        return self._primitive(block_type, args, where, doc_path, path, block_type, shape)

    def _parse_item(self, item: Any, where: Location | None, doc_path: str) -> tuple[str, Map, str | None]:
        if isinstance(item, str):
            return self._known_type(item, where, doc_path), Map(loc=where), None
        if not isinstance(item, Map) or not item:
            raise SpecError(f"expected a block (a name, or a mapping like {{conv: {{filters: 32}}}}), "
                            f"got {_show(item)}", where, doc_path)
        types = [key for key in item if key != "name" and self._is_type(key)]
        if len(types) != 1:
            keys = [key for key in item if key != "name"]
            if not types and keys:
                self._known_type(keys[0], item.loc_of(keys[0]), doc_path)
            raise SpecError(f"a block entry names exactly one block type, got {', '.join(map(str, keys))}",
                            where, doc_path)
        block_type = types[0]
        value = item[block_type]
        args = self._args(block_type, value, item.loc_of(block_type), doc_path)
        for key in item:
            if key not in (block_type, "name"):
                if key in args:
                    raise SpecError(f"'{key}' is given twice", item.loc_of(key), f"{doc_path}.{key}")
                args[key] = item[key]
                args.locs[key] = item.loc_of(key)
        name = item.get("name")
        if name is not None:
            name = self.substitute(name, item.loc_of("name"), f"{doc_path}.name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w-]*", name):
                raise SpecError(f"a block name is letters, digits, '_' and '-', got {_show(name)}",
                                item.loc_of("name"), f"{doc_path}.name")
        return block_type, args, name

    def _args(self, block_type: str, value: Any, where: Location | None, doc_path: str) -> Map:
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
            raise SpecError(f"the arguments of '{block_type}' are a mapping, got {_show(value)}",
                            where, f"{doc_path}.{block_type}")
        args = Map({key: value}, loc=where)
        args.locs[key] = where
        return args

    def _is_type(self, name: Any) -> bool:
        return isinstance(name, str) and (name in self.user_blocks or get_block(name) is not None)

    def _known_type(self, name: Any, where: Location | None, doc_path: str) -> str:
        if not self._is_type(name):
            choices = [*block_names(), *self.user_blocks]
            raise SpecError(f"unknown block type '{name}'{did_you_mean(name, choices)}", where, doc_path)
        return name

    @staticmethod
    def _label(block_type: str, args: Map) -> str:
        if block_type == "activation" and isinstance(args.get("function"), str) and \
                args["function"].isidentifier() and args["function"] != "none":
            return args["function"]
        return block_type

    # -- built-in and user blocks --------------------------------------------------------------

    def _primitive(self, block_type: str, args: Map, where: Location | None, doc_path: str,
                   path: str, label: str, shape: Shape) -> Node:
        block = get_block(block_type)
        merged = self._with_defaults(block_type, args)
        raw = {f: merged.pop(f) for f in block.block_fields if f in merged}
        raw = {f: self.substitute(v, merged.loc_of(f), f"{doc_path}.{block_type}.{f}")
               if isinstance(v, str) else v for f, v in raw.items()}
        values = self.substitute(merged, where, f"{doc_path}.{block_type}")
        spec = self._validate(block, values, merged, where, f"{doc_path}.{block_type}")
        node = self._new_node(block_type, label, path, spec, where, doc_path)
        node.raw = raw
        node.input_shape = shape
        node.output_shape = block.infer(node, shape, self)
        node.raw = {}
        self._check_size(node, block)
        return node

    def _user(self, name: str, args: Map, where: Location | None, doc_path: str, path: str,
              shape: Shape) -> Node:
        if name in self.calls:
            chain = " -> ".join([*self.calls[self.calls.index(name):], name])
            raise SpecError(f"block '{name}' uses itself ({chain})", where, doc_path)
        if len(self.calls) >= MAX_CALL_DEPTH:
            raise SpecError(f"user blocks nested deeper than {MAX_CALL_DEPTH}", where, doc_path)
        user = self.user_blocks[name]
        values = self.substitute(self._with_defaults(name, args), where, f"{doc_path}.{name}")
        params = user.bind(values, where, f"{doc_path}.{name}")
        # A block body may read its input shape, e.g. a transition `filters: ${floor(theta * in_channels)}`.
        saved, self.scope = self.scope, {**self.globals, "in_channels": shape[-1], **params}
        self.calls.append(name)
        try:
            node = self._user_body(user, path, shape)
        except SpecError as exc:
            raise _used_at(exc, name, where) from None
        finally:
            self.calls.pop()
            self.scope = saved
        node.label = name
        return node

    def _user_body(self, user: UserBlock, path: str, shape: Shape) -> Node:
        body = user.body
        if isinstance(body, Map):
            # A body that is one block becomes that block, carrying the user block's name.
            block_type, args, _ = self._parse_item(body, user.body_loc, f"{user.doc_path}.body")
            if block_type in self.user_blocks:
                return self._user(block_type, args, user.body_loc, f"{user.doc_path}.body", path, shape)
            return self._primitive(block_type, args, user.body_loc, f"{user.doc_path}.body", path,
                                   block_type, shape)
        node = self._new_node("sequence", user.name, path, get_block("sequence").Spec(), user.loc,
                              user.doc_path)
        node.raw["body"] = body
        node.input_shape = shape
        node.output_shape = self.expand_field(node, "body", shape, doc_path=f"{user.doc_path}.body")
        node.raw = {}
        return node

    # -- helpers -------------------------------------------------------------------------------

    def _new_node(self, block_type: str, label: str, path: str, spec: Any, where: Location | None,
                  doc_path: str) -> Node:
        self.count += 1
        if self.count > MAX_BLOCKS:
            raise SpecError(f"the network expands to more than {MAX_BLOCKS:,} blocks", where, doc_path)
        return Node(type=block_type, label=label, path=path, spec=spec, loc=where, doc_path=doc_path)

    def check_repeat(self, times: int, node: Node) -> None:
        """Refuse a repeat count that would exceed the block budget before expanding anything."""
        if self.count + times > MAX_BLOCKS:
            raise node.error(f"repeat {times:,} times exceeds the limit of {MAX_BLOCKS:,} blocks", "times")

    def _check_size(self, node: Node, block: Block) -> None:
        node.params_estimate = block.params(node)
        if node.params_estimate > MAX_PARAMS:
            raise node.error(f"this block alone would have {node.params_estimate:,} parameters "
                             f"(at most {MAX_PARAMS:,})")

    def _validate(self, block: Block, values: dict[str, Any], raw: Map, where: Location | None,
                  doc_path: str) -> Any:
        try:
            return block.Spec.model_validate(dict(values))
        except ValidationError as exc:
            raise spec_error_from_pydantic(exc, raw, where, doc_path, block.Spec) from None

    def _with_defaults(self, block_type: str, args: Map) -> Map:
        merged = Map({**self._defaults_for(block_type), **args}, loc=args.loc)
        merged.locs = {**{k: loc_of(self.defaults.get(block_type), k) for k in merged}, **args.locs}
        merged.key_locs = dict(args.key_locs)
        return merged

    def _defaults_for(self, block_type: str) -> dict[str, Any]:
        found = self.defaults.get(block_type)
        return dict(found) if isinstance(found, Map) else {}

    def _check_defaults(self) -> None:
        if not isinstance(self.defaults, Map):
            raise SpecError("'defaults' maps block types to their default arguments",
                            loc_of(self.document, "defaults"), "defaults")
        for key, value in self.defaults.items():
            if not self._is_type(key):
                raise SpecError(f"unknown block type '{key}'"
                                f"{did_you_mean(key, [*block_names(), *self.user_blocks])}",
                                self.defaults.loc_of(key), f"defaults.{key}")
            if not isinstance(value, Map):
                raise SpecError("defaults of a block type are a mapping of its arguments",
                                self.defaults.loc_of(key), f"defaults.{key}")

    def _user_blocks(self, blocks: Any) -> dict[str, UserBlock]:
        if not isinstance(blocks, Map):
            raise SpecError("'blocks' maps block names to definitions", loc_of(self.document, "blocks"),
                            "blocks")
        result = {}
        for name, definition in blocks.items():
            where = blocks.loc_of(name)
            if not isinstance(name, str) or not name.isidentifier():
                raise SpecError(f"block name {name!r} is not an identifier", where, f"blocks.{name}")
            if get_block(name) is not None:
                raise SpecError(f"'{name}' is a built-in block type; choose another name", where,
                                f"blocks.{name}")
            result[name] = UserBlock(name, definition, where)
        return result

    def _as_items(self, raw: Any, node: Node, field: str) -> tuple[list[Any], list[Location | None]]:
        if isinstance(raw, Seq):
            return list(raw), list(raw.locs)
        if isinstance(raw, (Map, str)):
            return [raw], [getattr(raw, "loc", None) or node.loc]
        raise SpecError(f"'{field}' is a list of blocks, got {_show(raw)}", node.loc,
                        f"{node.doc_path}.{node.type}.{field}")

    @contextmanager
    def _bound(self, bindings: dict[str, Any]) -> Iterator[None]:
        saved = self.scope
        self.scope = {**self.scope, **bindings}
        try:
            yield
        finally:
            self.scope = saved

    def substitute(self, value: Any, where: Location | None, doc_path: str) -> Any:
        """Replace ``$name`` and ``${expr}`` in ``value`` (recursively) using the current scope."""
        if isinstance(value, str):
            return self._substitute_text(value, where, doc_path)
        if isinstance(value, Map):
            result = Map(loc=value.loc)
            for key, item in value.items():
                result[key] = self.substitute(item, value.loc_of(key), f"{doc_path}.{key}")
                result.locs[key] = value.loc_of(key)
            return result
        if isinstance(value, Seq):
            result = Seq(loc=value.loc)
            for index, item in enumerate(value):
                result.append(self.substitute(item, value.loc_of(index), f"{doc_path}[{index}]"))
            result.locs = list(value.locs)
            return result
        return value

    def _substitute_text(self, text: str, where: Location | None, doc_path: str) -> Any:
        if "$" not in text:
            return text
        try:
            full = _FULL_EXPR.fullmatch(text)
            if full and "${" not in full.group(1):
                return evaluate(full.group(1), self.scope)
            ref = _NAME_REF.fullmatch(text)
            if ref:
                return evaluate(ref.group(1), self.scope)
            return _INLINE_EXPR.sub(lambda m: _format(evaluate(m.group(1), self.scope)), text)
        except ExprError as exc:
            raise SpecError(str(exc), where, doc_path) from None


def spec_error_from_pydantic(exc: ValidationError, raw: Map, where: Location | None, doc_path: str,
                             spec_class: Any) -> SpecError:
    """The first pydantic error as a ``SpecError`` at the offending key, in plain words."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    key = error["loc"][0] if error["loc"] else None
    path = doc_path + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
    place = loc_of(raw, key) if key is not None else where
    if error["type"] == "extra_forbidden" and isinstance(raw, Map):
        place = raw.key_loc(key)
    return SpecError(_plain_message(error, spec_class), place or where, path)


def _plain_message(error: dict[str, Any], spec_class: Any) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    key = error["loc"][0] if error["loc"] else ""
    if kind == "extra_forbidden":
        return f"unknown key '{key}'{did_you_mean(key, spec_class.model_fields)}"
    if kind == "missing":
        return f"missing required key '{key}'"
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return f"expected one of {expected}, got {_show(value)}{did_you_mean(value, choices)}"
    if kind in ("greater_than", "greater_than_equal") and ctx.get("gt") == 0 and isinstance(value, int):
        return f"expected a positive integer, got {value}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"expected an integer, got {_show(value)}"
    if kind in ("float_parsing", "float_type"):
        return f"expected a number, got {_show(value)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"expected true or false, got {_show(value)}"
    msg = error["msg"]
    return f"{msg[0].lower()}{msg[1:]}, got {_show(value)}"


def _used_at(exc: SpecError, name: str, where: Location | None) -> SpecError:
    if " (in block '" in exc.message or where is None:
        return exc
    return SpecError(f"{exc.message} (in block '{name}' used at {where})", exc.location, exc.path)


def _join(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


def _format(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _show(value: Any) -> str:
    text = repr(dict(value) if isinstance(value, Map) else list(value) if isinstance(value, Seq) else value)
    return text if len(text) <= 60 else text[:57] + "..."
