"""Pieces of training: the train section, precision choice, schedules, atomic writes, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

import blockbuilder
from blockbuilder.training.spec import TrainSpec


def test_train_section_defaults_and_strictness():
    spec = TrainSpec()
    assert (spec.dataset, spec.epochs, spec.batch_size, spec.optimizer.name) == ("digits", 20, 32, "adam")
    assert spec.optimizer.learning_rate == 1e-3 and spec.precision == "auto"
    with pytest.raises(ValidationError, match="epochz"):
        TrainSpec.model_validate({"epochz": 3})
    with pytest.raises(ValidationError, match="optimizer.lr"):
        TrainSpec.model_validate({"optimizer": {"lr": 0.1}})
    with pytest.raises(ValidationError, match="exactly one of"):
        TrainSpec.model_validate({"augmentation": [{"flip": {}, "zoom": {}}]})
    with pytest.raises(ValidationError, match="same length"):
        TrainSpec.model_validate({"schedule": {"type": "piecewise", "boundaries": [3], "factors": []}})
    with pytest.raises(ValidationError, match="dataset must be"):
        TrainSpec.model_validate({"dataset": "mnist"})


PHASES = "train:\n  phases:\n    - {epochs: 1}\n    - {epochs: 3}\n"


def test_phases_decide_the_epochs_an_extended_file_set(write, cli) -> None:
    write("extends: lenet5\ntrain:\n  epochs: 8\n", "base.yaml")
    child = write("extends: base.yaml\n" + PHASES, "child.yaml")

    import blockbuilder

    assert blockbuilder.load(child).train.epochs == 4
    assert cli("validate", child)[:1] == (0,)


@pytest.mark.parametrize("written, where", [
    ("extends: lenet5\ntrain:\n  epochs: 8\n  phases:\n    - {epochs: 1}\n    - {epochs: 3}\n", "3:3"),
    ("extends: child.yaml\ntrain:\n  epochs: 8\n", "3:3"),  # written later than the phases
])
def test_epochs_written_beside_or_after_the_phases_must_agree(write, cli, written: str, where: str) -> None:
    write("extends: lenet5\n" + PHASES, "child.yaml")
    path = write(written, "arch.yaml")

    message = "epochs (8) differs from the phases' total (1 + 3 = 4); leave epochs out (the phases decide it), " \
              "or make them agree"
    assert cli("validate", path) == (1, "", f"{path}:{where}: train: {message}\n")


def test_epochs_on_the_command_line_must_agree_with_inherited_phases(write, cli) -> None:
    child = write("extends: lenet5\n" + PHASES, "child.yaml")

    code, _, err = cli("validate", child, "--set", "train.epochs=4")
    assert code == 0
    code, _, err = cli("validate", child, "--set", "train.epochs=3")
    assert code == 1 and "epochs (3) differs from the phases' total (1 + 3 = 4)" in err and "value error" not in err


def test_augmentation_shorthand_and_dump_round_trip():
    spec = TrainSpec.model_validate({"augmentation": ["flip", {"random_crop": {"padding": 2}}, {"zoom": None}]})
    assert [step.kind for step in spec.augmentation] == ["flip", "random_crop", "zoom"]
    assert spec.augmentation[1].options.padding == 2
    assert spec.model_dump()["augmentation"][0] == {"flip": {"mode": "horizontal"}}
    assert TrainSpec.model_validate(spec.model_dump(exclude_none=True)) == spec


def test_train_flags_import_neither_pydantic_nor_tensorflow_and_match_the_train_section():
    import subprocess
    import sys
    import typing

    code = ("import sys, blockbuilder.cli.train; "
            "print([m for m in ('pydantic', 'tensorflow', 'keras', 'jax') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
    from blockbuilder.training.spec import PRECISIONS

    assert PRECISIONS == typing.get_args(TrainSpec.model_fields["precision"].annotation)


tf = pytest.importorskip("tensorflow")

from blockbuilder.training import api, devices, optim, rundir  # noqa: E402


def fake_cpu(monkeypatch, tmp_path, flags: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("flags, speeds, expected", [
    ("fpu avx2 fma", None, "float32"),  # AMD EPYC, AVX2 only: no bf16 units, no probe (bf16 ran at 0.5x)
    ("fpu avx512f avx512_bf16 amx_bf16", (503.2, 373.5), "float32"),  # bf16 units, but bf16 measured slower
    ("fpu avx512f avx512_bf16", (186.0, 368.4), "mixed_bfloat16"),  # bf16 measured 2x faster
    ("fpu avx512f avx512_bf16", (300.0, 320.0), "float32"),  # within the margin: not worth the rounding
    ("fpu avx512f avx512_bf16", (0.0, 0.0), "float32"),  # the probe failed
])
def test_auto_precision_on_a_cpu_is_the_measured_faster_one(monkeypatch, tmp_path, flags, speeds, expected):
    fake_cpu(monkeypatch, tmp_path, flags)
    probes: list[int] = []

    def probe() -> tuple[float, float]:
        probes.append(1)
        assert speeds is not None, "a CPU without bf16 units is not probed"
        return speeds

    monkeypatch.setattr(devices, "probe_speeds", probe)
    assert devices.resolve_precision("auto", "cpu") == expected
    assert devices.resolve_precision("auto", "cpu") == expected  # the second run reads the cache
    assert len(probes) == (0 if speeds is None else 1)
    assert devices.resolve_precision("float32", "cpu") == "float32"
    assert devices.resolve_precision("auto", "tpu") == "mixed_bfloat16"


def test_the_precision_probe_measures_both_policies_in_a_fresh_process():
    tiny = blockbuilder.loads("name: tiny\ninput: [8, 8, 3]\nclasses: 3\nnetwork:\n  - conv: {filters: 4, "
                              "norm: batchnorm, activation: relu}\n  - global_avg_pool: {}\n  - dense: 3\n")
    float32, bfloat16 = devices.probe_speeds(tiny, batch=4, seconds=0.05)
    assert float32 > 0 and bfloat16 > 0
    float32, bfloat16 = devices.probe_speeds(batch=4, seconds=0.05)  # no network: a small CNN
    assert float32 > 0 and bfloat16 > 0


PLAIN = """\
name: plain
input: [32, 32, 3]
classes: 10
network:
  - conv: {filters: 32, kernel: 3}
  - conv: {filters: 32, kernel: 3}
  - conv: {filters: 64, kernel: 3}
  - conv: {filters: 64, kernel: 3}
  - global_avg_pool
  - dense: {units: 10, activation: softmax}
"""


def test_auto_precision_on_a_cpu_is_measured_on_the_network_to_be_trained(monkeypatch, tmp_path, write):
    """A plain 4-conv CNN ran 1.35x faster in bfloat16 on one CPU where ResNet-20 ran at 0.93x (batch
    128): the network itself is timed at its batch, once, and the answer kept per network and batch.
    A network under 10 M MACs an image (LeNet-5: 0.4 M) trains in float32 without a probe."""
    fake_cpu(monkeypatch, tmp_path, "fpu avx512f avx512_bf16")
    seen: list[tuple[str, int]] = []
    speeds = {"plain": (100.0, 135.0), "resnet20_cifar": (571.7, 529.3), "lenet5": (100.0, 200.0)}

    def probe(architecture=None, batch=32, seconds=1.0):
        seen.append((architecture.name, batch))
        return speeds[architecture.name]

    monkeypatch.setattr(devices, "probe_speeds", probe)
    plain, resnet = blockbuilder.load(write(PLAIN, "plain.yaml")), blockbuilder.load("resnet20_cifar")
    assert devices.resolve_precision("auto", "cpu", plain, 128) == "mixed_bfloat16"
    assert devices.resolve_precision("auto", "cpu", resnet, 128) == "float32"
    assert devices.resolve_precision("auto", "cpu", resnet, 128) == "float32"  # kept: not probed again
    assert devices.resolve_precision("auto", "cpu", blockbuilder.load("lenet5"), 128) == "float32"  # not probed
    assert seen == [("plain", 128), ("resnet20_cifar", 128)]
    cache = json.loads((tmp_path / "cache" / "precision.json").read_text())
    assert sorted(key.split(" | ")[3].split()[0] for key in cache) == ["plain", "resnet20_cifar"]
    assert all(key.endswith("| batch 128") for key in cache)  # the run's batch: the answer depends on it
    resnet44 = blockbuilder.load("resnet20_cifar", ["variables.n=7"])
    speeds["resnet20_cifar"] = (100.0, 200.0)
    assert devices.resolve_precision("auto", "cpu", resnet44, 128) == "mixed_bfloat16"  # another network


@pytest.mark.parametrize("capabilities, expected", [([(8, 0)], "mixed_bfloat16"), ([(7, 5)], "mixed_float16"),
                                                    ([(6, 1)], "float32")])
def test_auto_precision_on_gpus_needs_tensor_cores(monkeypatch, capabilities, expected):
    monkeypatch.setattr(devices, "_gpu_capabilities", lambda: capabilities)
    assert devices.resolve_precision("auto", "gpu") == expected


def test_schedules_warmup_piecewise_cosine():
    spec = TrainSpec.model_validate({"epochs": 10, "optimizer": {"learning_rate": 0.1}, "schedule": {
        "type": "piecewise", "warmup_epochs": 1, "boundaries": [5, 8], "factors": [0.1, 0.01]}})
    rate = optim.make_optimizer(spec, steps_per_epoch=10).learning_rate
    schedule = optim.make_optimizer(spec, 10)._learning_rate
    values = [float(schedule(step)) for step in (0, 9, 20, 50, 85)]
    assert values == pytest.approx([0.01, 0.1, 0.1, 0.01, 0.001])
    assert float(rate) == pytest.approx(0.01)
    cosine = TrainSpec.model_validate({"epochs": 10, "optimizer": {"learning_rate": 0.1},
                                       "schedule": {"type": "cosine", "alpha": 0.1}})
    schedule = optim.make_optimizer(cosine, 10)._learning_rate
    assert [float(schedule(s)) for s in (0, 50, 100)] == pytest.approx([0.1, 0.055, 0.01])


def test_sgd_nesterov_and_weight_decay_reach_keras():
    spec = TrainSpec.model_validate({"optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.8,
                                                   "nesterov": True, "weight_decay": 5e-4}})
    optimizer = optim.make_optimizer(spec, 10)
    assert type(optimizer).__name__ == "SGD" and optimizer.nesterov and optimizer.momentum == 0.8
    assert optimizer.weight_decay == pytest.approx(5e-4)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_text("the good model")

    def half_write(temporary: str) -> None:
        Path(temporary).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(rundir.TrainError, match="cannot write .*model.keras: No space left on device"):
        rundir.write_file(target, half_write)
    assert target.read_text() == "the good model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def _train(tmp_path, name, **train):
    options = api.TrainOptions(output=str(tmp_path / name), live=False)
    import blockbuilder

    architecture = blockbuilder.load("lenet5", [f"train.{k}={v}" for k, v in train.items()])
    return api.run_plan(api.plan(architecture, options), options).metrics


def test_same_seed_same_metrics(tmp_path):
    first = _train(tmp_path, "a", epochs=1, batch_size=64, seed=3)
    second = _train(tmp_path, "b", epochs=1, batch_size=64, seed=3)
    assert first["test"] == second["test"]
    other = _train(tmp_path, "c", epochs=1, batch_size=64, seed=4)
    assert other["test"] != first["test"]


def test_mixed_bfloat16_keeps_accuracy_on_digits(tmp_path):
    metrics = _train(tmp_path, "bf16", epochs=6, batch_size=32, precision="mixed_bfloat16")
    assert metrics["precision"] == "mixed_bfloat16"
    assert metrics["test"]["accuracy"] >= 0.93
    import keras

    keras.mixed_precision.set_global_policy("float32")
