"""What ``validate``, ``search`` and ``search-report`` promise about a ``search:`` section (issue 19).

Each test is one finding seen from the outside: the exit code, the exact one-line error at the file's
line, no traceback. Trials train through a stand-in (no TensorFlow). The last test fuzzes whole
sections through ``blockbuilder validate``; ``BLOCKBUILDER_FUZZ_EXAMPLES=2000`` runs it for longer.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from test_search import postgres_url  # noqa: F401 - a fixture: a throwaway PostgreSQL server
from test_search_space import FAMILY, fake_trainer  # FAMILY's search section starts at line 12


def family_file(write, search: str, name: str = "arch.yaml", network: str = "tiny") -> Path:
    text = textwrap.dedent(FAMILY).lstrip().replace("name: tiny", f"name: {network}", 1)
    return write(text + textwrap.dedent(search).lstrip("\n"), name)


def error_line(cli, *args: Any) -> tuple[int, str]:
    """``blockbuilder ARGS`` that fails: its exit code and its one line of error."""
    code, out, err = cli(*args)
    assert code != 0, out
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


@pytest.fixture
def search(cli, monkeypatch):
    """``search(ARGS)`` -> (exit code, stdout, stderr) of ``blockbuilder search ARGS``, trained by the stand-in."""
    from blockbuilder.search import trainer

    monkeypatch.setattr(trainer, "train_with_blockbuilder", fake_trainer)
    return lambda *args: cli("search", *args)


def journal_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


# -- 1. a choice of block entries ----------------------------------------------------------------------------


def test_choices_of_kernel_lists_block_entries_and_block_names_validate_and_search(cli, write, search, tmp_path):
    """They crashed ``validate`` and ``search`` with yaml's RepresenterError (a value read from the file)."""
    path = family_file(write, """
        search:
          space:
            network[0].conv.kernel: {choice: [[3, 3], [1, 1]]}
            network[0]: {choice: [{conv: {filters: 4, kernel: 3}}, {conv: {filters: 8, kernel: 1}}]}
            network[1]: {choice: [max_pool, avg_pool]}
          sampler: grid
        """)
    code, out, err = cli("validate", path)
    assert (code, err) == (0, "")
    assert out.splitlines()[2:5] == [
        "  network[0].conv.kernel  choice [[3, 3], [1, 1]]          2 values",
        "  network[0]              choice [{conv: {filters: 4, kernel: 3}}, {conv: {filters: 8, kernel: 1}}] 2 values",
        "  network[1]              choice [max_pool, avg_pool]      2 values",
    ]
    assert out.splitlines()[5].startswith("family (all 8 architectures): ")

    code, out, err = search("--trials", "8", "--output", tmp_path / "out", path)
    assert (code, err) == (0, "")
    best = (tmp_path / "out" / "best.yaml").read_text(encoding="utf-8")
    assert "#   --set network[0].conv.kernel=[" in best and "#   --set network[0]={conv: {filters: " in best


@pytest.mark.parametrize(("choice", "column", "message"), [
    ("[max_pool, nosuchblock]", 37,
     "network[1]=nosuchblock does not load in the one member of the family with it: "
     "--set network[1]=nosuchblock: network[1]: unknown block type 'nosuchblock'"),
    ("[{max_pool: 3}, {nosuchblock: 3}]", 42,
     "network[1]={nosuchblock: 3} does not load in the one member of the family with it: "
     "--set network[1]={nosuchblock: 3}:1:2: network[1].max_pool.nosuchblock: unknown key 'nosuchblock'"),
])
def test_a_choice_of_a_block_type_that_does_not_exist_is_an_error_at_its_value(cli, write, choice, column, message):
    path = family_file(write, f"search:\n  space:\n    network[1]: {{choice: {choice}}}\n")
    code, line = error_line(cli, "validate", path)
    assert (code, line) == (1, f"{path}:14:{column}: search.space.network[1].choice: {message}")


def test_a_choice_value_in_every_member_it_is_in_does_not_load_is_an_error_also_with_other_values(cli, write):
    """With another searched value, 'nosuchblock' is in 2 members; 'max_pool' loads, so it is that value."""
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [4, 8]}\n"
                              "    network[1]: {choice: [max_pool, nosuchblock]}\n")
    code, line = error_line(cli, "validate", path)
    assert (code, line) == (1, f"{path}:15:37: search.space.network[1].choice: network[1]=nosuchblock does not "
                               "load in all 2 members of the family with it: --set network[1]=nosuchblock: "
                               "network[1]: unknown block type 'nosuchblock'")


def test_a_choice_value_refused_elsewhere_in_the_file_or_over_a_limit_is_pruned_not_an_error(cli, write):
    """'0 filters' fails at the file's line, a member over --limit at the network: those members are pruned."""
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [0, 8, 600]}\n")
    code, out, err = cli("validate", path, "--limit", "params=100000")
    assert (code, err) == (0, "")
    assert "  2 of 3 do not load, e.g. variables.filters=0: " in out


# -- 2. a float range with more steps than a float tells apart ---------------------------------------------


@pytest.mark.parametrize(("space", "expected"), [
    ("train.optimizer.learning_rate: {float: [1.0e-300, 1.0e+300], step: 1.0e-300}",
     "14:72: search.space.train.optimizer.learning_rate.step: the range 1e+300 wide has more than "
     "9,007,199,254,740,992 steps of 1e-300 (2**53, past which a float cannot tell the values apart): give a "
     "larger step"),
    ("train.optimizer.learning_rate: {float: [0.001, 0.01], step: 1.0e-310}",
     "14:65: search.space.train.optimizer.learning_rate.step: the range 0.009 wide has more than "
     "9,007,199,254,740,992 steps of 1e-310 (2**53, past which a float cannot tell the values apart): give a "
     "larger step"),
    ("train.optimizer.learning_rate: {float: [-1.0e+308, 1.0e+308], step: 1.0}",
     "14:44: search.space.train.optimizer.learning_rate.float: the range [-1e+308, 1e+308] is wider than a "
     "float can hold: narrow it"),
    ("variables.units: {int: [1, 99999999999999999999]}",
     "14:28: search.space.variables.units.int: an int range lies within -9,007,199,254,740,992 and "
     "9,007,199,254,740,992 (2**53, what a float holds exactly), got [1, 99999999999999999999]"),
    ("variables.units: {float: []}", "14:30: search.space.variables.units.float[0]: expected [low, high], got []"),
])
def test_a_range_a_float_cannot_count_is_an_error_at_its_line(cli, write, space, expected):
    """The first one raised OverflowError (a step count of infinity); the last said 'field required, got ()'."""
    path = family_file(write, f"search:\n  space:\n    {space}\n")
    code, line = error_line(cli, "validate", path)
    assert (code, line) == (1, f"{path}:{expected}")


def test_a_grid_larger_than_optuna_holds_is_an_error_at_the_sampler(cli, write):
    path = family_file(write, "search:\n  space:\n    variables.units: {int: [1, 1000000]}\n  sampler: grid\n")
    code, line = error_line(cli, "validate", path)
    assert (code, line) == (1, f"{path}:15:12: search.sampler: the grid sampler tries every one of the 1,000,000 "
                               "trials of this space, more than 100,000: use tpe or random, or fewer values")


# -- 3. a grid search that finishes its grid -----------------------------------------------------------------


GRID = "search:\n  space:\n    variables.filters: {choice: [2, 4, 8]}\n  sampler: grid\n  epochs: 1\n"


def test_a_grid_search_that_tries_its_whole_grid_says_so(search, write, tmp_path):
    code, out, err = search(family_file(write, GRID), "--trials", "3", "--output", tmp_path / "grid")
    assert (code, err) == (0, "")
    assert "Traceback" not in out
    assert out.splitlines()[-4:-2] == ["3 trials finished (3 complete)",
                                       "the grid is done: every one of its 3 points was tried"]


def test_a_grid_search_whose_grid_is_done_before_its_trials_ends_cleanly(search, write, tmp_path, monkeypatch):
    """A family too large to load whole (here: more than 2 members) cannot tell how many grid points fit
    the budget: the grid ends first. Optuna's grid sampler would then draw its points again and again."""
    from blockbuilder.search import family

    monkeypatch.setattr(family, "FAMILY_LIMIT", 2)
    path = family_file(write, GRID + "  budget: {max_params: 5000}\n")  # 8 filters: 4,538 params; 16 would not fit
    path.write_text(path.read_text().replace("{choice: [2, 4, 8]}", "{choice: [2, 4, 8, 16]}"))
    code, out, err = search(path, "--trials", "5", "--output", tmp_path / "grid")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[-4:-2] == ["3 trials finished (3 complete); 1 pruned before training (1 budget)",
                            "the grid is done: every one of its 4 points was tried, so fewer than --trials 5 "
                            "could finish"]


# -- 4. the seed ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", "4294967296", "99999999999999999999"])
def test_a_seed_numpy_does_not_take_is_an_error_at_its_line(cli, write, seed):
    """It passed validate and raised NumPy's ValueError once the search had started."""
    path = family_file(write, f"search:\n  space:\n    variables.filters: {{choice: [4, 8]}}\n  seed: {seed}\n")
    code, line = error_line(cli, "validate", path)
    assert (code, line) == (1, f"{path}:15:9: search.seed: a seed is a whole number from 0 to 4,294,967,295 "
                               f"(2**32 - 1), got {seed}")


def test_the_largest_seed_draws_again_after_a_resume(search, write, tmp_path):
    """A resumed search draws with the seed plus the trials so far: that passed 2**32 - 1."""
    path = family_file(write, "search:\n  space:\n    variables.filters: {choice: [2, 4, 8, 16]}\n"
                              "  sampler: random\n  seed: 4294967295\n  epochs: 1\n")
    assert search(path, "--trials", "1", "--output", tmp_path / "out")[0] == 0
    code, out, err = search(path, "--trials", "2", "--output", tmp_path / "out")
    assert (code, err) == (0, "")
    assert "2 trials finished" in out


# -- 5. a journal that is garbage, another program's, or cut short ------------------------------------------


@pytest.mark.parametrize("text", [b"garbage\nnot json {\n", b"# Notes\n\nsome text", b'[1, 2]\n{"op_code": 0}\n',
                                  b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_a_journal_that_is_not_one_is_a_one_line_error_and_stays_as_it_was(cli, search, write, tmp_path, text):
    path = family_file(write, GRID)
    journal = tmp_path / "other.log"
    journal.write_bytes(text)
    code, line = error_line(search, "--trials", "1", "--output", tmp_path / "out", "--storage", f"journal:{journal}",
                            path)
    assert (code, line) == (1, f"blockbuilder search: error: cannot open the storage journal:{journal}: line 1 of "
                               f"{journal} is not a record of an Optuna journal (a damaged file, or another "
                               "program's)")
    assert journal.read_bytes() == text and not (tmp_path / "out").exists()

    report = tmp_path / "report"
    report.mkdir()
    (report / "search.json").write_text(json.dumps({"study": "tiny", "storage": f"journal:{journal}"}))
    code, line = error_line(cli, "search-report", report)
    assert code == 1 and line.startswith(f"blockbuilder search-report: error: cannot open the storage journal:")


def test_a_journal_of_records_optuna_cannot_replay_is_a_one_line_error(cli, tmp_path):
    journal = tmp_path / "odd.log"
    journal.write_text('{"op_code": 99, "worker_id": "w"}\n')
    (tmp_path / "search.json").write_text(json.dumps({"study": "tiny", "storage": f"journal:{journal}"}))
    code, line = error_line(cli, "search-report", tmp_path)
    assert (code, line) == (1, f"blockbuilder search-report: error: cannot open the storage journal:{journal}: "
                               f"{journal} is not an Optuna journal (AssertionError: Should not reach.)")


def test_a_journal_cut_short_by_a_killed_worker_is_read_and_continued(cli, search, write, tmp_path, monkeypatch):
    """Optuna skips a last line without its newline; appending to it made a bad line (JSONDecodeError)."""
    from blockbuilder.search import study

    path = family_file(write, GRID)
    journal, output = tmp_path / "search.log", tmp_path / "out"
    assert search("--trials", "2", "--output", output, "--storage", f"journal:{journal}", path)[0] == 0
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-30])  # the last record (trial 1 complete) half-written
    kept = whole[:whole.rstrip(b"\n").rindex(b"\n") + 1]

    code, out, err = cli("search-report", output, "--json")
    assert (code, err) == (0, "")
    assert [row["state"] for row in json.loads(out[:out.rindex("]") + 1])] == ["complete", "running"]

    monkeypatch.setattr(study, "alive", lambda pid, started: False)  # the worker that wrote it was killed
    code, out, err = search("--trials", "3", "--output", output, "--storage", f"journal:{journal}", path)
    assert (code, err) == (0, "")
    assert journal.read_bytes().startswith(kept) and all(journal_lines(journal))  # every record whole
    code, out, err = cli("search-report", output, "--json")
    rows = json.loads(out[:out.rindex("]") + 1])
    assert [row["state"] for row in rows] == ["complete", "failed", "complete", "complete"]
    assert rows[1]["reason"] == "interrupted: its worker stopped; run again as trial 2"
    assert rows[2]["values"] == rows[1]["values"] and len({str(row["values"]) for row in rows}) == 3


# -- 6. when a search stops ----------------------------------------------------------------------------------


def test_a_space_that_gives_no_new_trial_stops_naming_why(search, write, tmp_path, monkeypatch):
    """A continuous range of two floats: every draw after the first two is a repeat. The stop said
    '(none); the budget leaves too little of the space' with no budget at all."""
    from blockbuilder.search import study

    monkeypatch.setattr(study, "MAX_SKIPPED_IN_A_ROW", 20)
    path = family_file(write, "search:\n  space:\n    train.optimizer.learning_rate: "
                              "{float: [0.001, 0.0010000000000000002]}\n  sampler: random\n  seed: 0\n")
    code, line = error_line(search, "--trials", "1000000", "--output", tmp_path / "out", path)
    assert (code, line) == (1, "blockbuilder search: error: the last 20 trials drawn were all pruned before "
                               "training (20 duplicate): the sampler finds no new trial that loads; stopping at 1 "
                               "of 1,000,000 finished")


def test_docs_say_when_a_search_stops():
    from blockbuilder.search.study import MAX_FAILURES_IN_A_ROW, MAX_SKIPPED_IN_A_ROW
    from conftest import REPO

    text = " ".join((REPO / "docs" / "search.md").read_text(encoding="utf-8").split())
    assert f"{MAX_SKIPPED_IN_A_ROW} trials in a row are pruned before training" in text
    assert f"{MAX_FAILURES_IN_A_ROW} trials in a row fail" in text
    assert "no `--trials` is too many" in text


# -- the fuzz: generated sections through `blockbuilder validate` -------------------------------------------


EXAMPLES = int(os.environ.get("BLOCKBUILDER_FUZZ_EXAMPLES", "100"))
SECONDS_PER_CASE = 5.0


EXTREME = st.one_of(
    st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 2**32, 2**53 + 1, 1e-300, 5e-324, 1e308, -1e308, True, "3", "1e-4", "", None, [], {}]))
VALUES = st.one_of(
    EXTREME, st.integers(0, 64), st.sampled_from(["relu", "max_pool", "nosuchblock", "flatten", "yes", "1e3"]),
    st.lists(st.integers(0, 5), max_size=3),
    st.sampled_from([{"max_pool": 2}, {"avg_pool": 3}, {"nosuchblock": 3}, {"conv": {"filters": 0}}, {}]))


def _ints(low: int, high: int) -> st.SearchStrategy[dict[str, Any]]:
    def build(start: int, steps: int, step: int, log: bool) -> dict[str, Any]:
        return {"int": [start, start + steps * step], "log": True} if log else \
            {"int": [start, start + steps * step], "step": step}
    return st.builds(build, st.integers(low, high), st.integers(0, 6), st.integers(1, 4), st.booleans())


def _floats() -> st.SearchStrategy[dict[str, Any]]:
    def build(low: float, factor: float, steps: int, log: bool) -> dict[str, Any]:
        high = low * factor
        return {"float": [low, high], "log": True} if log else \
            {"float": [low, high]} if steps == 0 else {"float": [low, high], "step": (high - low) / steps}
    return st.builds(build, st.floats(1e-5, 0.1), st.floats(1.0, 100.0), st.integers(0, 5), st.booleans())


def _choice(values: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=4, unique_by=repr).map(lambda v: {"choice": v})


GOOD_DIMENSIONS = {
    "variables.filters": _choice([1, 2, 4, 8, 16]) | _ints(1, 8),
    "variables.units": _ints(4, 64) | _choice([8, 16, 32]),
    "train.optimizer.learning_rate": _floats(),
    "train.batch_size": _choice([8, 16, 32, 64]),
    "network[0].conv.kernel": _choice([1, 3, 5, [3, 3], [1, 3]]),
    "network[1]": _choice(["max_pool", "avg_pool", {"max_pool": 2}, {"max_pool": 3}, {"avg_pool": 2}, "nosuchblock"]),
    "network[0].conv.activation": _choice(["relu", "gelu", "tanh", "nosuch"]),
}
JUNK_DIMENSIONS = st.one_of(
    st.fixed_dictionaries({"choice": st.lists(VALUES, max_size=4)}),
    st.fixed_dictionaries({"int": st.lists(VALUES, max_size=3)}, optional={"step": VALUES, "log": VALUES}),
    st.fixed_dictionaries({"float": st.lists(VALUES, max_size=3)}, optional={"step": VALUES, "log": VALUES}),
    st.dictionaries(st.sampled_from(["choice", "int", "float", "step", "chioce"]), VALUES, max_size=2), VALUES)
JUNK_PATHS = st.sampled_from([*GOOD_DIMENSIONS, "variables.nope", "search.seed", "train.nope", "network[9]",
                              "defaults.conv.activation", "a b", "network[0].conv.filters", "input", ""])
LIMITS = st.sampled_from(["max_params", "max_macs", "max_activation_memory"])
GOOD_SECTIONS = st.fixed_dictionaries(
    {"space": st.lists(st.sampled_from(sorted(GOOD_DIMENSIONS)), min_size=1, max_size=3, unique=True).flatmap(
        lambda paths: st.fixed_dictionaries({path: GOOD_DIMENSIONS[path] for path in paths}))},
    optional={
        "seed": st.integers(0, 2**32 - 1), "trials": st.integers(1, 50), "epochs": st.integers(1, 3),
        "sampler": st.sampled_from(["tpe", "random", "nsga2", "grid"]),
        "objective": st.sampled_from(["accuracy", ["accuracy", "macs"], ["accuracy", "params"]]),
        "budget": st.dictionaries(LIMITS, st.integers(1000, 10**7), max_size=2),
    })
MUTATIONS = st.tuples(  # one key of a good section made bad (or a bad key added)
    st.sampled_from(["seed", "trials", "epochs", "sampler", "pruner", "objective", "budget", "storage", "trails",
                     "space", "dimension", "path"]),
    VALUES, JUNK_PATHS, JUNK_DIMENSIONS, st.sampled_from(["bogus", "median", "hyperband", "none", 3, "grid"]))


def _mutated(section: dict[str, Any], mutation: tuple[Any, ...] | None) -> dict[str, Any]:
    if mutation is None:
        return section
    key, value, path, dimension, name = mutation
    section = dict(section)
    space = dict(section["space"])
    if key == "dimension":
        space[next(iter(space))] = dimension
    elif key == "path":
        space[path] = dimension
    elif key in ("sampler", "pruner"):
        section[key] = name
    elif key == "budget":
        section[key] = {"max_params": value} if value is not None else {"bogus": 1}
    else:
        section[key] = value
    return {**section, "space": space} if key in ("dimension", "path") else section


SECTIONS = st.builds(_mutated, GOOD_SECTIONS, st.none() | MUTATIONS)


@given(section=SECTIONS)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])
def test_any_search_section_validates_or_is_one_line_of_error(cli, write, monkeypatch, section):
    """Exit 0, or exit 1 or 2 with one line of error and no traceback, each within a few seconds."""
    from blockbuilder.search import family

    monkeypatch.setattr(family, "FAMILY_LIMIT", 20)  # the family's exploration, shorter for a fast fuzz
    monkeypatch.setattr(family, "FAMILY_SECONDS", 0.3)
    text = yaml.safe_dump({"search": section}, sort_keys=False, width=1_000_000)
    path = family_file(write, text)
    started = time.perf_counter()
    code, out, err = cli("validate", path)
    seconds = time.perf_counter() - started
    assert seconds < SECONDS_PER_CASE, (seconds, text)
    event(f"exit {code}" if code == 0 else f"exit {code}: {err.partition(': ')[2][:110]}")
    assert "Traceback" not in out + err, text
    if code == 0:
        assert out.startswith("tiny: ok") and "\nsearch: " in out and err == "", text
    else:
        assert code in (1, 2), (code, err, text)
        assert len(err.strip().splitlines()) == 1, (err, text)
        assert err.startswith((f"{path}:", "blockbuilder validate: error: ")), (err, text)


# -- issue 23: a search directory holds one search; a search writes nowhere else; a report writes nothing ---


def files_of(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (relative) -> its bytes (``None``: a directory)."""
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
            for path in sorted(folder.rglob("*"))}


def test_a_search_of_another_name_into_a_search_directory_is_refused_and_changes_nothing(search, write, tmp_path):
    """It rewrote search.json, trained a trial of its own study, and orphaned the finished one."""
    output = tmp_path / "out"
    assert search(family_file(write, GRID), "--trials", "2", "--output", output)[0] == 0
    assert search_report_ok(output)
    before = files_of(output)
    other = family_file(write, GRID, "other.yaml", network="other")
    code, line = error_line(search, other, "--trials", "3", "--output", output)
    assert (code, line) == (2, f"blockbuilder search: error: --output {output} holds the search 'tiny' "
                               "(search.json), not 'other': choose another --output, or run the file of "
                               "'tiny' to continue it")
    assert files_of(output) == before


def search_report_ok(output: Path) -> bool:
    from blockbuilder.cli.main import main

    return main(["search-report", str(output), "--json"]) == 0 and (output / "trials.csv").is_file()


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "..", "."])
def test_a_network_name_that_is_not_a_plain_file_name_cannot_name_the_search_directory(search, write, tmp_path,
                                                                                          monkeypatch, name):
    """``searches/NAME`` is the default --output: ``name: ../../x`` wrote search.json and study.db outside.

    The language refuses such a name; the search must not depend on it, so here the language takes any."""
    from blockbuilder.language import architecture

    monkeypatch.setattr(architecture, "NETWORK_NAME", re.compile(r".+"))
    name = name.replace("/abs", str(tmp_path / "abs"))
    path = family_file(write, GRID, network=f"'{name}'")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = files_of(tmp_path)
    code, line = error_line(search, path, "--trials", "1")
    assert (code, line) == (2, f"blockbuilder search: error: the network name '{name}' is not a plain file name, "
                               "so it cannot name the search directory searches/NAME: give --output DIR")
    assert files_of(tmp_path) == before


def test_a_storage_that_goes_away_during_a_trial_is_one_line_that_says_how_to_continue(search, write, tmp_path,
                                                                                      monkeypatch):
    """A PostgreSQL server stopped during a trial gave 300 lines of traceback (StorageInternalError).

    Simulated: from the first epoch on, every statement the storage sends fails as a lost connection does."""
    import sqlalchemy.exc
    import sqlalchemy.orm

    from blockbuilder.search import study, trainer

    def server_stops(architecture, run_dir, epochs, on_epoch):
        def gone(*args: Any, **kwargs: Any) -> None:
            raise sqlalchemy.exc.OperationalError("UPDATE trials", {}, Exception(
                "server closed the connection unexpectedly\n\tThis probably means the server terminated"))

        monkeypatch.setattr(sqlalchemy.orm.Session, "execute", gone)
        return fake_trainer(architecture, run_dir, epochs, on_epoch)

    monkeypatch.setattr(trainer, "train_with_blockbuilder", server_stops)
    path, output = family_file(write, GRID), tmp_path / "out"
    code, line = error_line(search, path, "--trials", "2", "--output", output)
    url = f"sqlite:///{(output / 'study.db').resolve()}"
    assert (code, line) == (1, f"blockbuilder search: error: the storage {url} went away (server closed the "
                               "connection unexpectedly): the trials it holds are kept; run the same "
                               "'blockbuilder search' again, once it is back, to continue the search")

    monkeypatch.undo()  # the storage is back; the worker that ran the lost trial is gone
    monkeypatch.setattr(trainer, "train_with_blockbuilder", fake_trainer)
    monkeypatch.setattr(study, "alive", lambda pid, started: False)
    code, out, err = search(path, "--trials", "2", "--output", output)
    assert (code, err) == (0, "")
    assert "trial 0 was interrupted: marked failed, queued to run again" in out.splitlines()
    assert "2 trials finished (2 complete, 1 failed)" in out.splitlines()


@pytest.mark.parametrize("storage", [None, "journal"])
def test_search_report_on_a_directory_without_its_storage_writes_nothing(cli, tmp_path, storage):
    """It created an empty study.db (or journal) in the folder, then said it has no study."""
    folder = tmp_path / "search"
    folder.mkdir()
    url = f"journal:{folder / 'search.log'}" if storage else None
    (folder / "search.json").write_text(json.dumps({"study": "tiny", **({"storage": url} if url else {})}))
    before = files_of(tmp_path)
    code, line = error_line(cli, "search-report", folder)
    shown = url or f"sqlite:///{(folder / 'study.db').resolve()}"
    assert (code, line) == (1, f"blockbuilder search-report: error: cannot open the storage {shown}: no such file "
                               "or directory")
    assert files_of(tmp_path) == before


def test_a_postgresql_server_stopped_during_a_trial_is_one_line(search, write, tmp_path, monkeypatch, postgres_url):
    """The same, with a real server (tools/install-postgres.sh): a fast shutdown while trial 0 trains."""
    import signal

    import sqlalchemy

    from blockbuilder.search import trainer

    def server_stops(architecture, run_dir, epochs, on_epoch):
        engine = sqlalchemy.create_engine(postgres_url)
        with engine.connect() as connection:
            data = connection.execute(sqlalchemy.text("SHOW data_directory")).scalar_one()
        engine.dispose()
        pid = int((Path(data) / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)  # PostgreSQL's fast shutdown: it ends every session
        for _ in range(300):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
        return fake_trainer(architecture, run_dir, epochs, on_epoch)

    monkeypatch.setattr(trainer, "train_with_blockbuilder", server_stops)
    code, line = error_line(search, family_file(write, GRID), "--trials", "2", "--output", tmp_path / "out",
                            "--storage", postgres_url)
    assert code == 1
    assert line.startswith(f"blockbuilder search: error: the storage {postgres_url} went away (")
    assert line.endswith("): the trials it holds are kept; run the same 'blockbuilder search' again, once it is "
                         "back, to continue the search")


def test_docs_say_what_a_search_directory_refuses():
    from conftest import REPO

    text = " ".join((REPO / "docs" / "search.md").read_text(encoding="utf-8").split())
    for words in ("holds the search 'lenet' (search.json), not 'other'", "is not a plain file name",
                  "a named pipe (FIFO), not a file", "no such file or directory`, and nothing is created",
                  "went away (…): the trials it holds are kept"):
        assert words in text, words


def test_a_second_worker_starting_beside_the_first_is_not_taken_for_other_files(tmp_path: Path) -> None:
    """The first worker opens the storage before it writes search.json: a second one, starting then,
    saw study.db and no search.json and refused the folder ("holds other files")."""
    from blockbuilder.errors import UsageError
    from blockbuilder.search.directory import check_output

    output = tmp_path / "shared"
    output.mkdir()
    for name in ("study.db", "study.db-journal", ".partial", ".search.json.x1y2"):
        (output / name).mkdir() if name.startswith(".") else (output / name).write_bytes(b"")
    check_output(output, "tiny")
    (output / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"holds other files \(no search.json\)"):
        check_output(output, "tiny")
