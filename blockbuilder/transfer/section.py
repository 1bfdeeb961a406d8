"""``weights:``, ``freeze:`` and ``head:``, registered with the language as one section (docs/transfer.md).

``head:`` gives the network again with its blocks after the backbone replaced; ``weights:`` and
``freeze:`` (and each ``train.phases[i].freeze``) are read against the expanded network into
``arch.weights`` and ``arch.freeze``.
"""

from __future__ import annotations

from typing import Any, Optional

from blockbuilder.blocks import Node
from blockbuilder.language.document import Map, Seq
from blockbuilder.language.sections import Section, SectionInput
from blockbuilder.transfer.settings import head_network, read_settings

__all__ = ["TRANSFER"]


def read(given: SectionInput) -> dict[str, Any]:
    """``arch.weights`` and ``arch.freeze``, checked against the network (and ``arch.train``'s phases)."""
    weights, freeze = read_settings(given.document, given.root, given.read.get("train"))
    return {"weights": weights, "freeze": freeze}


def network(document: Map, root: Node[Any]) -> Optional[Seq]:
    """With ``head:``, the network list whose blocks after the backbone are the head."""
    return head_network(document, root) if "head" in document else None


def schema(defs: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of ``weights:``, ``freeze:`` and ``head:``."""
    names = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return {
        "weights": {"anyOf": [{"type": "string", "description": "imagenet, a weights file or a run directory"},
                              {"type": "object", "required": ["source"], "additionalProperties": False,
                               "properties": {"source": {"type": "string"}, "strict": {"type": "boolean"}}}]},
        "freeze": {"anyOf": [names, {"type": ["boolean", "null"]},
                             {"type": "object", "properties": {"all_but": names}, "required": ["all_but"],
                              "additionalProperties": False}],
                   "description": "all, none, backbone, block paths or globs, or {all_but: [...]}"},
        "head": {"anyOf": [{"$ref": "#/$defs/blocks"},
                           {"type": "object", "required": ["body"], "additionalProperties": False,
                            "properties": {"after": {"type": "string"}, "body": {"$ref": "#/$defs/blocks"}}}],
                 "description": "blocks that replace the ones after the backbone (or after 'after')"},
    }


TRANSFER = Section(name="transfer", keys=("weights", "freeze", "head"), read=read, schema=schema, order=10,
                   network=network)
