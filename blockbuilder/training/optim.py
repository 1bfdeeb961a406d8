"""The optimizer, its learning-rate schedule, the loss and the metrics of the ``train:`` section."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from blockbuilder.training.spec import TrainSpec

__all__ = ["EpochSchedule", "build_compiled_model", "make_loss", "make_metrics", "make_optimizer"]


@keras.saving.register_keras_serializable(package="blockbuilder")
class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """Learning rate as a function of the (fractional) epoch: warm-up, then constant, piecewise or cosine."""

    def __init__(self, base: float, steps_per_epoch: int, epochs: int, kind: str = "constant",
                 warmup_epochs: float = 0.0, boundaries: Any = (), factors: Any = (), alpha: float = 0.0) -> None:
        self.base, self.steps_per_epoch, self.epochs = base, steps_per_epoch, epochs
        self.kind, self.warmup_epochs, self.alpha = kind, warmup_epochs, alpha
        self.boundaries, self.factors = list(boundaries), list(factors)

    def __call__(self, step: Any) -> Any:
        epoch = ops.cast(step, "float32") / self.steps_per_epoch
        rate = ops.convert_to_tensor(self.base, "float32")
        if self.kind == "piecewise":
            for boundary, factor in zip(self.boundaries, self.factors):
                rate = ops.where(epoch >= boundary, self.base * factor, rate)
        elif self.kind == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-9)
            progress = ops.clip((epoch - self.warmup_epochs) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
            rate = self.base * (self.alpha + (1.0 - self.alpha) * cosine)
        if self.warmup_epochs > 0:
            warm = (ops.cast(step, "float32") + 1.0) / (self.warmup_epochs * self.steps_per_epoch)
            rate = rate * ops.minimum(1.0, warm)
        return rate

    def get_config(self) -> dict[str, Any]:
        return {"base": self.base, "steps_per_epoch": self.steps_per_epoch, "epochs": self.epochs,
                "kind": self.kind, "warmup_epochs": self.warmup_epochs, "boundaries": self.boundaries,
                "factors": self.factors, "alpha": self.alpha}


def make_optimizer(spec: TrainSpec, steps_per_epoch: int) -> Any:
    """The Keras optimizer of ``spec.optimizer`` with the learning rate of ``spec.schedule``."""
    opt, schedule = spec.optimizer, spec.schedule
    rate: Any = opt.learning_rate
    if schedule.type != "constant" or schedule.warmup_epochs > 0:
        rate = EpochSchedule(opt.learning_rate, steps_per_epoch, spec.epochs, schedule.type,
                             schedule.warmup_epochs, schedule.boundaries, schedule.factors, schedule.alpha)
    common = {"learning_rate": rate, "weight_decay": opt.weight_decay or None, "clipnorm": opt.clipnorm}
    adam_like = {"beta_1": opt.beta_1, "beta_2": opt.beta_2, "epsilon": opt.epsilon}
    if opt.name == "sgd":
        return keras.optimizers.SGD(momentum=opt.momentum, nesterov=opt.nesterov, **common)
    if opt.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=opt.momentum, epsilon=opt.epsilon, **common)
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "nadam": keras.optimizers.Nadam}
    if opt.name == "adamw":
        common["weight_decay"] = opt.weight_decay
    return classes[opt.name](**adam_like, **common)


def make_metrics(spec: TrainSpec) -> list[Any]:
    """The Keras metrics of ``spec.metrics``."""
    table = {
        "accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        "top5_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"),
    }
    return [table[name]() for name in spec.metrics]


def make_loss(spec: TrainSpec) -> Any:
    """Sparse categorical cross-entropy, with ``label_smoothing`` when set."""
    if not spec.label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy()
    smoothing = spec.label_smoothing

    def loss(y_true: Any, y_pred: Any) -> Any:
        classes = ops.shape(y_pred)[-1]
        one_hot = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), classes)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=smoothing)

    return loss


def build_compiled_model(architecture: Any, spec: TrainSpec, steps_per_epoch: int) -> Any:
    """Build ``architecture`` and compile it with the ``train:`` section's optimizer, loss, metrics."""
    from blockbuilder.transfer import build

    model, _ = build(architecture)  # ``blockbuilder.build``: weights: loaded, freeze: applied
    model.compile(optimizer=make_optimizer(spec, steps_per_epoch), loss=make_loss(spec), metrics=make_metrics(spec))
    return model
