"""Command-line habits: every ``--help`` ends with its docs and examples, shows real defaults, and a
misspelled command gets a one-line did-you-mean (exit 2).

The commands are read from the parser, so a new command module is covered without a new test.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockbuilder.cli.main import build_parser, main
from conftest import REPO, run_process

NO_DEFAULT = (None, True, False, "", [], ())
RUNNABLE = ("validate", "resolve", "zoo", "schema")  # TensorFlow-free, and their examples use only the repo's files


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = sorted(_subparsers())


def _help(cli, *argv: str) -> str:
    code, out, err = cli(*argv, "--help")
    assert (code, err) == (0, ""), err
    return out


def _docs_and_examples(out: str) -> tuple[str, list[str]]:
    """The text after ``docs:`` (joined onto one line) and the lines of the final ``examples:`` block."""
    assert out.count("\ndocs: ") == 1, out
    docs, _, examples = out.split("\ndocs: ", 1)[1].partition("\n\nexamples:\n")
    return " ".join(docs.split()), examples.splitlines()


def _headings(path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.lstrip("#").replace("`", "").strip() for line in lines if line.startswith("#")]


def _option_entries(out: str) -> dict[str, str]:
    """Each option's entry of the ``options:`` section, on one line, keyed by each of its flags."""
    section = out.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries: dict[str, str] = {}
    for entry in re.split(r"\n(?=  -)", section):
        invocation = re.split(r"\s{2,}", entry.strip().splitlines()[0])[0]  # "-o PATH, --output PATH"
        for flag in re.findall(r"(?:^|, )(-{1,2}[\w-]+)", invocation):
            entries[flag] = " ".join(entry.split())
    return entries


@pytest.mark.parametrize("command", COMMANDS)
def test_help_ends_with_docs_then_examples_of_that_command(cli, command):
    docs, examples = _docs_and_examples(_help(cli, command))
    assert examples, f"blockbuilder {command} --help has no examples"
    for line in examples:
        assert (line + " ").startswith(f"  blockbuilder {command} "), line
    files = re.findall(r"[\w/.-]+\.md", docs)
    assert files, f"no docs file named in: docs: {docs}"
    for name in files:
        assert (REPO / name).is_file(), f"docs: {docs}: no file {name}"
    for section in re.findall(r'"([^"]+)"', docs):  # a quoted name is a heading of a file named before it
        before = [name for name in files if docs.index(name) < docs.index(f'"{section}"')]
        headings = _headings(REPO / before[-1])
        assert any(heading.startswith(section) for heading in headings), f"{before[-1]} has no section {section!r}"


def test_top_level_help_names_the_docs(cli):
    docs, _ = _docs_and_examples(_help(cli))
    assert "README.md" in docs and "docs/" in docs
    listed = re.search(r"docs/\*\.md \(([^)]*)\)", docs)
    assert listed, docs
    for name in listed.group(1).split(", "):
        assert (REPO / "docs" / f"{name}.md").is_file(), name


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_real_defaults_and_no_empty_ones(cli, command):
    entries = _option_entries(_help(cli, command))
    for action in _subparsers()[command]._actions:
        if not action.option_strings or action.default is argparse.SUPPRESS:
            continue
        entry = entries[action.option_strings[0]]
        if any(type(action.default) is type(empty) and action.default == empty for empty in NO_DEFAULT):  # 1 is no True
            assert f"(default: {action.default})" not in entry, entry  # noise like "(default: None)"
        else:
            assert "default" in entry, entry


def test_export_help_shows_the_tolerance_default(cli):
    entry = _option_entries(_help(cli, "export"))["--tolerance"]
    assert entry.endswith("(default: 0.0001)"), entry


@pytest.mark.parametrize("command", RUNNABLE)
def test_the_examples_work(cli, command, monkeypatch, tmp_path):
    """Examples that need no trained run and no TensorFlow run as they are, in the repository's folder."""
    _, examples = _docs_and_examples(_help(cli, command))
    monkeypatch.chdir(REPO)
    for line in examples:
        words = shlex.split(line, comments=True)
        words = words[1:words.index(">")] if ">" in words else words[1:]  # the shell's redirection
        code, out, err = cli(*words)
        assert (code, err) == (0, ""), f"{line}: {err}"
        assert out


def test_misspelled_command_gets_a_did_you_mean(cli):
    assert cli("trian") == (2, "", "blockbuilder: error: unknown command 'trian' (did you mean 'train'?)\n")
    assert cli("search-reprot", "searches/lenet")[2] == (
        "blockbuilder: error: unknown command 'search-reprot' (did you mean 'search-report'?)\n")


def test_misspelled_command_in_a_real_process():
    result = run_process("trian", "lenet5")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == "blockbuilder: error: unknown command 'trian' (did you mean 'train'?)\n"


def test_nonsense_command_gets_one_line_and_no_suggestion(cli):
    assert cli("qqxzzy", "lenet5") == (2, "", "blockbuilder: error: unknown command 'qqxzzy'\n")


@settings(max_examples=150, deadline=None, database=None)
@given(word=st.text(min_size=0, max_size=40).filter(lambda word: not word.startswith("-") and word not in COMMANDS))
def test_any_unknown_command_is_one_usage_line(word):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_:
        main([word, "lenet5"])
    assert exit_.value.code == 2
    assert out.getvalue() == ""
    assert err.getvalue().startswith("blockbuilder: error: unknown command ")
    assert len(err.getvalue().splitlines()) == 1 and err.getvalue().endswith("\n"), err.getvalue()
