"""The worker loop behind ``blockbuilder search``: the study's trials, and resuming after a kill.

Every worker (one ``blockbuilder search`` process, on any machine) runs the same loop against the shared
storage::

    until N trials have finished (complete or pruned by the pruner; budget-pruned ones do not count):
        fail the trials of dead workers, queue each again, remove their half-written run directories
        if the finished and running trials already make N: wait for them
        if a grid search has tried every point of its grid: stop (say so)
        else: ask Optuna for a trial, apply its values as --set overrides, load and measure it,
              prune it when it is over budget, else train it epoch by epoch (the pruner may stop it)
    stop with an error after MAX_FAILURES_IN_A_ROW failed trials, or MAX_SKIPPED_IN_A_ROW pruned before training

A trial trains in ``DIR/.partial/trial-NNNN`` and is renamed to ``DIR/trial-NNNN`` when it ends, so a
run directory is never half-written. A worker marks each trial it runs with its host, process id and
process start time, and beats a heartbeat into it: a rerun on the same machine fails a dead worker's
trial at once; on other machines a trial whose heartbeat stopped for :data:`GRACE_SECONDS` is failed.

The storage and the study are opened by :mod:`~blockbuilder.search.storage`, the sampler and the pruner
come from :mod:`~blockbuilder.search.sampling`, the marks and heartbeats from
:mod:`~blockbuilder.search.workers`, ``search.json`` and ``.partial`` from
:mod:`~blockbuilder.search.directory`, and a trial trains through a :mod:`~blockbuilder.search.trainer`.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, SpecError, UsageError
from blockbuilder.language.budgets import Limits
from blockbuilder.search.budgets import Budget, Figures, measure
from blockbuilder.search.directory import PARTIAL, changed_limits, check_output, write_search_file
from blockbuilder.search.sampling import make_pruner, make_sampler, suggest
from blockbuilder.search.space import Space
from blockbuilder.search.storage import STUDY_FILE, open_study, shown_url, storage_lost, storage_url
from blockbuilder.search.trainer import Trainer, TrialOutcome
from blockbuilder.search.workers import Heartbeat, alive, this_worker

__all__ = ["GRACE_SECONDS", "Search", "SearchOptions", "Tally", "tally"]

GRACE_SECONDS = 300.0
POLL_SECONDS = 1.0
MAX_FAILURES_IN_A_ROW = 5
MAX_SKIPPED_IN_A_ROW = 500


@dataclass(frozen=True)
class SearchOptions:
    """What the command line adds to the ``search:`` section.

    Attributes:
        trials: Finished trials to reach across all workers (budget-pruned ones not counted).
        output: The search directory (default storage, run directories, reports).
        epochs: Epochs per trial (``None``: the section's ``epochs``, else the ``train:`` section's).
        storage: An Optuna storage URL, or ``journal:PATH``; ``None``: ``DIR/study.db``.
        overrides: The ``--set`` overrides every trial is loaded with.
        limits: The budgets every trial is loaded with (``--limit``).
        live: A live display (``None``: when stdout is a terminal).
    """

    trials: int
    output: Path
    epochs: int | None = None
    storage: str | None = None
    overrides: tuple[str, ...] = ()
    limits: Limits = Limits()
    live: bool | None = None


@dataclass(frozen=True)
class Tally:
    """How far a study is: ``finished`` counts toward ``--trials``."""

    finished: int = 0
    complete: int = 0
    running: int = 0
    skipped: int = 0
    failed: int = 0


def tally(trials: Sequence[Any]) -> Tally:
    """Count a study's trials by what they mean for ``--trials``."""
    from optuna.trial import TrialState

    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    pruned = sum(t.state == TrialState.PRUNED and not t.user_attrs.get("skipped") for t in trials)
    return Tally(
        finished=complete + pruned, complete=complete,
        running=sum(t.state == TrialState.RUNNING for t in trials),
        skipped=sum(t.state == TrialState.PRUNED and bool(t.user_attrs.get("skipped")) for t in trials),
        failed=sum(t.state == TrialState.FAIL for t in trials),
    )



class Search:
    """One worker of a search: the loop of the module docstring.

    Args:
        source: The architecture file.
        architecture: It, loaded with ``options.overrides`` (the family's default member).
        space: Its checked ``search:`` section.
        budget: The budget (the section's, with the command line's limits).
        options: Trials, directory, epochs, storage.
        trainer: Trains one trial (the real one imports TensorFlow).
        progress: Receives ``started``, ``trial`` and ``finished`` events (see ``console.Progress``).
    """

    def __init__(self, source: Path, architecture: Any, space: Space, budget: Budget, options: SearchOptions,
                 trainer: Trainer, progress: Any) -> None:
        self.source, self.architecture, self.space = source, architecture, space
        self.budget, self.options, self.trainer, self.progress = budget, options, trainer, progress
        self.output = options.output
        self.url = storage_url(options.storage, self.output)
        self.name = architecture.name
        self.epochs = options.epochs or space.epochs or architecture.train.epochs
        self.worker = this_worker()
        self.heartbeats: dict[int, tuple[Any, float]] = {}
        self.study: Any = None
        self.record: dict[str, Any] = {}
        self.skips: list[str] = []  # why each trial since the last trained one was pruned before training
        self.grid_done = False

    # ---- set-up

    def open(self) -> None:
        """Check the directory, open (or continue) the study, write ``search.json``."""
        with storage_lost(self.url):
            self._open()

    def _open(self) -> None:
        check_output(self.output, self.name)
        if self.options.storage:  # an unreachable database leaves no directory behind
            self.study = open_study(self.url, self.name, self.space)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {self.output}: {exc.strerror or exc}") from None
        if self.study is None:
            self.study = open_study(self.url, self.name, self.space)
        self.study.sampler = make_sampler(self.space, self.options.trials, self.study)
        self.study.pruner = make_pruner(self.space, self.options.trials, self.epochs)
        self.record = {
            "architecture": str(Path(self.source).resolve()), "overrides": list(self.options.overrides),
            "limits": changed_limits(self.options.limits),
            "study": self.name,
            "storage": shown_url(self.url) if self.options.storage else STUDY_FILE,
            "dataset": getattr(self.architecture.train, "dataset", None),
            "objectives": list(self.space.objectives), "trials": self.options.trials, "epochs": self.epochs,
            **({"latency_batch": self.space.latency_table.batch_size} if self.space.latency_table else {}),
        }
        write_search_file(self.output, self.record)

    # ---- the loop

    def run(self) -> Tally:
        """Run trials until the study has ``options.trials`` finished ones; return the final tally.

        Raises:
            CommandError: the storage went away (a database server stopped): one line that says how to go on.
        """
        with storage_lost(self.url):
            return self._run()

    def _run(self) -> Tally:
        if self.study is None:
            self.open()
        failures = 0
        self.progress.started(self)
        while True:
            trials = self._recover()
            counts = tally(trials)
            if counts.finished >= self.options.trials:
                break
            left = self._grid_left(trials)
            if counts.finished + counts.running >= self.options.trials or (left == 0 and counts.running):
                time.sleep(POLL_SECONDS)  # the last trials run elsewhere; they may yet fail
                continue
            if left == 0 and not any(t.state.name == "WAITING" for t in trials):
                break  # every point of the grid tried: fewer finished than --trials (the family was sampled)
            state = self._run_one()
            failures = failures + 1 if state == "failed" else 0
            if state != "skipped":
                self.skips.clear()
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise CommandError(f"{failures} trials in a row failed (see 'reason' in "
                                   f"{self.output / 'trials.csv'}); stopping")
            if len(self.skips) >= MAX_SKIPPED_IN_A_ROW:
                raise CommandError(self._skipped_message(counts))
        final = tally(self.study.get_trials(deepcopy=False))
        self.grid_done = self._grid_left(self.study.get_trials(deepcopy=False)) == 0
        with contextlib.suppress(OSError):
            (self.output / PARTIAL).rmdir()  # when empty
        self.progress.finished(self, final)
        return final

    def _grid_left(self, trials: Sequence[Any]) -> int | None:
        """How many points of the grid no trial has tried or tries (``None``: not a grid search)."""
        if self.space.sampler != "grid":
            return None
        tried = {tuple(sorted(t.params.items())) for t in trials if t.params and t.state.name != "WAITING"}
        return max(0, (self.space.size or 0) - len(tried))

    def _skipped_message(self, counts: Tally) -> str:
        kinds = {kind: self.skips.count(kind) for kind in dict.fromkeys(self.skips)}
        why = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        budget = f" and fits {self.budget.describe()}" if self.budget.limits else ""
        return (f"the last {len(self.skips)} trials drawn were all pruned before training ({why}): the sampler "
                f"finds no new trial that loads{budget}; stopping at {counts.finished:,} of "
                f"{self.options.trials:,} finished")

    def _recover(self) -> list[Any]:
        """Fail the trials of dead workers (each is queued again) and remove stale partial directories."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        for trial in trials:
            if trial.state == TrialState.RUNNING and self._dead(trial):
                self._fail_dead(trial)
        self._remove_partials({t.number for t in trials if t.state == TrialState.RUNNING})
        return list(self.study.get_trials(deepcopy=False))

    def _dead(self, trial: Any) -> bool:
        worker = trial.user_attrs.get("worker")
        if isinstance(worker, dict) and worker.get("host") == self.worker["host"]:
            return not alive(int(worker["pid"]), worker.get("started"))
        beat = trial.user_attrs.get("heartbeat", -1)
        seen = self.heartbeats.get(trial.number)
        now = time.monotonic()
        if seen is None or seen[0] != beat:
            self.heartbeats[trial.number] = (beat, now)
            return False
        return now - seen[1] > GRACE_SECONDS

    def _fail_dead(self, trial: Any) -> None:
        """Fail another worker's trial and queue it again; the rerun's ``rerun_of`` gives the reason.

        Optuna's public API sets an attribute only on a trial of this process (``study.ask``): the
        reason ``trials.csv`` shows is read from the rerun (:func:`~blockbuilder.search.report.trial_rows`).
        """
        import optuna
        from optuna.trial import TrialState

        try:
            self.study.tell(trial.number, state=TrialState.FAIL)
        except (ValueError, RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            return  # another worker got there first
        self.study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
        self.progress.message(f"trial {trial.number} was interrupted: marked failed, queued to run again")

    def _remove_partials(self, running: set[int]) -> None:
        folder = self.output / PARTIAL
        if not folder.is_dir():
            return
        for path in folder.glob("trial-*"):
            number = path.name.removeprefix("trial-")
            if number.isdigit() and int(number) not in running:
                shutil.rmtree(path, ignore_errors=True)

    def _run_one(self) -> str:
        """Ask for a trial and see it through; return ``finished``, ``skipped`` or ``failed``."""
        from optuna.trial import TrialState

        trial = self.study.ask()
        trial.set_user_attr("worker", self.worker)
        if self._surplus(trial):
            return self._skip(trial, "surplus: the study already has its trials finished or running")
        values = {d.path: suggest(trial, d) for d in self.space.dimensions}
        twin = self._twin(trial, values)
        if twin is not None:
            return self._skip(trial, f"duplicate: the same values as trial {twin}")
        try:
            member = self._load(values)
        except (SpecError, UsageError) as exc:
            return self._skip(trial, f"invalid: {exc}")
        figures = measure(member, self.space.latency_table)
        for key, value in (("params", figures.params), ("macs", figures.macs),
                           ("activation_memory", figures.activation_memory), ("depth", member.depth)):
            trial.set_user_attr(key, int(value))
        if figures.latency_ms is not None:
            trial.set_user_attr("latency_ms", figures.latency_ms)
        over = self.budget.check(figures)
        if over is not None:
            return self._skip(trial, f"budget: {over}")
        self.progress.trial(self, trial.number, values, None)
        outcome = self._train(trial, member, figures)
        state = {"pruned": TrialState.PRUNED, "nan": TrialState.FAIL}.get(outcome.stopped, TrialState.COMPLETE)
        accuracy = outcome.val_accuracy
        if state == TrialState.COMPLETE and accuracy is None:
            trial.set_user_attr("reason", "no val_accuracy was logged")
            state = TrialState.FAIL
        if state == TrialState.COMPLETE:
            extra = [getattr(figures, name) for name in self.space.objectives[1:]]
            self.study.tell(trial, [accuracy, *extra])
        else:
            self.study.tell(trial, state=state)
        self.progress.trial(self, trial.number, values, "failed" if state == TrialState.FAIL else state.name.lower())
        return "failed" if state == TrialState.FAIL else "finished"

    def _surplus(self, trial: Any) -> bool:
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        counts = tally(earlier)
        return counts.finished + counts.running >= self.options.trials

    def _twin(self, trial: Any, values: dict[str, Any]) -> int | None:
        """The number of a trial with the same values that trained or trains (samplers do repeat)."""
        from optuna.trial import TrialState

        for other in self.study.get_trials(deepcopy=False):
            if other.number == trial.number or other.params != values:
                continue
            if other.state == TrialState.RUNNING or other.state == TrialState.COMPLETE or (
                    other.state == TrialState.PRUNED and not other.user_attrs.get("skipped")):
                return int(other.number)
        return None

    def _skip(self, trial: Any, reason: str) -> str:
        from optuna.trial import TrialState

        trial.set_user_attr("skipped", True)
        trial.set_user_attr("reason", reason)
        self.study.tell(trial, state=TrialState.PRUNED)
        self.skips.append(reason.partition(":")[0])
        if not reason.startswith("surplus"):
            self.progress.skipped(self, trial.number, reason)
        return "skipped"

    def overrides(self, values: dict[str, Any], *, epochs: bool = True) -> list[str]:
        """The ``--set`` overrides of a trial: the command line's, the trial's values, the epochs."""
        by_path = {d.path: d for d in self.space.dimensions}
        applied = [by_path[path].override(value) for path, value in values.items() if path in by_path]
        return [*self.options.overrides, *applied, *([f"train.epochs={self.epochs}"] if epochs else [])]

    def _load(self, values: dict[str, Any]) -> Any:
        from blockbuilder.language.architecture import load

        return load(self.source, self.overrides(values), limits=self.options.limits)

    def _train(self, trial: Any, member: Any, figures: Figures) -> TrialOutcome:
        from optuna.trial import TrialState

        name = f"trial-{trial.number:04d}"
        partial, final = self.output / PARTIAL / name, self.output / name
        shutil.rmtree(partial, ignore_errors=True)
        pruned: list[str] = []

        def on_epoch(epoch: int, logs: dict[str, float]) -> bool:
            accuracy = logs.get("val_accuracy")
            if self.space.multi_objective or not isinstance(accuracy, float) or not math.isfinite(accuracy):
                return False
            trial.report(accuracy, epoch)
            if epoch + 1 < self.epochs and trial.should_prune():
                pruned.append(f"{self.space.pruner} pruner: stopped after epoch {epoch + 1} of {self.epochs} "
                              f"(val_accuracy {accuracy:.4f})")
                return True
            return False

        started = time.perf_counter()
        try:
            with Heartbeat(trial):
                outcome = self.trainer(member, partial, self.epochs, on_epoch)
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            reason = "interrupted: its worker was stopped; run again as a new trial" if interrupted else \
                f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            trial.set_user_attr("reason", reason)
            self.study.tell(trial, state=TrialState.FAIL)
            if interrupted:  # another worker, or the next run, trains these values
                self.study.enqueue_trial(trial.params, user_attrs={"rerun_of": trial.number})
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if pruned:
            outcome.stopped = "pruned"
            trial.set_user_attr("reason", pruned[0])
        elif outcome.stopped == "nan":
            trial.set_user_attr("reason", "the loss became NaN (try a lower learning rate)")
        outcome.seconds = outcome.seconds or time.perf_counter() - started
        trial.set_user_attr("seconds", round(outcome.seconds, 2))
        trial.set_user_attr("epochs", len(outcome.history))
        if outcome.val_accuracy is not None:
            trial.set_user_attr("val_accuracy", outcome.val_accuracy)
        if partial.is_dir():
            if final.exists():
                raise CommandError(f"{final} exists already: it is not from this search; move it away")
            os.replace(partial, final)
            trial.set_user_attr("run_dir", name)
        return outcome
