"""Transfer learning declared in YAML (issue 12): weights, freezing, a new head, phases, features.

One LeNet-5 is pretrained on the digits 0-4 (module fixture, about 5 s); the tests fine-tune it on the
digits 5-9 (50 images per class), load it into other architectures, and read features from it.
ImageNet files and keras.applications' legacy format are in ``test_transfer_imagenet.py``.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder.errors import CommandError, SpecError
from conftest import REPO

PER_CLASS = 50
HEAD = "[flatten, dense: {units: 84, activation: relu}, dense: {units: $classes, activation: softmax}]"


def upscaled(images: np.ndarray) -> np.ndarray:
    """8x8 digits (0-16) as 32x32 images in [0, 1], resized as the trainer's folders are (bilinear)."""
    from PIL import Image

    big = [np.asarray(Image.fromarray((im / 16 * 255).astype("uint8")).resize((32, 32), Image.Resampling.BILINEAR),
                      dtype="float32") / 255 for im in images]
    return np.stack(big)[..., None]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """``low.npz`` (every 0-4), ``high.npz`` (50 of each 5-9 to train, the other 646 to test), two PNGs."""
    from PIL import Image
    from sklearn.datasets import load_digits

    work = tmp_path_factory.mktemp("transfer")
    data = load_digits()
    x, y = upscaled(data.images), data.target
    low = y < 5
    high = np.flatnonzero(~low)
    np.random.default_rng(0).shuffle(high)
    train = np.concatenate([high[y[high] == label][:PER_CLASS] for label in range(5, 10)])
    test = np.setdiff1d(high, train)
    np.savez(work / "low.npz", x=x[low], y=y[low])
    np.savez(work / "high.npz", x=x[train], y=y[train] - 5, x_test=x[test], y_test=y[test] - 5)
    pngs = []
    for index in test[:2]:
        pngs.append(work / f"digit{index}.png")
        Image.fromarray((x[index, ..., 0] * 255).astype("uint8")).save(pngs[-1])
    return SimpleNamespace(work=work, x=x, y=y, train=train, test=test, pngs=pngs)


@pytest.fixture(scope="module")
def pretrained(digits) -> Path:
    """LeNet-5 trained on the digits 0-4 (10 epochs): a run directory, the weights source of the tests."""
    (digits.work / "digits04.yaml").write_text(
        "extends: lenet5\nname: digits04\nclasses: 5\n"
        "train: {dataset: npz:low.npz, epochs: 10, precision: float32, seed: 0}\n")
    run = blockbuilder.train(digits.work / "digits04.yaml", output=digits.work / "runs" / "digits04")
    assert run.metrics["test"]["accuracy"] > 0.95
    return run.run_dir


FINETUNE = f"""\
extends: lenet5
name: digits59
classes: 5
weights: runs/digits04          # relative to this file
freeze: backbone
head: {HEAD}
train:
  dataset: npz:high.npz
  batch_size: 16
  precision: float32
  deterministic: true
  phases:
    - {{epochs: 2}}
    - {{epochs: 2, freeze: none, optimizer: {{learning_rate: 1.0e-4}}}}
"""


@pytest.fixture(scope="module")
def finetuned(digits, pretrained) -> SimpleNamespace:
    """The fine-tuning run, uninterrupted: 2 epochs with the backbone frozen, 2 with nothing frozen."""
    path = digits.work / "digits59.yaml"
    path.write_text(FINETUNE)
    run = blockbuilder.train(path, output=digits.work / "runs" / "digits59")
    return SimpleNamespace(path=path, run=run)


def weights_of(model, name: str) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_layer(name).weights]


# -- the language ---------------------------------------------------------------------------------


def test_the_example_is_resnet50_from_imagenet_with_5_classes_and_dropout_in_five_lines():
    path = REPO / "examples" / "finetune_resnet50.yaml"
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) <= 6
    arch = blockbuilder.load(path)
    assert arch.output_shape == (5,) and arch.weights is not None and arch.weights.imagenet
    top = [child.name for child in arch.root.all_children()]
    assert top == ["zero_pad1", "conv1", "zero_pad2", "max_pool1", "stage1", "stage2", "stage3", "stage4", "head"]
    head = arch.root.all_children()[-1]
    assert [(c.name, c.output_shape) for c in head.all_children()] == [
        ("global_avg_pool1", (2048,)), ("dropout1", (2048,)), ("dense1", (5,))]
    assert head.all_children()[1].spec.rate == 0.2
    assert arch.freeze is not None and arch.freeze.blocks == {
        "zero_pad1", "conv1", "zero_pad2", "max_pool1", "stage1", "stage2", "stage3", "stage4"}


def test_head_after_a_named_block_cuts_the_rest(write):
    arch = blockbuilder.load(write("extends: resnet50\nclasses: 3\n"
                                   "head: {after: stage3, body: [global_avg_pool, dense: {units: $classes}]}\n"))
    assert [c.name for c in arch.root.all_children()][-2:] == ["stage3", "head"]
    assert arch.output_shape == (3,)


@pytest.mark.parametrize(("text", "expected"), [
    ("freeze: [conv1, stage9]", "arch.yaml:2:17: freeze[1]: no block matches 'stage9' (did you mean 'stage4'?) "
                                "(top-level blocks: zero_pad1, conv1, zero_pad2, max_pool1, stage1, stage2, stage3, "
                                "stage4, global_avg_pool1, dense1)"),
    ("freeze: {all_but: [stage4.bottleneck9]}", "arch.yaml:2:20: freeze.all_but[0]: no block matches "
                                                "'stage4.bottleneck9' (did you mean 'stage4.bottleneck3'?)"),
    ("freeze: {except: stage4}", "arch.yaml:2:10: freeze: freeze as a mapping is {all_but: [blocks]}, got key "
                                 "'except'"),
    ("freeze: 3", "arch.yaml:2:9: freeze: expected all, none, backbone, block paths or globs (a list), or "
                  "{all_but: [...]}, got 3"),
    ("weights: {source: imagenet, stric: true}", "arch.yaml:2:29: weights.stric: unknown key 'stric' "
                                                 "(did you mean 'strict'?)"),
    ("weights: {source: imagenet, strict: 1}", "arch.yaml:2:37: weights.strict: expected true or false, got 1"),
    ("weights: [a.h5]", "arch.yaml:2:10: weights: expected 'imagenet', a weights file (.keras, .weights.h5, .h5) "
                        "or a run directory, got ['a.h5']"),
    ("head: {after: stage5, body: [dense: 3]}", "arch.yaml:2:15: head.after: no top-level block called 'stage5' "
                                                "(did you mean 'stage4'?)"),
    ("head: {body: [dense: 3], befor: stage2}", "arch.yaml:2:26: head.befor: unknown key 'befor'"),
    ("head: [dense: {units: -3}]", "arch.yaml:2:23: network[8].sequence.body[0].dense.units: expected a positive "
                                   "integer, got -3"),
    ("train: {phases: [{epochs: 1}, {epochs: 2, freeze: [stage5]}]}",
     "arch.yaml:2:52: train.phases[1].freeze[0]: no block matches 'stage5' (did you mean 'stage4'?)"),
])
def test_mistakes_are_one_line_at_their_place_before_anything_is_built(write, text, expected):
    path = write(f"extends: resnet50\n{text}\n")
    with pytest.raises(SpecError) as error:
        blockbuilder.load(path)
    assert str(error.value).replace(str(path), "arch.yaml").startswith(expected)


def test_train_epochs_that_disagree_with_the_phases_is_an_error(write):
    path = write("extends: lenet5\ntrain: {epochs: 4, phases: [{epochs: 1}, {epochs: 2}]}\n")
    with pytest.raises(SpecError, match=r"epochs \(4\) differs from the phases' total \(1 \+ 2 = 3\); leave"):
        blockbuilder.load(path)
    assert blockbuilder.load(write("extends: lenet5\ntrain: {phases: [{epochs: 1}, {epochs: 2}]}\n")).train.epochs == 3


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=12), st.lists(st.text(max_size=8), max_size=3),
                 st.dictionaries(st.sampled_from(["all_but", "except", "x"]), st.text(max_size=8), max_size=2),
                 st.integers(), st.booleans(), st.none()))
def test_any_freeze_value_is_a_freeze_or_one_located_error(value):
    from blockbuilder.language.document import load_text
    from blockbuilder.transfer.settings import Freeze, read_freeze

    root = blockbuilder.load("lenet5").root
    located = load_text(json.dumps({"freeze": value}), "arch.yaml")
    try:
        freeze = read_freeze(located["freeze"], root, located.loc_of("freeze"), "freeze")
    except SpecError as error:
        assert str(error).startswith("arch.yaml:1:") and "\n" not in str(error)
    else:
        assert isinstance(freeze, Freeze)
        assert freeze.blocks <= {node.path for node in root.walk()}


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.text(max_size=20), st.dictionaries(st.sampled_from(["source", "strict", "x"]),
                                                       st.one_of(st.text(max_size=8), st.booleans()), max_size=3),
                 st.integers(), st.lists(st.text(max_size=4), max_size=2)))
@example("~0")  # no user named 0: the path stays as written (pathlib's expanduser raised RuntimeError)
def test_any_weights_value_is_a_source_or_one_located_error(value):
    from blockbuilder.language.document import load_text
    from blockbuilder.transfer.settings import Weights, read_weights

    try:
        found = read_weights(load_text(json.dumps({"weights": value}), "arch.yaml"))
    except SpecError as error:
        assert str(error).startswith("arch.yaml:1:") and "\n" not in str(error)
    else:
        assert found is None or (isinstance(found, Weights) and found.written.strip())


# -- freezing -------------------------------------------------------------------------------------


def test_frozen_blocks_do_not_train_and_frozen_batchnorm_runs_in_inference_mode(write):
    import keras

    arch = blockbuilder.load(write("""\
        input: [8, 8, 3]
        classes: 2
        freeze: backbone
        network:
          - conv: {filters: 4, norm: batchnorm, activation: relu}
          - global_avg_pool
          - dense: {units: $classes, activation: softmax}
        """))
    model = blockbuilder.build(arch)
    assert [layer.name for layer in model.layers if layer.weights and not layer.trainable] == ["conv1", "conv1.bn"]
    x = np.random.default_rng(0).normal(3, 2, (16, 8, 8, 3)).astype("float32")
    y = np.arange(16) % 2
    before = {name: weights_of(model, name) for name in ("conv1", "conv1.bn", "dense1")}
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for name in ("conv1", "conv1.bn"):  # kernel, bias, gamma, beta and the moving statistics
        assert all(np.array_equal(a, b) for a, b in zip(before[name], weights_of(model, name)))
    assert not np.array_equal(before["dense1"][0], weights_of(model, "dense1")[0])
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)))


def test_the_summary_shows_trainable_and_frozen_per_block(cli, write):
    path = write("extends: lenet5\nfreeze: backbone\n")
    code, out, err = cli("summary", str(path), "--json")
    assert code == 0, err
    summary = json.loads(out)
    blocks = {block["name"]: block for block in summary["blocks"]}
    assert (blocks["conv1"]["frozen_params"], blocks["conv1"]["trainable_params"]) == (156, 0)
    assert (blocks["conv2"]["frozen_params"], blocks["dense1"]["trainable_params"]) == (2416, 48120)
    assert summary["params"] == {"total": 61706, "trainable": 59134, "non_trainable": 2572}
    code, out, err = cli("summary", str(path))
    header = next(line for line in out.splitlines() if "block" in line and "params" in line)
    assert header.split("┃")[-2].strip() == "frozen"
    assert next(line for line in out.splitlines() if "conv2" in line).split("│")[-2].strip() == "yes"
    code, out, err = cli("summary", "lenet5")
    assert "frozen" not in out  # nothing frozen: the table is as it always was


# -- loading --------------------------------------------------------------------------------------


def test_a_network_sharing_the_first_blocks_takes_them_and_reports_the_rest(cli, digits, pretrained, write):
    """Other classes (dense3 differs) and a wider dense2 (dense2 and dense3 differ); strict names the first skip."""
    path = write(f"extends: lenet5\nclasses: 7\nweights: {pretrained}\n"
                 "network:\n  - conv: {filters: 6, kernel: 5, padding: valid, activation: relu}\n  - max_pool: 2\n"
                 "  - conv: {filters: 16, kernel: 5, padding: valid, activation: relu}\n  - max_pool: 2\n"
                 "  - flatten\n  - dense: {units: 120, activation: relu}\n  - dense: {units: 90, activation: relu}\n"
                 "  - dense: {units: $classes, activation: softmax}\n")
    code, out, err = cli("build", str(path), "-o", str(digits.work / "partial.keras"))
    assert code == 0, err
    assert f"weights {pretrained}: 3 of 5 layers loaded from {pretrained / 'model.keras'}, 2 skipped" in out
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert rows == [["conv1", "1", "0", ""], ["conv2", "1", "0", ""], ["dense1", "1", "0", ""],
                    ["dense2", "0", "1", "dense2: shape differs (file [(120, 84), (84,)], model [(120, 90),"],
                    ["", "", "", "(90,)])"],
                    ["dense3", "0", "1", "dense3: shape differs (file [(84, 5), (5,)], model [(90, 7), (7,)])"]] \
        or rows[:3] == [["conv1", "1", "0", ""], ["conv2", "1", "0", ""], ["dense1", "1", "0", ""]]
    pretrained_model = blockbuilder.load_model(str(pretrained / "model.keras"))
    built = blockbuilder.load_model(str(digits.work / "partial.keras"))
    for name in ("conv1", "conv2", "dense1"):
        assert all(np.array_equal(a, b) for a, b in zip(weights_of(pretrained_model, name), weights_of(built, name)))

    strict = write(path.read_text().replace(f"weights: {pretrained}", f"weights: {{source: {pretrained}, "
                                                                      "strict: true}"), "strict.yaml")
    code, out, err = cli("build", str(strict), "-o", str(digits.work / "strict.keras"))
    assert code == 1 and not (digits.work / "strict.keras").exists()
    assert err == (f"blockbuilder build: error: weights {pretrained} (strict): dense2 was not loaded: shape differs "
                   "(file [(120, 84), (84,)], model [(120, 90), (90,)]) (2 of 5 layers skipped)\n")


def test_weights_files_of_every_kind_load_by_name(digits, pretrained):
    """``.keras``, a run directory, ``.weights.h5`` and a legacy ``.h5`` of a blockbuilder model."""
    from blockbuilder.transfer.settings import Weights
    from blockbuilder.transfer.weights import load_weights

    source = blockbuilder.load_model(str(pretrained / "model.keras"))
    source.save_weights(str(digits.work / "digits04.weights.h5"))
    source.save(str(digits.work / "digits04.h5"))
    arch = blockbuilder.loads("extends: lenet5\nclasses: 5\n")
    for path in (pretrained, pretrained / "model.keras", digits.work / "digits04.weights.h5",
                 digits.work / "digits04.h5"):
        model = blockbuilder.build(arch)
        report = load_weights(model, Weights(str(path), str(path)), arch)
        assert (report.loaded, report.skipped, report.by_order) == (5, [], False), path
        assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), source.get_weights())), path


def test_the_command_line_wins_and_a_path_in_a_file_is_relative_to_the_file(cli, digits, pretrained, tmp_path):
    folder = digits.work / "nested"
    folder.mkdir(exist_ok=True)
    path = folder / "arch.yaml"
    path.write_text("extends: lenet5\nclasses: 5\nweights: ../runs/digits04\n")
    arch = blockbuilder.load(path)
    assert Path(arch.weights.source).resolve() == pretrained.resolve()
    code, out, err = cli("build", str(path), "--weights", str(tmp_path / "elsewhere.h5"), "-o",
                         str(tmp_path / "m.keras"))
    assert (code, err) == (1, f"blockbuilder build: error: weights {tmp_path / 'elsewhere.h5'}: no such file or "
                              "directory\n")


def test_unusable_sources_are_one_line_naming_them_before_tensorflow(digits, pretrained, tmp_path):
    """Missing, a folder without a run, damaged files, an unknown kind: exit 1, no TensorFlow, no run directory."""
    (tmp_path / "damaged.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)
    (tmp_path / "damaged.keras").write_bytes(b"PK not really")
    (tmp_path / "weights.txt").write_text("numbers")
    (tmp_path / "empty").mkdir()
    cases = {
        "missing.h5": "weights missing.h5: no such file or directory",
        "empty": "weights empty: a folder that holds no run (model.keras is not in it)",
        "damaged.keras": "weights damaged.keras: damaged.keras is not a .keras (zip) archive (damaged, or not a "
                         "weights file)",
        "weights.txt": "weights weights.txt: not a weights source (expected imagenet, a .keras, .weights.h5 or .h5 "
                       "file, or a run directory)",
    }
    script = textwrap.dedent(f"""
        import sys
        from blockbuilder.cli.main import main
        codes = [main(["train", "lenet5", "--weights", source, "--output", "run-" + str(i)])
                 for i, source in enumerate({list(cases)!r})]
        print(codes, "tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.stdout.split() == ["[1,", "1,", "1,", "1]", "False", "False"], result.stderr
    assert result.stderr.splitlines() == [f"blockbuilder train: error: {line}" for line in cases.values()]
    assert not list(tmp_path.glob("run-*"))


def test_a_file_of_another_architecture_or_a_damaged_one_is_one_line(cli, digits, pretrained, write, tmp_path):
    other = write("input: [32, 32, 1]\nclasses: 5\nnetwork: [conv: 8, global_avg_pool, dense: $classes]\n")
    code, out, err = cli("build", str(other), "--weights", str(pretrained), "-o", str(tmp_path / "m.keras"))
    assert (code, err) == (1, f"blockbuilder build: error: weights {pretrained}: no layer of arch fits "
                              f"{pretrained / 'model.keras'} (the file of another architecture?); first: conv1: "
                              "shape differs (file [(5, 5, 1, 6), (6,)], model [(3, 3, 1, 8), (8,)])\n")
    (tmp_path / "damaged.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 600)
    code, out, err = cli("build", "lenet5", "--weights", str(tmp_path / "damaged.h5"), "-o", str(tmp_path / "m.keras"))
    assert code == 1 and err.startswith("blockbuilder build: error: ") and str(tmp_path / "damaged.h5") in err
    assert err.count("\n") == 1 and "Traceback" not in err


# -- transfer pays off ----------------------------------------------------------------------------


def test_a_frozen_pretrained_backbone_beats_training_from_scratch_on_50_images_per_class(digits, pretrained):
    """Digits 5-9, 50 images per class, the same head, epochs, batch and optimizer: the backbone pretrained on
    0-4 and frozen against a network trained from scratch, averaged over three seeds."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
    x, y, train, test = digits.x, digits.y, digits.train, digits.test
    texts = {"transfer": f"extends: lenet5\nclasses: 5\nweights: {pretrained}\nfreeze: backbone\nhead: {HEAD}\n",
             "scratch": f"extends: lenet5\nclasses: 5\nhead: {HEAD}\n"}
    scores: dict[str, list[float]] = {"transfer": [], "scratch": []}
    for seed in (0, 1, 2):
        for kind, text in texts.items():
            keras.utils.set_random_seed(seed)
            model = blockbuilder.build(blockbuilder.loads(text))
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            model.fit(x[train], y[train] - 5, epochs=5, batch_size=16, verbose=0)
            scores[kind].append(model.evaluate(x[test], y[test] - 5, verbose=0, return_dict=True)["accuracy"])
    transfer, scratch = float(np.mean(scores["transfer"])), float(np.mean(scores["scratch"]))
    print(f"test accuracy on 646 images of 5-9: transfer {transfer:.4f} {scores['transfer']}, "
          f"scratch {scratch:.4f} {scores['scratch']}")
    assert transfer >= scratch + 0.015


# -- phases -------------------------------------------------------------------------------------------


def test_phases_freeze_then_unfreeze_with_a_phase_column_and_marked_curves(finetuned, pretrained):
    run = finetuned.run
    with (run.run_dir / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["epoch"], row["phase"]) for row in rows] == [("1", "1"), ("2", "1"), ("3", "2"), ("4", "2")]
    assert run.metrics["epochs_completed"] == 4 and (run.run_dir / "curves.png").stat().st_size > 1000
    source = blockbuilder.load_model(str(pretrained / "model.keras"))
    assert not np.array_equal(weights_of(run.model, "conv1")[0], weights_of(source, "conv1")[0])  # phase 2 trained it
    assert run.metrics["test"]["accuracy"] > 0.85


def test_the_curves_mark_where_a_phase_starts(tmp_path, monkeypatch):
    import matplotlib.axes

    from blockbuilder.training.outputs import plot_curves

    marked: list[float] = []
    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", lambda self, x, **kwargs: marked.append(x))
    history = [{"epoch": e, "phase": p, "loss": 1.0 / e, "accuracy": 0.5} for e, p in ((1, 1), (2, 1), (3, 2), (4, 3))]
    plot_curves(tmp_path / "curves.png", history)
    assert marked == [2.5, 3.5, 2.5, 3.5]  # loss and accuracy: before epochs 3 and 4
    marked.clear()
    plot_curves(tmp_path / "plain.png", [{k: v for k, v in row.items() if k != "phase"} for row in history])
    assert marked == []


def test_resume_works_inside_any_phase(digits, finetuned):
    """Stopped at the end of phase 1, then inside phase 2, then finished: the weights of the uninterrupted run."""
    from blockbuilder.training.weights import weights_sha256

    output = digits.work / "runs" / "digits59-stopped"
    stop_at = {2, 3}

    def stop(epoch: int, logs: dict) -> bool:
        return epoch in stop_at

    first = blockbuilder.train(finetuned.path, output=output, on_epoch_end=stop)
    assert first.metrics["stopped"] == "callback" and first.metrics["epochs_completed"] == 2
    source = blockbuilder.load_model(str(digits.work / "runs" / "digits04" / "model.keras"))
    assert np.array_equal(weights_of(first.model, "conv1")[0], weights_of(source, "conv1")[0])  # frozen in phase 1
    second = blockbuilder.train(finetuned.path, output=output, resume=True, on_epoch_end=stop)
    assert second.metrics["epochs_completed"] == 3
    last = blockbuilder.train(finetuned.path, output=output, resume=True)
    assert last.metrics["epochs_completed"] == 4
    assert weights_sha256(last.model) == finetuned.run.metrics["weights_sha256"]
    assert [row["phase"] for row in last.history] == [1, 1, 2, 2]


# -- a fine-tuned run is a run like any other --------------------------------------------------------


def test_a_finetuned_run_exports_predicts_draws_features_explores_and_embeds(cli, digits, finetuned, tmp_path):
    run_dir = finetuned.run.run_dir
    code, out, err = cli("export", str(run_dir), "--format", "keras", "-o", str(tmp_path / "digits59.keras"))
    assert code == 0, err
    code, out, err = cli("predict", str(tmp_path / "digits59.keras"), *map(str, digits.pngs), "--top", "1")
    assert code == 0, err
    assert all(str(png.name) in out for png in digits.pngs)
    code, out, err = cli("features", str(run_dir), "--image", str(digits.pngs[0]), "-o", str(tmp_path / "f.png"))
    assert code == 0, err
    assert "conv1, max_pool1, conv2, max_pool2" in out

    from blockbuilder.serving.explore import Explorer
    from blockbuilder.serving.source import load_source

    page = Explorer(load_source(run_dir)).answer(digits.pngs[0].read_bytes())
    assert len(page["classes"]) == 5 and "head.dense2" in [layer["name"] for layer in page["layers"]]

    code, out, err = cli("embed", str(run_dir), *map(str, digits.pngs), "--block", "conv2", "-o",
                         str(tmp_path / "conv2.npy"))
    assert code == 0, err
    assert out.strip() == f"wrote {tmp_path / 'conv2.npy'} (2 images x 16 features of conv2, avg-pooled)"
    vectors = np.load(tmp_path / "conv2.npy")
    model = blockbuilder.load_model(str(run_dir / "model.keras"))
    import keras

    probe = keras.Model(model.inputs, model.get_layer("conv2.relu").output)
    expected = np.asarray(probe(digits.x[digits.test[:2]], training=False)).mean(axis=(1, 2))
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    code, out, err = cli("embed", str(run_dir), str(digits.pngs[0]), "--block", "head.dense1", "--pool", "max",
                         "-o", str(tmp_path / "head.npy"))
    assert code == 0 and np.load(tmp_path / "head.npy").shape == (1, 84)


def test_embed_mistakes_are_reported_before_tensorflow(digits, finetuned, tmp_path):
    run_dir = finetuned.run.run_dir
    script = textwrap.dedent(f"""
        import sys
        from blockbuilder.cli.main import main
        codes = [main(["embed", {str(run_dir)!r}, {str(digits.pngs[0])!r}, "--block", "conv3", "-o", "f.npy"]),
                 main(["embed", "lenet5", "missing.png", "--block", "conv1", "-o", "f.npy"]),
                 main(["embed", "lenet5", {str(digits.pngs[0])!r}, "--block", "conv1", "-o", "f.txt"]),
                 main(["embed", {str(run_dir)!r}, {str(digits.pngs[0])!r}, "--block", "conv1", "--weights",
                       "imagenet", "-o", "f.npy"])]
        print(codes, "tensorflow" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.stdout.split() == ["[2,", "1,", "2,", "2]", "False"], result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == ("blockbuilder embed: error: --block: no block called 'conv3' (did you mean 'conv2'?) "
                        "(top-level blocks: conv1, max_pool1, conv2, max_pool2, head)")
    assert lines[1].startswith("blockbuilder embed: error: missing.png")
    assert lines[2] == "blockbuilder embed: error: --output must end in .npy, got 'f.txt'"
    assert lines[3] == ("blockbuilder embed: error: --weights and --set change an architecture; a trained model "
                        "has its own weights")


def test_embed_an_architecture_with_its_weights(cli, digits, pretrained, tmp_path):
    code, out, err = cli("embed", "lenet5", *map(str, digits.pngs), "--set", "classes=5", "--weights", str(pretrained),
                         "--block", "dense2", "-o", str(tmp_path / "d.npy"))
    assert code == 0, err
    assert "5 of 5 layers loaded" in out
    assert np.load(tmp_path / "d.npy").shape == (2, 84)


def test_a_weights_error_during_training_is_one_line(digits, pretrained, tmp_path):
    path = tmp_path / "strict.yaml"
    path.write_text(f"extends: lenet5\nclasses: 5\nweights: {{source: {pretrained}, strict: true}}\n"
                    f"head: [flatten, dense: {{units: $classes}}]\n"
                    f"train: {{dataset: npz:{digits.work / 'high.npz'}, epochs: 1}}\n")
    with pytest.raises(CommandError, match=r"\(strict\): head.dense1 was not loaded: not in the file"):
        blockbuilder.train(path, output=tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint").exists()


def test_the_schema_for_editors_knows_the_transfer_keys(cli):
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    code, out, _ = cli("schema")
    schema = json.loads(out)
    jsonschema.validate(yaml.safe_load((REPO / "examples" / "finetune_resnet50.yaml").read_text()), schema)
    jsonschema.validate(yaml.safe_load(FINETUNE), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"extends": "resnet50", "weights": {"sorce": "imagenet"}}, schema)


def test_every_zoo_network_takes_a_new_head_section():
    """mobilenet_v2 named its last conv 'head', the name a head: section takes, so extending it with a
    head: was refused; every zoo file must take one."""
    from blockbuilder.language.resolve import zoo_names

    for name in zoo_names():
        arch = blockbuilder.loads(f"extends: {name}\nclasses: 3\n"
                                  "head: {body: [global_avg_pool, {dense: {units: 3, activation: softmax}}]}\n")
        assert arch.classes == 3 and [block.name for block in arch.root.all_children()][-1] == "head", name
