"""How Optuna draws the trials of a space: its sampler, its pruner, and the value suggested for a dimension."""

from __future__ import annotations

from typing import Any

from blockbuilder.search.space import Dimension, Space

__all__ = ["make_pruner", "make_sampler", "suggest"]


def make_sampler(space: Space, trials: int, study: Any) -> Any:
    """The sampler of ``space`` for a search of ``trials`` trials, continuing ``study``."""
    import optuna

    seed = space.seed
    if seed is not None:  # the same seed again after a resume would draw the same values again
        seed = (seed + len(study.get_trials(deepcopy=False))) % 2**32  # NumPy takes 0 to 2**32 - 1
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.sampler == "grid":
        grid = {d.path: list(d.choices) if d.kind == "choice" else d.values() for d in space.dimensions}
        return _ask_and_tell_grid(grid, seed)
    if space.sampler == "nsga2":
        population = min(50, max(4, trials // 3))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    startup = min(10, max(3, trials // 3))
    return optuna.samplers.TPESampler(n_startup_trials=startup, seed=seed)


def _ask_and_tell_grid(grid: dict[str, list[Any]], seed: int | None) -> Any:
    """Optuna's grid sampler for the study loop, which asks and tells (:mod:`blockbuilder.search.study`).

    ``GridSampler.after_trial`` calls ``study.stop()`` when the grid is done, which only works inside
    ``study.optimize``: in an ask-and-tell loop it raised ``RuntimeError`` at the last grid point's
    ``tell`` (the trial itself was saved first). The loop stops by its own count, or when every point of
    the grid has been tried (:class:`~blockbuilder.search.study.Search` counts them): after that, the
    grid sampler would draw its points again.
    """
    import optuna

    class AskAndTellGrid(optuna.samplers.GridSampler):  # type: ignore[misc]
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskAndTellGrid(grid, seed=seed)


def make_pruner(space: Space, trials: int, epochs: int) -> Any:
    """The pruner of ``space`` for trials of ``epochs`` epochs."""
    import optuna

    if space.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    if space.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, trials // 3)))
    return optuna.pruners.NopPruner()


def suggest(trial: Any, dimension: Dimension) -> Any:
    """The value Optuna suggests for ``dimension`` in ``trial``."""
    if dimension.kind == "choice":
        return trial.suggest_categorical(dimension.path, list(dimension.choices))
    if dimension.kind == "int":
        return trial.suggest_int(dimension.path, int(dimension.low), int(dimension.high),
                                 step=int(dimension.step or 1), log=dimension.log)
    return trial.suggest_float(dimension.path, dimension.low, dimension.high, step=dimension.step,
                               log=dimension.log)
