"""Docs that cannot drift: every ```python block of README.md and docs/*.md runs.

The rule: a block runs unless the line before its opening fence is ``<!-- not run: REASON -->``. The
blocks of one file run in order in one namespace, as a reader pasting them into one session would,
in a working directory holding what the docs talk about: ``architectures/`` and ``examples/``,
``digit.png``, ``exported/lenet5`` (a SavedModel of an untrained LeNet-5) and ``resnet50.keras``
(made only when a block names them). All files run in one process, so TensorFlow is imported once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\s*$")
NOT_RUN = re.compile(r"^<!-- not run: .+ -->\s*$")


def python_blocks(path: Path) -> list[tuple[int, str, bool]]:
    """``(line of the fence, code, runs)`` of every ```python block of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
            skipped = index > 0 and NOT_RUN.match(lines[index - 1]) is not None
            blocks.append((index + 1, "\n".join(lines[index + 1:end]) + "\n", not skipped))
            index = end
        index += 1
    return blocks


BLOCKS = [(path, line, code) for path in DOCS for line, code, runs in python_blocks(path) if runs]

RUNNER = r'''
import json, os, sys, traceback
from pathlib import Path

blocks = json.loads(Path(sys.argv[1]).read_text())
os.symlink(sys.argv[2] + "/architectures", "architectures")
os.symlink(sys.argv[2] + "/examples", "examples")
everything = "\n".join(code for _, _, code in blocks)
if "digit.png" in everything:
    from PIL import Image, ImageDraw
    image = Image.new("L", (32, 32))
    ImageDraw.Draw(image).line([(16, 4), (16, 28)], fill=255, width=3)
    image.save("digit.png")
if "exported/lenet5" in everything:
    import blockbuilder
    from blockbuilder.serving.export import export_model
    export_model(blockbuilder.build(blockbuilder.load("lenet5")), "savedmodel", "exported/lenet5")
if "resnet50.keras" in everything:
    import blockbuilder
    blockbuilder.build(blockbuilder.load("resnet50", overrides=["classes=10"])).save("resnet50.keras")
results, namespaces = {}, {}
for name, line, code in blocks:
    namespace = namespaces.setdefault(name, {"__name__": "__main__"})
    try:
        exec(compile(code, f"{name}:{line}", "exec"), namespace)
        results[f"{name}:{line}"] = None
    except BaseException:
        results[f"{name}:{line}"] = traceback.format_exc(limit=-3)
print("RESULTS " + json.dumps(results))
'''


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, str | None]:
    work = tmp_path_factory.mktemp("docs")
    blocks = work / "blocks.json"
    blocks.write_text(json.dumps([(str(path.relative_to(REPO)), line, code) for path, line, code in BLOCKS]))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
           "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    done = subprocess.run([sys.executable, "-c", RUNNER, str(blocks), str(REPO)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    found = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    assert found, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(found[-1][len("RESULTS "):])


@pytest.mark.parametrize("path, line, code", BLOCKS, ids=[f"{p.name}:{n}" for p, n, _ in BLOCKS])
def test_python_block_runs(results, path, line, code):
    error = results[f"{path.relative_to(REPO)}:{line}"]
    assert error is None, f"the ```python block at {path.name}:{line} fails:\n{error}"


def test_every_skipped_block_says_why():
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, text in enumerate(lines):
            if text.startswith("<!-- not run"):
                assert NOT_RUN.match(text) and FENCE.match(lines[index + 1]), f"{path.name}:{index + 1}"


def test_the_rule_finds_the_blocks():
    assert [(n, r) for n, _, r in python_blocks(REPO / "docs" / "export.md")][-1][1] is False  # marked
    assert len(BLOCKS) >= 5
