"""Latency predicted from the file: a calibration table per machine, backend, versions, precision, mode, batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blockbuilder.language.architecture import load, loads
from blockbuilder.report import latency

NET = """
name: small
input: [16, 16, 16]
classes: 4
network:
  - conv: {filters: 16, kernel: 3, norm: batchnorm, activation: relu}
  - repeat: {times: 3, body: [{conv: {filters: 16, kernel: 3}}]}
  - max_pool: 2
  - global_avg_pool: {}
  - dense: {units: 4}
"""


def test_a_calibrated_table_predicts_the_measured_whole_and_is_kept_per_device_and_versions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path))
    monkeypatch.setattr(latency, "SHAPES", ((16, 16), (8, 32)))
    monkeypatch.setattr(latency, "KEEPING", latency.KEEPING[:3])
    table = latency.calibrate("tensorflow", "float32", "inference", 8, repeats=3, warmup=1)
    assert set(table.coefficients) >= {"conv", "max_pool", "global_avg_pool", "dense"}
    assert all(value >= 0 for values in table.coefficients.values() for value in values)
    path = latency.write_table(table)
    assert path == tmp_path / "latency.json"
    key = latency.table_key("tensorflow", "float32", "inference", 8)
    assert list(json.loads(path.read_text())) == [key] and "keras " in key and key.endswith("|batch 8")
    assert latency.table_key("jax", "float32", "inference", 8) != key  # another backend: another table
    assert latency.tables_here("jax") == [] and len(latency.tables_here("tensorflow")) == 1
    # the profile command reads it and compares: predicted against measured on one machine, one run
    arch = tmp_path / "small.yaml"
    arch.write_text(NET)
    code, out, err = cli("profile", arch, "--json", "--precision", "float32", "--batch-size", "8", "--repeats", "5")
    assert code == 0, err
    result = json.loads(out)
    assert result["predicted_ms"] == pytest.approx(latency.read_tables()[key].predict(loads(NET).root), rel=1e-3)
    assert result["ms"] > 0  # how close the two come is a timing: bench/bench_profile.py measures it over the zoo


def test_an_unreadable_cache_reads_as_no_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path))
    (tmp_path / "latency.json").write_text('{"x": {"batch_size": "a"')
    assert latency.read_tables() == {} and latency.predictions(loads(NET).root) == []


def _constant_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A table made here in which every block costs 1 ms and a call 2 ms: NET's 7 leaves predict 9 ms."""
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path))
    key = latency.table_key("tensorflow", "float32", "inference", 8)
    latency.write_table(latency.LatencyTable(key=key, batch_size=8, overhead_ms=2.0, coefficients={},
                                             general=[1.0, 0.0, 0.0, 0.0], made="2026-12-04T00:00:00"))


def test_validate_summary_and_zoo_show_the_predicted_latency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             cli) -> None:
    arch = tmp_path / "small.yaml"
    arch.write_text(NET)
    code, out, err = cli("validate", arch)
    assert (code, err) == (0, "") and "predicted" not in out  # no table yet: the line is as before
    _constant_table(monkeypatch, tmp_path)
    code, out, err = cli("validate", arch)
    assert code == 0, err
    assert out.endswith(", predicted 9.0 ms (inference, float32, batch 8))\n")
    code, out, err = cli("validate", arch, "--json")
    assert code == 0, err
    assert json.loads(out)["latency"] == [{"for": "inference, float32, batch 8", "ms": 9.0}]
    code, out, err = cli("summary", arch, "--json")
    assert code == 0, err
    assert json.loads(out)["latency"] == [{"for": "inference, float32, batch 8", "ms": 9.0}]
    code, out, err = cli("summary", arch)
    assert code == 0, err
    assert [line.split() for line in out.splitlines() if "Predicted latency" in line] == [
        ["Predicted", "latency", "(inference,", "float32,", "batch", "8)", "9.0", "ms"]]
    code, out, err = cli("zoo", "--json")
    assert code == 0, err
    rows = {row["name"]: row for row in json.loads(out)}
    lenet = load("lenet5").root
    leaves = sum(latency.own_cost(node) for node in lenet.walk() if node is not lenet)
    assert rows["lenet5"]["latency"] == [{"for": "inference, float32, batch 8", "ms": 2.0 + leaves}]
    code, out, err = cli("zoo")
    assert code == 0, err
    assert "predicted ms" in out and "inference, float32, batch 8" in out
