"""``blockbuilder.train``: the Python API of training, and the plan the command line checks first.

Everything decided before TensorFlow is imported lives here (no Keras import at module level): the
``train:`` section with its overrides, the data set's path (relative to the file that wrote it),
the run directory (never overwriting a run), and, for ``--resume``, the checkpoint and the settings
it was trained with. :func:`run_plan` then imports the trainer (:mod:`blockbuilder.training.loop`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import yaml  # type: ignore[import-untyped]

from blockbuilder.errors import SpecError
from blockbuilder.training.checkpoint import latest_checkpoint, remove_partial
from blockbuilder.training.plan import EpochHook, Plan, Run, TrainOptions
from blockbuilder.training.rundir import choose_run_dir, claim_new_run_dir, discard_run_dir, make_run_dir
from blockbuilder.training.spec import TrainError, TrainSpec

__all__ = ["EpochHook", "Plan", "Run", "TrainOptions", "plan", "run_plan", "train"]

#: Settings that ``--resume`` applies (with a notice); any other change is refused.
RESUMABLE_CHANGES = ("train.epochs",)

DATA_KEYS = ("dataset", "validation", "test")


def _data_location(architecture: Any, key: str) -> Any:
    document = getattr(architecture, "document", None)
    section = document.get("train") if isinstance(document, dict) else None
    if isinstance(section, dict) and key in section and hasattr(section, "loc_of"):
        return section.loc_of(key)
    return None


def resolve_dataset(architecture: Any, spec: TrainSpec, key: str = "dataset") -> Optional[str]:
    """``spec.dataset`` (or ``validation``, ``test``) with a path (``folder:``, ``npz:``, ``csv:`` ...) made
    relative to the file that wrote it. A path on the command line (``--set``) stays relative to the working directory.

    Raises:
        SpecError: the path does not exist (``FILE:LINE:COL: train.dataset: ...``).
    """
    source: Optional[str] = getattr(spec, key)
    if source is None:
        return None
    from blockbuilder.training.sources import locate, parse

    kind = parse(source)[0]
    if kind is None or not kind.path:
        return source
    rest = source.partition(":")[2]
    where = _data_location(architecture, key)
    located, path = locate(source, where)
    if not kind.exists(path):
        shown = f"'{rest}'" + (f" ({path})" if str(path) != rest else "")
        raise SpecError(f"{kind.path} {shown} does not exist", where, f"train.{key}")
    return located


def check_data(architecture: Any, written_only: bool = False) -> TrainSpec:
    """The ``train:`` section with its data paths resolved and checked against the model, without TensorFlow.

    Each data path must exist, and the data set's classes must be the model's
    ``classes:`` and the units its network ends in (:mod:`blockbuilder.training.classes`; ``tfds:``
    sets are checked when their info is loaded, still before the model is built). ``train`` runs it; ``validate``
    runs it with ``written_only`` (the default ``digits`` of a file that names no data set is not
    checked: a zoo ImageNet network validates).

    Raises:
        SpecError: a path that does not exist, or a class count that differs (at ``classes:``, or at
            the block that makes the output units).
        DataError: the data set cannot be read.
    """
    spec: TrainSpec = architecture.train
    spec = spec.model_copy(update={key: resolve_dataset(architecture, spec, key) for key in DATA_KEYS})
    from blockbuilder.training.classes import check_classes
    from blockbuilder.training.sources import class_names_of

    if written_only and _data_location(architecture, "dataset") is None:
        return spec
    names = class_names_of(spec.dataset)
    if names is not None:
        check_classes(architecture, spec.dataset, names)
    return spec


def _plain_differences(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in list(old) + [k for k in new if k not in old]:
            child = f"{path}.{key}" if path else str(key)
            found += _plain_differences(old.get(key), new.get(key), child)
        return found
    if old != new:
        return [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def _settings_changes(run_dir: Path, architecture: Any) -> list[str]:
    """How the architecture and ``train:`` section differ from the run's ``resolved.yaml``."""
    resolved = run_dir / "resolved.yaml"
    try:
        old = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise TrainError(f"cannot resume: {resolved} is not readable ({str(error).splitlines()[0]})") from None
    old = old if isinstance(old, dict) else {}
    new = yaml.safe_load(architecture.to_yaml()) or {}
    model_old = {k: v for k, v in old.items() if k != "train"}
    model_new = {k: v for k, v in new.items() if k != "train"}
    return _plain_differences(model_old, model_new) + _train_differences(old.get("train"), new.get("train"))


def _train_differences(old: Any, new: Any) -> list[str]:
    """The effective ``train:`` settings that differ (writing a default out is no change)."""
    from pydantic import ValidationError

    try:  # sections with ${expressions} do not validate as written: compare them as written
        old_spec = TrainSpec.model_validate(old or {}).model_dump(mode="json")
        new_spec = TrainSpec.model_validate(new or {}).model_dump(mode="json")
    except ValidationError:
        return _plain_differences(old or {}, new or {}, "train")
    return _plain_differences(old_spec, new_spec, "train")


def plan(architecture: Any, options: TrainOptions) -> Plan:
    """Decide everything that needs no TensorFlow; raise the errors a user can fix at once.

    Raises:
        SpecError: a data set path that does not exist (with its file, line and column).
        TrainError: the run directory holds a run (without ``--resume``), ``--resume`` finds no run,
            its checkpoint is damaged, or its settings differ (beyond ``train.epochs``).

    A new run's directory is claimed by :func:`run_plan`.
    """
    spec = check_data(architecture)
    from blockbuilder.training.classes import output_units
    from blockbuilder.training.sources import parse

    for key in DATA_KEYS:  # every image decodes, every label fits: before TensorFlow starts
        source = getattr(spec, key)
        kind, where = parse(source) if source is not None else (None, "")
        if kind is not None and kind.check is not None:
            kind.check(where, key, output_units(architecture) or architecture.classes)
    shared = options.process_id not in (None, 0)  # process 0 of a multi-process run claims the directory
    run_dir = choose_run_dir(architecture.name, options.output, options.resume, options.runs_root, shared)
    notices: list[str] = []
    checkpoint = None
    if options.resume:
        changes = _settings_changes(run_dir, architecture)
        refused = [c for c in changes if not c.startswith(RESUMABLE_CHANGES)]
        if refused:
            raise TrainError(f"--resume: {run_dir} was trained with other settings ({'; '.join(refused)}); "
                             f"undo the change, or start a new run without --resume")
        notices += [f"--resume: applying a changed setting: {change}" for change in changes]
        remove_partial(run_dir)
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            notices.append(f"--resume: {run_dir} has no completed epoch; starting from the first")
        else:  # read now: a damaged checkpoint is reported before TensorFlow starts
            checkpoint.variables()
            if checkpoint.state.best_epoch:
                checkpoint.variables(best=True)
    if checkpoint is None:  # weights: are loaded (a resumed run restores its own); can they be?
        from blockbuilder.transfer.weights import check_source

        check_source(architecture)
    made = make_run_dir(run_dir)
    return Plan(architecture, spec, run_dir, checkpoint, notices, made, new=not (options.resume or shared))


def run_plan(decided: Plan, options: TrainOptions) -> Run:
    """Train as decided (imports TensorFlow and Keras, quietly).

    A new run first claims its directory, before TensorFlow, by writing its ``resolved.yaml``
    (:func:`~blockbuilder.training.rundir.claim_run_dir`): of two processes starting a run in one
    directory, one trains and the other is refused, having written nothing. A run that fails before
    it commits its first epoch (weights that cannot be fetched, data that does not load) leaves no run
    directory behind: it removes the one its plan made (or what it wrote into one that was empty).

    Raises:
        TrainError: another process claimed the run directory first (with ``--output``).
    """
    from blockbuilder.errors import BlockbuilderError
    from blockbuilder.quiet import import_keras_quietly

    if decided.new and not decided.claimed:
        _claim(decided, options)
    import_keras_quietly()
    from blockbuilder.training.loop import run_training

    try:
        return run_training(decided, options)
    except BlockbuilderError:
        if latest_checkpoint(decided.run_dir) is None:
            discard_run_dir(decided.run_dir, decided.made, decided.claimed)
        raise


def _claim(decided: Plan, options: TrainOptions) -> None:
    """Claim the planned run directory (without ``--output``: the next free one, when another process
    took it first); the plan then names the directory it claimed and the folders made for it."""
    arch = decided.architecture
    run_dir, made = claim_new_run_dir(arch.name, options.output, options.runs_root, arch.to_yaml(), decided.run_dir)
    decided.made = decided.made if run_dir == decided.run_dir else made
    decided.run_dir, decided.claimed = run_dir, True


def _overridden(arch: Any, overrides: Sequence[str]) -> Any:
    from blockbuilder.language.architecture import load, loads

    if isinstance(arch, (str, os.PathLike)):
        return load(arch if isinstance(arch, str) else Path(arch), list(overrides))
    if not overrides:
        return arch
    source = getattr(arch, "source", None)
    return loads(arch.to_yaml(), list(overrides), filename=str(source or "<string>"))


def override_strings(overrides: Optional[Mapping[str, Any]]) -> list[str]:
    """``{"train.epochs": 3}`` -> ``["train.epochs=3"]`` (values written as JSON, which YAML reads)."""
    return [f"{path}={json.dumps(value)}" for path, value in (overrides or {}).items()]


def train(arch: Any, *, output: Optional[str | Path] = None, epochs: Optional[int] = None, resume: bool = False,
          overrides: Optional[Mapping[str, Any]] = None, callbacks: Sequence[Any] = (),
          on_epoch_end: Optional[EpochHook] = None, live: Optional[bool] = False) -> Run:
    """Train an architecture and fill its run directory, as ``blockbuilder train`` does.

    Args:
        arch: A path, a zoo name, or an ``Architecture`` (``blockbuilder.load``).
        output: The run directory (default ``runs/NAME``, or ``runs/NAME-2`` ... when taken).
        epochs: Override ``train.epochs``.
        resume: Continue the run in ``output`` (default: the latest run of this name).
        overrides: ``--set`` paths and values, e.g. ``{"train.optimizer.learning_rate": 0.01}``.
        callbacks: Keras callbacks passed to each epoch's ``fit``.
        on_epoch_end: ``on_epoch_end(epoch, logs) -> bool`` after each epoch; ``True`` stops the run
            (``metrics["stopped"] == "callback"``), e.g. to prune an Optuna trial.
        live: A live progress display (``None``: when stdout is a terminal).

    Raises:
        SpecError, UsageError, TrainError, DataError: as the command line reports them.
    """
    strings = override_strings(overrides) + ([f"train.epochs={int(epochs)}"] if epochs is not None else [])
    architecture = _overridden(arch, strings)
    options = TrainOptions(output=None if output is None else str(output), resume=resume, live=live,
                           callbacks=tuple(callbacks), on_epoch_end=on_epoch_end)
    return run_plan(plan(architecture, options), options)
