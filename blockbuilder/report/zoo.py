"""The zoo listing: every architecture in ``architectures/`` with its figures (no TensorFlow)."""

from __future__ import annotations

from typing import Any

from blockbuilder.language.architecture import load
from blockbuilder.language.resolve import zoo_names
from blockbuilder.report.summary import estimate
from blockbuilder.text import human


def zoo_rows() -> list[dict[str, Any]]:
    """One row per zoo architecture: params and MACs computed from the specs, depth, reported accuracy."""
    rows = []
    for name in zoo_names():
        arch = load(name)
        params, macs = estimate(arch)
        meta = arch.meta
        rows.append({
            "name": name,
            "input_shape": list(arch.input_shape),
            "classes": arch.classes,
            "params": params,
            "macs": macs,
            "depth": arch.depth,
            "accuracy": meta.get("accuracy"),
            "dataset": meta.get("dataset"),
            "source": meta.get("source"),
        })
    return rows


def zoo_table(rows: list[dict[str, Any]]) -> Any:
    """A rich table in the spirit of Canziani et al. (2016): size, operations, depth, accuracy."""
    from rich.table import Table

    table = Table(title="blockbuilder zoo", title_justify="left")
    for column in ("name", "input", "params", "MACs", "depth", "reported accuracy", "source"):
        right = column in ("params", "MACs", "depth", "reported accuracy")
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        accuracy = f"{row['accuracy']} % ({row['dataset']})" if row["accuracy"] is not None else "—"
        table.add_row(row["name"], "x".join(map(str, row["input_shape"])), f"{row['params']:,}",
                      human(row["macs"]), str(row["depth"]), accuracy, row["source"] or "")
    return table
