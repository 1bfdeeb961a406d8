"""Fine-tuning in phases: ``train.phases``, each with its own frozen blocks, optimizer and schedule.

```yaml
train:
  phases:
    - {epochs: 3, freeze: backbone, optimizer: {learning_rate: 1.0e-3}}
    - {epochs: 10, freeze: {all_but: [stage4, head]}, optimizer: {learning_rate: 1.0e-5}}
```

A phase starts by freezing its blocks and compiling the model with a fresh optimizer (its learning
rate schedule counts epochs from the phase's start). The trainer asks :class:`Phases` three things:
the model to start from (:meth:`Phases.build`), whether an epoch starts a new phase
(:meth:`Phases.enter`), and the ``phase`` column of its history row (:meth:`Phases.columns`).

Resume works inside any phase: a checkpoint holds the optimizer of the phase its last epoch ran in,
so the model is rebuilt with that phase's frozen blocks and optimizer before the checkpoint is
restored; the next phase, if one starts, begins with a fresh optimizer, as it would have without the
interruption.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from blockbuilder.text import plural
from blockbuilder.training.spec import TrainSpec
from blockbuilder.transfer.settings import Freeze, read_freeze

__all__ = ["Phase", "Phases", "phases_of"]


@dataclass(frozen=True)
class Phase:
    """One phase, resolved: where it starts and the settings it trains with.

    Attributes:
        number: 1, 2, ...
        name: Its ``name`` (default ``phase1`` ...).
        start: Its first epoch (0-based, counted over the whole run).
        epochs: How many epochs it lasts.
        freeze: What it freezes (``None``: the architecture's ``freeze:``).
        spec: The ``train:`` section with this phase's optimizer, schedule and epochs.
    """

    number: int
    name: str
    start: int
    epochs: int
    freeze: Freeze | None
    spec: TrainSpec

    def holds(self, epoch: int) -> bool:
        return self.start <= epoch < self.start + self.epochs

    @property
    def span(self) -> str:
        """Its epochs, counted from 1: ``epochs 3-5``, or ``epoch 3`` for a phase of one epoch."""
        last = self.start + self.epochs
        return f"epoch {last}" if self.epochs == 1 else f"epochs {self.start + 1}-{last}"


def phases_of(architecture: Any, spec: TrainSpec) -> list[Phase]:
    """The phases of ``spec`` (none when it has no ``phases:``), their freezes resolved on the network."""
    found: list[Phase] = []
    start = 0
    for index, written in enumerate(spec.phases):
        freeze = None
        if written.freeze is not None:
            freeze = read_freeze(written.freeze, architecture.root, None, f"train.phases[{index}].freeze")
        optimizer = spec.optimizer
        if written.optimizer is not None:
            optimizer = optimizer.model_copy(update=written.optimizer.model_dump(exclude_unset=True))
        schedule = written.schedule if written.schedule is not None else spec.schedule
        phase_spec = spec.model_copy(update={"optimizer": optimizer, "schedule": schedule, "epochs": written.epochs,
                                             "phases": []})
        found.append(Phase(index + 1, written.name or f"phase{index + 1}", start, written.epochs, freeze, phase_spec))
        start += written.epochs
    return found


class Phases:
    """The phases of one run, as the trainer uses them (a run without ``phases:`` is one phase).

    Args:
        architecture: What is trained (its ``weights:`` and ``freeze:`` apply).
        spec: Its ``train:`` section.
        steps_per_epoch: For the learning-rate schedules.
        say: Prints a line for the user (the trainer's reporter).
        scope: The distribution scope optimizers must be made in.
    """

    def __init__(self, architecture: Any, spec: TrainSpec, steps_per_epoch: int,
                 say: Callable[[str], None] = print,
                 scope: Callable[[], AbstractContextManager[Any]] = nullcontext) -> None:
        self.architecture, self.spec, self.steps_per_epoch = architecture, spec, steps_per_epoch
        self.say, self.scope = say, scope
        self.phases = phases_of(architecture, spec)
        self.current: Phase | None = None  # the phase the model is compiled for
        self.announced: Phase | None = None  # the phase the user was last told of
        self.compiles = 0  # how many times the model was compiled (the trainer primes each compilation)
        self.initial: list[Any] | None = None  # the values the compiled optimizer starts from

    def at(self, epoch: int) -> Phase | None:
        """The phase epoch ``epoch`` (0-based) belongs to; ``None`` without phases."""
        for phase in self.phases:
            if phase.holds(epoch):
                return phase
        return self.phases[-1] if self.phases else None

    def build(self, epochs_completed: int, resuming: bool) -> Any:
        """The compiled model to train from, in the phase of the last completed epoch.

        Its ``weights:`` are loaded (a table says what was loaded), unless the run resumes: a
        checkpoint then restores every variable.
        """
        from blockbuilder.transfer import build

        architecture = self.architecture.with_sections(weights=None) if resuming else self.architecture
        model, report = build(architecture)
        if report is not None:
            from rich.markup import escape

            self.say(escape(report.headline()))
            for block, loaded, skipped, why in report.rows():
                if skipped:
                    self.say(escape(f"  {block}: {plural(loaded, 'layer')} loaded, {skipped} skipped ({why})"))
        self._compile(model, self.at(max(epochs_completed - 1, 0)))
        return model

    def enter(self, model: Any, epoch: int) -> bool:
        """Before epoch ``epoch`` (0-based): start its phase if it is a new one (freeze, compile) and say which
        phase runs; ``True`` when the model was compiled again."""
        phase = self.at(epoch)
        if phase is None or phase is self.announced:
            return False
        started = phase is not self.current
        if started:
            with self.scope():
                self._compile(model, phase)
        self.announced = phase
        freeze = phase.freeze or self.architecture.freeze
        optimizer = phase.spec.optimizer
        self.say(f"phase {phase.number}/{len(self.phases)} ({phase.name}): {phase.span}, "
                 f"frozen: {freeze.written if freeze else 'none'}, "
                 f"{optimizer.name} at {optimizer.learning_rate:g}")
        return started

    def columns(self, epoch: int) -> dict[str, int]:
        """The ``phase`` column of epoch ``epoch``'s history row (nothing without phases)."""
        phase = self.at(epoch)
        return {} if phase is None else {"phase": phase.number}

    def _compile(self, model: Any, phase: Phase | None) -> None:
        """Freeze the phase's blocks and give the model a fresh optimizer: compiled again, or, when the
        compiled train step already fits the phase, the same step with the optimizer's state reset."""
        from blockbuilder.training.optim import make_loss, make_metrics, make_optimizer
        from blockbuilder.transfer.freeze import apply_freeze

        spec = self.spec if phase is None else phase.spec
        optimizer = make_optimizer(spec, self.steps_per_epoch)
        freeze = (phase.freeze if phase is not None else None) or self.architecture.freeze or Freeze()
        if self.compiles and phase is not None and _fits_compiled(model, optimizer, freeze):
            self._reset_optimizer(model, optimizer)
        else:
            if phase is not None:
                apply_freeze(model, freeze)
            model.compile(optimizer=optimizer, loss=make_loss(spec), metrics=make_metrics(spec))
            self.compiles += 1
            self.initial = None
        self.current = phase

    def _reset_optimizer(self, model: Any, fresh: Any) -> None:
        """The model's optimizer as ``fresh`` would start: step count, moments and learning rate.

        The values a new optimizer starts from are read once per compilation, from one built for the
        purpose: building an optimizer leaves TensorFlow functions behind (about 1 MB for LeNet-5).
        """
        import numpy as np

        current = model.optimizer
        if self.initial is None:
            fresh.build(model.trainable_variables)
            self.initial = [_compact(np.asarray(variable)) for variable in fresh.variables]
        for variable, value in zip(current.variables, self.initial, strict=True):
            variable.assign(np.broadcast_to(value, tuple(variable.shape)))
        if not isinstance(fresh.get_config().get("learning_rate"), dict):  # a schedule is the same one
            current.learning_rate = float(np.asarray(fresh.learning_rate))


def _compact(value: Any) -> Any:
    """An array that holds one value throughout (every optimizer's starting state) as that value."""
    return value.flat[0] if value.size and (value == value.flat[0]).all() else value


def _fits_compiled(model: Any, optimizer: Any, freeze: Freeze) -> bool:
    """Whether the model's compiled train step serves a phase with ``optimizer`` and ``freeze``: the
    same layers train, and the optimizer differs at most in a constant learning rate.

    Compiling again would trace the train step again, and TensorFlow keeps every traced step of a
    model for the model's life (about 10 MB and a second for LeNet-5): so 1,000 phases of one epoch
    grew a run by gigabytes. Phases that change nothing else now cost what epochs cost.
    """
    current = getattr(model, "optimizer", None)
    if type(current) is not type(optimizer):  # another optimizer, or a loss-scale wrapper (mixed precision)
        return False
    if any(layer.trainable == freeze.frozen(layer.name) for layer in model.layers):
        return False

    def settings(found: Any) -> dict[str, Any]:
        config = dict(found.get_config())
        config.pop("name", None)
        if not isinstance(config.get("learning_rate"), dict):  # a variable, not a schedule traced into the step
            config.pop("learning_rate", None)
        return config

    return settings(current) == settings(optimizer)
