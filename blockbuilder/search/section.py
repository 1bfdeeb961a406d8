"""Reading the ``search:`` section into a :class:`~blockbuilder.search.space.Space`, each mistake at its line.

Strict pydantic models check the keys and the types (unknown keys forbidden, no silent conversions); the
rest is checked here: the objectives, duplicate choices, ranges that are not a whole number of steps, a
grid over a continuous value. Where each value goes is checked by :mod:`~blockbuilder.search.paths`.
A pydantic error becomes one ``SpecError`` at the file, line and column of the value, in plain words.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PositiveFloat, PositiveInt, ValidationError

from blockbuilder.errors import Location, SpecError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq
from blockbuilder.language.pydantic_errors import spec_error
from blockbuilder.language.resolve import plain
from blockbuilder.language.sections import Section, SectionInput
from blockbuilder.search.budgets import Budget
from blockbuilder.search.paths import check_path
from blockbuilder.search.space import KINDS, OBJECTIVES, Dimension, Space, value_text

__all__ = ["SEARCH", "parse_space"]

MAX_INT = 2**53  # Optuna draws an int range through floats: beyond this, not every integer is one
MAX_STEPS = 2**53
MAX_SEED = 2**32 - 1  # what Optuna's samplers (NumPy) take
MAX_GRID = 100_000  # Optuna's grid sampler holds every point of the grid in a list
_NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


# --------------------------------------------------------------------------- the typed section


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=False)


class _Choice(_Strict):
    choice: list[Any] = Field(min_length=1)


class _IntRange(_Strict):
    int_: tuple[int, int] = Field(alias="int")
    step: PositiveInt = 1
    log: bool = False


class _FloatRange(_Strict):
    float_: tuple[FiniteFloat, FiniteFloat] = Field(alias="float")
    step: Optional[PositiveFloat] = Field(default=None, allow_inf_nan=False)
    log: bool = False


class _Budget(_Strict):
    max_params: Optional[PositiveFloat] = Field(default=None, allow_inf_nan=False)
    max_macs: Optional[PositiveFloat] = Field(default=None, allow_inf_nan=False)
    max_activation_memory: Optional[PositiveFloat] = Field(default=None, allow_inf_nan=False)
    max_latency_ms: Optional[PositiveFloat] = Field(default=None, allow_inf_nan=False)


class _Search(_Strict):
    space: dict[str, Any] = Field(default_factory=dict)
    objective: str | list[str] = "accuracy"
    sampler: Optional[Literal["tpe", "random", "grid", "nsga2"]] = None
    pruner: Optional[Literal["median", "hyperband", "none"]] = None
    budget: _Budget = Field(default_factory=_Budget)
    epochs: Optional[PositiveInt] = None
    trials: Optional[PositiveInt] = None
    seed: Optional[int] = None
    latency_batch: Optional[PositiveInt] = None


_KIND_MODELS: dict[str, type[_Strict]] = {"choice": _Choice, "int": _IntRange, "float": _FloatRange}

# --------------------------------------------------------------------------- parsing


def parse_space(document: Map) -> Space:
    """Check the document's ``search:`` section.

    Raises:
        SpecError: for anything wrong in it, at its file, line and column.
    """
    raw = document.get("search")
    where = document.loc_of("search")
    if not isinstance(raw, Map):
        raise SpecError("'search' is a mapping (space, objective, sampler, pruner, budget, epochs, trials, "
                        "seed)", where, "search")
    try:
        section = _Search.model_validate(dict(raw))
    except ValidationError as exc:
        raise spec_error(exc, raw, where, "search", _Search, words=_message) from None
    if section.seed is not None and not 0 <= section.seed <= MAX_SEED:
        raise SpecError(f"a seed is a whole number from 0 to {MAX_SEED:,} (2**32 - 1), got {shown(section.seed)}",
                        raw.loc_of("seed"), "search.seed")
    space_map = raw.get("space")
    if not isinstance(space_map, Map) or not space_map:
        raise SpecError("nothing to search: 'space' maps --set paths to values, e.g. "
                        "'variables.filters: {choice: [4, 8, 16]}'", raw.loc_of("space") if space_map is not None
                        else where, "search.space")
    dimensions = tuple(_dimension(space_map, key, document) for key in space_map)
    objectives = _objectives(section.objective, raw)
    multi = len(objectives) > 1
    sampler = section.sampler or ("nsga2" if multi else "tpe")
    if section.pruner not in (None, "none") and multi:
        raise SpecError("Optuna cannot prune a trial with several objectives: remove 'pruner' or search "
                        "one objective", raw.loc_of("pruner"), "search.pruner")
    pruner = "none" if multi else section.pruner or "median"
    space = Space(
        dimensions=dimensions, objectives=objectives, sampler=sampler, pruner=pruner,
        budget=Budget(**{key: None if value is None else value if key == "max_latency_ms" else int(value)
                         for key, value in section.budget.model_dump().items()}),
        epochs=section.epochs, trials=section.trials, seed=section.seed, latency_batch=section.latency_batch,
        loc=where,
        locs={key: raw.loc_of(key) for key in raw} | _budget_locs(raw),
    )
    if space.uses_latency and space.latency_table is None:
        budget = raw.get("budget")
        in_budget = isinstance(budget, Map) and "max_latency_ms" in budget
        at = budget.loc_of("max_latency_ms") if in_budget else raw.loc_of("objective")  # type: ignore[union-attr]
        batch = f" --batch-size {section.latency_batch}" if section.latency_batch else ""
        raise SpecError("latency is predicted from this machine's latency table, and there is none yet"
                        f"{f' for batch {section.latency_batch}' if batch else ''}: make it with 'blockbuilder "
                        f"profile ARCH --calibrate{batch}' (inference, float32)", at,
                        "search.budget.max_latency_ms" if in_budget else "search.objective")
    if sampler == "grid" and space.size is None:
        continuous = next(d for d in dimensions if d.size is None)
        raise SpecError(f"the grid sampler needs a finite space, but '{continuous.path}' is continuous "
                        "(give it a step, or use tpe or random)", raw.loc_of("sampler"), "search.sampler")
    if sampler == "grid" and (space.size or 0) > MAX_GRID:
        raise SpecError(f"the grid sampler tries every one of the {space.size:,} trials of this space, more than "
                        f"{MAX_GRID:,}: use tpe or random, or fewer values", raw.loc_of("sampler"), "search.sampler")
    return space


def _budget_locs(raw: Map) -> dict[str, Location | None]:
    budget = raw.get("budget")
    if not isinstance(budget, Map):
        return {}
    return {f"budget.{key}": budget.loc_of(key) for key in budget}


def _objectives(value: str | list[str], raw: Map) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else list(value)
    container = raw.get("objective")
    for index, name in enumerate(names):
        if name not in OBJECTIVES:
            where = container.loc_of(index) if isinstance(container, Seq) else raw.loc_of("objective")
            raise SpecError(f"unknown objective '{name}'{did_you_mean(name, OBJECTIVES)}: one of "
                            f"{', '.join(OBJECTIVES)}", where, "search.objective")
    if not names or names[0] != "accuracy" or len(set(names)) != len(names):
        raise SpecError("the objective is 'accuracy', or a list that starts with accuracy and adds 'macs', "
                        f"'params' and/or 'latency_ms' once each, got {shown(value)}", raw.loc_of("objective"),
                        "search.objective")
    return tuple(names)


def _dimension(space: Map, key: Any, document: Map) -> Dimension:
    path = f"search.space.{key}"
    if not isinstance(key, str):
        raise SpecError(f"a searched value is named by a --set path like 'variables.filters', got {shown(key)}",
                        space.key_loc(key), "search.space")
    spec = space[key]
    where = space.loc_of(key)
    if not isinstance(spec, Map):
        raise SpecError("expected {choice: [...]}, {int: [low, high]} or {float: [low, high]}", where, path)
    kinds = [k for k in spec if k in KINDS]
    if len(kinds) != 1:
        unknown = next((k for k in spec if k not in ("step", "log", *KINDS)), None)
        if unknown is not None:
            raise SpecError(f"unknown kind '{unknown}'{did_you_mean(unknown, KINDS)}: one of choice, int, float",
                            spec.key_loc(unknown), f"{path}.{unknown}")
        raise SpecError("give exactly one of choice, int or float", where, path)
    kind = kinds[0]
    model = _KIND_MODELS[kind]
    values = {k: tuple(v) if isinstance(v, list) and k in ("int", "float") else v for k, v in spec.items()}
    try:
        parsed = model.model_validate(values)
    except ValidationError as exc:
        raise spec_error(exc, spec, where, path, model, words=_message) from None
    dimension = _checked_dimension(kind, parsed, spec, key, path, where)
    check_path(dimension, space.key_loc(key), document, spec)
    return dimension


def _checked_dimension(kind: str, parsed: Any, spec: Map, key: str, path: str,
                       where: Location | None) -> Dimension:
    if isinstance(parsed, _Choice):
        texts = [value_text(plain(v)) for v in parsed.choice]
        items = spec["choice"]
        locs = tuple(items.loc_of(i) if isinstance(items, Seq) else where for i in range(len(texts)))
        duplicate = next((t for i, t in enumerate(texts) if t in texts[:i]), None)
        if duplicate is not None:
            raise SpecError(f"{duplicate} is listed twice", locs[texts.index(duplicate, 1 + texts.index(duplicate))],
                            f"{path}.choice")
        return Dimension(key, "choice", choices=tuple(texts), loc=where, choice_locs=locs)
    low, high = parsed.int_ if isinstance(parsed, _IntRange) else parsed.float_
    bounds = spec.loc_of(kind)
    if low > high:
        raise SpecError(f"expected [low, high] with low <= high, got [{low}, {high}]", bounds, f"{path}.{kind}")
    if kind == "int" and max(abs(low), abs(high)) > MAX_INT:
        raise SpecError(f"an int range lies within -{MAX_INT:,} and {MAX_INT:,} (2**53, what a float holds "
                        f"exactly), got [{low}, {high}]", bounds, f"{path}.{kind}")
    if kind == "float" and not math.isfinite(high - low):
        raise SpecError(f"the range [{low:g}, {high:g}] is wider than a float can hold: narrow it", bounds,
                        f"{path}.{kind}")
    if parsed.log and low <= 0:
        raise SpecError(f"a log range starts above 0, got [{low}, {high}]", bounds, f"{path}.{kind}")
    step = parsed.step
    if parsed.log and "step" in spec:
        raise SpecError("a range is either 'log' or has a 'step', not both", spec.loc_of("step"), f"{path}.step")
    if step is not None and (high - low) / step > MAX_STEPS:
        raise SpecError(f"the range {high - low:g} wide has more than {MAX_STEPS:,} steps of {step:g} "
                        "(2**53, past which a float cannot tell the values apart): give a larger step",
                        spec.loc_of("step"), f"{path}.step")
    if step is not None and not _whole(high - low, step):
        raise SpecError(f"the range {high - low:g} wide is not a whole number of steps of {step:g}",
                        spec.loc_of("step"), f"{path}.step")
    return Dimension(key, kind, low=low, high=high, step=step if kind == "float" else int(step or 1),
                     log=parsed.log, loc=where)


def _whole(width: float, step: float) -> bool:
    count = width / step
    return abs(count - round(count)) <= 1e-9 * max(1.0, abs(count))


# --------------------------------------------------------------------------- the section's wording of pydantic's errors


def _message(error: dict[str, Any], model: type[BaseModel], steps: list[Any]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    key = steps[-1] if steps else ""
    if kind == "extra_forbidden":
        known = [f.alias or name for name, f in _model_at(model, steps[:-1]).model_fields.items()]
        return f"unknown key '{key}'{did_you_mean(key, known)}: one of {', '.join(known)}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return f"unknown {key} {shown(value)}{did_you_mean(value, choices)}: one of {', '.join(choices)}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        hint = ""
        if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value.strip()):
            hint = " (a number in quotes is text: leave the quotes out)"
        return f"expected a number, got {shown(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {shown(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {shown(value)}"
    if kind in ("tuple_type", "too_short", "too_long") and key in ("int", "float"):
        return f"expected [low, high], got {shown(plain(list(value) if isinstance(value, tuple) else value))}"
    if kind == "missing" and steps[-2:-1] in (["int"], ["float"]):  # [] or [low] (read as a tuple)
        return f"expected [low, high], got {shown(plain(list(value or ())))}"
    if kind == "too_short" and key == "choice":
        return "a choice needs at least one value"
    if kind in ("list_type", "too_short") and key == "choice":
        return f"expected a list of values, got {shown(value)}"
    if kind in ("greater_than", "greater_than_equal"):
        return f"expected a number above 0, got {shown(value)}"
    if kind == "string_type" or (kind == "list_type" and key == "objective"):
        return f"expected a name or a list of names, got {shown(plain(value))}"
    if kind in ("dict_type", "model_type"):
        return f"expected a mapping, got {shown(plain(value))}"
    message = str(error["msg"])
    return f"{message[0].lower()}{message[1:]}, got {shown(plain(value))}"


def _model_at(model: type[BaseModel], steps: list[Any]) -> type[BaseModel]:
    for step in steps:
        annotation = model.model_fields.get(str(step))
        inner = getattr(annotation, "annotation", None)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
    return model


def _dotted(text: str) -> str:
    mantissa, _, exponent = text.strip().lower().partition("e")
    mantissa = mantissa if "." in mantissa else f"{mantissa}.0"
    if exponent and exponent[0] not in "+-":
        exponent = f"+{exponent}"
    return f"{mantissa}e{exponent}" if exponent else mantissa


# --------------------------------------------------------------------------- the section


def _read(given: SectionInput) -> dict[str, Any]:
    """Loading keeps ``search:`` as written: ``validate`` and ``search`` check it (:func:`parse_space`),
    against the ``--set`` paths of the file they load."""
    return {}


def _schema(defs: dict[str, Any]) -> dict[str, Any]:
    """``search:``'s JSON Schema, from the section's model."""
    found = _Search.model_json_schema(ref_template="#/$defs/{model}")
    defs.update(found.pop("$defs", {}))
    return {"search": found}


SEARCH = Section(name="search", keys=("search",), read=_read, schema=_schema, order=20)
