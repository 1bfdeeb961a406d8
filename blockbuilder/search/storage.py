"""Where a study lives, and the study itself: the storage URL, opening it, creating or continuing the study.

The default storage is the SQLite file ``DIR/study.db``; workers on several machines share a database
(``postgresql://``, ``mysql://``) or a journal file on a shared file system (``journal:PATH``). A URL
that does not parse, a missing driver and an unreachable database are each one line; a password is
never shown. A study remembers the space it searches, and refuses to continue over another one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from blockbuilder.errors import CommandError, UsageError
from blockbuilder.files import not_regular
from blockbuilder.search.space import Space

__all__ = ["STUDY_FILE", "open_storage", "open_study", "report_storage_url", "shown_url", "storage_lost",
           "storage_url"]

STUDY_FILE = "study.db"
_RECORD_START = b'{"op_code":'  # how Optuna writes each journal record


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


def open_storage(url: str, *, writing: bool = True) -> Any:
    """An Optuna storage for ``url`` (``sqlite:///``, ``postgresql://``, ``mysql://`` ... or ``journal:PATH``).

    Args:
        url: The storage.
        writing: Whether trials will be written (a search), or only read (a report).

    Raises:
        UsageError: the URL is not one Optuna knows.
        CommandError: the database cannot be reached or opened, or its driver is not installed; the
            journal file is not one (damaged, or another program's).
    """
    import optuna

    shown = shown_url(url)
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        if not str(path) or str(path) == ".":
            raise UsageError(f"--storage {url}: expected journal:PATH, a log file on a shared file system")
        _check_file(path, shown, writing)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _check_journal(path, shown, writing)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.JournalStorage(backend)
        except OSError as exc:
            raise CommandError(f"cannot open the storage {shown}: {exc.strerror or exc}") from None
        except (KeyError, TypeError, ValueError, AssertionError) as exc:  # Optuna replaying records it cannot
            raise CommandError(f"cannot open the storage {shown}: {path} is not an Optuna journal "
                               f"({type(exc).__name__}: {_first_line(exc)})") from None
    import sqlalchemy.exc

    scheme = url.partition("://")[0]
    if not scheme or "://" not in url:
        raise UsageError(f"--storage {url}: expected a database URL (sqlite:///FILE, postgresql://HOST/DB, "
                         "mysql://HOST/DB) or journal:PATH")
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise UsageError(f"--storage {shown}: unknown kind of database '{scheme}' (sqlite, postgresql, "
                         "mysql, or journal:PATH)") from None
    except sqlalchemy.exc.ArgumentError as exc:
        raise UsageError(f"--storage {shown}: {_first_line(exc)}") from None
    if scheme.startswith("sqlite") and parsed.database and parsed.database != ":memory:" \
            and not parsed.database.startswith("file:"):
        _check_file(Path(parsed.database), shown, writing)
    try:
        return _rdb_storage(url, scheme)
    except ImportError:
        driver = "'psycopg[binary]'" if scheme.startswith("postgres") else "PyMySQL" if "mysql" in scheme else scheme
        raise CommandError(f"the storage {shown} needs the database driver of '{scheme}' "
                           f"(e.g. pip install {driver})") from None
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        raise CommandError(f"cannot open the storage {shown}: {_first_line(exc)}") from None


def _check_file(path: Path, shown: str, writing: bool) -> None:
    """A storage file that is there is a regular file (a FIFO would hang); one only read must be there.

    Opening a SQLite file or a journal creates it: a report would leave an empty one behind.

    Raises:
        CommandError: it is not a regular file, or it is missing and the storage is only read.
    """
    if writing and not os.path.lexists(path):
        return
    why = not_regular(path)
    if why is not None:
        raise CommandError(f"cannot open the storage {shown}: {why}")


@contextmanager
def storage_lost(url: str) -> Iterator[None]:
    """Turn the storage failing while a search runs (a database server stopped) into one line.

    Raises:
        CommandError: the storage raised Optuna's ``StorageInternalError`` or an SQLAlchemy error.
    """
    import optuna
    import sqlalchemy.exc

    try:
        yield
    except (optuna.exceptions.StorageInternalError, sqlalchemy.exc.SQLAlchemyError) as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, sqlalchemy.exc.SQLAlchemyError) else exc
        raise CommandError(f"the storage {shown_url(url)} went away ({_first_line(cause)}): the trials it holds "
                           "are kept; run the same 'blockbuilder search' again, once it is back, to continue the "
                           "search") from None


def _check_journal(path: Path, shown: str, writing: bool) -> None:
    """A journal holds one JSON record of an Optuna operation per line, each ended by a newline.

    A worker killed while it appended leaves the last line cut short. Optuna skips such a line when it
    reads, but the next record appended would run into it and make one bad line of both; so a search
    (``writing``) cuts it off first, holding the journal's lock (no one appends meanwhile). Every record
    before it is kept. A bad line before the last one is an error: nothing is changed.

    Raises:
        CommandError: the file is damaged, or another program's.
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    if not path.is_file():
        return
    lock = JournalFileSymlinkLock(str(path)) if writing else None
    if lock is not None:
        lock.acquire()
    try:
        kept = 0
        with path.open("rb") as stream:
            for number, line in enumerate(stream, start=1):
                if not line.endswith(b"\n") and (kept or line.startswith(_RECORD_START)):
                    if lock is not None:
                        os.truncate(path, kept)
                    return
                if not _is_record(line):
                    raise CommandError(f"cannot open the storage {shown}: line {number} of {path} is not a "
                                       "record of an Optuna journal (a damaged file, or another program's)")
                kept += len(line)
    finally:
        if lock is not None:
            lock.release()


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int) and "worker_id" in record


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
    storage = open_storage(url, writing=space is not None)
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
