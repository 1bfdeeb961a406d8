"""The zoo listing: every architecture in ``architectures/`` with its figures (no TensorFlow)."""

from __future__ import annotations

from typing import Any

from blockbuilder.language.architecture import load
from blockbuilder.language.resolve import zoo_names
from blockbuilder.report.latency import predictions, tables_here
from blockbuilder.report.summary import estimate
from blockbuilder.text import human


def zoo_rows() -> list[dict[str, Any]]:
    """One row per zoo architecture: params and MACs computed from the specs, depth, predicted latency
    (under each latency table made on this machine), reported accuracy."""
    rows, tables = [], tables_here()  # the cache is read once, not once per network
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
            "latency": predictions(arch.root, tables=tables),
            "accuracy": meta.get("accuracy"),
            "dataset": meta.get("dataset"),
            "source": meta.get("source"),
        })
    return rows


def zoo_table(rows: list[dict[str, Any]]) -> Any:
    """A rich table in the spirit of Canziani et al. (2016): size, operations, depth, accuracy."""
    from rich.table import Table

    # the newest latency table made on this machine, when there is one (blockbuilder profile --calibrate)
    timed = rows[0]["latency"][0]["for"] if rows and rows[0]["latency"] else None
    table = Table(title="blockbuilder zoo", title_justify="left",
                  caption=f"predicted ms: {timed}, from this machine's latency table" if timed else None)
    columns = ("name", "input", "params", "MACs", *(("predicted ms",) if timed else ()), "depth",
               "reported accuracy", "source")
    for column in columns:
        right = column in ("params", "MACs", "predicted ms", "depth", "reported accuracy")
        table.add_column(column, justify="right" if right else "left")
    for row in rows:
        accuracy = f"{row['accuracy']} % ({row['dataset']})" if row["accuracy"] is not None else "—"
        latency = (f"{row['latency'][0]['ms']:.1f}",) if timed else ()
        table.add_row(row["name"], "x".join(map(str, row["input_shape"])), f"{row['params']:,}",
                      human(row["macs"]), *latency, str(row["depth"]), accuracy, row["source"] or "")
    return table
