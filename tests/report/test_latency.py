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


# ------------------------------------------------------------------ every registered type, nearest shapes

PROBE_NET = ("name: probed\ninput: [16, 16, 16]\nclasses: 2\nnetwork:\n  - probe\n  - global_avg_pool: {}\n"
             "  - dense: 2\n")


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """A block type registered by this test only (``probe``: halves its input), and one whose required
    argument the calibration cannot fill (``probe_odd``)."""
    from blockbuilder.blocks import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class ProbeSpec(registry.BlockSpec):
        pass

    class OddSpec(registry.BlockSpec):
        shade: str

    class Probe(registry.Block[ProbeSpec]):
        Spec = ProbeSpec

        def build(self, node, x, ctx):  # type: ignore[no-untyped-def]
            import keras

            return keras.layers.Rescaling(0.5, name=node.path)(x)

    class Odd(Probe):
        Spec = OddSpec  # type: ignore[assignment]

    registry.register_block("probe")(Probe)
    registry.register_block("probe_odd")(Odd)


def test_a_calibrated_table_predicts_the_measured_whole_and_is_kept_per_device_and_versions(
        probe: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path))
    monkeypatch.setattr(latency, "SHAPES", ((16, 16), (8, 32)))
    monkeypatch.setattr(latency, "KEEPING", latency.KEEPING[:3])
    monkeypatch.setattr(latency, "CHANGING", ())
    table = latency.calibrate("tensorflow", "float32", "inference", 8, repeats=3, warmup=1)
    assert set(table.coefficients) >= {"conv", "max_pool", "global_avg_pool", "dense"}
    assert all(value >= 0 for values in table.coefficients.values() for value in values)
    # every registered type is timed, one registered by a test too, and predicted from its own timings
    assert {"probe", "channel_slice", "channel_shuffle", "branch", "merge", "crop", "conv"} <= set(table.samples)
    assert "probe_odd" not in table.samples
    node = loads(PROBE_NET).root.group("body")[0]
    [row] = [row for row in table.samples["probe"] if row[:-2] == latency.descriptor(node)]
    assert row[-2] == latency.work(node) == 2 * 16 * 16 * 16
    # at its own shape, from its own time (the other shape is 4 doublings away)
    assert table.block_ms(node) == pytest.approx(max(row[-1], latency.FLOOR_MS), rel=0.1)
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
    assert result["ms"] > 0  # how close the two come is a timing: bench/bench_latency.py measures it over the zoo
    assert latency.read_tables()[key].samples == table.samples  # the calibrated blocks are kept in the cache


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


def test_every_registered_type_has_an_instance_to_calibrate_unless_it_asks_what_none_can_fill(probe: None) -> None:
    from blockbuilder.blocks import block_names
    from blockbuilder.report import latency_grid

    assert latency_grid.instance("probe", 16) == "probe: {}" and "probe: {}" in latency.entries(16)
    assert latency_grid.instance("probe_odd", 16) is None  # no filling for 'shade': left out, not an error
    assert latency_grid.instance("conv", 16) == "conv: {filters: 16}"
    assert latency_grid.instance("branch", 16) == "branch: {paths: [[identity], [identity]]}"
    assert [name for name in block_names() if latency_grid.instance(name, 16) is None] == ["probe_odd"]
    for entry in latency.entries(16):  # each one a valid block at the grid's shapes
        loads(f"name: e\ninput: [16, 16, 16]\nclasses: 2\nnetwork:\n  - {entry}\n")


def _table(samples: dict[str, list[list[float]]]) -> latency.LatencyTable:
    return latency.LatencyTable(key="k", batch_size=8, overhead_ms=1.0, coefficients={"conv": [5.0, 0, 0, 0]},
                                general=[7.0, 0.0, 0.0, 0.0], made="2026-12-04T00:00:00", samples=samples)


def test_a_block_is_predicted_at_the_time_per_unit_of_work_of_the_nearest_calibrated_blocks() -> None:
    wide = loads("name: w\ninput: [8, 8, 64]\nclasses: 2\nnetwork:\n  - conv: {filters: 64, kernel: 3, "
                 "norm: batchnorm}\n  - dense: 2\n").root.group("body")[0]
    where, amount = latency.descriptor(wide), latency.work(wide)
    assert where[-2:] == [1.0, 0.0]  # a norm, no activation
    near = [*where[:-1], 1.0]  # the same conv, with a ReLU
    far = [w + 5 for w in where]
    # the two nearest at 1 ms per million units: the far one (64x slower) is not their median
    table = _table({"conv": [[*near, 1e6, 1.0], [*where, 2e6, 2.0], [*far, 1e6, 64.0]]})
    assert table.block_ms(wide) == pytest.approx(amount / 1e6)
    # a type not calibrated: its fit; one without a fit: the fit over all
    assert _table({"dense": [[*where, 1e6, 3.0]]}).block_ms(wide) == 5.0
    dense = loads("name: d\ninput: [4, 4, 16]\nclasses: 2\nnetwork:\n  - flatten\n  - dense: 2\n").root.group("body")[1]
    assert _table({"conv": [[*where, 1e6, 3.0]]}).block_ms(dense) == 7.0
