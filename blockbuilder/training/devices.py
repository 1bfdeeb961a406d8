"""Where training runs and in which precision: CPU, GPUs, TPUs, JAX processes; seeds and determinism."""

from __future__ import annotations

import contextlib
import hashlib
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

batch, seconds = int(sys.argv[1]), float(sys.argv[2])
text = sys.stdin.read()
rng = np.random.default_rng(0)
models = {}
for policy in ("float32", "mixed_bfloat16"):
    keras.mixed_precision.set_global_policy(policy)
    if text.strip():  # the network to be trained, as its resolved file
        import blockbuilder

        model = blockbuilder.build(blockbuilder.loads(text))
    else:  # no network given: a small CNN
        from keras import layers

        inputs = keras.Input((32, 32, 3))
        h = inputs
        for filters in (32, 32, 64, 64):
            h = layers.Activation("relu")(layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(h)))
        model = keras.Model(inputs, layers.Dense(10, dtype="float32")(layers.GlobalAveragePooling2D()(h)))
    model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mean_squared_error")
    x = rng.random((batch, *model.input.shape[1:]), dtype=np.float32)
    y = np.zeros((batch, *model.output.shape[1:]), np.float32)
    model.train_on_batch(x, y)
    model.train_on_batch(x, y)
    models[policy] = model, x, y
best = dict.fromkeys(models, 0.0)
for _ in range(2):  # alternating rounds: other work on the machine slows a round, not a policy
    for policy, (model, x, y) in models.items():
        steps, start = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - start < seconds:
            model.train_on_batch(x, y)
            steps += 1
        best[policy] = max(best[policy], steps * batch / (time.perf_counter() - start))
print(best["float32"], best["mixed_bfloat16"])
"""
#: The probe's batch: the run's (the answer depends on it: ResNet-20 ran 1.31x faster in bfloat16 at
#: batch 32 and 0.93x as fast at batch 128 on one CPU), up to this.
PROBE_BATCH = 256
#: Networks below this many multiply-accumulates per image train in float32 without a probe. The two
#: networks bfloat16 sped up are far above it (the probe's 4-conv CNN: 67 M, ResNet-20: 41 M); below it a
#: step is dispatch more than arithmetic, the ratio measured for one network is noise (LeNet-5, 0.4 M:
#: 0.96x to 1.22x, and 0.6x to 1.5x for 20 K-MAC networks, over 40 probes of one test session on a
#: loaded 2-core EPYC), and the probe (about 5 s) costs more than such a network's whole training.
PROBE_MIN_MACS = 10_000_000
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


def probe_speeds(architecture: Any = None, batch: int = 32, seconds: float = 1.0) -> tuple[float, float]:
    """Training images/s of ``architecture`` (a small CNN without one) in float32 and in mixed_bfloat16
    on this CPU, in a fresh process: each policy for ``seconds`` (at least 2 steps), in 2 alternating
    rounds, at ``batch`` images (at most :data:`PROBE_BATCH`).

    Returns ``(0, 0)`` when the probe fails (then float32 is used): a network of plugin blocks, say.
    """
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": keras.backend.backend(),
           "CUDA_VISIBLE_DEVICES": ""}
    text = architecture.to_yaml() if architecture is not None else ""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(min(batch, PROBE_BATCH)), str(seconds)],
                              input=text, capture_output=True, text=True, env=env, timeout=600, check=False)
        words = done.stdout.split()[-2:]
        return float(words[0]), float(words[1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError):
        return 0.0, 0.0


def cpu_precision(architecture: Any = None, batch: int = 32) -> str:
    """The faster of float32 and mixed_bfloat16 for training ``architecture`` on this CPU, measured once
    and cached.

    A CPU without bfloat16 instructions (``avx512_bf16``, ``amx_bf16``) gets float32 without a
    measurement: emulated bfloat16 ran ResNet-20 at 0.5x there, and neither does a network under
    :data:`PROBE_MIN_MACS` per image. With them the answer depends on the
    network as much as on the CPU: on one AMD EPYC with AVX512-BF16, Keras' mixed policy trained a
    plain 4-conv CNN 1.35x faster than float32, ResNet-20 1.31x as fast at batch 32 and 0.93x at batch
    128; on an Intel Xeon with AMX ResNet-20 at 0.74x, on another CPU at 1.9x. So the network to be
    trained is timed in both policies at its batch (:func:`probe_speeds`, seconds for a small network),
    once per CPU, backend, Keras version, network and batch; :func:`probe_cache` keeps the result.
    """
    if not {"amx_bf16", "avx512_bf16"} & _cpu_flags():
        return "float32"
    if architecture is not None and sum(n.block.macs(n) for n in architecture.root.walk()) < PROBE_MIN_MACS:
        return "float32"
    network = ""
    if architecture is not None:
        digest = hashlib.sha256(architecture.to_yaml().encode("utf-8")).hexdigest()[:16]
        network = f" | {architecture.name} {digest} | batch {min(batch, PROBE_BATCH)}"
    key = f"{_cpu_name()} | {keras.backend.backend()} | keras {keras.__version__}{network}"
    cache = probe_cache()
    try:
        known = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    known = known if isinstance(known, dict) else {}
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("precision") in ("float32", "mixed_bfloat16"):
        return str(entry["precision"])
    float32, bfloat16 = probe_speeds(architecture, batch) if architecture is not None else probe_speeds()
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


def resolve_precision(requested: str, device: str, architecture: Any = None, batch_size: int = 32) -> str:
    """The Keras dtype policy for ``precision`` on ``device`` (cpu, gpu or tpu).

    ``auto`` is the fastest policy that keeps accuracy: ``mixed_bfloat16`` on TPUs and on GPUs of
    compute capability 8.0 or more (bf16 tensor cores: no loss scaling needed), ``mixed_float16`` on
    GPUs of 7.x (fp16 tensor cores), and on a CPU what :func:`cpu_precision` measured to be faster
    for ``architecture`` at ``batch_size`` (float32 or mixed_bfloat16); the same on every backend.
    Every model returns float32 whatever its policy (:func:`blockbuilder.compiler.compile.output_block`).
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
    return cpu_precision(architecture, batch_size)


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
        # Each process shards the data itself (pipeline.train_batches): Keras' auto-sharding would
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
