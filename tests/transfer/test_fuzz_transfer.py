"""Property-based fuzzing of the transfer sections (issue 19): generated ``weights``, ``freeze``, ``head``
and ``train.phases`` values in a small valid file. ``blockbuilder validate`` either says ok (exit 0, nothing
on stderr) or fails in one line (exit 1 or 2, nothing on stdout) -- never a traceback, never slowly.

``BLOCKBUILDER_FUZZ_EXAMPLES=2000 pytest tests/transfer/test_fuzz_transfer.py`` runs it for longer.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("BLOCKBUILDER_FUZZ_EXAMPLES", "100"))
SECONDS = 5.0  # per example, generous: a validate takes a few milliseconds

BASE = {
    "name": "tiny",
    "input": [8, 8, 1],
    "classes": 3,
    "network": [
        {"conv": {"filters": 4}, "name": "stem"},
        {"residual": {"body": [{"conv": 4}]}, "name": "block1"},
        "global_avg_pool",
        {"dense": {"units": "$classes", "activation": "softmax"}},
    ],
}
EXTREMES: list[Any] = [0, -1, 1, 2**31, 10**30, 1e308, float("inf"), float("nan"), -0.5, True, False, None, "",
                       "x" * 300, "${", "$nope", "${1/0}", "$classes", [], {}, [[[]]], {"conv": 4}, "a/b"]
PATHS = ["imagenet", "none", "runs/nope", "model.keras", "model.weights.h5", "model.h5", "junk.keras", "folder",
         "~/nowhere.keras", "a/../b.h5", "weights.txt", "IMAGENET", "imagenet1k"]
NAMES = ["backbone", "all", "none", "stem", "block1", "block1.*", "block1.conv1", "stage[12]", "head", "head.*",
         "nope", "[", "*", "**", "", "dense1", "global_avg_pool1", "stem.bn"]
BLOCKS: list[Any] = ["global_avg_pool", "flatten", {"dense": {"units": 3}}, {"dense": "$classes"},
                     {"dense": {"units": 3, "activation": "softmax"}}, {"conv": 4}, {"dropout": 0.2},
                     {"dense": {"units": 0}}, "nope", {"dense": 3, "name": "head"}]

scalars = st.sampled_from(EXTREMES)
paths = st.sampled_from(PATHS)
names = st.sampled_from(NAMES)
good_names = st.sampled_from(["stem", "block1", "block1.*", "head", "stem.bn", "dense1"])


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four: most examples get past the first error to the later checks."""
    return st.one_of(good, good, good, bad)


good_head = st.tuples(st.sampled_from(["global_avg_pool", "flatten"]), st.lists(st.just({"dropout": 0.2}), max_size=1),
                      st.sampled_from(BLOCKS[2:5])).map(lambda t: [t[0], *t[1], t[2]])
head = mostly(st.one_of(good_head, st.fixed_dictionaries({"after": st.sampled_from(["stem", "block1"]),
                                                          "body": good_head})),
              st.one_of(st.lists(st.sampled_from(BLOCKS), max_size=4), scalars, st.fixed_dictionaries(
                  {}, optional={"after": st.one_of(names, scalars), "body": scalars, "other": scalars})))
# A name too long for the file system is left to the test below until blockbuilder/transfer/weights.py takes it.
short = st.sampled_from([value for value in EXTREMES if value != "x" * 300])
weights = st.one_of(paths, short, st.fixed_dictionaries(
    {"source": st.one_of(paths, short)}, optional={"strict": st.one_of(st.booleans(), scalars),
                                                     "other": scalars}))
freeze = mostly(st.one_of(st.sampled_from(["backbone", "all", "none"]), st.lists(good_names, min_size=1, max_size=3),
                          st.fixed_dictionaries({"all_but": st.lists(good_names, min_size=1, max_size=2)})),
                st.one_of(names, scalars, st.lists(st.one_of(names, scalars), max_size=3),
                          st.fixed_dictionaries({"all_but": st.one_of(names, scalars)}, optional={"other": scalars})))
optimizer = mostly(
    st.fixed_dictionaries({}, optional={"learning_rate": st.floats(1e-6, 1.0),
                                        "name": st.sampled_from(["adam", "sgd", "adamw", "rmsprop", "nadam"])}),
    st.one_of(scalars, st.fixed_dictionaries({}, optional={
        "learning_rate": st.one_of(st.floats(allow_nan=True), scalars), "name": st.one_of(names, scalars),
        "momentum": scalars, "other": scalars})))
schedule = mostly(
    st.fixed_dictionaries({"type": st.sampled_from(["constant", "cosine"])},
                          optional={"warmup_epochs": st.sampled_from([0, 0.5, 1])}),
    st.one_of(scalars, st.fixed_dictionaries({}, optional={
        "type": st.one_of(st.sampled_from(["piecewise", "step"]), scalars), "warmup_epochs": scalars,
        "boundaries": scalars, "factors": scalars})))
phase = mostly(
    st.fixed_dictionaries({"epochs": st.integers(1, 3)},
                          optional={"freeze": freeze, "optimizer": optimizer, "schedule": schedule,
                                    "name": st.sampled_from(["warm", "tune"])}),
    st.fixed_dictionaries({}, optional={"epochs": st.one_of(st.integers(-2, 3), scalars), "freeze": freeze,
                                        "optimizer": optimizer, "schedule": schedule,
                                        "name": st.one_of(names, scalars), "other": scalars}))
phases = mostly(st.lists(phase, min_size=1, max_size=4), st.one_of(st.lists(phase, max_size=2), scalars))


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    for key, values, chance in (("weights", weights, 4), ("freeze", freeze, 2), ("head", head, 2)):
        if draw(st.integers(1, chance)) == 1:
            document[key] = draw(values)
    if draw(st.booleans()):
        train: dict[str, Any] = {"phases": draw(phases)}
        if draw(st.booleans()):
            train["epochs"] = draw(mostly(st.integers(1, 8), scalars))
        document["train"] = train
    return document


def _workdir(base: Path) -> Path:
    """Things the paths may name: a file that is no model, a folder that holds no run."""
    (base / "junk.keras").write_bytes(b"not a zip archive")
    (base / "weights.txt").write_text("hello")
    (base / "folder").mkdir(exist_ok=True)
    return base


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                      HealthCheck.too_slow])
@given(document=documents())
def test_validate_is_ok_or_one_line(cli, tmp_path, document):
    path = _workdir(tmp_path) / "arch.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    started = time.perf_counter()
    code, out, err = cli("validate", path)
    seconds = time.perf_counter() - started
    shown = f"{yaml.safe_dump(document, sort_keys=False)}\n-> exit {code}\n{out}{err}"
    assert "Traceback" not in out + err, shown
    assert seconds < SECONDS, shown
    if code == 0:
        assert err == "" and out.startswith("tiny: ok"), shown
    else:
        assert code in (1, 2), shown
        assert out == "" and err.endswith("\n") and err.count("\n") == 1, shown


def test_a_weights_path_too_long_for_the_file_system_is_one_line(cli, tmp_path):
    """Found by the fuzz above: ``os.stat`` of a 300-character name raises ``OSError`` (ENAMETOOLONG)."""
    path = tmp_path / "arch.yaml"
    path.write_text(yaml.safe_dump({**BASE, "weights": "x" * 300}, sort_keys=False))
    code, out, err = cli("validate", path)
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert re.match(rf"{re.escape(str(path))}:\d+:\d+: weights x+ \(.*\): file name too long$", err), err
