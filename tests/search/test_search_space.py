"""The ``search:`` section without TensorFlow: parsing, errors at file:line:col, validate's report, budgets."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blockbuilder.errors import SpecError, UsageError
from blockbuilder.language.document import load_text
from blockbuilder.language.resolve import plain
from blockbuilder.search.budgets import Budget, Figures
from blockbuilder.search.describe import describe_space
from blockbuilder.search.family import check_family, explore_family
from blockbuilder.search.section import parse_space
from blockbuilder.search.space import value_text
from conftest import run_process, search

FAMILY = """
name: tiny
input: [8, 8, 1]
classes: 10
variables: {filters: 8, units: 32}
network:
  - conv: {filters: $filters, kernel: 3, activation: relu}
  - max_pool: 2
  - flatten
  - dense: {units: $units, activation: relu}
  - dense: {units: $classes, activation: softmax}
train: {epochs: 1}
"""

SEARCH = """
search:
  space:
    variables.filters: {choice: [4, 8, 16]}
    variables.units: {int: [16, 64], step: 16}
    train.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
  budget: {max_macs: 20000}
  epochs: 1
  trials: 6
"""


def family_file(write, search: str = SEARCH, name: str = "arch.yaml") -> Path:
    return write(textwrap.dedent(FAMILY).lstrip() + textwrap.dedent(search), name)


def test_validate_reports_space_size_family_range_and_budget_without_tensorflow(write):
    path = family_file(write)
    code = ("import sys; from blockbuilder.cli.main import main; code = main(['validate', sys.argv[1]]); "
            "print('tensorflow imported:', 'tensorflow' in sys.modules); sys.exit(code)")
    result = run_process("-c", code, str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("tiny: ok")
    assert lines[1] == ("search: 3 values searched, infinitely many trials possible "
                        "(12 architectures x continuous training settings)")
    assert lines[2].split() == ["variables.filters", "choice", "[4,", "8,", "16]", "3", "values"]
    assert lines[3].split() == ["variables.units", "int", "16..64", "step", "16", "4", "values"]
    assert lines[4].split() == ["train.optimizer.learning_rate", "float", "0.0001..0.01", "log", "continuous"]
    # params = 10 F + 16 F U + U + 10 U + 10: 1,250 with F = 4, U = 16; 17,258 with F = 16, U = 64
    assert lines[5].startswith("family (all 12 architectures): 1,250 - 17,258 params, 3.49 K - 26.24 K MACs")
    assert lines[6] == "budget (max_macs 20.00 K): 10 of 12 fit"
    assert lines[7] == "objective: validation accuracy (tpe sampler, median pruner); 6 trials of 1 epoch each"
    assert lines[8] == "tensorflow imported: False"


def test_family_figures_match_the_members_loaded_one_by_one(write):
    import blockbuilder
    from blockbuilder.report.summary import estimate

    path = family_file(write)
    space = parse_space(blockbuilder.load(path).document)
    family = explore_family(path, [], space)
    assert family.exhaustive and family.checked == 12 and not family.invalid
    for values, figures in family.members:
        member = blockbuilder.load(path, [f"{key}={value}" for key, value in values.items()])
        assert (figures.params, figures.macs) == estimate(member)
    # MACs = 576 F + 16 F U + 10 U: with 16 filters, 48 and 64 units are over the 20,000 of the budget
    over = sorted((v["variables.filters"], v["variables.units"], f.macs) for v, f in family.members
                  if f.macs > 20_000)
    assert over == [(16, 48, 21_984), (16, 64, 26_240)]


def test_budget_check_names_the_limit_and_the_value():
    budget = Budget(max_params=1000, max_macs=5000)
    assert budget.check(Figures(900, 5000, 10)) is None
    assert budget.check(Figures(1001, 10, 10)) == "params 1,001 > max_params 1,000"
    assert budget.check(Figures(10, 5001, 10)) == "macs 5,001 > max_macs 5,000"
    assert budget.with_limits(max_macs=None, max_params=2000).limits == {"max_params": 2000, "max_macs": 5000}


# -- bad input: one located line each, before anything trains -----------------------------------------------


def error_of(write, search: str) -> str:
    import blockbuilder

    path = family_file(write, search)
    with pytest.raises(SpecError) as caught:
        describe_space(blockbuilder.load(path))
    return str(caught.value).replace(str(path), "arch.yaml")


@pytest.mark.parametrize(("search", "expected"), [
    ("search: {space: {}}\n",
     "arch.yaml:12:17: search.space: nothing to search: 'space' maps --set paths to values"),
    ("search:\n  space:\n    variables.filters: {chioce: [4, 8]}\n",
     "arch.yaml:14:25: search.space.variables.filters.chioce: unknown kind 'chioce' (did you mean 'choice'?)"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 8]}\n  sampler: tpz\n",
     "arch.yaml:15:12: search.sampler: unknown sampler 'tpz' (did you mean 'tpe'?): one of tpe, random, grid, "
     "nsga2"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 8]}\n  budget: {max_macs: 100}\n",
     # 576 F + 16 F U + 10 U MACs: 4,672 with F = 4 and the default U = 32
     "arch.yaml:15:22: search.budget.max_macs: no architecture of the family fits the budget: the smallest has "
     "4,672 macs > max_macs 100 (all 2 architectures)"),
    ("search:\n  space:\n    variables.filtres: {choice: [4, 8]}\n",
     "arch.yaml:14:5: search.space.variables.filtres: no variable 'filtres' in 'variables' (did you mean "
     "'filters'?)"),
    ("search:\n  space:\n    train.optimizer.learnig_rate: {float: [0.001, 0.01]}\n",
     "arch.yaml:14:5: search.space.train.optimizer.learnig_rate: the train section has no 'learnig_rate' "
     "(did you mean 'learning_rate'?)"),
    ("search:\n  space:\n    train.batch_size: {choice: [32, 0]}\n",
     "arch.yaml:14:37: search.space.train.batch_size: train.batch_size cannot be 0: input should be greater "
     "than 0"),
    ("search:\n  space:\n    train.optimizer.learning_rate: {float: ['1e-4', 0.01]}\n",
     "arch.yaml:14:45: search.space.train.optimizer.learning_rate.float[0]: expected a number, got '1e-4' "
     "(a number in quotes is text: leave the quotes out)"),
    ("search:\n  space:\n    variables.units: {int: [16, 64], step: 10}\n",
     "arch.yaml:14:44: search.space.variables.units.step: the range 48 wide is not a whole number of steps of 10"),
    ("search:\n  space:\n    variables.units: {int: [0, 64], log: true}\n",
     "arch.yaml:14:28: search.space.variables.units.int: a log range starts above 0, got [0, 64]"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 8]}\n  objective: [accuracy, macs]\n"
     "  pruner: median\n",
     "arch.yaml:16:11: search.pruner: Optuna cannot prune a trial with several objectives"),
    ("search:\n  space:\n    train.optimizer.learning_rate: {float: [0.001, 0.01]}\n  sampler: grid\n",
     "arch.yaml:15:12: search.sampler: the grid sampler needs a finite space, but "
     "'train.optimizer.learning_rate' is continuous"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 8]}\n  objective: [macs, accuracy]\n",
     "arch.yaml:15:14: search.objective: the objective is 'accuracy', or a list that starts with accuracy"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 4]}\n",
     "arch.yaml:14:37: search.space.variables.filters.choice: 4 is listed twice"),
    ("search:\n  space:\n    variables.filters: {choice: [0, -1]}\n",
     "arch.yaml:14:5: search.space: no architecture of the family is valid (all 2 architectures); "
     "variables.filters=0: arch.yaml:6:21: network[0].conv.filters: expected a positive integer, got 0"),
    ("search:\n  space:\n    network[0].conv.filtres: {choice: [4, 8]}\n",
     "arch.yaml:14:5: search.space: no architecture of the family is valid (all 2 architectures); "
     "network[0].conv.filtres=4: --set network[0].conv.filtres=4: network[0].conv.filtres: unknown key 'filtres' "
     "(did you mean 'filters'?)"),
    ("search:\n  space:\n    variables.filters: {choice: [4, 8]}\n  trails: 6\n",
     "arch.yaml:15:3: search.trails: unknown key 'trails' (did you mean 'trials'?)"),
])
def test_bad_search_section_is_one_located_line(write, search, expected):
    message = error_of(write, search)
    assert message.startswith(expected), message
    assert "\n" not in message


def test_cli_bad_input_is_one_line_before_keras(write, tmp_path):
    """Each mistake ends with one line and its exit code, before Keras is imported and before any trial."""
    good = family_file(write)
    no_search = write(textwrap.dedent(FAMILY), "plain.yaml")
    two = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8]}\n", "two.yaml")
    cases = [
        ["search", str(good), "--trials", "2", "--output", str(tmp_path / "a"), "--max-macs", "1K"],
        ["search", str(good), "--trials", "2", "--output", str(tmp_path / "b"),
         "--storage", "postgresql://blockbuilder@127.0.0.1:1/none"],
        ["search", str(good), "--trials", "2", "--output", str(tmp_path / "c"), "--storage", "nosuchdb://x/y"],
        ["search", str(no_search), "--trials", "2", "--output", str(tmp_path / "d")],
        ["search", str(two), "--trials", "3", "--output", str(tmp_path / "e"), "--storage",
         f"journal:{tmp_path / 'e.log'}"],
        ["search-report", str(tmp_path / "nothing")],
    ]
    code = ("import sys, json; from blockbuilder.cli.main import main\n"
            f"codes = [main(args) for args in {cases!r}]\n"
            "print(json.dumps(codes)); print('keras imported:', 'keras' in sys.modules)")
    result = run_process("-c", code)
    assert result.stdout.splitlines()[-2:] == ["[2, 1, 2, 1, 2, 2]", "keras imported: False"], result.stderr
    lines = result.stderr.replace(str(tmp_path), "TMP").replace(str(good.parent), "TMP").splitlines()
    assert lines == [
        "blockbuilder search: error: --max-macs 1000: no architecture of the family fits the budget: the "
        "smallest has 3,488 macs > max_macs 1,000 (all 12 architectures)",
        "blockbuilder search: error: cannot open the storage postgresql://blockbuilder@127.0.0.1:1/none: "
        + lines[1].partition("127.0.0.1:1/none: ")[2],
        "blockbuilder search: error: --storage nosuchdb://x/y: unknown kind of database 'nosuchdb' (sqlite, "
        "postgresql, mysql, or journal:PATH)",
        "TMP/plain.yaml:1:1: search: no 'search:' section: it says which values vary (see docs/search.md)",
        "blockbuilder search: error: --trials 3: the space holds only 2 different trials that fit the budget",
        "blockbuilder search-report: error: TMP/nothing is not a search directory (no search.json; "
        "'blockbuilder search' writes it)",
    ]
    assert "onnect" in lines[1]  # "Connection refused" / "could not connect"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arch.yaml", "plain.yaml", "two.yaml"]  # no run, no storage


# -- property-based: the parser and the overrides it writes --------------------------------------------------

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5), inner, max_size=3)),
    max_leaves=8)


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@given(VALUES)
@settings(max_examples=200, deadline=None)
def test_an_override_reads_back_as_the_value_it_was_written_from(value):
    text = value_text(value)
    assert same(plain(load_text(text)), value), (value, text)


@st.composite
def dimensions(draw):
    kind = draw(st.sampled_from(["choice", "int", "float"]))
    if kind == "choice":
        values = draw(st.lists(SCALARS, min_size=1, max_size=5, unique_by=value_text))
        return {"choice": values}, ("choice", values)
    if kind == "int":
        low = draw(st.integers(1, 1000))
        step = draw(st.integers(1, 10))
        high = low + step * draw(st.integers(0, 20))
        log = draw(st.booleans()) and step == 1
        spec = {"int": [low, high], **({"log": True} if log else {"step": step} if step > 1 else {})}
        return spec, ("int", low, high, step, log)
    low = draw(st.floats(1e-6, 1e3))
    high = draw(st.floats(low, 1e4))
    log = draw(st.booleans())
    return {"float": [low, high], **({"log": True} if log else {})}, ("float", low, high, log)


@given(st.dictionaries(st.sampled_from([f"v{i}" for i in range(5)]), dimensions(), min_size=1, max_size=5),
       st.sampled_from([None, "tpe", "random", "nsga2"]), st.sampled_from(["accuracy", ["accuracy", "macs"]]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_well_formed_section_parses_to_what_it_says(dims, sampler, objective):
    search = {"space": {f"variables.{name}": spec for name, (spec, _) in dims.items()}, "objective": objective}
    if sampler:
        search["sampler"] = sampler
    document = {"input": [8, 8, 1], "variables": {name: 0 for name in dims}, "network": ["flatten"],
                "search": search}
    space = parse_space(load_text(yaml.safe_dump(document, sort_keys=False)))
    assert [d.path for d in space.dimensions] == [f"variables.{name}" for name in dims]
    for dimension, (_, expected) in zip(space.dimensions, dims.values()):
        assert dimension.kind == expected[0]
        if expected[0] == "choice":
            assert all(same(load_text(t), v) for t, v in zip(dimension.choices, expected[1]))
            assert dimension.size == len(expected[1])
        elif expected[0] == "int":
            _, low, high, step, log = expected
            assert (dimension.low, dimension.high, dimension.step, dimension.log) == (low, high, step, log)
            assert dimension.values()[0] == low and dimension.values()[-1] == high
            assert len(dimension.values()) == (high - low) // step + 1
        else:
            assert (dimension.low, dimension.high, dimension.log) == expected[1:]
    assert space.sampler == sampler or (sampler is None and space.sampler ==
                                        ("tpe" if objective == "accuracy" else "nsga2"))
    assert space.multi_objective == (objective != "accuracy")


KEYS = st.sampled_from(["space", "objective", "sampler", "pruner", "budget", "epochs", "trials", "seed",
                        "variables.v0", "train.batch_size", "choice", "int", "float", "step", "log",
                        "max_macs", "max_params", "bogus"])
JUNK = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(KEYS, inner, max_size=4)), max_leaves=12)


@given(st.dictionaries(KEYS, JUNK, max_size=5))
@settings(max_examples=150, deadline=None)
def test_any_section_parses_or_fails_with_a_located_spec_error(search):
    document = {"input": [8, 8, 1], "variables": {"v0": 1}, "network": ["flatten"], "search": search}
    text = yaml.safe_dump(document, sort_keys=False)
    try:
        space = parse_space(load_text(text, "f.yaml"))
    except SpecError as exc:
        assert exc.location is not None and exc.location.file == "f.yaml"
        assert 1 <= exc.location.line <= len(text.splitlines())
        assert str(exc.path).startswith("search")
        assert "\n" not in exc.message
    else:
        assert space.dimensions


def test_budget_nothing_fits_from_flags_is_a_usage_error(write):
    import blockbuilder

    path = family_file(write)
    space = parse_space(blockbuilder.load(path).document)
    family = explore_family(path, [], space)
    with pytest.raises(UsageError, match=r"^--max-params 100: no architecture of the family fits"):
        check_family(family, space, space.budget.with_limits(max_params=100), ["max_params"])


# -- the worker loop, with a stand-in for training (no TensorFlow) -------------------------------------------


def fake_trainer(architecture, run_dir, epochs, on_epoch):
    """Writes a run directory and reports a validation accuracy that grows with the filters."""
    from blockbuilder.search.trainer import TrialOutcome

    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text("{}")
    accuracy = architecture.document["variables"]["filters"] / 100
    on_epoch(0, {"val_accuracy": accuracy})
    return TrialOutcome(history=[{"val_accuracy": accuracy}])


def worker(path, tmp_path, trials, storage):
    import blockbuilder
    from blockbuilder.search.console import Progress
    from blockbuilder.search.study import Search, SearchOptions

    arch = blockbuilder.load(path)
    space = parse_space(arch.document)
    options = SearchOptions(trials=trials, output=tmp_path / "out", storage=storage)
    search = Search(path, arch, space, space.budget, options, fake_trainer, progress=None)
    search.open()
    search.progress = Progress(search.record, live=False)
    return search


def test_a_trial_whose_remote_worker_went_silent_is_failed_and_run_again(write, tmp_path, monkeypatch):
    """On a journal file: a trial left RUNNING by a worker elsewhere is failed once its heartbeat stops."""
    from optuna.trial import TrialState

    from blockbuilder.search import study as study_module
    from blockbuilder.search.report import trial_rows

    monkeypatch.setattr(study_module, "GRACE_SECONDS", 0.3)
    monkeypatch.setattr(study_module, "POLL_SECONDS", 0.05)
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8, 16]}\n  sampler: random\n")
    search = worker(path, tmp_path, 2, f"journal:{tmp_path / 'journal.log'}")
    lost = search.study.ask()
    lost.suggest_categorical("variables.filters", ["4", "8", "16"])
    lost.set_user_attr("worker", {"host": "another-machine", "pid": 1, "started": None})
    final = search.run()
    trials = search.study.get_trials()
    assert final.finished == 2 and trials[0].state == TrialState.FAIL
    rerun = [t for t in trials if t.user_attrs.get("rerun_of") == 0]
    assert len(rerun) == 1 and rerun[0].state == TrialState.COMPLETE and rerun[0].params == trials[0].params
    reason = f"interrupted: its worker stopped; run again as trial {rerun[0].number}"
    assert trial_rows(search.study)[0].reason == reason  # trials.csv says it (public Optuna API only)
    assert sorted(p.name for p in (tmp_path / "out").glob("trial-*")) == sorted(
        f"trial-{t.number:04d}" for t in trials if t.state == TrialState.COMPLETE)


def test_values_drawn_twice_are_not_trained_twice(write, tmp_path):
    """Samplers repeat themselves in a small space: a repeat is pruned before training, not counted."""
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8, 16]}\n  sampler: random\n"
                              "  seed: 3\n")
    search = worker(path, tmp_path, 3, None)
    final = search.run()
    trials = search.study.get_trials()
    trained = [t.params["variables.filters"] for t in trials if t.user_attrs.get("run_dir")]
    assert final.finished == 3 and sorted(trained) == ["16", "4", "8"]
    repeats = [t for t in trials if t.user_attrs.get("reason", "").startswith("duplicate")]
    assert repeats  # with this seed, the sampler draws a value again before it has drawn all three
    for repeat in repeats:
        twin = int(repeat.user_attrs["reason"].rpartition(" ")[2])
        assert trials[twin].params == repeat.params and repeat.user_attrs["skipped"] is True


def test_the_python_snippets_of_docs_search_md_run():
    import re

    from conftest import REPO

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "search.md").read_text(), re.S)
    assert blocks
    for block in blocks:
        result = run_process("-c", block, cwd=REPO)
        assert result.returncode == 0, result.stderr
        assert "family (all 36 architectures)" in result.stdout


def test_two_objectives_give_a_pareto_front_with_nsga2_and_no_pruner(write, tmp_path):
    import csv

    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8, 16]}\n"
                              "    variables.units: {choice: [16, 64]}\n  objective: [accuracy, macs]\n  seed: 1\n")
    search = worker(path, tmp_path, 4, None)
    assert (search.space.sampler, search.space.pruner) == ("nsga2", "none")
    search.run()
    complete = [t for t in search.study.get_trials() if t.state.name == "COMPLETE"]
    assert len(complete) == 4 and all(t.values[1] == t.user_attrs["macs"] for t in complete)
    # Optuna's front, the chart's front and the trials no other beats on both counts are the same trials
    from blockbuilder.search.report import pareto_front, trial_rows

    front = {t.number for t in search.study.best_trials}
    with (tmp_path / "out" / "trials.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["state"] == "complete"]
    assert front == {int(r["number"]) for r in rows if not any(
        float(o["val_accuracy"]) >= float(r["val_accuracy"]) and int(o["macs"]) < int(r["macs"]) for o in rows)}
    assert front == {row.number for row in pareto_front(trial_rows(search.study))}
    assert (tmp_path / "out" / "pareto.png").is_file() and (tmp_path / "out" / "best.yaml").is_file()


def test_a_grid_search_that_tries_its_whole_grid_ends_cleanly(cli, write, tmp_path, monkeypatch) -> None:
    """Optuna's GridSampler stops the study when its grid is done, which raised outside study.optimize."""
    family = ("name: tiny\ninput: [8, 8, 1]\nclasses: 10\nvariables: {filters: 8}\nnetwork:\n"
              "  - conv: {filters: $filters, kernel: 3, activation: relu}\n  - global_avg_pool\n"
              "  - dense: {units: 10, activation: softmax}\n"
              "search:\n  space:\n    variables.filters: {choice: [2, 4, 8]}\n  sampler: grid\n  epochs: 1\n")
    record, rows, out = search(cli, monkeypatch, write(family), "--trials", "3", "--output", tmp_path / "grid")

    assert sorted(rows) == ["2", "4", "8"] and {row["state"] for row in rows.values()} == {"complete"}
    assert "Traceback" not in out


# -- latency: a budget and an objective, predicted from this machine's latency table ---------------------


def _mac_table(monkeypatch, tmp_path) -> None:
    """A table made here in which a batch of 8 costs 1e-3 ms per MAC of an image: 20,000 MACs are 20 ms."""
    from blockbuilder.report import latency

    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path / "cache"))
    key = latency.table_key("tensorflow", "float32", "inference", 8)
    latency.write_table(latency.LatencyTable(key=key, batch_size=8, overhead_ms=0.0, coefficients={},
                                             general=[0.0, 1.25e-4, 0.0, 0.0], made="2026-12-04T00:00:00"))


def test_a_latency_budget_without_a_latency_table_is_an_error_at_its_line(write, tmp_path, monkeypatch):
    monkeypatch.setenv("BLOCKBUILDER_CACHE", str(tmp_path / "empty"))
    path = family_file(write, SEARCH.replace("{max_macs: 20000}", "{max_latency_ms: 20}"))
    import blockbuilder

    with pytest.raises(SpecError) as caught:
        parse_space(blockbuilder.load(path).document)
    assert str(caught.value) == (f"{path}:18:28: search.budget.max_latency_ms: latency is predicted from this machine's latency table, "
                                 "and there is none yet: make it with 'blockbuilder profile ARCH --calibrate' "
                                 "(inference, float32)")


def test_a_latency_budget_prunes_before_building_and_latency_is_an_objective(write, tmp_path, monkeypatch):
    import csv

    _mac_table(monkeypatch, tmp_path)
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8, 16]}\n"
                              "    variables.units: {choice: [16, 64]}\n  objective: [accuracy, latency_ms]\n"
                              "  budget: {max_latency_ms: 20}\n  seed: 1\n")
    search = worker(path, tmp_path, 4, None)
    assert search.space.budget.describe() == "max_latency_ms 20"
    search.run()
    with (tmp_path / "out" / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:6] == ["number", "state", "params", "macs", "val_accuracy", "latency_ms"]
    measured = [row for row in rows if row["macs"]]  # a duplicate of an earlier trial is not measured again
    assert measured
    for row in measured:  # MACs = 576 F + 16 F U + 10 U; the table says 8 * 1.25e-4 ms per MAC
        assert float(row["latency_ms"]) == pytest.approx(int(row["macs"]) * 1e-3)
        if int(row["macs"]) > 20_000:  # 16 filters and 64 units: 26,240 MACs, 26.24 ms
            assert row["state"] == "pruned" and row["run_dir"] == ""
            assert row["reason"] == f"budget: latency {int(row['macs']) * 1e-3:.2f} ms > max_latency_ms 20"
    complete = [t for t in search.study.get_trials() if t.state.name == "COMPLETE"]
    assert complete and all(t.values[1] == pytest.approx(t.user_attrs["macs"] * 1e-3) for t in complete)
    from blockbuilder.search.report import pareto_front, trial_rows

    assert {t.number for t in search.study.best_trials} == {
        row.number for row in pareto_front(trial_rows(search.study), "latency_ms")}
    assert (tmp_path / "out" / "pareto.png").is_file()
