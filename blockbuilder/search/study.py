"""The Optuna study behind ``blockbuilder search``: storage, workers, trials, and resuming after a kill.

Every worker (one ``blockbuilder search`` process, on any machine) runs the same loop against the shared
storage::

    until N trials have finished (complete or pruned by the pruner; budget-pruned ones do not count):
        fail the trials of dead workers, queue each again, remove their half-written run directories
        if the finished and running trials already make N: wait for them
        else: ask Optuna for a trial, apply its values as --set overrides, load and measure it,
              prune it when it is over budget, else train it epoch by epoch (the pruner may stop it)

A trial trains in ``DIR/.partial/trial-NNNN`` and is renamed to ``DIR/trial-NNNN`` when it ends, so a
run directory is never half-written. A worker marks each trial it runs with its host, process id and
process start time, and beats a heartbeat into it: a rerun on the same machine fails a dead worker's
trial at once; on other machines a trial whose heartbeat stopped for :data:`GRACE_SECONDS` is failed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, SpecError, UsageError
from blockbuilder.files import atomic_path
from blockbuilder.search.budgets import Budget, Figures, measure
from blockbuilder.search.space import Space

__all__ = [
    "GRACE_SECONDS",
    "HEARTBEAT_SECONDS",
    "STUDY_FILE",
    "Search",
    "SearchOptions",
    "Tally",
    "TrialOutcome",
    "open_storage",
    "open_study",
    "tally",
]

STUDY_FILE = "study.db"
SEARCH_FILE = "search.json"
PARTIAL = ".partial"
HEARTBEAT_SECONDS = 20.0
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
        live: A live display (``None``: when stdout is a terminal).
    """

    trials: int
    output: Path
    epochs: int | None = None
    storage: str | None = None
    overrides: tuple[str, ...] = ()
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


# --------------------------------------------------------------------------- storage


def storage_url(storage: str | None, output: Path) -> str:
    """The storage URL: the given one, or the SQLite file in the search directory."""
    return storage if storage else f"sqlite:///{(output / STUDY_FILE).resolve()}"


def shown_url(url: str) -> str:
    """``url`` with any password hidden (for messages and ``search.json``)."""
    if url.startswith("journal:"):
        return url
    try:
        from sqlalchemy.engine import make_url

        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as the user wrote it
        return url


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url`` (``sqlite:///``, ``postgresql://``, ``mysql://`` ... or ``journal:PATH``).

    Raises:
        UsageError: the URL is not one Optuna knows.
        CommandError: the database cannot be reached or opened, or its driver is not installed.
    """
    import optuna

    shown = shown_url(url)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not str(path) or str(path) == ".":
            raise UsageError(f"--storage {url}: expected journal:PATH, a log file on a shared file system")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        except OSError as exc:
            raise CommandError(f"cannot open the storage {shown}: {exc.strerror or exc}") from None
    import sqlalchemy.exc

    scheme = url.partition("://")[0]
    if not scheme or "://" not in url:
        raise UsageError(f"--storage {url}: expected a database URL (sqlite:///FILE, postgresql://HOST/DB, "
                         "mysql://HOST/DB) or journal:PATH")
    from sqlalchemy.engine import make_url

    try:
        make_url(url).get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise UsageError(f"--storage {shown}: unknown kind of database '{scheme}' (sqlite, postgresql, "
                         "mysql, or journal:PATH)") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise UsageError(f"--storage {shown}: {_first_line(exc)}") from None
    try:
        return _rdb_storage(url, scheme)
    except ImportError:
        driver = "'psycopg[binary]'" if scheme.startswith("postgres") else "PyMySQL" if "mysql" in scheme else scheme
        raise CommandError(f"the storage {shown} needs the database driver of '{scheme}' "
                           f"(e.g. pip install {driver})") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot open the storage {shown}: {_first_line(exc)}") from None


def _rdb_storage(url: str, scheme: str, attempts: int = 5) -> Any:
    """``RDBStorage(url)``; workers that start together on a new database race to create its tables."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=_engine_arguments(scheme))
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError,
                sqlalchemy.exc.ProgrammingError) as exc:
            text = str(exc).lower()
            racing = any(words in text for words in ("already exists", "unique", "duplicate"))
            if not racing or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # the other worker created them: open what it made
    raise AssertionError("unreachable")


def _engine_arguments(scheme: str) -> dict[str, Any]:
    if scheme.startswith("sqlite"):
        return {"connect_args": {"timeout": 120}}  # workers on one file take turns writing
    if scheme.startswith(("postgresql", "mysql")):
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {}


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def open_study(url: str, name: str, space: Space | None) -> Any:
    """Create or continue the study ``name`` of ``space`` (``None``: open an existing one to report on it).

    Raises:
        CommandError: the storage cannot be opened, has no such study (``space`` ``None``), or holds a
            study of that name over another space.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    try:
        if space is None:
            return optuna.load_study(storage=storage, study_name=name)
        directions = ["maximize"] + ["minimize"] * (len(space.objectives) - 1)
        study = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True)
    except KeyError:
        raise CommandError(f"the storage {shown_url(url)} has no study '{name}'") from None
    except ValueError as exc:
        raise CommandError(f"the study '{name}' in {shown_url(url)} cannot be continued: {exc}") from None
    fingerprint = space.fingerprint()
    stored = study.user_attrs.get("search")
    if stored is None:
        study.set_user_attr("search", fingerprint)
    elif stored != fingerprint:
        raise CommandError(
            f"the study '{name}' in {shown_url(url)} searches another space ({_difference(stored, fingerprint)}); "
            "use another --output or --storage for a new search")
    return study


def _difference(stored: dict[str, Any], current: dict[str, Any]) -> str:
    if stored.get("objectives") != current["objectives"]:
        return f"objectives {stored.get('objectives')} here, {current['objectives']} in the file"
    old, new = stored.get("space", {}), current["space"]
    for path in sorted(set(old) | set(new)):
        if old.get(path) != new.get(path):
            return f"{path}: {old.get(path, 'not searched')} there, {new.get(path, 'not searched')} in the file"
    return "it differs"


# --------------------------------------------------------------------------- workers


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (so a reused process id is not taken for the same process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _process_start(pid) in (None, started)


def this_worker() -> dict[str, Any]:
    """Who runs a trial: host, process id and the process's start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _process_start(pid)}


class _Heartbeat:
    """Writes an increasing ``heartbeat`` user attribute into a running trial every few seconds."""

    def __init__(self, trial: Any, interval: float = HEARTBEAT_SECONDS) -> None:
        self.trial, self.interval = trial, interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="search-heartbeat", daemon=True)

    def _beat(self) -> None:
        beats = 0
        while not self.stopped.wait(self.interval):
            beats += 1
            try:
                self.trial.set_user_attr("heartbeat", beats)
            except Exception:  # noqa: BLE001 - a missed beat only delays nothing; the trial goes on
                continue

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


# --------------------------------------------------------------------------- one trial


@dataclass
class TrialOutcome:
    """What training a trial gave.

    Attributes:
        history: One row of logs per epoch (``val_accuracy`` among them).
        stopped: ``completed``, ``pruned`` (the pruner stopped it), ``nan`` (the loss became NaN).
        seconds: Wall time of the training.
    """

    history: list[dict[str, float]] = field(default_factory=list)
    stopped: str = "completed"
    seconds: float = 0.0

    @property
    def val_accuracy(self) -> float | None:
        values = [row["val_accuracy"] for row in self.history
                  if isinstance(row.get("val_accuracy"), float) and math.isfinite(row["val_accuracy"])]
        return max(values) if values else None


# ``trainer(architecture, run_dir, epochs, on_epoch) -> TrialOutcome``; ``on_epoch(epoch, logs)`` returns
# ``True`` to stop after that epoch (the pruner's decision).
Trainer = Callable[[Any, Path, int, Callable[[int, dict[str, float]], bool]], TrialOutcome]


class Search:
    """One worker of a search: the loop of the module docstring.

    Args:
        source: The architecture file.
        architecture: It, loaded with ``options.overrides`` (the family's default member).
        space: Its checked ``search:`` section.
        budget: The budget (the section's, with the command line's limits).
        options: Trials, directory, epochs, storage.
        trainer: Trains one trial (the real one imports TensorFlow).
        progress: Receives ``started``, ``trial`` and ``finished`` events (see ``report.Progress``).
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

    # ---- set-up

    def open(self) -> None:
        """Check the directory, open (or continue) the study, write ``search.json``."""
        _check_output(self.output)
        if self.options.storage:  # an unreachable database leaves no directory behind
            self.study = open_study(self.url, self.name, self.space)
        try:
            self.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {self.output}: {exc.strerror or exc}") from None
        if self.study is None:
            self.study = open_study(self.url, self.name, self.space)
        self.study.sampler = self._sampler()
        self.study.pruner = self._pruner()
        self.record = {
            "architecture": str(Path(self.source).resolve()), "overrides": list(self.options.overrides),
            "study": self.name,
            "storage": shown_url(self.url) if self.options.storage else STUDY_FILE,
            "dataset": getattr(self.architecture.train, "dataset", None),
            "objectives": list(self.space.objectives), "trials": self.options.trials, "epochs": self.epochs,
        }
        with atomic_path(self.output / SEARCH_FILE) as temporary:
            Path(temporary).write_text(json.dumps(self.record, indent=2) + "\n", encoding="utf-8")

    def _sampler(self) -> Any:
        import optuna

        space, seed = self.space, self.space.seed
        if seed is not None:  # the same seed again after a resume would draw the same values again
            seed += len(self.study.get_trials(deepcopy=False))
        if space.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if space.sampler == "grid":
            grid = {d.path: list(d.choices) if d.kind == "choice" else d.values() for d in space.dimensions}
            return optuna.samplers.GridSampler(grid, seed=seed)
        if space.sampler == "nsga2":
            population = min(50, max(4, self.options.trials // 3))
            return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
        startup = min(10, max(3, self.options.trials // 3))
        return optuna.samplers.TPESampler(n_startup_trials=startup, seed=seed)

    def _pruner(self) -> Any:
        import optuna

        if self.space.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, self.epochs))
        if self.space.pruner == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=min(5, max(2, self.options.trials // 3)))
        return optuna.pruners.NopPruner()

    # ---- the loop

    def run(self) -> Tally:
        """Run trials until the study has ``options.trials`` finished ones; return the final tally."""
        if self.study is None:
            self.open()
        failures = skipped = 0
        self.progress.started(self)
        while True:
            trials = self._recover()
            counts = tally(trials)
            if counts.finished >= self.options.trials:
                break
            if counts.finished + counts.running >= self.options.trials:
                time.sleep(POLL_SECONDS)  # the last trials run elsewhere; they may yet fail
                continue
            state = self._run_one()
            failures = failures + 1 if state == "failed" else 0
            skipped = skipped + 1 if state == "skipped" else 0
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise CommandError(f"{failures} trials in a row failed (see 'reason' in "
                                   f"{self.output / 'trials.csv'}); stopping")
            if skipped >= MAX_SKIPPED_IN_A_ROW:
                raise CommandError(f"the last {skipped} trials drawn were all pruned before training "
                                   f"({self.budget.describe()}); the budget leaves too little of the space")
        final = tally(self.study.get_trials(deepcopy=False))
        with contextlib.suppress(OSError):
            (self.output / PARTIAL).rmdir()  # when empty
        self.progress.finished(self, final)
        return final

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
            return not _alive(int(worker["pid"]), worker.get("started"))
        beat = trial.user_attrs.get("heartbeat", -1)
        seen = self.heartbeats.get(trial.number)
        now = time.monotonic()
        if seen is None or seen[0] != beat:
            self.heartbeats[trial.number] = (beat, now)
            return False
        return now - seen[1] > GRACE_SECONDS

    def _fail_dead(self, trial: Any) -> None:
        import optuna
        from optuna.trial import TrialState

        handle = optuna.trial.Trial(self.study, trial._trial_id)
        try:
            handle.set_user_attr("reason", "interrupted: its worker stopped; run again as a new trial")
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
        values = {d.path: self._suggest(trial, d) for d in self.space.dimensions}
        twin = self._twin(trial, values)
        if twin is not None:
            return self._skip(trial, f"duplicate: the same values as trial {twin}")
        try:
            member = self._load(values)
        except (SpecError, UsageError) as exc:
            return self._skip(trial, f"invalid: {exc}")
        figures = measure(member)
        for key, value in (("params", figures.params), ("macs", figures.macs),
                           ("activation_memory", figures.activation_memory), ("depth", member.depth)):
            trial.set_user_attr(key, int(value))
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
        if not reason.startswith("surplus"):
            self.progress.skipped(self, trial.number, reason)
        return "skipped"

    @staticmethod
    def _suggest(trial: Any, dimension: Any) -> Any:
        if dimension.kind == "choice":
            return trial.suggest_categorical(dimension.path, list(dimension.choices))
        if dimension.kind == "int":
            return trial.suggest_int(dimension.path, int(dimension.low), int(dimension.high),
                                     step=int(dimension.step or 1), log=dimension.log)
        return trial.suggest_float(dimension.path, dimension.low, dimension.high, step=dimension.step,
                                   log=dimension.log)

    def overrides(self, values: dict[str, Any], *, epochs: bool = True) -> list[str]:
        """The ``--set`` overrides of a trial: the command line's, the trial's values, the epochs."""
        by_path = {d.path: d for d in self.space.dimensions}
        applied = [by_path[path].override(value) for path, value in values.items() if path in by_path]
        return [*self.options.overrides, *applied, *([f"train.epochs={self.epochs}"] if epochs else [])]

    def _load(self, values: dict[str, Any]) -> Any:
        import blockbuilder

        return blockbuilder.load(self.source, self.overrides(values))

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
            with _Heartbeat(trial):
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


def _check_output(output: Path) -> None:
    """A search directory is new, empty, or one that ``blockbuilder search`` made."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(output.iterdir()) and not (output / SEARCH_FILE).is_file():
        raise UsageError(f"--output {output} holds other files (no {SEARCH_FILE}): choose a new directory")


def report_storage_url(output: Path, record: dict[str, Any], storage: str | None) -> str:
    """The storage of the search in ``output``: ``storage`` when given, else the one it recorded.

    Raises:
        UsageError: the recorded URL had a password (never written down): ``--storage`` must give it.
    """
    if storage:
        return storage
    recorded = str(record.get("storage", STUDY_FILE))
    if recorded == STUDY_FILE:
        return storage_url(None, output)
    if "***" in recorded:
        raise UsageError(f"the search used {recorded}: give --storage with its password")
    return recorded


def train_with_blockbuilder(architecture: Any, run_dir: Path, epochs: int,
                            on_epoch: Callable[[int, dict[str, float]], bool]) -> TrialOutcome:
    """A :data:`Trainer` on ``blockbuilder.train``; what training prints goes to ``run_dir/train.log``."""
    import contextlib
    import io

    import blockbuilder

    log = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(log):
        run = blockbuilder.train(architecture, output=run_dir, epochs=epochs, live=False,
                                 on_epoch_end=lambda epoch, logs: on_epoch(epoch - 1, logs))
    seconds = time.perf_counter() - started
    if run_dir.is_dir():
        (run_dir / "train.log").write_text(log.getvalue(), encoding="utf-8")
    stopped = {"callback": "pruned", "nan": "nan"}.get(str(run.metrics.get("stopped")), "completed")
    history = [{key: float(value) for key, value in row.items() if isinstance(value, (int, float))}
               for row in run.history]
    return TrialOutcome(history=history, stopped=stopped, seconds=seconds)


def read_search_file(output: Path) -> dict[str, Any]:
    """``DIR/search.json``, which ``blockbuilder search`` writes when it starts.

    Raises:
        UsageError: ``output`` is not a search directory.
    """
    path = output / SEARCH_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{output} is not a search directory (no {SEARCH_FILE}; 'blockbuilder search' "
                         "writes it)") from None
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
    if not isinstance(record, dict) or "study" not in record:
        raise CommandError(f"{path} is not what 'blockbuilder search' writes")
    return record
