"""The command line as a user meets it: output, exit codes, speed-critical imports."""

from __future__ import annotations

import json

import pytest

import blockbuilder
from conftest import REPO, run_process


def test_validate_ok(cli):
    code, out, err = cli("validate", "lenet5")
    assert (code, err) == (0, "")
    assert out == "lenet5: ok (input [32, 32, 1] -> output [10], depth 5, 61,706 params, 416.52 K MACs)\n"


def test_bad_file_exits_1_with_one_line_and_no_traceback(write):
    path = write("input: [32, 32, 3]\nnetwork:\n  - conv: {filters: -3}\n")
    result = run_process("validate", str(path))
    assert result.returncode == 1
    assert result.stderr == f"{path}:3:21: network[0].conv.filters: expected a positive integer, got -3\n"
    assert result.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["validate", "resnt50"], "no file or zoo architecture called 'resnt50' (did you mean 'resnet50'?)"),
    (["validate", "lenet5", "--set", "classes"], "--set expects PATH=VALUE"),
    (["summary", "lenet5", "--depth", "0"], "expected a positive integer"),
    (["frobnicate"], "unknown command 'frobnicate'"),
])
def test_bad_usage_exits_2(cli, args, message):
    code, out, err = cli(*args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_help_and_validate_do_not_import_tensorflow():
    script = ("import sys; from blockbuilder.cli.main import main\n"
              "for argv in (['validate', 'resnet50'], ['resolve', 'lenet5']):\n"
              "    assert main(argv) == 0\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print('heavy:', sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    result = run_process("-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("heavy: []")


def test_every_command_has_help(cli):
    for command in ("validate", "resolve", "summary", "build", "zoo", "schema", "train", "export", "predict"):
        code, out, _ = cli(command, "--help")
        assert code == 0 and out.startswith("usage: blockbuilder " + command), command


def test_summary_json_lenet5(cli):
    code, out, _ = cli("summary", "lenet5", "--json")
    data = json.loads(out)
    assert code == 0
    assert set(data) == {"name", "input_shape", "output_shape", "params", "macs", "depth", "latency", "blocks"}
    assert data["params"] == {"total": 61706, "trainable": 61706, "non_trainable": 0}
    assert data["depth"] == 5 and data["output_shape"] == [10] and data["input_shape"] == [32, 32, 1]
    assert data["macs"] == 28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    first = data["blocks"][0]
    assert first == {"name": "conv1", "type": "conv", "output_shape": [28, 28, 6], "params": 156,
                     "macs": 117600, "depth": 1, "receptive_field": 5, "trainable_params": 156, "frozen_params": 0,
                     "children": []}
    assert [b["receptive_field"] for b in data["blocks"]] == [5, 6, 14, 16, None, None, None, None]
    assert sum(b["params"] for b in data["blocks"]) == 61706


def test_summary_tree_folds_below_depth(cli):
    code, out, _ = cli("summary", "resnet50", "--depth", "1")
    assert code == 0
    assert "stage3 (+" in out and "bottleneck2" not in out
    assert "│ 483 │" in out  # ResNet-50's receptive field after the last stage
    assert "25,636,712" in out and "25,583,592" in out and "53,120" in out
    code, out, _ = cli("summary", "resnet50", "--depth", "3")
    assert "bottleneck2" in out and "conv3" in out


def test_build_writes_a_model_that_loads_in_a_fresh_process(write, tmp_path):
    path = write("""
        input: [16, 16, 1]
        classes: 3
        network:
          - conv: {filters: 4, activation: scaled_tanh}
          - residual:
              body: [{conv: {filters: 6, stride: 2}}]
              shortcut: zero_pad
          - global_avg_pool
          - dense: {units: $classes, activation: softmax}
        """)
    output = tmp_path / "out" / "model.keras"
    result = run_process("build", str(path), "-o", str(output))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {output} (")
    check = (
        "import numpy as np, keras, blockbuilder\n"
        f"model = blockbuilder.load_model({str(output)!r})\n"
        f"fresh = blockbuilder.build(blockbuilder.load({str(path)!r}))\n"
        "fresh.set_weights(model.get_weights())\n"
        "x = np.random.default_rng(0).random((2, 16, 16, 1), dtype='float32')\n"
        "print(float(np.abs(model.predict(x, verbose=0) - fresh.predict(x, verbose=0)).max()))\n"
        "print([l.name for l in model.layers if 'shortcut' in l.name])\n"
    )
    loaded = run_process("-c", check)
    assert loaded.returncode == 0, loaded.stderr
    difference, names = loaded.stdout.strip().splitlines()[-2:]
    assert float(difference) < 1e-6
    assert names == "['residual1.shortcut_pool', 'residual1.shortcut_pad']"
    assert not list(output.parent.glob(".*"))  # no temporary left behind


def test_build_refuses_a_non_keras_name(cli):
    code, _, err = cli("build", "lenet5", "-o", "model.h5")
    assert code == 2 and "must end in .keras" in err


def test_zoo_lists_every_architecture(cli):
    code, out, _ = cli("zoo", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0
    assert set(rows) == {p.stem for p in (REPO / "architectures").glob("*.yaml")}
    assert rows["resnet50"]["params"] == 25_636_712 and rows["resnet50"]["depth"] == 50
    code, out, _ = cli("zoo")
    assert "resnet50" in out and "25,636,712" in out


def test_schema_is_the_language_s_and_rejects_unknown_keys(cli):
    """``blockbuilder schema`` prints the schema every zoo and example file is validated against
    (tests/language/test_sections.py), and it refuses a misspelt key."""
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from blockbuilder.language.schema import json_schema

    code, out, _ = cli("schema")
    schema = json.loads(out)
    assert code == 0 and schema == json.loads(json.dumps(json_schema()))
    jsonschema.validate(yaml.safe_load((REPO / "architectures" / "resnet50.yaml").read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"input": [1, 1, 1], "network": [], "netwrok": []}, schema)


def test_public_api_is_small_and_explicit():
    assert sorted(blockbuilder.__all__) == [
        "Architecture", "Block", "BlockSpec", "BlockbuilderError", "CommandError", "DataError", "ImageError",
        "Limits", "Node", "Run", "Shape", "Site", "SpecError", "UsageError", "__version__", "build", "load",
        "load_model", "loads", "register_block", "summarize", "train"]
    for name in blockbuilder.__all__:
        assert hasattr(blockbuilder, name)


def test_build_to_an_unwritable_place_is_one_line_and_leaves_nothing(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out, err = cli("build", "lenet5", "-o", blocker / "sub" / "lenet5.keras")
    assert (code, out) == (1, "")
    assert err == f"blockbuilder build: error: cannot write {blocker / 'sub' / 'lenet5.keras'}: Not a directory\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
