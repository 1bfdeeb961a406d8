"""Budgets: how large a file, a document and a model may be before blockbuilder refuses it.

Every limit is checked before the work it guards (the file size before reading, the model size
before building) and its error points at the file. The model limits can be raised on purpose with
``--limit params=5e9`` (or ``Limits(params=...)`` in Python).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from blockbuilder.blocks import Node
from blockbuilder.errors import Location, SpecError, UsageError, did_you_mean
from blockbuilder.language import document, expressions, resolve, scope, user_blocks

BYTES_PER_VALUE = 4  # float32


@dataclass(frozen=True)
class Limits:
    """The budgets a model must fit.

    Attributes:
        params: Total parameters of the model.
        activation_bytes: Memory of every block's output for one image, at 4 bytes a value.
        blocks: Blocks in the expanded network.
    """

    params: int = 2_000_000_000
    activation_bytes: int = 8 * 1024**3
    blocks: int = scope.MAX_BLOCKS

    def check_model(self, root: Node[Any], where: Location | None) -> None:
        """Refuse a model over the parameter or activation budget, before anything is built."""
        nodes = root.walk()
        params = sum(n.block.params(n) for n in nodes)
        if params > self.params:
            raise SpecError(f"the model would have {params:,} parameters, over the budget of {self.params:,} "
                            "(raise it on purpose with --limit params=N)", where, "network")
        memory = sum(n.block.activations(n) for n in nodes) * BYTES_PER_VALUE
        if memory > self.activation_bytes:
            raise SpecError(f"the model's activations take {memory:,} bytes per image, over the budget of "
                            f"{self.activation_bytes:,} (raise it on purpose with --limit activation_bytes=N)",
                            where, "network")

    def with_overrides(self, texts: list[str]) -> Limits:
        """``["params=5e9"]`` -> a copy with those limits raised (or lowered).

        Raises:
            UsageError: for an unknown name or a value that is not a positive number.
        """
        names = [f.name for f in fields(self)]
        changes: dict[str, int] = {}
        for text in texts:
            name, _, value = text.partition("=")
            if name not in names:
                raise UsageError(f"--limit: unknown budget '{name}'{did_you_mean(name, names)} "
                                 f"(budgets: {', '.join(names)})")
            try:
                number = float(value)
            except ValueError:
                raise UsageError(f"--limit {name}: expected a number, got '{value}'") from None
            if not number >= 1 or number != number:
                raise UsageError(f"--limit {name}: expected a positive number, got '{value}'")
            changes[name] = int(number)
        return replace(self, **changes)


def budget_table() -> list[tuple[str, str, str]]:
    """Every budget: (what, limit, how it is enforced) -- the README's table is generated from this."""
    limits = Limits()
    return [
        ("file size", f"{document.MAX_BYTES:,} bytes", "checked with stat before reading; reads are bounded"),
        ("YAML nesting", f"{document.MAX_DEPTH} levels", "while parsing"),
        ("YAML values", f"{document.MAX_NODES:,}", "counted with aliases expanded: an alias bomb ends here"),
        ("`extends` chain", f"{resolve.MAX_EXTENDS} files", "loops are errors"),
        ("expression length", f"{expressions.MAX_LENGTH} characters", "before parsing"),
        ("expression values", f"magnitude ≤ {expressions.MAX_MAGNITUDE:.0e}, exponent ≤ 64, "
                              f"`round` digits ≤ {expressions.MAX_DIGITS}", "every operator's result is checked"),
        ("blocks", f"{limits.blocks:,}", "counted while expanding; a `repeat` is refused before it expands"),
        ("block nesting", f"{scope.MAX_NESTING} levels", "while expanding (a default or block that contains "
                                                           "itself ends here)"),
        ("user-block call depth", f"{scope.MAX_CALL_DEPTH}", "recursion is an error at once"),
        ("user-block parameters", f"{len(user_blocks.PARAM_TYPES)} types", "a boolean is never a number, a "
                                                                            "string never a number"),
        ("parameters per block", f"{scope.MAX_BLOCK_PARAMS:,}", "from shapes, before building"),
        ("model parameters", f"{limits.params:,}", "`--limit params=N`"),
        ("activation memory", f"{limits.activation_bytes:,} bytes per image", "`--limit activation_bytes=N`"),
    ]
