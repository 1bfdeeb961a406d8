"""``blockbuilder compare``: a table and an accuracy-vs-MACs bubble chart from the zoo and from runs."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _fake_run(tmp_path, accuracy=0.93):
    run = tmp_path / "runs" / "mylenet"
    run.mkdir(parents=True)
    from blockbuilder.language.resolve import zoo_dir

    run.joinpath("resolved.yaml").write_text((zoo_dir() / "lenet5.yaml").read_text())
    run.joinpath("metrics.json").write_text(json.dumps({"test": {"accuracy": accuracy}, "dataset": "digits"}))
    return run


def test_table_and_chart_from_zoo_and_a_run(cli, tmp_path):
    from PIL import Image

    run = _fake_run(tmp_path)
    chart = tmp_path / "chart.png"
    code, out, err = cli("compare", "vgg16", "resnet50", "densenet121", "googlenet", run, "-o", chart)
    assert (code, err) == (0, "")
    for text in ("vgg16", "138,357,544", "15.47 G", "resnet50", "25,636,712", "76.00 %", "mylenet",
                 "61,706", "93.00 %", "digits"):
        assert text in out, text
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (990, 616)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100
    # vgg16's bubble (138 M params) is the biggest patch of its colour (matplotlib blue, 50 % alpha)
    blue = (abs(pixels - [143, 187, 217]).sum(axis=-1) < 30).sum()
    assert blue > 2000


def test_json_rows(cli):
    code, out, _ = cli("compare", "resnet18", "vgg16", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["resnet18", "vgg16"]
    import blockbuilder
    from blockbuilder.report.summary import estimate

    assert (rows[0]["params"], rows[0]["macs"]) == estimate(blockbuilder.load("resnet18"))
    assert rows[1]["depth"] == 16 and rows[1]["accuracy"] == 71.0 and rows[1]["origin"] == "zoo"


def test_svg_chart_lists_models_without_accuracy(cli, tmp_path):
    code, _, _ = cli("compare", "resnet50", "densenet121", "-o", tmp_path / "c.svg")
    svg = (tmp_path / "c.svg").read_text()
    assert code == 0 and "<svg" in svg


def test_errors(cli, tmp_path):
    code, _, err = cli("compare", "vgg16", "nosuchnet")
    assert code == 2 and "no file or zoo architecture called 'nosuchnet'" in err
    code, _, err = cli("compare", "vgg16", "-o", tmp_path / "c.jpg")
    assert code == 2 and "use a name ending in .png or .svg" in err
    code, _, err = cli("compare", "lenet5", "-o", tmp_path / "c.png")
    assert code == 2 and "none of these has an accuracy to plot" in err
    (tmp_path / "empty").mkdir()
    code, _, err = cli("compare", tmp_path / "empty")
    assert code == 2 and "is not a run directory" in err
    run = _fake_run(tmp_path)
    run.joinpath("metrics.json").write_text("{not json")
    code, _, err = cli("compare", run)
    assert code == 1 and "metrics.json" in err and "Traceback" not in err


def test_an_unwritable_chart_is_one_line_and_leaves_nothing(tmp_path):
    from blockbuilder.errors import CommandError
    from blockbuilder.report.compare import chart, compare_rows

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(CommandError) as error:
        chart(compare_rows(["vgg16"]), blocker / "c.png")
    assert str(error.value).startswith(f"cannot write {blocker / 'c.png'}: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_zoo_of_a_data_set_is_one_flag_and_accuracy_comes_with_its_source(cli, tmp_path):
    import yaml

    from blockbuilder.language.resolve import zoo_dir

    imagenet = sorted(path.stem for path in zoo_dir().glob("*.yaml")
                      if (yaml.safe_load(path.read_text()).get("meta") or {}).get("dataset") == "ImageNet")
    code, out, err = cli("compare", "--zoo", "imagenet", "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert sorted(row["name"] for row in rows) == imagenet and len(imagenet) >= 25
    assert all(row["source"] for row in rows) and all(row["latency_ms"] is None for row in rows)
    # every ImageNet network reports an accuracy, so the chart leaves none out
    assert [row["name"] for row in rows if row["accuracy"] is None] == []
    code, out, err = cli("compare", "lenet5", "--zoo", "imagenet", "-o", tmp_path / "zoo.svg")
    assert code == 0 and "no accuracy to plot: lenet5" in (tmp_path / "zoo.svg").read_text()


def test_latency_on_the_x_axis_predicted_from_the_table_or_measured(cli, tmp_path, monkeypatch):
    from blockbuilder.language.architecture import load
    from blockbuilder.report import latency

    code, out, err = cli("compare", "resnet18", "--x", "predicted-ms")
    assert (code, out) == (2, "")
    assert err == ("blockbuilder compare: error: no latency table for this machine yet: make one with "
                   "'blockbuilder profile resnet20_cifar --calibrate' (or use --x measured-ms)\n")
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path))
    key = latency.table_key("tensorflow", "float32", "inference", 8)  # every block 1 ms, a call 2 ms
    latency.write_table(latency.LatencyTable(key=key, batch_size=8, overhead_ms=2.0, coefficients={},
                                             general=[1.0, 0.0, 0.0, 0.0], made="2026-12-04T00:00:00"))
    code, out, err = cli("compare", "resnet18", "vgg16", "--x", "predicted-ms", "--json")
    assert (code, err) == (0, "")
    for row in json.loads(out):
        root = load(row["name"]).root
        assert row["latency_ms"] == 2.0 + sum(latency.own_cost(n) for n in root.walk() if n is not root)
    chart = tmp_path / "time.svg"
    code, out, err = cli("compare", "resnet18", "vgg16", "--x", "predicted-ms", "-o", chart)
    assert code == 0 and "predicted ms (batch 8)" in out
    assert "predicted latency on this machine, ms per batch of 8" in chart.read_text()
    code, out, err = cli("compare", "lenet5", "--x", "measured-ms", "--batch-size", "2", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["latency_ms"] > 0


def test_compare_needs_something_to_compare(cli):
    code, out, err = cli("compare")
    assert (code, out) == (2, "")
    assert err == "blockbuilder compare: error: nothing to compare: name architectures or run directories, or --zoo DATASET\n"
    code, out, err = cli("compare", "--zoo", "cifar-100")
    assert code == 2 and err.startswith("blockbuilder compare: error: no zoo network reports a data set called "
                                        "'cifar-100' (the zoo's: CIFAR-10, ") and err.count("\n") == 1
