"""Pieces of training: the train section, precision choice, schedules, atomic writes, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

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


@pytest.mark.parametrize(
    "flags, device, expected",
    [
        ("fpu avx512f avx512_bf16 amx_bf16", "cpu", "mixed_bfloat16"),
        ("fpu avx512f avx512_vnni", "cpu", "float32"),
        ("fpu", "tpu", "mixed_bfloat16"),
    ],
)
def test_auto_precision_follows_the_hardware(monkeypatch, tmp_path, flags, device, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor : 0\nflags\t\t: {flags}\n")
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: real_open(
        cpuinfo if path == "/proc/cpuinfo" else path, *a, **k))
    assert devices.resolve_precision("auto", device) == expected
    assert devices.resolve_precision("float32", device) == "float32"


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
