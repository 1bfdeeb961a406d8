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
