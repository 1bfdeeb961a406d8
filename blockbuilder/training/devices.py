"""Where training runs and in which precision: CPU, GPUs, TPUs, JAX processes; seeds and determinism."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import keras

from blockbuilder.training.spec import TrainError, TrainSpec

__all__ = ["Placement", "no_distribution", "place", "resolve_precision", "set_determinism", "quiet_saving"]


@dataclass
class Placement:
    """Where a run trains.

    Attributes:
        kind: ``cpu``, ``gpu`` or ``tpu``.
        strategy: A ``tf.distribute`` strategy (TensorFlow backend), or ``None`` (JAX).
        process_count, process_index: This process among the JAX processes (1 and 0 otherwise).
    """

    kind: str
    strategy: Any
    process_count: int
    process_index: int

    @property
    def leader(self) -> bool:
        """Whether this process writes the run directory and reports progress."""
        return self.process_index == 0

    @property
    def replicas(self) -> int:
        """Devices a batch is split over in this process."""
        return int(getattr(self.strategy, "num_replicas_in_sync", 1))

    def scope(self) -> Any:
        """The strategy's scope (variables made in it are placed on every device)."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()


PROBE = r"""
import sys, time
import numpy as np, keras
from keras import layers

steps, batch = int(sys.argv[1]), int(sys.argv[2])
x = np.random.default_rng(0).random((batch, 32, 32, 3), dtype=np.float32)
y = np.zeros(batch, np.int32)
models = {}
for policy in ("float32", "mixed_bfloat16"):
    keras.mixed_precision.set_global_policy(policy)
    inputs = keras.Input((32, 32, 3))
    h = inputs
    for filters in (32, 32, 64, 64):
        h = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(h)))
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax", dtype="float32")(h))
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    models[policy] = model
best = dict.fromkeys(models, 0.0)
for _ in range(3):  # alternating rounds: other work on the machine slows a round, not a policy
    for policy, model in models.items():
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(x, y)
        best[policy] = max(best[policy], steps * batch / (time.perf_counter() - start))
print(best["float32"], best["mixed_bfloat16"])
"""
PROBE_MARGIN = 1.15  # bfloat16 must be clearly faster: it also rounds the activations


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(flags.partition(":")[2].split())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            line = next((line for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        return "unknown"
    return line.partition(":")[2].strip() or "unknown"


def probe_cache() -> Path:
    """Where the measured CPU precision is kept: ``$BLOCKBUILDER_CACHE`` or ``~/.cache/blockbuilder``."""
    base = os.environ.get("BLOCKBUILDER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "blockbuilder")
    return Path(base) / "precision.json"


def probe_speeds(steps: int = 6, batch: int = 32) -> tuple[float, float]:
    """Training images/s of a small CNN in float32 and in mixed_bfloat16 on this CPU, in a fresh process.

    Returns ``(0, 0)`` when the probe fails (then float32 is used).
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": keras.backend.backend(),
           "CUDA_VISIBLE_DEVICES": ""}
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(steps), str(batch)], capture_output=True,
                              text=True, env=env, timeout=300, check=False)
        words = done.stdout.split()[-2:]
        return float(words[0]), float(words[1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return 0.0, 0.0


def cpu_precision() -> str:
    """The faster of float32 and mixed_bfloat16 for training on this CPU, measured once and cached.

    A CPU without bfloat16 instructions (``avx512_bf16``, ``amx_bf16``) gets float32 without a
    measurement: emulated bfloat16 ran ResNet-20 at 0.5x there. With them, Keras' mixed policy was
    measured at 0.74x on one such CPU and 1.9x on another, so a probe decides (:func:`probe_speeds`,
    a few seconds, once per CPU, backend and Keras version; :func:`probe_cache` keeps the result).
    """
    if not {"amx_bf16", "avx512_bf16"} & _cpu_flags():
        return "float32"
    key = f"{_cpu_name()} | {keras.backend.backend()} | keras {keras.__version__}"
    cache = probe_cache()
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("precision") in ("float32", "mixed_bfloat16"):
        return str(entry["precision"])
    float32, bfloat16 = probe_speeds()
    choice = "mixed_bfloat16" if float32 > 0 and bfloat16 >= PROBE_MARGIN * float32 else "float32"
    known[key] = {"precision": choice, "float32_images_per_s": round(float32, 1),
                  "mixed_bfloat16_images_per_s": round(bfloat16, 1)}
    from blockbuilder.errors import CommandError
    from blockbuilder.files import atomic_path

    with contextlib.suppress(CommandError), atomic_path(cache) as temporary:  # an unwritable cache only costs a probe
        Path(temporary).write_text(json.dumps(known, indent=2) + "\n", encoding="utf-8")
    return choice


def _gpu_capabilities() -> list[tuple[int, ...]]:
    if keras.backend.backend() == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return [tuple(int(p) for p in str(d.compute_capability).split(".")) for d in gpus]
    if keras.backend.backend() == "torch":
        import torch

        if not torch.cuda.is_available():
            return []
        return [tuple(torch.cuda.get_device_capability(i)) for i in range(torch.cuda.device_count())]
    import tensorflow as tf

    details = [tf.config.experimental.get_device_details(g) for g in tf.config.list_physical_devices("GPU")]
    return [tuple(d.get("compute_capability", (0, 0))) for d in details]


def resolve_precision(requested: str, device: str) -> str:
    """The Keras dtype policy for ``precision`` on ``device`` (cpu, gpu or tpu).

    ``auto`` is the fastest policy that keeps accuracy: ``mixed_bfloat16`` on TPUs and on GPUs of
    compute capability 8.0 or more (bf16 tensor cores: no loss scaling needed), ``mixed_float16`` on
    GPUs of 7.x (fp16 tensor cores), and on a CPU what :func:`cpu_precision` measured to be faster
    (float32 or mixed_bfloat16); the same on every backend. Every model returns float32 whatever
    its policy (:func:`blockbuilder.compiler.compile.output_block`).
    """
    if requested != "auto":
        return requested
    if device == "tpu":
        return "mixed_bfloat16"
    if device == "gpu":
        capabilities = _gpu_capabilities()
        if capabilities and min(capabilities) >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if capabilities and min(capabilities) >= (7, 0) else "float32"
    return cpu_precision()


def _jax_setup(device: str, coordinator: Optional[str], num_processes: Optional[int],
               process_id: Optional[int]) -> Placement:
    import jax

    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    if coordinator or num_processes:
        # Before anything touches a JAX backend (even jax.default_backend()), or initialize fails.
        # gloo carries the CPU processes' collectives; it changes nothing for GPUs and TPUs.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id)
    kind = {"cpu": "cpu", "gpu": "gpu", "tpu": "tpu"}.get(jax.default_backend(), "cpu")
    if device != "auto" and device != kind:
        raise TrainError(f"--device {device} asked for, but JAX found only {kind} devices")
    if jax.device_count() > 1:
        # Each process shards the data itself (tfdata.train_batches): Keras' auto-sharding would
        # shard it again, halve the global batch and give the processes unequal evaluation
        # batches, which deadlocks their collectives.
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False))
    return Placement(kind, None, jax.process_count(), jax.process_index())


def _tf_setup(device: str) -> Placement:
    import tensorflow as tf

    if device == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise TrainError(f"--device tpu: no TPU found ({str(error).splitlines()[0]})") from None
        return Placement("tpu", tf.distribute.TPUStrategy(resolver), 1, 0)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "gpu" and not gpus:
        raise TrainError("--device gpu asked for, but TensorFlow sees no GPU")
    if len(gpus) > 1:
        return Placement("gpu", tf.distribute.MirroredStrategy(), 1, 0)
    return Placement("gpu" if gpus else "cpu", tf.distribute.get_strategy(), 1, 0)


def _torch_setup(device: str) -> Placement:
    import torch

    if device == "tpu":
        raise TrainError("--device tpu needs the JAX or TensorFlow backend, not PyTorch")
    if device == "gpu" and not torch.cuda.is_available():
        raise TrainError("--device gpu asked for, but PyTorch sees no GPU")
    # Keras' torch backend places everything on its default device (CUDA when there is one),
    # chosen when Keras is imported: KERAS_TORCH_DEVICE=cpu chooses the CPU.
    if device == "cpu" and torch.cuda.is_available() and os.environ.get("KERAS_TORCH_DEVICE") != "cpu":
        raise TrainError("--device cpu with PyTorch on a GPU machine: set KERAS_TORCH_DEVICE=cpu")
    kind = "gpu" if torch.cuda.is_available() and device != "cpu" else "cpu"
    return Placement(kind, None, 1, 0)


def place(device: str = "auto", coordinator: Optional[str] = None, num_processes: Optional[int] = None,
          process_id: Optional[int] = None) -> Placement:
    """Find the devices (and connect the JAX processes) for a run."""
    if keras.backend.backend() == "jax":
        return _jax_setup(device, coordinator, num_processes, process_id)
    if coordinator or num_processes:
        raise TrainError(
            "--coordinator/--num-processes need the JAX backend (KERAS_BACKEND=jax): "
            "multi-worker TensorFlow does not work with Keras 3 fit (keras-team/keras#20585)"
        )
    if keras.backend.backend() == "torch":
        return _torch_setup(device)
    return _tf_setup(device)


def set_determinism(spec: TrainSpec) -> None:
    """Seed every generator; with ``deterministic: true`` also force TensorFlow's deterministic ops.

    On CPU the same seed already gives the same metrics without it (tested); forcing op determinism
    costs about 10-15 % of training speed there, and is what GPUs need for bit-identical runs.
    """
    keras.utils.set_random_seed(spec.seed)
    if spec.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def no_distribution() -> Iterator[None]:
    """Make Keras objects as plain local objects, even under a JAX ``DataParallel`` distribution.

    Keras' saving makes throw-away reference objects (an ``Optimizer(1.0)``) whose variables would
    otherwise be placed on the global mesh, a collective that only the saving process would join.
    """
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


@contextlib.contextmanager
def quiet_saving() -> Iterator[None]:
    """Save and load outside the JAX distribution, without NumPy 2's ``__array__ ... copy`` warning
    that TensorFlow variables raise."""
    with warnings.catch_warnings(), no_distribution():
        warnings.filterwarnings("ignore", message=r"__array__ implementation", category=DeprecationWarning)
        yield
