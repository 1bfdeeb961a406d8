"""The trainer: ``model.fit`` one epoch at a time, each epoch committed to the run directory as one unit.

Each epoch is one ``fit`` call on a dataset that is a pure function of ``(seed, epoch)``
(:mod:`blockbuilder.training.pipeline`). After it, validation, then the commit: every model variable
(weights, BatchNorm statistics and the random generators of dropout and drop-path), every optimizer
variable and the run's bookkeeping go into a new epoch directory, switched to by one rename
(:mod:`blockbuilder.training.rundir`). ``--resume`` restores all of it, so a resumed run ends with the
same weights as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Optional

import keras
import numpy as np

from blockbuilder.text import plural
from blockbuilder.training.batchnorm import chance_warning, needs_recalibration, recalibrate
from blockbuilder.training.checkpoint import RunState, commit_epoch, test_hook
from blockbuilder.training.classes import check_classes, output_units
from blockbuilder.training.devices import Placement, place, quiet_saving, resolve_precision, set_determinism
from blockbuilder.training.evaluation import collect, per_class, write_outputs
from blockbuilder.training.outputs import plot_curves, write_tensorboard
from blockbuilder.training.phases import Phases
from blockbuilder.training.pipeline import Augmenter, Splits, eval_batches, feed, load_splits, train_batches
from blockbuilder.training.plan import Plan, Run, TrainOptions
from blockbuilder.training.progress import Reporter
from blockbuilder.training.rundir import history_row, strict_json, write_file, write_history_csv, write_text
from blockbuilder.training.spec import TrainError, TrainSpec
from blockbuilder.training.stopping import NanGuard, improved
from blockbuilder.training.weights import assign_values, variable_values, weights_sha256

__all__ = ["Trainer", "run_training"]

RECALIBRATION_IMAGES = 2048  # training images that re-estimate BatchNorm statistics (batchnorm.py)
MONITOR = "val_loss"  # picks the best model: smoother than accuracy on a small validation set


SMALL_DATA_STEPS = 24  # an epoch of the default batch with fewer steps: a small data set (docs/training.md)
SMALL_DATA_BATCH = 8  # the default batch halves down to this on a small data set
SMALL_DATA_LEARNING_RATE = 3e-3


def small_data_defaults(spec: TrainSpec, train_images: int) -> TrainSpec:
    """More and larger steps for a small data set, when ``batch_size`` and ``optimizer`` are the defaults.

    On 216 images an epoch of 32 is 6 steps: 10 epochs are 60 Adam steps, far fewer than a network
    needs, and the test accuracy grows with the steps taken whatever the epochs (bench/bench_small_data.py).
    So while an epoch has fewer than :data:`SMALL_DATA_STEPS` steps the batch halves (not below
    :data:`SMALL_DATA_BATCH`), and the learning rate is :data:`SMALL_DATA_LEARNING_RATE`. Without phases.
    """
    written = spec.model_fields_set
    if "batch_size" in written or "optimizer" in written or spec.phases:
        return spec
    batch = spec.batch_size
    while batch // 2 >= SMALL_DATA_BATCH and train_images // batch < SMALL_DATA_STEPS:
        batch //= 2
    if batch == spec.batch_size:
        return spec
    optimizer = spec.optimizer.model_copy(update={"learning_rate": SMALL_DATA_LEARNING_RATE})
    return spec.model_copy(update={"batch_size": batch, "optimizer": optimizer})


class Trainer:
    """One training run, from a :class:`~blockbuilder.training.plan.Plan`; :meth:`run` does the work."""

    def __init__(self, decided: Plan, options: TrainOptions, placement: Placement) -> None:
        spec, architecture = decided.spec, decided.architecture
        self.architecture, self.spec, self.run_dir, self.options = architecture, spec, decided.run_dir, options
        self.placement, self.leader = placement, placement.leader
        self.reporter = Reporter(options.live if self.leader else False, quiet=not self.leader)
        checkpoint = decided.checkpoint
        self.resumed_from = checkpoint.state.epochs_completed if checkpoint is not None else None
        self.state = checkpoint.state.model_copy(deep=True) if checkpoint is not None else RunState(seed=spec.seed)
        if self.state.seed != spec.seed:
            raise TrainError(f"--resume: the checkpoint was trained with seed {self.state.seed}, not {spec.seed}")
        self.precision = resolve_precision(spec.precision, placement.kind, architecture, spec.batch_size)
        keras.mixed_precision.set_global_policy(self.precision)
        set_determinism(spec)
        self.splits = self._load_data()
        self.spec = spec = self._small_data_defaults(spec, architecture)
        self.local_batch = self._local_batch()
        self.steps_per_epoch, self.drop_remainder = self._steps_per_epoch(self.splits.sizes["train"])
        self.augmenter = Augmenter(spec.augmentation, architecture.input_shape) if spec.augmentation else None
        self.phases = Phases(architecture, spec, self.steps_per_epoch, self.reporter.message, placement.scope)
        with placement.scope():
            self.model = self.phases.build(self.state.epochs_completed, resuming=checkpoint is not None)
            self.model.optimizer.build(self.model.trainable_variables)
            if checkpoint is not None:
                variables = checkpoint.variables()
                assign_values(self.model.variables, variables["model"], "model")
                assign_values(self.model.optimizer.variables, variables["optimizer"], "optimizer")
        self.best: Optional[list[np.ndarray]] = None
        if checkpoint is not None and self.state.best_epoch:
            self.best = checkpoint.variables(best=True)["model"]
        self.recalibrating = placement.process_count == 1 and placement.replicas == 1 and needs_recalibration(
            self.model, self.steps_per_epoch, spec.recalibrate_batchnorm)
        self.nan_guard = NanGuard()
        self.primed = 0  # the compilation whose loss and metrics are built (_prime)
        self.validation = self._eval_data("validation")
        self.stop_best = self._best_stop_value()
        self.started = time.time()

    # ---- setup

    def _load_data(self) -> Splits:
        spec, arch = self.spec, self.architecture
        splits = load_splits(spec.dataset, arch.input_shape, output_units(arch) or arch.classes, spec.validation_split,
                             validation=spec.validation, test=spec.test)
        check_classes(arch, spec.dataset, splits.class_names)  # a tfds set's classes are known now
        if spec.cache:
            splits.train = splits.train.cache()
            splits.validation = splits.validation.cache()
        return splits

    def _small_data_defaults(self, spec: TrainSpec, architecture: Any) -> TrainSpec:
        """The spec to train with: :func:`small_data_defaults` for a fresh model on one device."""
        single = self.placement.process_count == 1 and self.placement.replicas == 1
        if not single or architecture.weights is not None:
            return spec
        images = self.splits.sizes["train"]
        chosen = small_data_defaults(spec, images)
        if chosen is not spec:
            self.reporter.message(
                f"small data set ({images} training images, {images // spec.batch_size} steps of {spec.batch_size} "
                f"an epoch): batch {chosen.batch_size}, learning rate {chosen.optimizer.learning_rate:g} "
                f"(set train.batch_size or train.optimizer to choose)")
        return chosen

    def _local_batch(self) -> int:
        count = self.placement.process_count
        if self.spec.batch_size % count:
            raise TrainError(f"batch size {self.spec.batch_size} is not divisible by {count} processes")
        return self.spec.batch_size // count

    def _steps_per_epoch(self, size: int) -> tuple[int, bool]:
        """Whole batches only (each epoch reshuffles, so every image is still seen).

        A smaller last batch would cost a second compilation of the train step (about 2 s with
        JAX on CPU) and cannot be split evenly over devices and processes. A data set smaller
        than one batch trains on one partial batch, on one device.
        """
        count, replicas = self.placement.process_count, self.placement.replicas
        whole = size // count // self.local_batch
        if whole == 0 and (count > 1 or replicas > 1):
            raise TrainError(f"{plural(size, 'training image')} {'is' if size == 1 else 'are'} fewer than one batch of "
                             f"{self.spec.batch_size} over {max(count, replicas)} devices")
        return max(1, whole), whole > 0

    def _shard(self, dataset: Any, size: int) -> Any:
        count, index = self.placement.process_count, self.placement.process_index
        if count == 1:
            return dataset
        return dataset.take(size - size % count).shard(count, index)

    def _train_data(self, epoch: int) -> Any:
        count, index = self.placement.process_count, self.placement.process_index
        size = self.splits.sizes["train"]
        data = self.splits.train.take(size - size % count) if count > 1 else self.splits.train
        return feed(train_batches(
            data, self.local_batch, seed=self.spec.seed, epoch=epoch, augmentation=self.spec.augmentation,
            input_shape=self.architecture.input_shape, shuffle_buffer=self.spec.shuffle_buffer,
            drop_remainder=self.drop_remainder, shard=(count, index), augmenter=self.augmenter,
        ))

    def _eval_data(self, name: str) -> Any:
        dataset = getattr(self.splits, name)
        return feed(eval_batches(self._shard(dataset, self.splits.sizes[name]), self.local_batch))

    def _best_stop_value(self) -> Optional[float]:
        stop = self.spec.early_stopping
        if stop is None:
            return None
        values = [float(v) for row in self.state.history if (v := row.get(stop.monitor)) is not None]
        if not values:
            return None
        return max(values) if "loss" not in stop.monitor else min(values)

    # ---- per epoch

    def _fit_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        self.nan_guard.epoch = epoch
        callbacks = [self.nan_guard, *self.options.callbacks]
        live = self.reporter.batch_callback(self.spec.batch_size)
        if live is not None:
            callbacks.append(live)
        self.reporter.epoch_started(epoch, self.spec.epochs, self.steps_per_epoch)
        data = self._train_data(epoch)
        self._prime(data)
        history = self.model.fit(
            data, epochs=epoch + 1, initial_epoch=epoch, steps_per_epoch=self.steps_per_epoch,
            callbacks=callbacks, verbose=0, shuffle=False,
        )
        row: dict[str, Any] = {"epoch": epoch + 1, **self.phases.columns(epoch)}
        row.update({key: float(values[-1]) for key, values in history.history.items() if values})
        if self.nan_guard.bad_step is None and math.isfinite(row.get("loss", 0.0)):
            if self.recalibrating:
                recalibrate(self.model, eval_batches(self.splits.train, 2 * self.local_batch),
                            max(1, RECALIBRATION_IMAGES // (2 * self.local_batch)))
            validation = self.model.evaluate(self.validation, verbose=0, return_dict=True)
            row.update({f"val_{key}": float(value) for key, value in validation.items()})
        seconds = time.perf_counter() - started
        row["seconds"] = round(seconds, 3)
        row["images_per_second"] = round(self.steps_per_epoch * self.spec.batch_size / seconds, 1) if seconds else 0.0
        return history_row(row)  # as history.csv will hold it

    def _prime(self, data: Any) -> None:
        """Build a newly compiled model's loss and metrics on one batch, outside ``fit``.

        Otherwise the first ``fit`` after ``compile`` peeks at one batch of the epoch to build them, and
        on JAX and PyTorch (a ``PyDataset``, not a re-iterable ``tf.data.Dataset``) it then goes on from
        the same iterator: that epoch started at batch 2, and a resumed run differed from an
        uninterrupted one. Evaluating one batch changes no variable but the metrics', which ``fit``
        resets.
        """
        if keras.backend.backend() == "tensorflow" or self.primed == self.phases.compiles:
            return
        images, labels = data[0]
        self.model.evaluate(images, labels, batch_size=len(images), verbose=0)
        self.primed = self.phases.compiles

    def _record(self, row: dict[str, Any]) -> bool:
        """Commit the epoch; return ``True`` when early stopping says stop."""
        state = self.state
        state.epochs_completed = int(row["epoch"])
        state.history.append(row)
        state.train_seconds += row["seconds"]
        state.examples_seen += self.steps_per_epoch * self.spec.batch_size
        value = row.get(MONITOR, row.get("loss"))
        best = improved(value, state.best_value, False, ties=True)  # ties: the later epoch
        if best:
            state.best_value, state.best_epoch = value, state.epochs_completed
            self.best = variable_values(self.model.variables)
        stop = self.spec.early_stopping
        if stop is not None:
            if stop.monitor not in row:
                raise TrainError(f"early_stopping.monitor: no metric {stop.monitor!r} "
                                 f"(have: {', '.join(k for k in row if k != 'epoch')})")
            better = improved(row[stop.monitor], self.stop_best, "loss" not in stop.monitor, stop.min_delta)
            state.stalled_epochs = 0 if better else state.stalled_epochs + 1
            if better:
                self.stop_best = row[stop.monitor]
        if self.leader:
            self._commit(best)
        return stop is not None and state.stalled_epochs >= stop.patience

    def _commit(self, best: bool) -> None:
        with quiet_saving():
            variables = {"model": variable_values(self.model.variables),
                         "optimizer": variable_values(self.model.optimizer.variables)}
        commit_epoch(self.run_dir, self.state, variables, {"model": variables["model"]} if best else None)
        write_history_csv(self.run_dir / "history.csv", self.state.history)
        write_tensorboard(self.run_dir / "logs", self.state.history, self.started)
        if best:
            self._save_model(self.run_dir / "model.keras")
        test_hook("done", self.state.epochs_completed)

    def _save_model(self, path: Path) -> None:
        with quiet_saving():
            write_file(path, lambda temporary: self.model.save(temporary))

    # ---- whole run

    def _loop(self) -> str:
        hook = self.options.on_epoch_end
        for epoch in range(self.state.epochs_completed, self.spec.epochs):
            self.phases.enter(self.model, epoch)
            row = self._fit_epoch(epoch)
            if self.nan_guard.bad_step is not None or not math.isfinite(row.get("loss", 0.0)):
                kept = (f"kept the model of epoch {self.state.best_epoch}" if self.state.best_epoch
                        else "no model was saved")
                self.reporter.message(
                    f"[red]stopped:[/] the loss became NaN in epoch {epoch + 1} (step "
                    f"{(self.nan_guard.bad_step or 0) + 1}); {kept} - try a lower learning rate")
                return "nan"
            stop = self._record(row)
            self.reporter.epoch_done(epoch, self.spec.epochs, row)
            self._warn_at_chance()
            if stop:
                self.reporter.message(f"early stopping after epoch {epoch + 1}")
                return "early_stopping"
            if hook is not None and hook(epoch + 1, dict(row)):
                self.reporter.message(f"stopped after epoch {epoch + 1} (on_epoch_end)")
                return "callback"
        return "completed"

    def _warn_at_chance(self) -> None:
        warning = None if self.state.chance_warned else chance_warning(self.state.history, len(self.splits.class_names))
        if warning is not None:
            self.state.chance_warned = True  # committed with the next epoch
            self.reporter.message(f"[yellow]{warning}[/]")

    def _restore_best(self) -> None:
        if self.best is not None:
            assign_values(self.model.variables, self.best, "model")

    def _test(self) -> dict[str, Any]:
        self._restore_best()
        data = self._eval_data("test")
        self._prime(data)  # a resumed run with no epoch left has not fitted yet
        results = self.model.evaluate(data, verbose=0, return_dict=True)
        test: dict[str, Any] = {key: float(value) for key, value in results.items()}
        if self.placement.process_count == 1:  # each process holds only its shard of the test set
            predictions = collect(self.model, self._eval_data("test"))
            test.update(per_class(predictions, self.splits.class_names))
            if self.leader:
                write_outputs(self.run_dir, predictions, self.splits.class_names)
        return test

    def _finish(self, reason: str, test: dict[str, Any]) -> dict[str, Any]:
        state = self.state
        metrics = {
            "test": test,
            "epochs_completed": state.epochs_completed,
            "train_seconds": round(state.train_seconds, 3),
            "images_per_second": round(state.examples_seen / state.train_seconds, 1) if state.train_seconds else 0.0,
            "best_epoch": state.best_epoch,
            "best_validation": {MONITOR: state.best_value},
            "stopped": reason,
            "precision": self.precision,
            "device": self.placement.kind,
            "processes": self.placement.process_count,
            "dataset": self.spec.dataset,
            "examples": self.splits.sizes,
            "class_names": self.splits.class_names,
            "seed": self.spec.seed,
            "parameters": int(self.model.count_params()),
            "weights_sha256": weights_sha256(self.model),
        }
        if self.leader:
            write_text(self.run_dir / "metrics.json", strict_json(metrics))
            if state.history:
                plot_curves(self.run_dir / "curves.png", state.history)
        else:  # the other processes leave their own metrics, to compare with the leader's
            write_text(self.run_dir / f"process-{self.placement.process_index}.json", strict_json(metrics))
        return metrics

    def _export(self) -> None:
        from blockbuilder.serving.export import export_model

        fmt = str(self.options.export)
        # A resumed run exports again over the previous export of the same run.
        result = export_model(str(self.run_dir), fmt, str(self.run_dir / "export" / fmt), force=True)
        self.reporter.message(f"exported {fmt} to {result.path}")

    def run(self) -> Run:
        """Train, test and write every output."""
        if self.leader and self.resumed_from is None and self.options.resume:  # a new run's is its claim (api)
            write_text(self.run_dir / "resolved.yaml", self.architecture.to_yaml())
        self.reporter.start(self.architecture.name, self.spec, self.placement.kind, self.precision,
                            self.splits.sizes, self.resumed_from)
        try:
            reason = self._loop()
        finally:
            self.reporter.stop()
        metrics = self._finish(reason, self._test())
        if self.leader and self.state.best_epoch and (reason != "completed" or self.resumed_from is not None):
            self._save_model(self.run_dir / "model.keras")  # the tested model, whatever was interrupted
        self.reporter.table(metrics, self.run_dir)
        if self.options.export and self.leader and (self.run_dir / "model.keras").exists():
            self._export()
        return Run(self.run_dir, self.model, metrics, list(self.state.history))


def run_training(decided: Plan, options: TrainOptions) -> Run:
    """Train as ``decided``: place the devices, build, fit epoch by epoch, test, write every output."""
    placement = place(options.device, options.coordinator, options.num_processes, options.process_id)
    policy = keras.mixed_precision.global_policy()
    try:
        trainer = Trainer(decided, options, placement)
        for notice in decided.notices:
            trainer.reporter.message(notice)
        return trainer.run()
    finally:  # a notebook's next model is built in the precision it had before
        keras.mixed_precision.set_global_policy(policy)
