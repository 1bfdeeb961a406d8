"""Training: ``model.fit`` one epoch at a time, with a run directory that survives ``kill -9``.

Each epoch is one ``fit`` call on a dataset that is a pure function of ``(seed, epoch)``
(:mod:`blockbuilder.training.data`). After each epoch the model weights, the optimizer state and the run's
bookkeeping are written atomically (temporary file, then ``os.replace``), so ``--resume`` continues
from the last completed epoch and ends with the same metrics as an uninterrupted run.

Run directory::

    model.keras          best model by validation (atomic)
    checkpoint/          last.weights.h5 + state.json (resume), best.weights.h5
    history.csv          one row per epoch
    metrics.json         test metrics, epochs completed, train seconds, ...
    curves.png           loss and accuracy per epoch
    logs/                TensorBoard
    resolved.yaml        the architecture as trained
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from blockbuilder.errors import CommandError
from blockbuilder.files import atomic_path
from blockbuilder.training.spec import TrainSpec

__all__ = ["TrainError", "TrainOptions", "TrainResult", "resolve_precision", "train", "weights_sha256"]

CHECKPOINT_DIR = "checkpoint"
LAST_WEIGHTS = "last.weights.h5"
BEST_WEIGHTS = "best.weights.h5"
STATE_FILE = "state.json"


class TrainError(CommandError):
    """A training failure a user can act on, reported in one line (exit code 1)."""


@dataclass
class TrainOptions:
    """Command-line choices that are not part of the ``train:`` section."""

    output: Optional[str] = None
    device: str = "auto"
    resume: bool = False
    export: Optional[str] = None
    coordinator: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None
    live: Optional[bool] = None  # None: a live display when stdout is a terminal


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, float]] = field(default_factory=list)


# --------------------------------------------------------------------------- atomic writes


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` then move the file to ``path``; never leave half a file."""
    try:
        with atomic_path(path) as temporary, _upstream_warnings_ignored():
            write(temporary)
    except CommandError as error:
        raise TrainError(str(error)) from None


@contextlib.contextmanager
def _upstream_warnings_ignored() -> Iterator[None]:
    """Silence NumPy 2's ``__array__ ... copy keyword`` warning that TF variables raise on save.

    Also save and load outside the JAX distribution: Keras' saving makes throw-away reference
    objects (an ``Optimizer(1.0)``) whose variables would otherwise be placed on the global mesh,
    a collective that only the saving process (the leader) would join.
    """
    from blockbuilder.training.data import no_distribution

    with warnings.catch_warnings(), no_distribution():
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        yield


def _write_text(path: Path, text: str) -> None:
    _atomic_write(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------- precision and devices


def _cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags.split()))


def _gpu_capabilities() -> list[tuple[int, int]]:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return [tuple(int(p) for p in str(d.compute_capability).split(".")) for d in gpus]
    import tensorflow as tf

    details = [tf.config.experimental.get_device_details(g) for g in tf.config.list_physical_devices("GPU")]
    return [tuple(d.get("compute_capability", (0, 0))) for d in details]


def resolve_precision(requested: str, device: str) -> str:
    """The Keras dtype policy for ``precision`` on ``device`` (cpu, gpu or tpu).

    ``auto`` gives ``mixed_bfloat16`` on TPUs and on CPUs with AMX/AVX512-BF16, ``mixed_float16``
    on GPUs of compute capability 7.0 or more (tensor cores), and ``float32`` otherwise.
    """
    if requested != "auto":
        return requested
    if device == "tpu":
        return "mixed_bfloat16"
    if device == "gpu":
        capabilities = _gpu_capabilities()
        return "mixed_float16" if capabilities and min(capabilities) >= (7, 0) else "float32"
    return "mixed_bfloat16" if _cpu_has_bf16() else "float32"


def _jax_setup(device: str, options: TrainOptions) -> tuple[str, Any, int, int]:
    import jax
    import keras

    coordinator = options.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if coordinator or options.num_processes:
        # Before anything touches a JAX backend (even jax.default_backend()), or initialize fails.
        # gloo carries the CPU processes' collectives; it changes nothing for GPUs and TPUs.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=options.num_processes,
            process_id=options.process_id,
        )
    kind = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}.get(jax.default_backend(), "cpu")
    if device != "auto" and device != kind:
        raise TrainError(f"--device {device} asked for, but JAX found only {kind} devices")
    if jax.device_count() > 1:
        # Each process shards the data itself (train_batches, _shard): Keras' auto-sharding would
        # shard it again, halve the global batch and give the processes unequal evaluation
        # batches, which deadlocks their collectives.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False))
    return kind, None, jax.process_count(), jax.process_index()


def _tf_setup(device: str) -> tuple[str, Any, int, int]:
    import tensorflow as tf

    if device == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise TrainError(f"--device tpu: no TPU found ({str(error).splitlines()[0]})") from None
        return "tpu", tf.distribute.TPUStrategy(resolver), 1, 0
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "gpu" and not gpus:
        raise TrainError("--device gpu asked for, but TensorFlow sees no GPU")
    if len(gpus) > 1:
        return "gpu", tf.distribute.MirroredStrategy(), 1, 0
    return ("gpu" if gpus else "cpu"), tf.distribute.get_strategy(), 1, 0


@dataclass
class _Placement:
    kind: str  # cpu, gpu, tpu
    strategy: Any  # a tf.distribute strategy (TF backend) or None (JAX)
    process_count: int
    process_index: int


def _place(device: str, options: TrainOptions) -> _Placement:
    import keras

    if keras.backend.backend() == "jax":
        return _Placement(*_jax_setup(device, options))
    if options.coordinator or options.num_processes:
        raise TrainError(
            "--coordinator/--num-processes need the JAX backend (KERAS_BACKEND=jax): "
            "multi-worker TensorFlow does not work with Keras 3 fit (keras-team/keras#20585)"
        )
    return _Placement(*_tf_setup(device))


def _scope(placement: _Placement) -> Any:
    import contextlib

    return placement.strategy.scope() if placement.strategy is not None else contextlib.nullcontext()


def _set_determinism(spec: TrainSpec) -> None:
    """Seed every generator; with ``deterministic: true`` also force TensorFlow's deterministic ops.

    On CPU the same seed already gives the same metrics without it (tested); forcing op determinism
    costs about 10-15 % of training speed there, and is what GPUs need for bit-identical runs.
    """
    import keras

    keras.utils.set_random_seed(spec.seed)
    if spec.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------- model and optimizer


def _schedule_class() -> type:
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="blockbuilder")
    class EpochSchedule(keras.optimizers.schedules.LearningRateSchedule):
        """Learning rate as a function of the (fractional) epoch: warm-up, then constant,
        piecewise or cosine."""

        def __init__(self, base, steps_per_epoch, epochs, kind="constant", warmup_epochs=0.0,
                     boundaries=(), factors=(), alpha=0.0):
            self.base, self.steps_per_epoch, self.epochs = base, steps_per_epoch, epochs
            self.kind, self.warmup_epochs, self.alpha = kind, warmup_epochs, alpha
            self.boundaries, self.factors = list(boundaries), list(factors)

        def __call__(self, step):
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

        def get_config(self):
            return {"base": self.base, "steps_per_epoch": self.steps_per_epoch,
                    "epochs": self.epochs, "kind": self.kind, "warmup_epochs": self.warmup_epochs,
                    "boundaries": self.boundaries, "factors": self.factors, "alpha": self.alpha}

    return EpochSchedule


def make_optimizer(spec: TrainSpec, steps_per_epoch: int) -> Any:
    """The Keras optimizer of ``spec.optimizer`` with the learning rate of ``spec.schedule``."""
    import keras

    opt, schedule = spec.optimizer, spec.schedule
    rate: Any = opt.learning_rate
    if schedule.type != "constant" or schedule.warmup_epochs > 0:
        rate = _schedule_class()(
            opt.learning_rate, steps_per_epoch, spec.epochs, schedule.type,
            schedule.warmup_epochs, schedule.boundaries, schedule.factors, schedule.alpha,
        )
    common = {"learning_rate": rate, "weight_decay": opt.weight_decay or None,
              "clipnorm": opt.clipnorm}
    adam_like = {"beta_1": opt.beta_1, "beta_2": opt.beta_2, "epsilon": opt.epsilon}
    if opt.name == "sgd":
        return keras.optimizers.SGD(momentum=opt.momentum, nesterov=opt.nesterov, **common)
    if opt.name == "rmsprop":
        return keras.optimizers.RMSprop(momentum=opt.momentum, epsilon=opt.epsilon, **common)
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
               "nadam": keras.optimizers.Nadam}
    if opt.name == "adamw":
        common["weight_decay"] = opt.weight_decay
    return classes[opt.name](**adam_like, **common)


def _metrics(spec: TrainSpec) -> list:
    import keras

    table = {
        "accuracy": lambda: keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
        "top5_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5_accuracy"),
    }
    return [table[name]() for name in spec.metrics]


def _loss(spec: TrainSpec) -> Any:
    import keras

    if spec.label_smoothing:
        return _smoothed_loss(spec.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()


def _smoothed_loss(smoothing: float) -> Any:
    import keras
    from keras import ops

    def loss(y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        one_hot = ops.one_hot(ops.reshape(ops.cast(y_true, "int32"), (-1,)), classes)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=smoothing)

    return loss


def build_compiled_model(architecture: Any, spec: TrainSpec, steps_per_epoch: int) -> Any:
    """Build ``architecture`` and compile it with the ``train:`` section's optimizer, loss, metrics."""
    import blockbuilder

    model = blockbuilder.build(architecture)
    model.compile(
        optimizer=make_optimizer(spec, steps_per_epoch), loss=_loss(spec), metrics=_metrics(spec)
    )
    return model


# --------------------------------------------------------------------------- run state


@dataclass
class _RunState:
    """What ``--resume`` needs besides the weights; saved as ``checkpoint/state.json``."""

    epochs_completed: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: Optional[float] = None
    best_epoch: int = 0
    train_seconds: float = 0.0
    examples_seen: int = 0
    seed: int = 0
    stalled_epochs: int = 0

    @classmethod
    def load(cls, path: Path) -> _RunState:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as error:
            raise TrainError(f"cannot resume from {path}: {error}") from None


def _monitor(spec: TrainSpec) -> tuple[str, bool]:
    """The validation metric that picks the best model, and whether larger is better."""
    return ("val_loss", False)  # smoother than accuracy on a small validation set


def _improved(value: float, best: Optional[float], larger_is_better: bool, delta: float = 0.0,
              ties: bool = False) -> bool:
    if best is None:
        return True
    if ties and value == best:
        return True
    return value > best + delta if larger_is_better else value < best - delta


# --------------------------------------------------------------------------- outputs


def write_history_csv(path: Path, history: list[dict[str, float]]) -> None:
    """Write one row per epoch (``epoch`` first, then every logged value)."""
    keys = ["epoch"] + sorted({k for row in history for k in row} - {"epoch"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    _write_text(path, buffer.getvalue())


def plot_curves(path: Path, history: list[dict[str, float]]) -> None:
    """Save loss and accuracy per epoch (training and validation) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    for axes, name in zip(figure.subplots(1, 2), ("loss", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            values = [row.get(prefix + name, math.nan) for row in history]
            axes.plot(epochs, values, marker="o", label=label)
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.tight_layout()
    _atomic_write(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


_WRITERS: dict[str, Any] = {}  # one event file per folder and process


def write_tensorboard(log_dir: Path, row: dict[str, float]) -> None:
    """Append one epoch's scalars to TensorBoard event files (``train/`` and ``validation/``).

    Uses ``tf.summary.write`` with the scalars plugin's metadata, so TensorBoard reads the logs
    while the ``tensorboard`` package itself is not needed to write them.
    """
    import tensorflow as tf

    metadata = tf.compat.v1.SummaryMetadata()
    metadata.plugin_data.plugin_name = "scalars"
    step = int(row["epoch"])
    for folder, prefix in (("train", ""), ("validation", "val_")):
        values = {key[len(prefix):]: value for key, value in row.items()
                  if key.startswith(prefix) and key != "epoch" and (prefix or not key.startswith("val_"))}
        writer = _WRITERS.setdefault(str(log_dir / folder),
                                     tf.summary.create_file_writer(str(log_dir / folder)))
        with writer.as_default():
            for key, value in values.items():
                tf.summary.write(f"epoch_{key}", tf.constant(float(value)), step=step,
                                 metadata=metadata)
        writer.flush()


def _save_model(model: Any, path: Path) -> None:
    _atomic_write(path, lambda temporary: model.save(temporary))


def _save_weights(model: Any, path: Path) -> None:
    _atomic_write(path, lambda temporary: model.save_weights(temporary))


def _weight_values(model: Any) -> list:
    """Every weight's value as a NumPy array.

    ``get_weights`` and ``convert_to_numpy`` of a TensorFlow variable warn under NumPy 2 (the
    variable's ``__array__`` lacks ``copy``); its own ``numpy()`` does not. JAX arrays have no
    ``numpy()`` and convert without a warning.
    """
    from keras import ops

    values = [variable.value for variable in model.weights]
    return [value.numpy() if hasattr(value, "numpy") else ops.convert_to_numpy(value)
            for value in values]


def weights_sha256(model: Any) -> str:
    """A checksum of every weight's value, in order: equal models, equal checksums."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for value in _weight_values(model):
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False) + "\n"


# --------------------------------------------------------------------------- the loop


def _resolved_spec(architecture: Any, overrides: dict[str, Any]) -> TrainSpec:
    spec: TrainSpec = architecture.train
    changes = {key: value for key, value in overrides.items() if value is not None}
    return TrainSpec.model_validate({**spec.model_dump(exclude_none=True), **changes}) if changes else spec


def _prepare_run_dir(run_dir: Path, resume: bool) -> _RunState | None:
    try:
        (run_dir / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainError(f"cannot create run directory {run_dir}: {error.strerror}") from None
    state_path = run_dir / CHECKPOINT_DIR / STATE_FILE
    if resume and state_path.exists():
        return _RunState.load(state_path)
    for stale in (STATE_FILE, LAST_WEIGHTS, BEST_WEIGHTS):
        (run_dir / CHECKPOINT_DIR / stale).unlink(missing_ok=True)
    return None


class _NanGuard:
    """Stop ``fit`` at the first non-finite loss (used as a Keras callback)."""

    def __new__(cls) -> Any:
        import keras

        class NanGuard(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.bad_step: Optional[int] = None

            def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.bad_step = batch
                    self.model.stop_training = True

        return NanGuard()


def _restore(model: Any, run_dir: Path) -> None:
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    with _upstream_warnings_ignored():
        model.load_weights(str(run_dir / CHECKPOINT_DIR / LAST_WEIGHTS))


def _epoch_logs(history: Any, epoch: int, seconds: float, examples: int) -> dict[str, float]:
    row: dict[str, float] = {"epoch": epoch + 1}
    row.update({key: float(values[-1]) for key, values in history.history.items() if values})
    row["seconds"] = round(seconds, 3)
    row["images_per_second"] = round(examples / seconds, 1) if seconds > 0 else 0.0
    return row


def train(architecture: Any, spec_overrides: dict[str, Any] | None = None,
          options: TrainOptions | None = None) -> TrainResult:
    """Train ``architecture`` and fill its run directory.

    Args:
        architecture: A loaded architecture (``blockbuilder.load``) with a ``train`` section.
        spec_overrides: ``TrainSpec`` keys from command-line flags (``epochs``, ``batch_size``,
            ``seed``, ``precision``); ``None`` values are ignored.
        options: Run directory, device, resume, export and multi-process choices.

    Raises:
        TrainError: Training could not start, or a file could not be written.
        blockbuilder.data.DataError: The data set cannot feed the model.
    """
    options = options or TrainOptions()
    spec = _resolved_spec(architecture, spec_overrides or {})
    run_dir = Path(options.output or Path("runs") / architecture.name)
    from blockbuilder.training.progress import Reporter

    placement = _place(options.device, options)
    leader = placement.process_index == 0
    reporter = Reporter(options.live if leader else False, quiet=not leader)
    state = _prepare_run_dir(run_dir, options.resume) if leader else None
    if not leader and options.resume:
        path = run_dir / CHECKPOINT_DIR / STATE_FILE
        state = _RunState.load(path) if path.exists() else None
    return _Trainer(architecture, spec, run_dir, options, placement, reporter, state).run()


class _Trainer:
    """One training run; methods are the steps of :func:`train`."""

    def __init__(self, architecture: Any, spec: TrainSpec, run_dir: Path, options: TrainOptions,
                 placement: _Placement, reporter: Any, state: Optional[_RunState]) -> None:
        self.architecture, self.spec, self.run_dir = architecture, spec, run_dir
        self.options, self.placement, self.reporter = options, placement, reporter
        self.resumed = state is not None
        self.state = state or _RunState(seed=spec.seed)
        self.leader = placement.process_index == 0
        self.checkpoints = run_dir / CHECKPOINT_DIR
        self.best_weights: Optional[list] = None

    # ---- setup

    def _setup(self) -> None:
        import keras

        from blockbuilder.training.data import load_splits

        if self.resumed and self.state.seed != self.spec.seed:
            raise TrainError(
                f"--resume: the checkpoint was trained with seed {self.state.seed}, not {self.spec.seed}"
            )
        self.precision = resolve_precision(self.spec.precision, self.placement.kind)
        keras.mixed_precision.set_global_policy(self.precision)
        _set_determinism(self.spec)
        arch = self.architecture
        self.splits = load_splits(self.spec.dataset, arch.input_shape, arch.classes,
                                  self.spec.validation_split)
        if self.spec.cache:
            self.splits.train = self.splits.train.cache()
            self.splits.validation = self.splits.validation.cache()
        count = self.placement.process_count
        self.local_batch = self.spec.batch_size // count
        if self.local_batch * count != self.spec.batch_size:
            raise TrainError(f"batch size {self.spec.batch_size} is not divisible by {count} processes")
        self.steps_per_epoch = self._steps_per_epoch(self.splits.sizes["train"], count)
        self.augmenter = None
        if self.spec.augmentation:
            from blockbuilder.training.data import Augmenter

            self.augmenter = Augmenter(self.spec.augmentation, arch.input_shape)
        with _scope(self.placement):
            self.model = build_compiled_model(arch, self.spec, self.steps_per_epoch)
            if self.resumed and self.state.epochs_completed:
                _restore(self.model, self.run_dir)

    def _steps_per_epoch(self, size: int, count: int) -> int:
        """Whole batches only (each epoch reshuffles, so every image is still seen).

        A smaller last batch would cost a second compilation of the train step (about 2 s with
        JAX on CPU) and cannot be split evenly over devices and processes. A data set smaller
        than one batch trains on one partial batch, on one device.
        """
        replicas = getattr(self.placement.strategy, "num_replicas_in_sync", 1)
        whole = size // count // self.local_batch
        if whole == 0 and (count > 1 or replicas > 1):
            raise TrainError(f"{size} training images are fewer than one batch of "
                             f"{self.spec.batch_size} over {max(count, replicas)} devices")
        self.drop_remainder = whole > 0
        return max(1, whole)

    def _shard(self, dataset: Any, size: int) -> Any:
        count, index = self.placement.process_count, self.placement.process_index
        if count == 1:
            return dataset
        return dataset.take(size - size % count).shard(count, index)

    def _train_data(self, epoch: int) -> Any:
        from blockbuilder.training.data import train_batches

        count, index = self.placement.process_count, self.placement.process_index
        size = self.splits.sizes["train"]
        data = self.splits.train.take(size - size % count) if count > 1 else self.splits.train
        return train_batches(
            data, self.local_batch, seed=self.spec.seed, epoch=epoch,
            augmentation=self.spec.augmentation, input_shape=self.architecture.input_shape,
            shuffle_buffer=self.spec.shuffle_buffer, drop_remainder=self.drop_remainder,
            shard=(count, index), augmenter=self.augmenter,
        )

    def _eval_data(self, name: str) -> Any:
        from blockbuilder.training.data import eval_batches

        dataset = getattr(self.splits, name)
        return eval_batches(self._shard(dataset, self.splits.sizes[name]), self.local_batch)

    def _callbacks(self, epoch: int) -> list:
        report = self.reporter.callback(epoch, self.spec.epochs, self.steps_per_epoch,
                                        self.spec.batch_size)
        return [self.nan_guard, report]

    # ---- per epoch

    def _fit_epoch(self, epoch: int) -> dict[str, float]:
        started = time.perf_counter()
        history = self.model.fit(
            self._train_data(epoch), epochs=epoch + 1, initial_epoch=epoch,
            steps_per_epoch=self.steps_per_epoch, validation_data=self.validation,
            callbacks=self._callbacks(epoch), verbose=0, shuffle=False,
        )
        seconds = time.perf_counter() - started
        examples = self.steps_per_epoch * self.spec.batch_size
        return _epoch_logs(history, epoch, seconds, examples)

    def _record(self, row: dict[str, float]) -> bool:
        """Save the epoch's outputs; return ``True`` when early stopping says stop."""
        state = self.state
        state.epochs_completed = int(row["epoch"])
        state.history.append(row)
        state.train_seconds += row["seconds"]
        state.examples_seen += self.steps_per_epoch * self.spec.batch_size
        monitor, larger = _monitor(self.spec)
        value = row.get(monitor, row.get("loss"))
        if _improved(value, state.best_value, larger, ties=True):  # ties: the later epoch
            state.best_value, state.best_epoch = value, state.epochs_completed
            if self.placement.process_count > 1:  # every process restores the same best weights
                self.best_weights = _weight_values(self.model)
            if self.leader:
                _save_weights(self.model, self.checkpoints / BEST_WEIGHTS)
                _save_model(self.model, self.run_dir / "model.keras")
        stop = self.spec.early_stopping
        if stop is not None:
            stop_value = row.get(stop.monitor)
            if stop_value is None:
                raise TrainError(f"early_stopping.monitor: no metric {stop.monitor!r} "
                                 f"(have: {', '.join(k for k in row if k != 'epoch')})")
            state.stalled_epochs = 0 if _improved(
                stop_value, self._stop_best, "loss" not in stop.monitor, stop.min_delta) else \
                state.stalled_epochs + 1
            if state.stalled_epochs == 0:
                self._stop_best = stop_value
        if self.leader:
            _save_weights(self.model, self.checkpoints / LAST_WEIGHTS)
            _write_text(self.checkpoints / STATE_FILE, _json(state.__dict__))
            write_history_csv(self.run_dir / "history.csv", state.history)
            write_tensorboard(self.run_dir / "logs", row)
        return stop is not None and state.stalled_epochs >= stop.patience

    # ---- whole run

    def _best_stop_value(self) -> Optional[float]:
        stop = self.spec.early_stopping
        if stop is None:
            return None
        values = [row[stop.monitor] for row in self.state.history if stop.monitor in row]
        if not values:
            return None
        return max(values) if "loss" not in stop.monitor else min(values)

    def _loop(self) -> str:
        self.nan_guard = _NanGuard()
        self.validation = self._eval_data("validation")
        self._stop_best = self._best_stop_value()
        for epoch in range(self.state.epochs_completed, self.spec.epochs):
            row = self._fit_epoch(epoch)
            if self.nan_guard.bad_step is not None or not math.isfinite(row.get("loss", 0.0)):
                kept = (f"kept the model of epoch {self.state.best_epoch}" if self.state.best_epoch
                        else "no model was saved")
                self.reporter.message(
                    f"[red]stopped:[/] the loss became NaN in epoch {epoch + 1} (step "
                    f"{(self.nan_guard.bad_step or 0) + 1}); {kept} - try a lower learning rate"
                )
                return "nan"
            if self._record(row):
                self.reporter.message(f"early stopping after epoch {epoch + 1}")
                return "early_stopping"
        return "completed"

    def _test(self) -> dict[str, float]:
        best = self.checkpoints / BEST_WEIGHTS
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif best.exists():
            with _upstream_warnings_ignored():
                self.model.load_weights(str(best))
        results = self.model.evaluate(self._eval_data("test"), verbose=0, return_dict=True)
        return {key: float(value) for key, value in results.items()}

    def _finish(self, reason: str, test: dict[str, float]) -> dict[str, Any]:
        state = self.state
        metrics = {
            "test": test,
            "epochs_completed": state.epochs_completed,
            "train_seconds": round(state.train_seconds, 3),
            "images_per_second": round(state.examples_seen / state.train_seconds, 1)
            if state.train_seconds else 0.0,
            "best_epoch": state.best_epoch,
            "best_validation": {_monitor(self.spec)[0]: state.best_value},
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
            _write_text(self.run_dir / "metrics.json", _json(metrics))
            if state.history:
                plot_curves(self.run_dir / "curves.png", state.history)
        else:  # the other processes leave their own metrics, to compare with the leader's
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise TrainError(f"cannot create run directory {self.run_dir}: {error.strerror}") from None
            index = self.placement.process_index
            _write_text(self.run_dir / f"process-{index}.json", _json(metrics))
        return metrics

    def _export(self) -> None:
        from blockbuilder.serving.export import export_model

        fmt = self.options.export
        # A resumed run exports again over the previous export of the same run.
        result = export_model(str(self.run_dir), fmt, str(self.run_dir / "export" / fmt), force=True)
        self.reporter.message(f"exported {fmt} to {result.path}")

    def run(self) -> TrainResult:
        """Train, test and write every output; return the metrics."""
        self._setup()
        if self.leader:
            _write_text(self.run_dir / "resolved.yaml", self.architecture.to_yaml())
        self.reporter.start(self.architecture.name, self.spec, self.placement.kind,
                            resolve_precision(self.spec.precision, self.placement.kind),
                            self.splits.sizes, self.state.epochs_completed if self.resumed else None)
        try:
            reason = self._loop()
        finally:
            self.reporter.stop()
        metrics = self._finish(reason, self._test())
        self.reporter.table(metrics, self.run_dir)
        if self.options.export and self.leader and (self.run_dir / "model.keras").exists():
            self._export()
        return TrainResult(self.run_dir, metrics, self.state.history)


def is_terminal() -> bool:
    """Whether stdout is an interactive terminal (live display) or a pipe/file (plain lines)."""
    return sys.stdout.isatty()
