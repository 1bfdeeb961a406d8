"""Who runs a trial, and whether it still does: host, process id, process start time, and a heartbeat.

A worker marks each trial it runs with :func:`this_worker`. A rerun on the same machine sees at once
that the process is gone (:func:`alive`; a reused process id has another start time); a worker on
another machine is known by the :class:`Heartbeat` it beats into its running trial.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

__all__ = ["HEARTBEAT_SECONDS", "Heartbeat", "alive", "this_worker"]

HEARTBEAT_SECONDS = 20.0


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (so a reused process id is not taken for the same process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def alive(pid: int, started: str | None) -> bool:
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


class Heartbeat:
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

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

