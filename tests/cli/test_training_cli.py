"""Command-line habits (issue 11, item 8): ``--help`` ends with examples; shell completion from the parser."""

from __future__ import annotations

import shutil
import subprocess

import pytest


@pytest.mark.parametrize("command", ["train", "report"])
def test_help_ends_with_examples(cli, command):
    code, out, _ = cli(command, "--help")
    assert code == 0
    examples = out.split("examples:\n", 1)[1].splitlines()
    assert examples and all(line.startswith(f"  blockbuilder {command} ") for line in examples), out


def test_bash_completion_from_the_parser_completes_commands_and_flags(tmp_path):
    shtab = pytest.importorskip("shtab", reason="shell completion needs shtab (pip install shtab)")
    if shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    from blockbuilder.cli.main import build_parser

    script = tmp_path / "blockbuilder.bash"
    script.write_text(shtab.complete(build_parser(), shell="bash"))

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        program = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
                   f"COMP_POINT=${{#COMP_LINE}}; _shtab_blockbuilder blockbuilder {words[-1]} {words[-2]}; "
                   "printf '%s\\n' \"${COMPREPLY[@]}\"")
        return subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True).stdout.split()

    assert complete("blockbuilder", "re") == ["resolve", "report"]
    assert complete("blockbuilder", "train", "--res") == ["--resume"]
    assert "--precision" in complete("blockbuilder", "train", "--pr")
