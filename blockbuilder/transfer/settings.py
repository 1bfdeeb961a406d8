"""The transfer-learning keys of an architecture file: ``weights:``, ``freeze:`` and ``head:`` (no Keras).

```yaml
extends: resnet50
classes: 5
weights: imagenet              # or a .keras / .weights.h5 / .h5 file, or a run directory
freeze: backbone               # or [conv1, stage1, "stage2.*"], or {all_but: [stage4, head]}
head: [global_avg_pool, dropout: 0.2, dense: {units: $classes, activation: softmax}]
```

* ``head:`` replaces every block after the *backbone* with a block named ``head`` (a sequence of the
  given blocks); ``head: {after: stage3, body: [...]}`` cuts after the named top-level block instead.
* The *backbone* is every top-level block up to the last one whose output is an image
  (``[height, width, channels]``): the part keras.applications keeps with ``include_top=False``.
* Freezing a block freezes every block under it; a pattern is a block path or a glob over paths.

Everything here is decided from the document and the expanded tree, so ``validate`` reports a
misspelled block name in ``freeze:`` at its line, before any model is built.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq
from blockbuilder.language.resolve import plain

__all__ = ["HEAD", "IMAGENET", "Freeze", "Weights", "backbone", "head_network", "read_freeze", "read_settings",
           "read_weights"]

IMAGENET = "imagenet"
HEAD = "head"
BACKBONE = "backbone"
WEIGHTS_KEYS = ("source", "strict")
HEAD_KEYS = ("after", "body")


@dataclass(frozen=True)
class Weights:
    """Where a model's starting weights come from.

    Attributes:
        source: ``imagenet``, or a path (a relative path written in a file is relative to that file).
        written: The source as written, for messages.
        strict: Any layer that cannot be loaded is an error (otherwise it is reported and skipped).
    """

    source: str
    written: str
    strict: bool = False

    @property
    def imagenet(self) -> bool:
        return self.source == IMAGENET


@dataclass(frozen=True)
class Freeze:
    """Which blocks do not train.

    Attributes:
        blocks: Block paths; a layer is covered when its name is one of them or lies under one.
        all_but: Freeze every layer *not* covered instead.
        written: The setting as written, for messages.
    """

    blocks: frozenset[str] = frozenset()
    all_but: bool = False
    written: str = ""

    def frozen(self, layer_name: str) -> bool:
        """Whether the Keras layer called ``layer_name`` (a block path, or one with a suffix) is frozen."""
        parts = layer_name.split(".")
        covered = any(".".join(parts[:end]) in self.blocks for end in range(1, len(parts) + 1))
        return covered != self.all_but

    @property
    def nothing(self) -> bool:
        return not self.blocks and not self.all_but


# -- weights: -----------------------------------------------------------------------------------


def read_weights(document: Map) -> Weights | None:
    """The ``weights:`` setting (``None`` when the file has none)."""
    if document.get("weights") is None:
        return None
    value, where = document["weights"], document.loc_of("weights")
    strict: Any = False
    if isinstance(value, Map):
        for key in value:
            if key not in WEIGHTS_KEYS:
                raise SpecError(f"unknown key {shown(key)}{did_you_mean(key, WEIGHTS_KEYS)}", value.key_loc(key),
                                f"weights.{key}")
        if "source" not in value:
            raise SpecError("missing required key 'source' (imagenet, a weights file or a run directory)",
                            where, "weights")
        strict, where = value.get("strict", False), value.loc_of("source")
        if not isinstance(strict, bool):
            raise SpecError(f"expected true or false, got {shown(strict)}", value.loc_of("strict"), "weights.strict")
        value = value["source"]
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"expected 'imagenet', a weights file (.keras, .weights.h5, .h5) or a run directory, "
                        f"got {shown(value)}", where, "weights")
    return Weights(source=_source_path(value, where), written=value, strict=strict)


def _source_path(written: str, where: Location | None) -> str:
    """A path written in a file is relative to that file; one given on the command line, to the working folder."""
    if written == IMAGENET:
        return written
    path = Path(os.path.expanduser(written))  # ~user as written when there is no such user, as for data paths
    in_file = where is not None and bool(where.line) and Path(where.file).is_file()
    if not path.is_absolute() and in_file:
        assert where is not None
        path = Path(where.file).parent / path
    return str(path)


# -- freeze: ------------------------------------------------------------------------------------


def read_freeze(value: Any, root: Node[Any], where: Location | None, doc_path: str) -> Freeze:
    """A ``freeze:`` value, its patterns checked against the network.

    Forms: ``all``, ``none``, ``backbone``, a block path or glob, a list of them, or
    ``{all_but: [...]}``.

    Raises:
        SpecError: an unknown form, or a pattern that names no block (with a did-you-mean).
    """
    all_but = False
    if isinstance(value, Map):
        if list(value) != ["all_but"]:
            key = next((k for k in value if k != "all_but"), "all_but")
            raise SpecError(f"freeze as a mapping is {{all_but: [blocks]}}, got key {shown(key)}"
                            f"{did_you_mean(key, ['all_but'])}", value.key_loc(key), doc_path)
        all_but, where, value = True, value.loc_of("all_but"), value["all_but"]
        doc_path = f"{doc_path}.all_but"
    if value is None or value is False or value == "none":
        return Freeze(written="none")
    if value == "all" or value is True:
        return Freeze(frozenset(child.path for child in root.all_children()), all_but, "all")
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise SpecError(f"expected all, none, backbone, block paths or globs (a list), or {{all_but: [...]}}, "
                        f"got {shown(plain(value))}", where, doc_path)
    blocks: set[str] = set()
    for index, pattern in enumerate(patterns):
        here = value.loc_of(index) if isinstance(value, Seq) else where
        blocks |= _matches(pattern, root, here, f"{doc_path}[{index}]" if isinstance(value, list) else doc_path)
    return Freeze(frozenset(blocks), all_but, ", ".join(patterns))


def _matches(pattern: str, root: Node[Any], where: Location | None, doc_path: str) -> set[str]:
    if pattern == BACKBONE:
        return {node.path for node in backbone(root, where, doc_path)}
    if pattern == "all":
        return {child.path for child in root.all_children()}
    paths = [node.path for node in root.walk() if node.path]
    found = {path for path in paths if fnmatch.fnmatchcase(path, pattern)}
    if not found:
        top = [child.path for child in root.all_children()]
        raise SpecError(f"no block matches {shown(pattern)}{did_you_mean(pattern, paths)} (top-level blocks: "
                        f"{', '.join(top[:12])}{' ...' if len(top) > 12 else ''})", where, doc_path)
    return found


def backbone(root: Node[Any], where: Location | None = None, doc_path: str = "freeze") -> list[Node[Any]]:
    """The top-level blocks up to the last one with an image-shaped output (a ``head:`` comes after them).

    Raises:
        SpecError: the network has no image-shaped block (so no backbone to speak of).
    """
    children = list(root.all_children())
    cut = _last_image_block(children)
    if cut is None:
        raise SpecError("this network has no block with an image-shaped output [height, width, channels], so no "
                        "backbone; name the blocks instead", where, doc_path)
    return children[:cut + 1]


def _last_image_block(children: list[Node[Any]]) -> int | None:
    found = [index for index, child in enumerate(children) if len(child.output_shape) == 3]
    return found[-1] if found else None


# -- head: --------------------------------------------------------------------------------------


def head_network(document: Map, root: Node[Any]) -> Seq:
    """The ``network`` list with the blocks after the backbone replaced by ``head:`` (a block named ``head``).

    Args:
        document: The merged document (it has a ``head`` key).
        root: The network expanded as written, to find where the backbone ends.

    Raises:
        SpecError: a malformed ``head:``, an unknown ``after:`` block, or a network with no image-shaped block.
    """
    head, where = document["head"], document.loc_of("head")
    after: Any = None
    body: Any = head
    if isinstance(head, Map):
        for key in head:
            if key not in HEAD_KEYS:
                raise SpecError(f"unknown key {shown(key)}{did_you_mean(key, HEAD_KEYS)}", head.key_loc(key),
                                f"head.{key}")
        if "body" not in head:
            raise SpecError("missing required key 'body' (the blocks of the new head)", where, "head")
        after, body = head.get("after"), head["body"]
    if isinstance(body, Map):  # one block
        single = Seq([body], loc=body.loc)
        single.locs = [body.loc]
        body = single
    if not isinstance(body, Seq) or not body:
        raise SpecError("'head' is a non-empty list of blocks, or {after: BLOCK, body: [blocks]}",
                        where, "head")
    children = list(root.all_children())
    names = [child.name for child in children]
    if after is not None:
        here = head.loc_of("after") if isinstance(head, Map) else where
        if after not in names:
            raise SpecError(f"no top-level block called {shown(after)}{did_you_mean(after, names)} "
                            f"(top-level blocks: {', '.join(names)})", here, "head.after")
        cut = names.index(after)
    else:
        found = _last_image_block(children)
        if found is None:
            raise SpecError("the network has no block with an image-shaped output to put a head after; say where "
                            "with head: {after: BLOCK, body: [...]}", where, "head")
        cut = found
    if HEAD in names[:cut + 1]:
        index = names.index(HEAD)
        raise SpecError(f"the network keeps its block network[{index}] named '{HEAD}', the name of the new head; "
                        f"rename that block (--set network[{index}].name=...) or cut before it with "
                        "head: {after: BLOCK, body: [...]}", where, "head")
    network = document["network"]
    entry = Map({"sequence": body, "name": HEAD}, loc=body.loc or where)
    entry.locs = {"sequence": body.loc or where, "name": where}
    entry.key_locs = {"sequence": where, "name": where}
    result = Seq([*network[:cut + 1], entry], loc=network.loc)
    result.locs = [*network.locs[:cut + 1], body.loc or where]
    return result


# -- all of them --------------------------------------------------------------------------------


def read_settings(document: Map, root: Node[Any], train: Any) -> tuple[Weights | None, Freeze | None]:
    """``weights:`` and ``freeze:`` (and every ``train.phases[i].freeze``), checked against the network."""
    weights = read_weights(document)
    freeze = None
    if document.get("freeze") is not None:
        freeze = read_freeze(document["freeze"], root, document.loc_of("freeze"), "freeze")
    section = document.get("train")
    phases = section.get("phases") if isinstance(section, Map) else None
    for index, phase in enumerate(getattr(train, "phases", None) or ()):
        if getattr(phase, "freeze", None) is None:
            continue
        written = phases[index] if isinstance(phases, Seq) and index < len(phases) else None
        where = written.loc_of("freeze") if isinstance(written, Map) else None
        read_freeze(_located(written, "freeze", phase.freeze), root, where, f"train.phases[{index}].freeze")
    return weights, freeze


def _located(written: Any, key: str, fallback: Any) -> Any:
    """The value as written in the document (with its locations) when there is one."""
    return written[key] if isinstance(written, Map) and key in written else fallback


