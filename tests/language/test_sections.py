"""Top-level sections come from a registry, as blocks do: keys, schema and Architecture attributes."""

from __future__ import annotations

import ast
import functools
import json
from pathlib import Path
from typing import Any

import pytest

import blockbuilder
from blockbuilder.errors import SpecError
from blockbuilder.language.sections import Section, register_section, registered_sections, section_keys

REPO = Path(__file__).resolve().parents[2]
LANGUAGE = REPO / "blockbuilder" / "language"
FILES = sorted([*(REPO / "architectures").glob("*.yaml"), *(REPO / "examples").glob("*.yaml")])


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_language_imports_no_training_transfer_or_search_module() -> None:
    outside = {f"{path.name}: {module}" for path in LANGUAGE.glob("*.py") for module in imported_modules(path)
               if module.startswith(("blockbuilder.training", "blockbuilder.transfer", "blockbuilder.search"))}
    assert outside == set()


def test_the_sections_of_the_package_are_registered_in_reading_order() -> None:
    assert [(s.name, s.keys) for s in registered_sections()] == [
        ("train", ("train",)), ("transfer", ("weights", "freeze", "head")), ("search", ("search",))]
    assert section_keys() == ("train", "weights", "freeze", "head", "search")


@functools.cache
def _validator() -> Any:
    """One validator of the language's schema, the schema itself checked once (``jsonschema.validate``
    checks it again on every call: a fifth of a second each)."""
    jsonschema = pytest.importorskip("jsonschema")
    from blockbuilder.language.schema import json_schema

    schema = json_schema()
    kind = jsonschema.validators.validator_for(schema)
    kind.check_schema(schema)
    return kind(schema)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_zoo_and_example_file_validates_against_the_schema(path: Path) -> None:
    import yaml

    _validator().validate(yaml.safe_load(path.read_text()))


def test_a_registered_section_gets_its_key_its_schema_and_its_attribute(write) -> None:
    seen: list[dict] = []

    def read(given):
        seen.append(dict(given.read))
        section = given.document.get("notes") or {}
        return {"notes": dict(section)}

    register_section(Section("notes", ("notes",), read, lambda defs: {"notes": {"type": "object"}}, order=99))
    try:
        arch = blockbuilder.load(write("extends: lenet5\nnotes: {author: me}\n"))
        from blockbuilder.language.schema import json_schema

        assert arch.notes == {"author": "me"} and "notes" in json_schema()["properties"]
        assert set(seen[0]) == {"train", "weights", "freeze"}  # what the sections before it read
    finally:
        from blockbuilder.language import sections

        del sections._SECTIONS["notes"]
    with pytest.raises(SpecError, match="unknown key 'notes'"):
        blockbuilder.load(write("extends: lenet5\nnotes: {author: me}\n"))


def test_a_section_key_cannot_be_taken_twice() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_section(Section("train2", ("train",), lambda given: {}, lambda defs: {}))


def test_loads_refuses_a_non_string_extends_as_load_does(write) -> None:
    path = write("extends: [lenet5]\n")
    with pytest.raises(SpecError, match="'extends' names one file or zoo architecture") as loaded:
        blockbuilder.load(path)
    with pytest.raises(SpecError, match="'extends' names one file or zoo architecture") as given:
        blockbuilder.loads(path.read_text(), filename=str(path))
    assert str(loaded.value) == str(given.value)


def test_an_architecture_without_the_section_attribute_says_so() -> None:
    with pytest.raises(AttributeError, match="no attribute or section value 'nothing'"):
        blockbuilder.load("lenet5").nothing  # noqa: B018
    assert json.dumps(sorted(blockbuilder.load("lenet5").sections)) == '["freeze", "train", "weights"]'
