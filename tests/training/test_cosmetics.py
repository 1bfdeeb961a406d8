"""What a user sees, made right: short numbers and a reading order in ``history.csv``, "1 epoch" not
"1 epochs", the unused layers of a weights file named, bubble charts scaled to what they plot, an unclipped
``misclassified.png`` title, and conv boxes that say what the defaults added."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

# 0.4000000059604645, a float32 printed as a float64: more significant digits than a float32's 9
# (0.020833334, 3/144 in float32, is short)
LONG_FLOAT = re.compile(r"\d\.0*[1-9]\d{9,}")


@pytest.fixture
def saved_figures(monkeypatch) -> list[Any]:
    """Every matplotlib figure saved while the test runs, drawn as it was written."""
    from matplotlib.figure import Figure

    figures: list[Any] = []
    savefig = Figure.savefig

    def record(self: Any, *args: Any, **kwargs: Any) -> Any:
        figures.append(self)
        return savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", record)
    return figures


# -- 1. history.csv ---------------------------------------------------------------------------------


def test_history_csv_has_short_numbers_in_reading_order(tmp_path):
    from blockbuilder.training.rundir import write_history_csv

    logged = {"accuracy": 0.5, "loss": 0.4, "val_accuracy": 0.75, "val_loss": 0.3, "learning_rate": 0.001}
    row = {"epoch": 1, **{key: float(np.float32(value)) for key, value in logged.items()},
           "seconds": 1.234, "images_per_second": 100.5}
    write_history_csv(tmp_path / "history.csv", [row])
    assert (tmp_path / "history.csv").read_text() == (
        "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second\n"
        "1,0.4,0.5,0.3,0.75,0.001,1.234,100.5\n")


def test_history_row_keeps_float64_values_and_the_order_of_float32_ones():
    from blockbuilder.training.rundir import history_row

    row = history_row({"val_loss": float(np.float32(0.3)), "seconds": 1.0, "loss": float(np.float32(0.4)),
                       "epoch": 2, "top5_accuracy": 1.0, "phase": 1})
    assert list(row.items()) == [("epoch", 2), ("loss", 0.4), ("top5_accuracy", 1.0), ("val_loss", 0.3),
                                 ("phase", 1), ("seconds", 1.0)]
    assert history_row({"epoch": 1, "seconds": 0.1 + 0.2})["seconds"] == 0.1 + 0.2  # not a float32: kept
    values = np.float32(np.linspace(0.1, 0.2, 101))
    shortened = [history_row({"loss": float(v)})["loss"] for v in values]
    assert shortened == sorted(shortened) and len(set(shortened)) == len(values)
    assert all(np.float32(s) == v for s, v in zip(shortened, values))  # the same float32 value


def test_a_trained_run_writes_the_history_it_returns(tmp_path, write):
    import blockbuilder

    arch = write("""
        name: tiny
        input: [8, 8, 1]
        classes: 10
        network:
          - conv: {filters: 2, kernel: 3}
          - global_avg_pool
          - dense: {units: 10, activation: softmax}
        train: {epochs: 1, batch_size: 256}
        """)
    run = blockbuilder.train(arch, output=tmp_path / "run")
    text = (run.run_dir / "history.csv").read_text()
    header = text.splitlines()[0].split(",")
    assert header[:5] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"], header
    assert not LONG_FLOAT.search(text), text
    (row,) = csv.DictReader(io.StringIO(text))
    assert {key: float(value) for key, value in row.items()} == run.history[0]
    assert list(run.history[0]) == header


# -- 2. one epoch, not one epochs --------------------------------------------------------------------


def test_plural():
    from blockbuilder.text import plural

    assert plural(1, "epoch") == "1 epoch" and plural(20, "epoch") == "20 epochs" and plural(2, "batch") == "2 batches"
    assert [plural(n, "image") for n in (0, 2, 12345)] == ["0 images", "2 images", "12,345 images"]
    assert plural(1, "class") == "1 class" and plural(3, "class") == "3 classes"
    assert plural(1, "class name") == "1 class name" and plural(2, "class name") == "2 class names"


def test_a_one_epoch_run_says_1_epoch_and_1_image(capsys):
    from blockbuilder.training.progress import Reporter

    reporter = Reporter(live=False)
    spec = SimpleNamespace(dataset="digits", epochs=1, batch_size=32, optimizer=SimpleNamespace(name="adam"))
    reporter.start("tiny", spec, "cpu", "float32", {"train": 10, "validation": 1, "test": 1}, None)
    reporter.table({"test": {"accuracy": 1.0}, "examples": {"test": 1}, "epochs_completed": 1,
                    "train_seconds": 1.0, "images_per_second": 10.0}, Path("runs/tiny"))
    out = capsys.readouterr().out
    assert "1 test image): 1 epoch, batch 32" in out, out
    assert "test metrics (1 image)" in out, out


def test_a_search_of_one_trial_says_1_trial():
    from rich.console import Console

    from blockbuilder.search.console import table
    from blockbuilder.search.report import TrialRow

    row = TrialRow(0, "complete", 1000, 2000, 0.5, {"train.batch_size": 32}, seconds=1.0)
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(table([row], trials=1))
    assert "1 trial (target 1 finished)" in console.export_text()


def test_a_search_space_of_one_trial_says_1_trial(write):
    import blockbuilder
    from blockbuilder.search import describe_space

    arch = write("""
        name: tiny
        input: [8, 8, 1]
        classes: 10
        network:
          - conv: {filters: 4, kernel: 3}
          - flatten
          - dense: {units: 10, activation: softmax}
        search:
          space:
            network[0].conv.filters: {choice: [4]}
          epochs: 1
          trials: 1
        """)
    lines = describe_space(blockbuilder.load(arch)).splitlines()
    assert lines[0] == "search: 1 value searched, 1 trial possible (1 architecture)", lines
    assert lines[1].split()[-2:] == ["1", "value"]
    assert lines[2].startswith("family (all 1 architecture): "), lines
    assert lines[3].endswith("; 1 trial of 1 epoch each"), lines


def test_a_search_of_one_trial_of_one_epoch_starts_so(capsys):
    from blockbuilder.search.console import Progress

    study = SimpleNamespace(get_trials=lambda deepcopy: [])
    search = SimpleNamespace(name="s", options=SimpleNamespace(trials=1), epochs=1,
                             space=SimpleNamespace(sampler="tpe"), study=study)
    Progress({"storage": "s.db"}, live=False).started(search)
    assert capsys.readouterr().out == "search s: 1 trial of 1 epoch, tpe sampler, storage s.db\n"


def test_one_loaded_layer_is_one_layer():
    from blockbuilder.transfer.weights import LayerResult, LoadReport

    report = LoadReport("runs/a", Path("runs/a/model.keras"), [LayerResult("stem", True)])
    assert report.headline() == "weights runs/a: 1 of 1 layer loaded from runs/a/model.keras"


def test_a_phase_of_one_epoch_is_one_epoch():
    from blockbuilder.training.phases import Phase

    def span(start: int, epochs: int) -> str:
        return Phase(1, "head", start, epochs, None, None).span  # type: ignore[arg-type]

    assert (span(2, 1), span(0, 3)) == ("epoch 3", "epochs 1-3")


# -- 3. the unused layers of a weights file are named ------------------------------------------------


def test_the_unused_layers_of_the_file_are_named():
    from blockbuilder.transfer.weights import LayerResult, LoadReport

    def headline(unused: list[str]) -> str:
        return LoadReport("w.keras", Path("w.keras"), [LayerResult("stem", True)], unused).headline()

    assert headline(["head"]).endswith("; 1 layer of the file unused: head")
    assert headline(["head", "aux"]).endswith("; 2 layers of the file unused: head, aux")
    seven = [f"dense_{i}" for i in range(7)]
    assert headline(seven).endswith("; 7 layers of the file unused: dense_0, dense_1, dense_2, dense_3, "
                                    "dense_4 and 2 more")


# -- 4. bubbles scaled to what is plotted --------------------------------------------------------------


def _bubbles(figure: Any) -> list[float]:
    """The areas of the plotted bubbles (not the dots at their centres, not the legend's)."""
    axes = figure.axes[0]
    return [float(c.get_sizes()[0]) for c in axes.collections
            if len(c.get_offsets()) == 1 and c.get_sizes()[0] not in (6, 60)]


def _legend(figure: Any) -> tuple[list[str], list[float]]:
    legend = figure.axes[0].get_legend()
    return ([text.get_text() for text in legend.get_texts()],
            [float(handle.get_sizes()[0]) for handle in legend.legend_handles])


def test_pareto_bubbles_of_small_trials_differ_and_the_legend_shows_three_sizes(tmp_path, saved_figures):
    from blockbuilder.search.report import TrialRow, write_pareto

    rows = [TrialRow(n, "complete", params, 1000 * (n + 1), 0.5 + 0.05 * n, {})
            for n, params in enumerate((1_200, 3_400, 8_000, 15_000))]
    write_pareto(tmp_path / "pareto.png", rows, title="small")
    (figure,) = saved_figures
    areas = _bubbles(figure)
    assert len(areas) == 4 and areas == sorted(areas) and areas[-1] > 10 * areas[0], areas
    labels, sizes = _legend(figure)
    assert len(labels) == 3 and len(set(labels)) == 3, labels
    counts = [float(label.split()[0]) * (1000 if "K" in label else 1) for label in labels]
    assert all(1_200 <= count <= 15_000 for count in counts), labels
    assert sizes == sorted(sizes) and len(set(sizes)) == 3, sizes


def test_a_zoo_comparison_keeps_its_bubbles_apart(tmp_path, saved_figures):
    from blockbuilder.report import compare

    rows = compare.compare_rows(["resnet20_cifar", "mobilenet_v2", "resnet50", "vgg16"])
    compare.chart(rows, tmp_path / "chart.png")
    (figure,) = saved_figures
    resnet20, mobilenet, resnet50, vgg = _bubbles(figure)
    assert resnet20 < 50 < mobilenet < resnet50 < vgg / 4 < vgg < 2000
    labels, sizes = _legend(figure)
    assert len(set(labels)) == 3 and len(set(sizes)) == 3, labels


# -- 5. misclassified.png -----------------------------------------------------------------------------


def test_the_title_of_one_misclassified_image_is_not_clipped(tmp_path, saved_figures):
    from blockbuilder.training.evaluation import Predictions, write_outputs

    results = Predictions(np.array([0]), np.array([[0.1, 0.9]]), [np.zeros((8, 8, 1))], [(0, 1, 0.9)])
    write_outputs(tmp_path, results, ["cat", "dog"])
    figure = next(f for f in saved_figures if f._suptitle is not None)
    figure.canvas.draw()
    box, page = figure._suptitle.get_window_extent(), figure.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, (box, page)


# -- 6. a conv box says what the defaults added -------------------------------------------------------


DEFAULTS = """
name: tiny
input: [16, 16, 3]
classes: 3
defaults:
  conv: {norm: batchnorm, activation: relu}
network:
  - conv: {filters: 16, kernel: 3}
  - conv: {filters: 8, kernel: 1, stride: 2, activation: none}
  - conv: {filters: 8, kernel: 3, order: pre, activation: leaky_relu}
  - depthwise_conv: {kernel: 3, norm: batchnorm, activation: relu6}
  - depthwise_conv: {kernel: 3}
  - global_avg_pool
  - dense: {units: 3, activation: softmax}
"""


def _descriptions(path: Path) -> list[str]:
    import blockbuilder
    from blockbuilder.report.diagram_marks import describe

    return [describe(node) for node in blockbuilder.load(path).root.all_children()]


def test_a_conv_box_names_its_norm_and_activation(write):
    assert _descriptions(write(DEFAULTS)) == [
        "conv 3×3, 16, BN, ReLU", "conv 1×1 /2, 8, BN", "BN, LeakyReLU, conv 3×3, 8",
        "depthwise 3×3, BN, ReLU6", "depthwise 3×3", "global avg pool", "dense 3, softmax"]


def test_without_defaults_a_conv_box_is_as_short_as_before(cli, write, tmp_path):
    plain = DEFAULTS.replace("defaults:\n  conv: {norm: batchnorm, activation: relu}\n", "")
    assert _descriptions(write(plain))[:2] == ["conv 3×3, 16", "conv 1×1 /2, 8"]
    code, _, err = cli("draw", write(DEFAULTS), "-o", tmp_path / "tiny.svg")
    assert (code, err) == (0, "")
    assert "conv 3×3, 16, BN, ReLU" in (tmp_path / "tiny.svg").read_text()


def test_mobilenet_and_convnext_boxes_name_only_what_differs_from_their_design(write):
    arch = write("""
        name: tiny
        input: [16, 16, 16]
        classes: 3
        network:
          - inverted_residual: {filters: 16}
          - inverted_residual: {filters: 16, norm: none, activation: swish}
          - convnext_block: {}
          - convnext_block: {activation: relu}
          - global_avg_pool
          - dense: {units: 3}
        """)
    assert _descriptions(arch) == [
        "inverted residual ×6, 3×3, 16 +", "inverted residual ×6, 3×3, 16, no BN, swish +", "convnext 7×7, 16×4",
        "convnext 7×7, 16×4, ReLU", "global avg pool", "dense 3"]


def test_the_summary_names_what_a_leaf_block_builds(cli, write) -> None:
    path = write("""
        name: boxes
        input: [8, 8, 3]
        defaults: {conv: {norm: batchnorm, activation: relu}}
        network:
          - conv: {filters: 16, kernel: 3}
          - conv: {filters: 4, kernel: 1, norm: none, activation: none}
          - global_avg_pool
        """)

    code, out, _ = cli("summary", path)

    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("│ conv")]
    assert [row.split("│")[2].strip() for row in rows] == ["conv 3×3, 16, BN, ReLU", "conv 1×1, 4"]
