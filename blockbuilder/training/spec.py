"""The ``train:`` section of an architecture file.

This module imports only pydantic and the standard library (and, to check a data source, the
registry of :mod:`blockbuilder.training.sources`), so the validator can check a ``train:``
section without TensorFlow or Keras. The ``train`` command-line flags live in
:mod:`blockbuilder.cli.train`, which does not import pydantic, so ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_serializer,
    model_validator,
)

from blockbuilder.errors import CommandError
from blockbuilder.training.choices import PRECISIONS, BatchnormRecalibration, Precision

__all__ = [
    "AugmentationSpec",
    "EarlyStoppingSpec",
    "OptimizerSpec",
    "PRECISIONS",
    "PhaseSpec",
    "ScheduleSpec",
    "TrainError",
    "TrainSpec",
]



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OptimizerSpec(_Strict):
    """The optimizer: ``{name: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: true}``.

    ``weight_decay`` is decoupled (AdamW style) for every optimizer; ``clipnorm`` clips each
    gradient's norm.
    """

    name: Literal["adam", "adamw", "sgd", "rmsprop", "nadam"] = "adam"
    learning_rate: PositiveFloat = 1e-3
    momentum: NonNegativeFloat = 0.9
    nesterov: bool = False
    weight_decay: NonNegativeFloat = 0.0
    beta_1: PositiveFloat = 0.9
    beta_2: PositiveFloat = 0.999
    epsilon: PositiveFloat = 1e-7
    clipnorm: Optional[PositiveFloat] = None


class ScheduleSpec(_Strict):
    """The learning-rate schedule, with epochs as its unit of time.

    * ``constant``: the optimizer's learning rate throughout;
    * ``piecewise``: multiply the rate by ``factors[i]`` from epoch ``boundaries[i]`` on;
    * ``cosine``: cosine decay from the rate to ``alpha`` times the rate at the last epoch.

    ``warmup_epochs`` ramps the rate linearly from 0 first (fractions of an epoch allowed).
    """

    type: Literal["constant", "piecewise", "cosine"] = "constant"
    warmup_epochs: NonNegativeFloat = 0.0
    boundaries: list[PositiveFloat] = Field(default_factory=list)
    factors: list[NonNegativeFloat] = Field(default_factory=list)
    alpha: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _check_piecewise(self) -> ScheduleSpec:
        if len(self.boundaries) != len(self.factors):
            raise ValueError(
                f"boundaries and factors must have the same length, got {len(self.boundaries)} "
                f"boundaries and {len(self.factors)} factors"
            )
        if self.boundaries != sorted(self.boundaries):
            raise ValueError(f"boundaries must increase, got {self.boundaries}")
        if self.type == "piecewise" and not self.boundaries:
            raise ValueError("a piecewise schedule needs boundaries (epochs) and factors")
        return self


class RandomCropSpec(_Strict):
    """Pad by ``padding`` pixels on each side, then crop back to the input size at random."""

    padding: PositiveInt = 4


class FlipSpec(_Strict):
    """Random flips."""

    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


class FactorSpec(_Strict):
    """A random transform whose strength is ``factor`` (a fraction of size, turn or contrast)."""

    factor: PositiveFloat = 0.1


class AugmentationSpec(_Strict):
    """One augmentation step: exactly one key, e.g. ``{random_crop: {padding: 4}}`` or ``flip``."""

    random_crop: Optional[RandomCropSpec] = None
    flip: Optional[FlipSpec] = None
    translation: Optional[FactorSpec] = None
    rotation: Optional[FactorSpec] = None
    zoom: Optional[FactorSpec] = None
    contrast: Optional[FactorSpec] = None

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            return {key: ({} if options is None else options) for key, options in value.items()}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> AugmentationSpec:
        if len(self.model_fields_set) != 1:
            names = ", ".join(type(self).model_fields)
            raise ValueError(f"each augmentation step has exactly one of: {names}")
        return self

    @model_serializer(mode="wrap")
    def _dump_one_key(self, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if key == self.kind}

    @property
    def kind(self) -> str:
        """The step's name, e.g. ``"random_crop"``."""
        return next(iter(self.model_fields_set))

    @property
    def options(self) -> BaseModel:
        """The step's options."""
        options: BaseModel = getattr(self, self.kind)
        return options


class EarlyStoppingSpec(_Strict):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: PositiveInt = 5
    min_delta: NonNegativeFloat = 0.0


Metric = Literal["accuracy", "top5_accuracy"]


def _default_metrics() -> list[Metric]:
    return ["accuracy"]


#: Phases a run may have. A phase that changes what trains or the optimizer (beyond a constant learning
#: rate) compiles the model again, and TensorFlow keeps every compiled train step for the run: measured
#: on LeNet-5, about 9 MB and 0.7 s a phase (a phase that changes neither costs what an epoch costs).
MAX_PHASES = 100


class PhaseSpec(_Strict):
    """One phase of ``train.phases`` (fine-tuning in phases; see blockbuilder.training.phases).

    ``freeze`` takes the forms of the top-level ``freeze:`` (absent: the top-level one; ``none``:
    nothing frozen); ``optimizer`` keys override ``train.optimizer``'s; ``schedule`` replaces
    ``train.schedule``, its epochs counted from the phase's start. A run has at most
    :data:`MAX_PHASES` phases.
    """

    name: Optional[str] = None
    epochs: PositiveInt
    freeze: Any = None
    optimizer: Optional[OptimizerSpec] = None
    schedule: Optional[ScheduleSpec] = None


class TrainSpec(_Strict):
    """The ``train:`` section. Every key has a default that trains ``lenet5`` on digits well.

    ``dataset`` is a registered data source (:mod:`blockbuilder.training.sources`: ``digits``,
    ``folder:PATH`` ...); a folder with ``train/``, ``val/`` and ``test/`` sub-folders gives its splits.
    ``validation`` and ``test`` name other sources for those splits. ``validation_split`` is
    the fraction of the training data held out for validation when the data set has no validation
    split of its own. The default augmentation, a random translation by up
    to 10 % of the image size, helps on every data set tried; ``augmentation: []`` turns it off.
    ``recalibrate_batchnorm`` re-estimates BatchNorm statistics after each epoch: ``auto`` when an
    epoch has fewer steps than the layers' moving averages span (small data sets).
    """

    dataset: str = "digits"
    validation: Optional[str] = None
    test: Optional[str] = None
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 32
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    loss: Literal["sparse_categorical_crossentropy"] = "sparse_categorical_crossentropy"
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=1.0)
    metrics: list[Metric] = Field(default_factory=_default_metrics)
    augmentation: list[AugmentationSpec] = Field(
        default_factory=lambda: [AugmentationSpec(translation=FactorSpec(factor=0.1))]
    )
    precision: Precision = "auto"
    seed: int = 0
    deterministic: bool = False
    validation_split: float = Field(default=0.1, gt=0.0, lt=1.0)
    early_stopping: Optional[EarlyStoppingSpec] = None
    shuffle_buffer: PositiveInt = 10000
    cache: bool = True
    recalibrate_batchnorm: BatchnormRecalibration = "auto"
    phases: list[PhaseSpec] = Field(default_factory=list)

    @field_validator("phases")
    @classmethod
    def _few_phases(cls, phases: list[PhaseSpec]) -> list[PhaseSpec]:
        if len(phases) > MAX_PHASES:
            raise ValueError(f"at most {MAX_PHASES} phases, got {len(phases)} (each phase that changes what trains "
                             f"or the optimizer compiles the model again, and the run keeps every compilation)")
        return phases

    @model_validator(mode="after")
    def _epochs_of_phases(self) -> TrainSpec:
        if self.phases:
            total = sum(phase.epochs for phase in self.phases)
            if "epochs" in self.model_fields_set and self.epochs != total:
                counts = " + ".join(str(phase.epochs) for phase in self.phases) + " = " if len(self.phases) > 1 else ""
                raise ValueError(f"epochs ({self.epochs}) differs from the phases' total ({counts}{total}); "
                                 f"leave epochs out (the phases decide it), or make them agree")
            self.epochs = total
        return self

    @model_validator(mode="after")
    def _check_dataset(self) -> TrainSpec:
        from blockbuilder.training.sources import forms, parse

        for key in ("dataset", "validation", "test"):
            value = getattr(self, key)
            kind = parse(value)[0] if value is not None else None
            if value is not None and kind is None:
                raise ValueError(f"{key} must be {forms()}, got {value!r}")
            if key != "dataset" and kind is not None and not kind.role:
                raise ValueError(f"{key} must be a {forms(role=True)} (a {kind.prefix} data set brings its own "
                                 f"{key} split: name it in dataset, {kind.form}), got {value!r}")
        return self


class TrainError(CommandError):
    """A training failure a user can act on, reported in one line (exit code 1)."""
