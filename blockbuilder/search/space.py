"""The ``search:`` section of an architecture file: what varies, how a trial is judged, what it may cost.

```yaml
search:
  space:                                    # a --set path -> the values it takes
    variables.filters: {choice: [4, 8, 16]}
    variables.units: {int: [16, 64], step: 16}
    train.optimizer.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
  objective: accuracy                       # or [accuracy, macs]: a Pareto front (NSGA-II)
  sampler: tpe                              # tpe, random, grid, nsga2
  pruner: median                            # median, hyperband, none (one objective only)
  budget: {max_macs: 200000}                # max_params, max_macs, max_activation_memory (bytes)
  epochs: 1                                 # per trial (default: train.epochs)
  trials: 6                                 # default of --trials
```

A trial is the document with one value per path applied as ``--set PATH=VALUE`` overrides, so every
trial goes through the same checks as a file. This module imports neither Optuna nor TensorFlow.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, FiniteFloat, PositiveFloat, PositiveInt, ValidationError

from blockbuilder.errors import Location, SpecError, UsageError, did_you_mean, shown
from blockbuilder.language.document import Map, Seq, load_text
from blockbuilder.language.resolve import plain
from blockbuilder.search.budgets import Budget, Figures, measure
from blockbuilder.text import human

__all__ = [
    "KINDS",
    "OBJECTIVES",
    "PRUNERS",
    "SAMPLERS",
    "Dimension",
    "Family",
    "Space",
    "check_capacity",
    "check_family",
    "describe_space",
    "explore_family",
    "parse_space",
    "value_text",
]

KINDS = ("choice", "int", "float")
OBJECTIVES = ("accuracy", "macs", "params")
SAMPLERS = ("tpe", "random", "grid", "nsga2")
PRUNERS = ("median", "hyperband", "none")
FAMILY_LIMIT = 200  # members loaded to find the family's range (all of them when there are no more)
FAMILY_SECONDS = 2.0  # ... or fewer when loading them takes longer than this
_PATH_STEP = re.compile(r"[A-Za-z_][\w-]*|\[\d+\]")
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


class _Search(_Strict):
    space: dict[str, Any] = Field(default_factory=dict)
    objective: str | list[str] = "accuracy"
    sampler: Optional[Literal["tpe", "random", "grid", "nsga2"]] = None
    pruner: Optional[Literal["median", "hyperband", "none"]] = None
    budget: _Budget = Field(default_factory=_Budget)
    epochs: Optional[PositiveInt] = None
    trials: Optional[PositiveInt] = None
    seed: Optional[int] = None


_KIND_MODELS: dict[str, type[_Strict]] = {"choice": _Choice, "int": _IntRange, "float": _FloatRange}


# --------------------------------------------------------------------------- dimensions


def value_text(value: Any) -> str:
    """``value`` as the YAML text of a ``--set`` override that reads back as the same value.

    ``yaml.safe_dump`` quotes what YAML would otherwise read as something else (``'yes'``, ``'1e3'``) and
    writes floats with a dot (``1.0e-05``), which PyYAML needs to read them as numbers.
    """
    text = str(yaml.safe_dump(value, default_flow_style=True, width=1_000_000_000, allow_unicode=True))
    return text.removesuffix("\n...\n").rstrip("\n")


@dataclass(frozen=True)
class Dimension:
    """One searched value: a ``--set`` path and the values it takes.

    Attributes:
        path: Where the value goes, e.g. ``variables.filters`` or ``train.optimizer.learning_rate``.
        kind: ``choice``, ``int`` or ``float``.
        low / high: The bounds of a range (both included).
        step: The step of a range (``None``: any float).
        log: Sample a range uniformly in log space.
        choices: A choice's values, each as the YAML text of its override.
        loc: Where the dimension is written.
    """

    path: str
    kind: str
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False
    choices: tuple[str, ...] = ()
    loc: Location | None = None

    @property
    def is_training(self) -> bool:
        """Whether the value is a training setting (it changes no parameter, MAC or activation)."""
        return self.path == "train" or self.path.startswith(("train.", "train["))

    @property
    def size(self) -> int | None:
        """How many values it takes; ``None`` when continuous."""
        if self.kind == "choice":
            return len(self.choices)
        if self.kind == "int":
            return int((self.high - self.low) // (self.step or 1)) + 1
        if self.low == self.high:
            return 1
        return None if self.step is None else round((self.high - self.low) / self.step) + 1

    def values(self) -> list[Any]:
        """Every value, in order (only when :attr:`size` is not ``None``)."""
        count = self.size
        assert count is not None, self.path
        if self.kind == "choice":
            return [load_text(text) for text in self.choices]
        if self.kind == "int":
            return [int(self.low) + i * int(self.step or 1) for i in range(count)]
        return [self.low + i * (self.step or 0.0) for i in range(count)]

    def random_value(self, rng: random.Random) -> Any:
        """A value drawn uniformly (in log space for ``log``), for exploring the family."""
        count = self.size
        if count is not None and not self.log:
            index = rng.randrange(count)
            return self.values()[index] if self.kind == "choice" or count <= 4096 else self._nth(index)
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
            return int(round(value)) if self.kind == "int" else value
        return rng.uniform(self.low, self.high)

    def _nth(self, index: int) -> Any:
        value = self.low + index * (self.step or 1)
        return int(value) if self.kind == "int" else value

    def corners(self) -> tuple[Any, Any]:
        """The first and the last value."""
        if self.kind == "choice":
            return load_text(self.choices[0]), load_text(self.choices[-1])
        if self.kind == "int":
            return int(self.low), int(self.high)
        return self.low, self.high

    def override(self, value: Any) -> str:
        """The ``--set`` override that applies ``value`` (a choice's text, or a number)."""
        if self.kind == "choice" and isinstance(value, str) and value in self.choices:
            return f"{self.path}={value}"
        return f"{self.path}={value_text(value)}"

    def shown(self, value: Any) -> str:
        """``value`` as a table shows it."""
        if self.kind == "choice" and isinstance(value, str) and value in self.choices:
            return value
        if isinstance(value, float):
            return f"{value:.4g}"
        return value_text(value)

    def describe(self) -> str:
        """``choice [4, 8, 16]``, ``int 16..64 step 16``, ``float 0.0001..0.01 log``."""
        if self.kind == "choice":
            return f"choice [{', '.join(self.choices)}]"
        low, high = (f"{v:g}" for v in (self.low, self.high))
        step = f" step {self.step:g}" if self.step not in (None, 1) else ""
        return f"{self.kind} {low}..{high}{step}{' log' if self.log else ''}"

    def distribution(self) -> Any:
        """The Optuna distribution (imports Optuna)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class Space:
    """The checked ``search:`` section.

    Attributes:
        dimensions: The searched values, in the order written.
        objectives: ``("accuracy",)``, or ``("accuracy", "macs")`` and the like for a Pareto front.
        sampler: ``tpe``, ``random``, ``grid`` or ``nsga2``.
        pruner: ``median``, ``hyperband`` or ``none`` (always ``none`` with several objectives).
        budget: What a trial may cost.
        epochs: Epochs per trial (``None``: the ``train:`` section's).
        trials: How many trials when ``--trials`` is not given.
        seed: The sampler's seed (``None``: a fresh one per worker).
        loc: Where the section is written; ``locs`` holds each key's location.
    """

    dimensions: tuple[Dimension, ...]
    objectives: tuple[str, ...] = ("accuracy",)
    sampler: str = "tpe"
    pruner: str = "median"
    budget: Budget = field(default_factory=Budget)
    epochs: int | None = None
    trials: int | None = None
    seed: int | None = None
    loc: Location | None = None
    locs: dict[str, Location | None] = field(default_factory=dict)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def architecture_dimensions(self) -> tuple[Dimension, ...]:
        return tuple(d for d in self.dimensions if not d.is_training)

    @property
    def size(self) -> int | None:
        """How many different trials there are; ``None`` when a value is continuous."""
        sizes = [d.size for d in self.dimensions]
        return None if None in sizes else math.prod(s for s in sizes if s is not None)

    def fingerprint(self) -> dict[str, Any]:
        """What makes two searches the same study (stored with it, compared on resume)."""
        return {"objectives": list(self.objectives),
                "space": {d.path: d.describe() for d in self.dimensions}}


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
        raise _spec_error(exc, raw, "search", where, _Search) from None
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
        budget=Budget(**{key: None if value is None else int(value)
                         for key, value in section.budget.model_dump().items()}),
        epochs=section.epochs, trials=section.trials, seed=section.seed, loc=where,
        locs={key: raw.loc_of(key) for key in raw} | _budget_locs(raw),
    )
    if sampler == "grid" and space.size is None:
        continuous = next(d for d in dimensions if d.size is None)
        raise SpecError(f"the grid sampler needs a finite space, but '{continuous.path}' is continuous "
                        "(give it a step, or use tpe or random)", raw.loc_of("sampler"), "search.sampler")
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
        raise SpecError("the objective is 'accuracy', or a list that starts with accuracy and adds 'macs' "
                        f"and/or 'params' once each, got {shown(value)}", raw.loc_of("objective"),
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
        raise _spec_error(exc, spec, path, where, model) from None
    dimension = _checked_dimension(kind, parsed, spec, key, path, where)
    _check_path(dimension, space.key_loc(key), document, spec)
    return dimension


def _checked_dimension(kind: str, parsed: Any, spec: Map, key: str, path: str,
                       where: Location | None) -> Dimension:
    if isinstance(parsed, _Choice):
        texts = [value_text(plain(v)) for v in parsed.choice]
        duplicate = next((t for i, t in enumerate(texts) if t in texts[:i]), None)
        if duplicate is not None:
            items = spec["choice"]
            raise SpecError(f"{duplicate} is listed twice", items.loc_of(texts.index(duplicate, 1 + texts.index(
                duplicate))) if isinstance(items, Seq) else where, f"{path}.choice")
        return Dimension(key, "choice", choices=tuple(texts), loc=where)
    low, high = parsed.int_ if isinstance(parsed, _IntRange) else parsed.float_
    bounds = spec.loc_of(kind)
    if low > high:
        raise SpecError(f"expected [low, high] with low <= high, got [{low}, {high}]", bounds, f"{path}.{kind}")
    if parsed.log and low <= 0:
        raise SpecError(f"a log range starts above 0, got [{low}, {high}]", bounds, f"{path}.{kind}")
    step = parsed.step
    if parsed.log and "step" in spec:
        raise SpecError("a range is either 'log' or has a 'step', not both", spec.loc_of("step"), f"{path}.step")
    if step is not None and not _whole(high - low, step):
        raise SpecError(f"the range {high - low:g} wide is not a whole number of steps of {step:g}",
                        spec.loc_of("step"), f"{path}.step")
    return Dimension(key, kind, low=low, high=high, step=step if kind == "float" else int(step or 1),
                     log=parsed.log, loc=where)


def _whole(width: float, step: float) -> bool:
    count = width / step
    return abs(count - round(count)) <= 1e-9 * max(1.0, abs(count))


def _spec_error(exc: ValidationError, raw: Map, base: str, where: Location | None,
                model: type[BaseModel]) -> SpecError:
    """The first pydantic error as one located line, in plain words."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    steps = list(error["loc"])
    if error["type"] in ("literal_error", "float_type", "int_type", "bool_type", "string_type") and \
            steps and isinstance(steps[-1], str) and steps[-1] in ("str", "list[str]", "int", "float"):
        steps = steps[:-1]  # a union member's name is not a place in the file
    container: Any = raw
    place = where
    for index, step in enumerate(steps):
        if isinstance(container, Map) and step in container:
            last = index == len(steps) - 1
            place = container.key_loc(step) if last and error["type"] == "extra_forbidden" else \
                container.loc_of(step)
            container = container[step]
        elif isinstance(container, Seq) and isinstance(step, int) and step < len(container):
            place, container = container.loc_of(step), container[step]
        else:
            break
    path = base + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)
    return SpecError(_message(dict(error), model, steps), place, path)


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
            hint = f" (YAML reads {value} as text: write it with a dot, e.g. {_dotted(value)})"
        return f"expected a number, got {shown(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected an integer, got {shown(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {shown(value)}"
    if kind in ("tuple_type", "too_short", "too_long") and key in ("int", "float"):
        return f"expected [low, high], got {shown(plain(value))}"
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


# --------------------------------------------------------------------------- where a value goes


def _check_path(dimension: Dimension, key_loc: Location | None, document: Map, spec: Map) -> None:
    """A path must be a ``--set`` path into something the document has (or the ``train:`` section knows)."""
    path = dimension.path
    steps = _PATH_STEP.findall(path)
    joined = "".join(s if s.startswith("[") else f".{s}" for s in steps).lstrip(".")
    where = f"search.space.{path}"
    if not steps or joined != path:
        raise SpecError(f"'{path}' is not a --set path like 'variables.filters' or 'network[2].conv.filters'",
                        key_loc, where)
    if steps[0] == "search":
        raise SpecError("the search section cannot search itself", key_loc, where)
    if steps[0] == "train":
        _check_training_path(dimension, steps[1:], key_loc, spec)
        return
    if steps[0] == "variables":
        variables = document.get("variables")
        names = list(variables) if isinstance(variables, Map) else []
        if len(steps) < 2 or steps[1] not in names:
            name = steps[1] if len(steps) > 1 else ""
            raise SpecError(f"no variable '{name}' in 'variables'{did_you_mean(name, names)}: a searched "
                            "variable needs a value there (the family's default member)", key_loc, where)
    _check_document_path(steps, document, key_loc, where)


def _check_document_path(steps: list[str], document: Map, key_loc: Location | None, where: str) -> None:
    container: Any = document
    for index, step in enumerate(steps):
        last = index == len(steps) - 1
        if step.startswith("["):
            position = int(step[1:-1])
            if not isinstance(container, Seq) or position >= len(container):
                raise SpecError(f"'{''.join(steps[:index]) or steps[0]}' has no item {step}", key_loc, where)
            container = container[position]
            continue
        if not isinstance(container, Map):
            raise SpecError(f"'{step}' is not inside a mapping in the document", key_loc, where)
        if step not in container:
            if last and index > 0:
                return  # a key that keeps its default (the block's spec checks it when a trial loads)
            raise SpecError(f"the document has no '{step}'{did_you_mean(step, [str(k) for k in container])}",
                            key_loc, where)
        container = container[step]


def _check_training_path(dimension: Dimension, steps: list[str], key_loc: Location | None, spec: Map) -> None:
    """Walk the ``train:`` section's spec classes; check each value against the field it lands in."""
    from pydantic import TypeAdapter

    from blockbuilder.training.spec import TrainSpec

    model: Any = TrainSpec
    found: Any = None
    where = f"search.space.{dimension.path}"
    for index, step in enumerate(steps):
        fields = getattr(model, "model_fields", None)
        if fields is None or step.startswith("["):
            return  # inside a list or a free-form value: the trial's own check decides
        if step not in fields:
            raise SpecError(f"the train section has no '{step}'{did_you_mean(step, list(fields))}", key_loc, where)
        found = fields[step]
        model = _model_in(found.annotation)
        if index < len(steps) - 1 and model is None:
            return
    if found is None:
        return
    adapter: Any = TypeAdapter(Annotated[found.annotation, found])  # the field's constraints too (gt=0 ...)
    for value, place in _dimension_values(dimension, spec):
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            problem = exc.errors()[0]
            raise SpecError(f"{dimension.path} cannot be {shown(value)}: {problem['msg'][0].lower()}"
                            f"{problem['msg'][1:]}", place, where) from None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for inner in getattr(annotation, "__args__", ()):
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return None


def _dimension_values(dimension: Dimension, spec: Map) -> Iterator[tuple[Any, Location | None]]:
    if dimension.kind == "choice":
        items = spec.get("choice")
        for index, text in enumerate(dimension.choices):
            yield load_text(text), items.loc_of(index) if isinstance(items, Seq) else dimension.loc
        return
    bounds = spec.get(dimension.kind)
    low, high = dimension.corners()
    for index, value in enumerate((low, high)):
        yield value, bounds.loc_of(index) if isinstance(bounds, Seq) else dimension.loc


# --------------------------------------------------------------------------- the family


@dataclass
class Family:
    """What loading members of the family (architecture values only) found.

    Attributes:
        total: How many members there are (``None``: continuous values, infinitely many).
        checked: How many were loaded.
        members: ``(values, figures)`` of each valid member loaded.
        invalid: ``(values, error)`` of each member that does not load.
    """

    total: int | None
    checked: int = 0
    members: list[tuple[dict[str, Any], Figures]] = field(default_factory=list)
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    @property
    def exhaustive(self) -> bool:
        return self.total is not None and self.checked >= self.total

    def fitting(self, budget: Budget) -> list[tuple[dict[str, Any], Figures]]:
        return [(values, figures) for values, figures in self.members if budget.check(figures) is None]

    def span(self) -> str:
        """``all 12 architectures`` or ``200 of 1,024 architectures sampled``."""
        if self.exhaustive:
            return f"all {self.checked:,} architecture{'s' if self.checked != 1 else ''}"
        total = "infinitely many" if self.total is None else f"{self.total:,}"
        return f"{self.checked:,} of {total} architectures sampled"


def explore_family(source: Any, overrides: Sequence[str], space: Space, *, limit: int = FAMILY_LIMIT,
                   seconds: float = FAMILY_SECONDS) -> Family:
    """Load members of the family (every one when there are at most ``limit``) and measure them.

    The first and last value of every dimension (the family's two corners) are always loaded; the
    rest are enumerated or sampled with a fixed seed until ``limit`` members or ``seconds`` of work.
    """
    import blockbuilder

    dimensions = space.architecture_dimensions
    sizes = [d.size for d in dimensions]
    total = None if None in sizes else math.prod(s for s in sizes if s is not None)
    family = Family(total)
    started = time.perf_counter()
    for values in _members(dimensions, total, limit):
        try:
            member = blockbuilder.load(source, [*overrides, *(d.override(values[d.path]) for d in dimensions)])
        except (SpecError, UsageError) as exc:
            family.invalid.append((values, str(exc)))
        else:
            family.members.append((values, measure(member)))
        family.checked += 1
        if family.checked >= 2 and time.perf_counter() - started > seconds:
            break
    return family


def _members(dimensions: Sequence[Dimension], total: int | None, limit: int) -> Iterator[dict[str, Any]]:
    if not dimensions:
        yield {}
        return
    if total is not None and total <= limit:
        for combination in itertools.product(*(d.values() for d in dimensions)):
            yield {d.path: v for d, v in zip(dimensions, combination)}
        return
    seen: set[str] = set()
    rng = random.Random(0)
    corners = [{d.path: d.corners()[side] for d in dimensions} for side in (0, 1)]
    randoms = ({d.path: d.random_value(rng) for d in dimensions} for _ in range(limit * 4))
    for values in itertools.chain(corners, randoms):
        key = repr(sorted(values.items()))
        if key in seen:
            continue
        seen.add(key)
        yield values
        if len(seen) >= limit:
            return


def check_family(family: Family, space: Space, budget: Budget, budget_from_flags: Iterable[str] = ()) -> None:
    """Fail when no member of the family loads, or none fits the budget.

    Raises:
        SpecError: at the ``search:`` section (or the budget key) of the file.
        UsageError: when the budget that nothing fits came from ``--max-params``/``--max-macs``.
    """
    if not family.members:
        values, error = family.invalid[0]
        member = ", ".join(f"{k}={value_text(v)}" for k, v in values.items()) or "the default member"
        raise SpecError(f"no architecture of the family is valid ({family.span()}); {member}: {error}",
                        space.locs.get("space", space.loc), "search.space")
    if family.fitting(budget):
        return
    flags = set(budget_from_flags)
    for key, limit in budget.limits.items():
        name = key.removeprefix("max_")
        smallest = min(getattr(figures, name) for _, figures in family.members)
        if smallest > limit:
            message = (f"no architecture of the family fits the budget: the smallest has {smallest:,} "
                       f"{name.replace('_', ' ')} > {key} {limit:,} ({family.span()})")
            break
    else:
        key = next(iter(budget.limits))
        message = f"no architecture of the family fits {budget.describe()} together ({family.span()})"
    if key in flags:
        raise UsageError(f"--{key.replace('_', '-')} {budget.limits[key]}: {message}")
    raise SpecError(message, space.locs.get(f"budget.{key}", space.locs.get("budget", space.loc)),
                    f"search.budget.{key}")


def check_capacity(family: Family, space: Space, budget: Budget, trials: int) -> None:
    """Fail when a finite space holds fewer different trials that fit the budget than ``trials``.

    Raises:
        UsageError: naming how many there are.
    """
    training = [d.size for d in space.dimensions if d.is_training]
    if not family.exhaustive or None in training:
        return
    capacity = len(family.fitting(budget)) * math.prod(s for s in training if s is not None)
    if trials > capacity:
        raise UsageError(f"--trials {trials}: the space holds only {capacity} different trial"
                         f"{'s' if capacity != 1 else ''} that fit the budget")


# --------------------------------------------------------------------------- what validate prints


def describe_space(architecture: Any, overrides: Sequence[str] = ()) -> str:
    """The size of the space, the family's range of parameters and MACs, and what fits the budget.

    Args:
        architecture: A loaded architecture whose document has a ``search:`` section.
        overrides: The ``--set`` overrides it was loaded with (members are loaded with them too).

    Raises:
        SpecError: for a bad ``search:`` section, a family without a valid member, or a budget
            that nothing fits.
    """
    space = parse_space(architecture.document)
    lines = [_size_line(space)]
    width = max(len(d.path) for d in space.dimensions)
    for dimension in space.dimensions:
        count = dimension.size
        values = "continuous" if count is None else f"{count:,} value{'s' if count != 1 else ''}"
        lines.append(f"  {dimension.path:<{width}}  {dimension.describe():<32} {values}")
    if architecture.source is not None:
        family = explore_family(architecture.source, overrides, space)
        check_family(family, space, space.budget)
        lines.extend(_family_lines(family, space.budget))
    objective = " and ".join("validation accuracy" if o == "accuracy" else o for o in space.objectives)
    pruner = f", {space.pruner} pruner" if space.pruner != "none" else ""
    epochs = f"{space.epochs} epoch{'s' if space.epochs != 1 else ''} each" if space.epochs else \
        "the train section's epochs each"
    trials = f"{space.trials} trials" if space.trials else "trials"
    lines.append(f"objective: {objective} ({space.sampler} sampler{pruner}); {trials} of {epochs}")
    return "\n".join(lines)


def _size_line(space: Space) -> str:
    architecture = [d.size for d in space.architecture_dimensions]
    training = [d.size for d in space.dimensions if d.is_training]
    parts = []
    for name, sizes in (("architecture", architecture), ("training setting", training)):
        if not sizes:
            continue
        count = "continuous" if None in sizes else f"{math.prod(s for s in sizes if s is not None):,}"
        parts.append(f"{count} {name}{'s' if count != '1' else ''}")
    total = "infinitely many" if space.size is None else f"{space.size:,}"
    searched = len(space.dimensions)
    return f"search: {searched} value{'s' if searched != 1 else ''} searched, {total} trials possible " \
           f"({' x '.join(parts)})"


def _family_lines(family: Family, budget: Budget) -> list[str]:
    members = [figures for _, figures in family.members]
    lines = [f"family ({family.span()}): "
             f"{_range([f.params for f in members], full=True)} params, {_range([f.macs for f in members])} MACs, "
             f"{_range([f.activation_memory for f in members], unit='B')} of activations per image"]
    if family.invalid:
        values, error = family.invalid[0]
        member = ", ".join(f"{k}={value_text(v)}" for k, v in values.items())
        lines.append(f"  {len(family.invalid)} of {family.checked} do not load, e.g. {member}: {error}")
    if budget.limits:
        fit = len(family.fitting(budget))
        lines.append(f"budget ({budget.describe()}): {fit} of {len(members)} fit")
    return lines


def _range(values: list[int], full: bool = False, unit: str = "") -> str:
    def show(value: int) -> str:
        if full:
            return f"{value:,}"
        return human(value) + (unit if value >= 1000 else f" {unit}".rstrip())

    low, high = min(values), max(values)
    return show(low) if low == high else f"{show(low)} - {show(high)}"
