"""Find, merge and check an architecture document.

``extends:`` and ``--set`` follow one rule: mappings merge key by key, anything else (lists
included) is replaced whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

from blockbuilder.errors import Location, SpecError, UsageError, did_you_mean, shown
from blockbuilder.files import not_regular
from blockbuilder.language.document import MAX_DEPTH, Map, Seq, load_file, load_text, loc_of

#: The keys the language reads itself; the registered sections add theirs (:mod:`language.sections`).
LANGUAGE_KEYS = ("name", "description", "extends", "input", "input_name", "classes", "variables",
                 "defaults", "blocks", "network", "meta")
MAX_EXTENDS = 16
_SET_PATH = re.compile(r"[A-Za-z_][\w-]*|\[\d+\]")


def zoo_dir() -> Path:
    """The folder of the architecture zoo (``architectures/`` in the repository)."""
    return Path(str(resources.files("blockbuilder.architectures")))


def zoo_names() -> list[str]:
    """Names of every architecture in the zoo."""
    return sorted(p.stem for p in zoo_dir().glob("*.yaml"))


def find(path_or_name: str | Path) -> Path:
    """A path as given when it exists, else the zoo file of that name.

    Raises:
        UsageError: when it is neither, or is there but not a regular file (a FIFO, a device).
    """
    path = Path(path_or_name)
    why = not_regular(path)
    if why is None:
        return path
    if path.is_dir():
        raise UsageError(f"{path} is a directory, not an architecture file")
    if path.exists():  # a FIFO or a device: said, not looked for in the zoo
        raise UsageError(f"{path}: {why}")
    name = str(path_or_name)
    candidate = zoo_dir() / f"{name.removesuffix('.yaml')}.yaml"
    if "/" not in name and candidate.is_file():
        return candidate
    raise UsageError(f"no file or zoo architecture called '{name}'{did_you_mean(name, zoo_names())}; "
                     "'blockbuilder zoo' lists the zoo")


def read_document(path_or_name: str | Path, overrides: Iterable[str] = ()) -> tuple[Map, Path]:
    """The document with ``extends:`` merged and ``--set`` overrides applied."""
    path = find(path_or_name)
    document = _with_bases(path, [])
    for override in overrides:
        apply_override(document, override)
    return document, path


def _with_bases(path: Path, chain: list[Path]) -> Map:
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join(p.name for p in [*chain, resolved])
        raise SpecError(f"'extends' loops back ({names})", Location(str(path), 1, 1), "extends")
    if len(chain) >= MAX_EXTENDS:
        raise SpecError(f"'extends' nested deeper than {MAX_EXTENDS}", Location(str(path), 1, 1), "extends")
    document = load_file(path)
    if not isinstance(document, Map):
        raise SpecError("an architecture file is a mapping (name, input, classes, network ...)",
                        getattr(document, "loc", None) or Location(str(path), 1, 1))
    base_name = document.pop("extends", None)
    if base_name is None:
        return document
    where = document.loc_of("extends")
    if not isinstance(base_name, str):
        raise SpecError("'extends' names one file or zoo architecture", where, "extends")
    base_path = path.parent / base_name
    try:
        base_file = find(base_path if base_path.exists() else base_name)
    except UsageError as exc:
        raise SpecError(str(exc), where, "extends") from None
    merged: Map = merge(_with_bases(base_file, [*chain, resolved]), document)
    return merged


def merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key; anything else in ``override`` replaces ``base``."""
    if not (isinstance(base, Map) and isinstance(override, Map)):
        return override
    result = Map(base, loc=override.loc or base.loc)
    result.locs, result.key_locs = dict(base.locs), {**base.key_locs, **override.key_locs}
    for key, value in override.items():
        result[key] = merge(base[key], value) if key in base else value
        result.locs[key] = override.loc_of(key)
    return result


def apply_override(document: Map, override: str) -> None:
    """Apply one ``path.to.key=value`` (value read as YAML) in place.

    Raises:
        UsageError: for a malformed override or a path that does not fit the document.
    """
    if "=" not in override:
        raise UsageError(f"--set expects PATH=VALUE, got '{override}'")
    path_text, value_text = override.split("=", 1)
    steps = _SET_PATH.findall(path_text)
    if not steps or "".join(s if s.startswith("[") else f".{s}" for s in steps).lstrip(".") != path_text:
        raise UsageError(f"--set path '{path_text}' is not like 'train.epochs' or 'network[2].conv.filters'")
    if len(steps) > MAX_DEPTH:  # the file's own nesting budget: deeper would recurse past Python's limit
        raise UsageError(f"--set {shown(path_text, 40)}: nests deeper than {MAX_DEPTH} levels")
    where = Location(f"--set {override}", 0, 0)
    try:
        value = load_text(value_text, where.file) if value_text.strip() else ""
    except SpecError as exc:
        raise UsageError(f"--set {override}: {exc.message}") from None
    _stamp(value, where)
    container: Any = document
    for step, following in zip(steps, [*steps[1:], None]):
        key: Any = int(step[1:-1]) if step.startswith("[") else step
        if following is None:
            _assign(container, key, value, where, path_text)
            return
        container = _descend(container, key, following, path_text)


def _descend(container: Any, key: Any, following: str, path_text: str) -> Any:
    if isinstance(key, int):
        if not isinstance(container, Seq) or key >= len(container):
            raise UsageError(f"--set {path_text}: no item [{key}] there")
        return container[key]
    if not isinstance(container, Map):
        raise UsageError(f"--set {path_text}: '{key}' is not inside a mapping")
    if key not in container:
        container[key] = Seq() if following.startswith("[") else Map()
        container.locs[key] = None
    return container[key]


def _assign(container: Any, key: Any, value: Any, where: Location, path_text: str) -> None:
    if isinstance(key, int):
        if not isinstance(container, Seq) or key >= len(container):
            raise UsageError(f"--set {path_text}: no item [{key}] there")
        container[key] = merge(container[key], value)
        container.locs[key] = where
        return
    if not isinstance(container, Map):
        raise UsageError(f"--set {path_text}: '{key}' is not inside a mapping")
    container[key] = merge(container[key], value) if key in container else value
    container.locs[key] = where


def _stamp(value: Any, where: Location) -> None:
    """Give an override's values the ``--set`` location, so errors name the override."""
    if isinstance(value, Map):
        value.loc = where
        value.locs = {k: where for k in value}
        for item in value.values():
            _stamp(item, where)
    elif isinstance(value, Seq):
        value.loc = where
        value.locs = [where] * len(value)
        for item in value:
            _stamp(item, where)


def check_top_level(document: Map, section_keys: Iterable[str] = ()) -> None:
    """Unknown top-level keys (neither the language's nor a section's) and missing essentials are errors."""
    known = (*LANGUAGE_KEYS, *section_keys)
    for key in document:
        if key not in known:
            raise SpecError(f"unknown key '{key}'{did_you_mean(key, known)}", document.key_loc(key), str(key))
    for key in ("input", "network"):
        if key not in document:
            raise SpecError(f"missing required key '{key}'", document.loc, "")


def plain(value: Any) -> Any:
    """``Map``/``Seq`` -> ``dict``/``list`` (for YAML or JSON output)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


__all__ = ["find", "read_document", "merge", "apply_override", "zoo_dir", "zoo_names", "plain",
           "check_top_level", "loc_of"]
