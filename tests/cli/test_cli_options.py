"""The options that change an architecture are applied in one place, once (issue 20, item 4).

``--set``, a command's own flags that are overrides (train's ``--epochs`` is ``train.epochs=N``),
``--weights`` and ``--limit`` become overrides and limits before the one load in ``blockbuilder.cli.main``;
no command loads the file again (train once did when a flag changed it, and dropped ``--limit``). The
budget cases stop before anything is built: at ``--resume`` with nothing to resume (train), at the
description of the family (validate), at a trial's load (search, with a stand-in for training).
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest

from blockbuilder.cli.main import build_parser
from blockbuilder.cli.train import _resume_command
from conftest import REPO, search

# 5,400,480,010 params, ending in the 10 classes of the default data set (digits)
BIG = "input: [100, 100, 3]\nnetwork:\n  - flatten\n" + "  - dense: 30000\n" * 6 + "  - dense: 10\n"
TRAINING_FLAGS = [[], ["--epochs", "1"], ["--batch-size", "4"], ["--seed", "3"], ["--precision", "float32"]]
FLAG_IDS = ["none", "epochs", "batch-size", "seed", "precision"]


def resume_error(path: Path) -> str:
    return f"blockbuilder train: error: --resume: {path} does not exist (start the run without --resume)\n"


@pytest.mark.parametrize("flags", TRAINING_FLAGS, ids=FLAG_IDS)
def test_a_raised_limit_holds_whatever_training_flag_changes_the_file(cli, write, tmp_path, flags):
    """The refusal, when it comes, is the budget's at load time: here the load passes, --resume stops it."""
    missing = tmp_path / "none"
    code, out, err = cli("train", write(BIG), "--limit", "params=6e9", *flags, "--output", missing, "--resume")
    assert (code, out, err) == (1, "", resume_error(missing))
    code, out, err = cli("train", write(BIG), *flags, "--output", missing, "--resume")
    assert code == 1 and "5,400,480,010 parameters, over the budget of 2,000,000,000" in err


@pytest.mark.parametrize("flags", TRAINING_FLAGS, ids=FLAG_IDS)
def test_a_lowered_limit_holds_whatever_training_flag_changes_the_file(cli, tmp_path, flags):
    code, out, err = cli("train", "lenet5", "--limit", "params=100", *flags, "--output", tmp_path, "--resume")
    assert code == 1 and out == ""
    assert err.endswith("the model would have 61,706 parameters, over the budget of 100 "
                        "(raise it on purpose with --limit params=N)\n")


def test_the_training_flags_are_overrides_of_the_one_load(cli, tmp_path):
    """``resolved.yaml`` holds what is trained: the architecture main loaded is the one planned."""
    from blockbuilder.cli import options

    args = build_parser().parse_args(["train", "lenet5", "--set", "train.epochs=5", "--epochs", "2",
                                      "--batch-size", "8", "--seed", "4", "--precision", "float32"])
    loaded = options.from_args(args)
    assert loaded.overrides == ("train.epochs=5", "train.epochs=2", "train.batch_size=8", "train.seed=4",
                                "train.precision=float32")  # the flag after --set: the flag wins
    architecture = loaded.load("lenet5")
    assert (architecture.train.epochs, architecture.train.batch_size, architecture.train.seed) == (2, 8, 4)


RUNS = [
    ["lenet5"],
    ["lenet5", "--set", "train.augmentation=[]", "--epochs", "30"],
    ["examples/finetune_resnet50.yaml", "--set", "classes=7", "--set", "name=it's mine", "--weights", "runs/a b",
     "--limit", "params=5e9", "--limit", "blocks=9000", "--batch-size", "8", "--seed", "3", "--precision",
     "float32", "--export", "savedmodel", "--device", "cpu"],
    ["lenet5", "--coordinator", "10.0.0.1:1234", "--num-processes", "2", "--process-id", "1", "--debug"],
]


@pytest.mark.parametrize("words", RUNS, ids=["plain", "set-and-epochs", "every-option", "multi-process"])
def test_the_resume_command_reproduces_the_run(words):
    """Parsed again, the printed command is the same run: every option the same, but --output and --resume."""
    parser = build_parser()
    args = parser.parse_args(["train", *words])
    command = shlex.split(_resume_command(args, "runs/the run"))
    assert command[:2] == ["blockbuilder", "train"]
    again = parser.parse_args(command[1:])
    assert (again.output, again.resume) == ("runs/the run", True)
    same = {"output": None, "resume": False, "debug": False}  # --debug shows tracebacks: no part of the run
    assert {**vars(again), **same} == {**vars(args), **same}
    from blockbuilder.cli import options

    assert options.from_args(again) == options.from_args(args)


def test_the_resume_command_of_a_plain_run_is_as_short_as_it_was():
    args = build_parser().parse_args(["train", "lenet5", "--set", "train.augmentation=[]", "--epochs", "30"])
    assert _resume_command(args, "runs/x") == ("blockbuilder train lenet5 --set 'train.augmentation=[]' --epochs 30 "
                                               "--output runs/x --resume")


def test_no_command_loads_the_architecture_again():
    """The one load is :func:`blockbuilder.cli.options.LoadOptions.load`, called by main (and by embed)."""
    call = re.compile(r"blockbuilder\.load\(|(?<![\w.])load\(")  # blockbuilder.load(...), or load(...) imported
    loads = {path.name: call.findall(path.read_text(encoding="utf-8"))
             for path in sorted((REPO / "blockbuilder" / "cli").glob("*.py"))}
    assert {name: found for name, found in loads.items() if found and name != "options.py"} == {}


# -- the search family: its members are loaded with the same overrides and limits ------------------------

FAMILY = """
name: tiny
input: [8, 8, 1]
classes: 10
variables: {filters: 8}
network:
  - conv: {filters: $filters, kernel: 3, activation: relu}
  - max_pool: 2
  - flatten
  - dense: {units: 32, activation: relu}
  - dense: {units: $classes, activation: softmax}
train: {epochs: 1}
search:
  space:
    variables.filters: {choice: [8, 2000]}
  sampler: random
  seed: 0
  epochs: 1
  trials: 2
"""
SMALL_PARAMS = 4_538  # filters 8; filters 2000 makes 1,044,362


def test_validate_loads_the_family_within_the_limits(cli, write):
    code, out, err = cli("validate", write(FAMILY), "--limit", "params=10000")
    assert (code, err) == (0, ""), err
    assert f"tiny: ok (input [8, 8, 1] -> output [10], depth 3, {SMALL_PARAMS:,} params" in out
    assert "1 of 2 do not load, e.g. variables.filters=2000: " in out
    assert "the model would have 1,044,362 parameters, over the budget of 10,000" in out


def test_search_loads_each_trial_within_a_lowered_limit(cli, write, tmp_path, monkeypatch):
    record, rows, _ = search(cli, monkeypatch, write(FAMILY), "--limit", "params=10000", "--trials", "1",
                             "--output", tmp_path / "search")
    assert rows.keys() == {"8", "2000"} and rows["8"]["state"] == "complete"  # seed 0 draws 2000 first
    assert rows["2000"]["state"] == "pruned" and "over the budget of 10,000" in rows["2000"]["reason"]
    assert record["limits"] == {"params": 10000}


def test_search_writes_best_yaml_within_a_raised_limit(cli, write, tmp_path, monkeypatch):
    family = BIG.replace("dense: 30000", "dense: $units") + (
        "variables: {units: 30000}\nsearch:\n  space:\n    variables.units: {choice: [30000, 30001]}\n"
        "  sampler: random\n  seed: 0\n  epochs: 1\n  trials: 1\n")
    output = tmp_path / "search"
    record, rows, out = search(cli, monkeypatch, write(family), "--limit", "params=6e9", "--output", output)
    assert record["limits"] == {"params": 6_000_000_000} and rows["30001"]["state"] == "complete"
    assert "--set variables.units=30001" in (output / "best.yaml").read_text(encoding="utf-8")
    assert f"(blockbuilder train {output / 'best.yaml'} --limit params=6000000000)" in out


def test_embed_loads_an_architecture_with_the_same_options(cli, write, tmp_path):
    """embed takes a run or an architecture: it loads the latter itself, with the options main made."""
    from PIL import Image

    image = tmp_path / "one.png"
    Image.new("L", (8, 8)).save(image)
    code, out, err = cli("embed", write(FAMILY), image, "--block", "conv1", "--set", "variables.filters=0",
                         "-o", tmp_path / "x.npy")
    assert code == 1 and "network[0].conv.filters: expected a positive integer, got 0" in err


def test_resolve_checks_the_document_within_the_limits_given(cli, write):
    path = write(BIG)
    code, out, err = cli("resolve", path, "--limit", "params=6e9")
    assert (code, err) == (0, "") and "dense: 30000" in out
    code, out, err = cli("resolve", path)
    assert code == 1 and "dense: 30000" in out and "over the budget of 2,000,000,000" in err
