"""Property-based fuzzing of the language (issue 10): mutations of the zoo files either validate or
end in a located ``SpecError`` -- never another exception, never a hang; a sample of the accepted
ones is built and its summary adds up.

``BLOCKBUILDER_FUZZ_EXAMPLES=2000 pytest tests/language/test_fuzz_language.py`` runs it for longer.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import blockbuilder
from blockbuilder import SpecError
from blockbuilder.language.resolve import zoo_dir

EXAMPLES = int(os.environ.get("BLOCKBUILDER_FUZZ_EXAMPLES", "150"))
SMALL_ZOO = ["lenet5", "harley_mnist", "resnet20_cifar", "densenet_bc100_k12", "fractalnet20", "pyramidnet110_a48",
             "resnext29_8x64d", "googlenet"]
EXTREMES = [0, -1, 1, 2**31, 10**30, 1e308, float("inf"), -0.5, True, False, None, "", "x" * 300, "${", "$nope",
            "${1/0}", "${round(5, -10**8)}", "${2**10**10}", "${'a' * 10**9}", [], {}, [[[]]], {"conv": 4},
            "identity", "sequence", "${i}", "$in_channels"]
NAMES = ["conv1", "input", "shortcut", "add", "body", "a/b", "stage1", "dense1", "x" * 120, "unit1", "path1"]


def documents() -> dict[str, Any]:
    return {name: yaml.safe_load((zoo_dir() / f"{name}.yaml").read_text()) for name in SMALL_ZOO}


DOCUMENTS = documents()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _set(document: Any, path: tuple[Any, ...], value: Any, delete: bool = False) -> Any:
    if not path:
        return value
    container = document
    for step in path[:-1]:
        container = container[step]
    if delete:
        del container[path[-1]]
    else:
        container[path[-1]] = value
    return document


@st.composite
def mutants(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(SMALL_ZOO))
    document = yaml.safe_load(yaml.safe_dump(DOCUMENTS[name]))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(document)[1:]
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["delete", "extreme", "name", "swap", "recurse"]))
        if action == "delete":
            document = _set(document, path, None, delete=True)
        elif action == "extreme":
            document = _set(document, path, draw(st.sampled_from(EXTREMES)))
        elif action == "name" and isinstance(document.get("network"), list) and document["network"]:
            index = draw(st.integers(0, len(document["network"]) - 1))
            if isinstance(document["network"][index], dict):
                document["network"][index]["name"] = draw(st.sampled_from(NAMES))
        elif action == "swap":
            other = draw(st.sampled_from(paths))
            value = document
            for step in other:
                value = value[step]
            document = _set(document, path, yaml.safe_load(yaml.safe_dump(value)))
        elif action == "recurse":
            kind = draw(st.sampled_from(["sequence", "residual", "repeat"]))
            body = {"sequence": {"body": ["sequence"]}, "residual": {"body": ["residual"]},
                    "repeat": {"times": 2, "body": ["repeat"]}}[kind]
            document.setdefault("defaults", {})
            if isinstance(document["defaults"], dict):
                document["defaults"][kind] = body
                if isinstance(document.get("network"), list):
                    document["network"].insert(0, kind)
    return yaml.safe_dump(document, sort_keys=False)


BUILT: list[str] = []


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=mutants())
def test_a_mutated_zoo_file_validates_or_fails_at_a_line(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "arch.yaml"
    path.write_text(text)
    started = time.process_time()
    try:
        arch = blockbuilder.load(path)
    except SpecError as exc:
        assert str(exc).startswith(f"{path}:") or str(exc).startswith("--set"), str(exc)
        assert len(str(exc)) < 1000
    else:
        from blockbuilder.report.summary import estimate

        params, _ = estimate(arch)
        if params < 300_000 and len(BUILT) < 5:  # a sample of accepted mutants is built: the summary adds up
            summary = blockbuilder.summarize(arch)
            assert summary.params_total == params
            assert sum(block.params for block in summary.blocks) == summary.params_total
            BUILT.append(arch.name)
    assert time.process_time() - started < 20, text  # generous on a loaded machine; the budget is well under 1 s
