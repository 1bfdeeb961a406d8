"""The parity check of ``export --verify``: the same random inputs through the Keras model and, in a
fresh Python process, through the export; the largest absolute difference must stay within a tolerance.

The process for ``savedmodel``, ``onnx`` and ``litert`` runs isolated (``python -I``): it can import
TensorFlow and the runtimes, not blockbuilder, as a server would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockbuilder.serving.source import ExportError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

_SAVEDMODEL_RUNNER = """
import sys, numpy as np, tensorflow as tf
path, inputs, outputs, name = sys.argv[1:5]
fn = tf.saved_model.load(path).signatures["serving_default"]
result = fn(**{name: tf.constant(np.load(inputs))})
np.save(outputs, next(iter(result.values())).numpy())
assert "blockbuilder" not in sys.modules, "the SavedModel check must not import blockbuilder"
"""

_KERAS_RUNNER = """
import sys, numpy as np, keras
path, inputs, outputs, name = sys.argv[1:5]
try:
    import blockbuilder.compiler.layers  # registers blockbuilder's custom layers
except ModuleNotFoundError:
    pass
model = keras.saving.load_model(path, compile=False)
np.save(outputs, np.asarray(model.predict(np.load(inputs), verbose=0)))
"""

_ONNX_RUNNER = """
import sys, numpy as np, onnxruntime
path, inputs, outputs, name = sys.argv[1:5]
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
np.save(outputs, session.run(None, {session.get_inputs()[0].name: np.load(inputs)})[0])
assert "blockbuilder" not in sys.modules
"""

_LITERT_RUNNER = """
import sys, numpy as np
from ai_edge_litert.interpreter import Interpreter
path, inputs, outputs, name = sys.argv[1:5]
x = np.load(inputs)
interpreter = Interpreter(model_path=path)
index = interpreter.get_input_details()[0]["index"]
interpreter.resize_tensor_input(index, x.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(index, x)
interpreter.invoke()
np.save(outputs, interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
assert "blockbuilder" not in sys.modules
"""

_RUNNERS = {
    "savedmodel": _SAVEDMODEL_RUNNER,
    "keras": _KERAS_RUNNER,
    "onnx": _ONNX_RUNNER,
    "litert": _LITERT_RUNNER,
}


#: The most random inputs ``--verify`` runs: they are made, saved and run in one batch, so a number is checked
#: before any is made (a resnet50's 1,024 inputs are 617 MB).
MAX_SAMPLES = 1024


def check_samples(samples: int) -> None:
    """Refuse a number of random inputs that is not from 1 to :data:`MAX_SAMPLES`, before any is made."""
    if not 1 <= samples <= MAX_SAMPLES:
        raise ExportError(f"--samples: expected from 1 to {MAX_SAMPLES:,} random inputs, got {samples:,}")


def random_inputs(spec: dict[str, Any], samples: int, seed: int = 0) -> np.ndarray:
    """Return ``samples`` uniform [0, 1) float32 inputs of the model's shape (unknown sizes become 32)."""
    import numpy as np

    shape = [samples] + [32 if d is None else d for d in spec["shape"][1:]]
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def verify(
    fmt: str, model: Any, artifact: Path, metadata: dict[str, Any], samples: int, tolerance: float
) -> float:
    """Run random inputs through the Keras model and, in a fresh process, through the export.

    Returns:
        The largest absolute difference between the two outputs.

    Raises:
        ExportError: the export did not load, or its outputs differ by more than ``tolerance``.
    """
    import numpy as np

    x = random_inputs(metadata["input"], samples)
    expected = np.asarray(model.predict(x, verbose=0), dtype=np.float32)
    actual = run_in_fresh_process(fmt, artifact, x, metadata["input"]["name"])
    if actual.shape != expected.shape:
        raise ExportError(f"parity check failed: output shape {actual.shape}, expected {expected.shape}")
    diff = float(np.max(np.abs(actual.astype(np.float32) - expected)))
    if not diff <= tolerance:
        raise ExportError(
            f"parity check failed: largest absolute difference {diff:.3g} > tolerance {tolerance:g} "
            f"over {samples} random inputs"
        )
    return diff


def run_in_fresh_process(fmt: str, artifact: Path, x: np.ndarray, input_name: str) -> np.ndarray:
    """Run ``x`` through an exported artifact in a new Python process and return its outputs.

    The process for ``savedmodel``, ``onnx`` and ``litert`` runs isolated (``python -I``): it can
    import TensorFlow and the runtimes, not blockbuilder.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="blockbuilder-verify-") as tmp:
        inputs, outputs = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(inputs, x)
        isolated = ["-I"] if fmt != "keras" else []
        arguments = [str(artifact.resolve()), str(inputs), str(outputs), input_name]
        command = [sys.executable, *isolated, "-c", _RUNNERS[fmt], *arguments]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}
        if fmt == "keras":  # a .keras file needs blockbuilder's custom layers to load
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp, env=env, check=False)
        if done.returncode != 0:
            reason = _last_line(done.stderr)
            raise ExportError(f"parity check failed: the export did not load in a fresh process ({reason})")
        result: np.ndarray = np.load(outputs)
        return result


def _package_root() -> str:
    """The folder that holds ``blockbuilder/`` (so a fresh process imports this copy, installed or not)."""
    return str(Path(__file__).resolve().parents[2])


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no error output"
