"""``blockbuilder evaluate RUN --data SOURCE``: a finished run's model scored on any data source.

The run's ``model.keras`` is scored on the test images of ``SOURCE``; the results are the files a run
writes about its own test set (``metrics.json``, ``confusion_matrix.csv``/``.png``,
``misclassified.png``), in ``RUN/evaluations/NAME`` or a folder of one's choice.

Which images are scored: the run's own data set gives the very test split the run was tested on;
another source gives its own ``test`` split when it has one (a ``test/`` folder, an npz's
``x_test``), else every image it holds. Class names are matched by name (a folder may hold a subset
of the run's classes).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml  # type: ignore[import-untyped]

from blockbuilder.errors import CommandError
from blockbuilder.files import regular_file
from blockbuilder.serving.source import check_archive
from blockbuilder.training import sources
from blockbuilder.training.rundir import read_metrics

__all__ = ["Evaluation", "check_evaluation", "evaluate"]

MODEL_FILE = "model.keras"


@dataclass(frozen=True)
class Evaluation:
    """Where an evaluation reads and writes, decided before TensorFlow is imported.

    Attributes:
        run_dir: The run directory.
        source: The data source (``folder:PATH`` ...).
        output: The folder the results go into.
        class_names: The run's class names.
        own: Whether ``source`` is the data set the run trained on.
        validation_split: The run's ``train.validation_split`` (to find its own test split again).
    """

    run_dir: Path
    source: str
    output: Path
    class_names: list[str]
    own: bool
    validation_split: float


def _slug(source: str) -> str:
    kind, _, where = source.partition(":")
    registered = sources.get_kind(kind)
    name = Path(where.rstrip("/")).name if registered is not None and registered.path else where or kind
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{kind}-{name}" if where else kind).strip("_") or "data"


def _run_facts(run_dir: Path) -> tuple[list[str], str, float]:
    """The run's class names, data set and validation split, from ``metrics.json`` and ``resolved.yaml``."""
    metrics = read_metrics(run_dir)
    names = metrics.get("class_names")
    if not isinstance(names, list) or not names:
        raise CommandError(f"{run_dir / 'metrics.json'}: not the metrics of a blockbuilder run (no class_names)")
    split = 0.1  # the default, when resolved.yaml does not say
    path = run_dir / "resolved.yaml"
    if path.exists():
        regular_file(path)  # a FIFO would block the read for ever
    try:
        resolved = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        split = float(((resolved.get("train") or {}).get("validation_split")) or 0.1)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError, yaml.YAMLError):
        pass
    return [str(n) for n in names], str(metrics.get("dataset") or "digits"), split


def check_evaluation(run: str | Path, data: Optional[str] = None, output: Optional[str | Path] = None,
                     force: bool = False) -> Evaluation:
    """Check a run, a data source and an output folder, without TensorFlow.

    Raises:
        CommandError: the run has no model or metrics, they are not such files (a FIFO, a damaged or
            foreign archive ...), or the output holds an evaluation (without ``force``).
        DataError: the data source is malformed or its path does not exist.
    """
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise CommandError(f"{run}: no such run directory")
    if not (run_dir / MODEL_FILE).exists():
        raise CommandError(f"{run_dir / MODEL_FILE}: missing (a run writes it when it finishes)")
    check_archive(run_dir / MODEL_FILE)  # a FIFO, an empty or a foreign file: one line, before TensorFlow
    names, trained_on, split = _run_facts(run_dir)
    source = data or trained_on
    prefix, where = sources.dataset_kind(source, "test")
    kind = sources.get_kind(prefix)
    if kind is not None and kind.path:
        path = Path(where)
        if not kind.exists(path):
            raise CommandError(f"--data: {kind.path} '{where}' does not exist")
        source = f"{prefix}:{path}"
    target = Path(output) if output is not None else run_dir / "evaluations" / _slug(source)
    if (target / "metrics.json").exists() and not force:
        raise CommandError(f"{target} holds an evaluation already; use --force to replace it, or -o DIR")
    return Evaluation(run_dir, source, target, names, source == trained_on, split)


def _test_part(plan: Evaluation, shape: Any) -> sources.Part:
    if plan.own:
        return sources.split_parts(plan.source, shape, len(plan.class_names), plan.validation_split)[1]["test"]
    return sources.role_part(sources.read_source(plan.source, "test", shape), "test", plan.class_names, "test")


def _batches(plan: Evaluation, shape: Any, batch_size: int) -> tuple[Any, int]:
    """The test batches, and how many images they hold."""
    from blockbuilder.training import pipeline

    part = _test_part(plan, shape)
    return pipeline.eval_batches(pipeline.part_examples(part, shape), batch_size), len(part)


def evaluate(plan: Evaluation, batch_size: int = 64) -> dict[str, Any]:
    """Score the run's model on the data and write the results into ``plan.output``.

    Returns:
        The content of the ``metrics.json`` written (``test``: loss, accuracy, per-class results).
    """
    from blockbuilder.quiet import import_keras_quietly
    from blockbuilder.serving.source import load_keras_file
    from blockbuilder.training.evaluation import collect, per_class, write_outputs
    from blockbuilder.training.rundir import strict_json, write_text

    import_keras_quietly()
    model = load_keras_file(plan.run_dir / MODEL_FILE)
    shape = tuple(int(d) for d in model.input_shape[1:])
    batches, count = _batches(plan, shape, batch_size)
    if count == 0:
        raise CommandError(f"--data {plan.source}: no images to evaluate")
    results = collect(model, batches)
    chosen = results.probabilities[np.arange(len(results.labels)), results.labels]
    test: dict[str, Any] = {
        "loss": round(float(-np.mean(np.log(np.clip(chosen, 1e-7, 1.0)))), 6),
        "accuracy": round(float(np.mean(results.predicted == results.labels)), 6),
        **per_class(results, plan.class_names),
    }
    metrics = {"test": test, "dataset": plan.source, "examples": {"test": count}, "class_names": plan.class_names,
               "model": str(plan.run_dir / MODEL_FILE)}
    try:
        plan.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CommandError(f"cannot write {plan.output}: {error.strerror}") from None
    write_outputs(plan.output, results, plan.class_names)
    write_text(plan.output / "metrics.json", strict_json(metrics))
    return metrics
