"""Shared helpers: write an architecture file, run the CLI in-process or as a real process."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# A latency table the developer calibrated would add "predicted ... ms" to outputs the tests compare
os.environ["BLOCKBUILDER_CACHE"] = tempfile.mkdtemp(prefix="blockbuilder-cache-")
REPO = Path(__file__).resolve().parents[1]
WITHOUT_TENSORFLOW = REPO / "tools" / "without_tensorflow"  # its sitecustomize hides TensorFlow


def backend_env(backend: str, hide_tensorflow: bool, cache: Path | None = None) -> dict[str, str]:
    """The environment of a child process; ``cache``: JAX's persistent compilation cache, so a second
    model of the same architecture in that process is not compiled again (docs/training.md)."""
    paths = [str(WITHOUT_TENSORFLOW), str(REPO)] if hide_tensorflow else [str(REPO)]
    compile_cache = {"JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
            "PYTHONPATH": os.pathsep.join(paths), **(compile_cache if cache else {})}


HAS_TORCH = importlib.util.find_spec("torch") is not None
NEEDS_TORCH = pytest.mark.skipif(not HAS_TORCH,
                                 reason="PyTorch is not installed (an optional extra: pip install torch)")
BACKENDS = ["jax", pytest.param("torch", marks=NEEDS_TORCH)]


@pytest.fixture
def write(tmp_path: Path):
    """``write(text, name="arch.yaml")`` -> path of a file holding the dedented text."""

    def _write(text: str, name: str = "arch.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return _write


@pytest.fixture
def cli(capsys):
    """Run ``blockbuilder ARGS`` in this process; returns (exit code, stdout, stderr)."""
    from blockbuilder.cli.main import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def run_process(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
                cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m blockbuilder ARGS`` (or ``python -c`` when args[0] == "-c") as a real process."""
    command = [sys.executable, *args] if args and args[0] == "-c" else [sys.executable, "-m", "blockbuilder", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, cwd=cwd)


@pytest.fixture(scope="session")
def lenet5_run(tmp_path_factory) -> Path:
    """A lenet5 run trained one epoch on the embedded digits through the CLI, made once per session.

    Read-only for the tests that use it (features, explore): none may write into it.
    """
    from blockbuilder.cli.main import main

    run = tmp_path_factory.mktemp("lenet5_run") / "lenet5"
    assert main(["train", "lenet5", "--epochs", "1", "--output", str(run)]) == 0
    return run


@pytest.fixture(autouse=True)
def _float32_between_tests():
    """A test that trains in mixed precision must not leave the next test's models in bfloat16."""
    yield
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture(autouse=True, scope="module")
def _block_registry_per_module():
    """Block types a test module registers (a plugin, the README's ``scale``) end with that module: a
    later module in the same worker may name its own user block ``squeeze_excite``."""
    from blockbuilder.blocks import registry

    before = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


def fake_trainer(architecture, run_dir, epochs, on_epoch):
    """A stand-in for training a search trial: a run directory and a validation accuracy of 0.5."""
    from blockbuilder.search.trainer import TrialOutcome

    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text("{}")
    on_epoch(0, {"val_accuracy": 0.5})
    return TrialOutcome(history=[{"val_accuracy": 0.5}])


def search(cli, monkeypatch, *words):
    """``blockbuilder search WORDS`` with a stand-in for training; the trials by their searched value."""
    from blockbuilder.search import trainer

    monkeypatch.setattr(trainer, "train_with_blockbuilder", fake_trainer)
    code, out, err = cli("search", *words)
    assert code == 0, err
    output = Path(words[words.index("--output") + 1])
    with open(output / "trials.csv", encoding="utf-8", newline="") as stream:
        rows = {row[name]: row for row in csv.DictReader(stream) for name in row if name.startswith("variables.")}
    return json.loads((output / "search.json").read_text(encoding="utf-8")), rows, out


#: Module fixtures that cost nothing to make twice: they do not keep a module's tests on one worker.
CHEAP_MODULE_FIXTURES = {"_block_registry_per_module"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups into the test ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``pytest -n 2`` (``--dist loadgroup`` in pyproject.toml) hands tests to whichever worker is free,
    one by one, except that the tests of a module with a module-scoped fixture (a trained run, a built
    model) stay together on one worker, so that the fixture is made once."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # pytest's; without it a module stays together, as --dist loadfile
        definitions = info.name2fixturedefs.values() if info is not None else [[None]]
        if any(chain[-1] is None or (chain[-1].scope == "module" and chain[-1].argname not in CHEAP_MODULE_FIXTURES)
               for chain in definitions if chain):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
