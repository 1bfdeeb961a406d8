"""``blockbuilder search``: real trials on the embedded digits, workers sharing a storage, kill -9 and resume.

Tiny nets (8x8 input, a few hundred to a few thousand weights) and 1-2 epochs keep each test short.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "tensorflow"}

FAMILY = """\
name: tiny
input: [8, 8, 1]
classes: 10
variables: {filters: 8, units: 32}
network:
  - conv: {filters: $filters, kernel: 3, activation: relu}
  - max_pool: 2
  - flatten
  - dense: {units: $units, activation: relu}
  - dense: {units: $classes, activation: softmax}
train: {epochs: 5, augmentation: [], batch_size: 64, optimizer: {learning_rate: 0.01}}
search:
  space:
    variables.filters: {choice: [4, 8, 16]}
    variables.units: {int: [16, 64], step: 16}
    train.optimizer.learning_rate: {float: [3.0e-3, 3.0e-2], log: true}
  budget: {max_macs: 20000}
  epochs: 2
  sampler: random
"""
# MACs = 576 F + 16 F U + 10 U (conv 3x3 on 8x8, dense on 4x4xF, dense to 10): over 20,000 only for
# F = 16 with U = 48 (21,984) or U = 64 (26,240).
OVER_BUDGET = {(16, 48), (16, 64)}


def search(*args: str, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-W", "error", "-m", "blockbuilder", "search", *args]
    return subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, timeout: float = 240) -> tuple[str, str]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err
    return out, err


def rows_of(directory: Path) -> list[dict[str, str]]:
    with (directory / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


def check_finished(rows: list[dict[str, str]], trials: int, run_dirs: set[str]) -> None:
    """N finished trials, each with its own complete run directory; pruned-before-training ones have none."""
    finished = [r for r in rows if r["state"] in ("complete", "pruned") and r["run_dir"]]
    assert len(finished) == trials, rows
    assert len({r["number"] for r in rows}) == len(rows)  # no trial twice
    assert {r["run_dir"] for r in finished} == run_dirs == {f"trial-{int(r['number']):04d}" for r in finished}
    for row in rows:
        if not row["run_dir"]:
            assert row["state"] in ("pruned", "failed") and row["reason"], row


@pytest.fixture
def family(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(FAMILY)
    return path


def test_search_trains_n_trials_prunes_over_budget_ones_before_building_and_reports(family, tmp_path, cli):
    out, _ = finish(search(str(family), "--trials", "6", "--output", "found", cwd=tmp_path))
    directory = tmp_path / "found"
    rows = rows_of(directory)
    assert list(rows[0])[:8] == ["number", "state", "params", "macs", "val_accuracy", "variables.filters",
                                 "variables.units", "train.optimizer.learning_rate"]
    assert list(rows[0])[-3:] == ["reason", "seconds", "run_dir"]
    run_dirs = {p.name for p in directory.glob("trial-*")}
    check_finished(rows, 6, run_dirs)
    precisions = {json.loads((directory / name / "metrics.json").read_text())["precision"] for name in run_dirs}
    assert len(precisions) == 1, precisions  # the one precision auto chose for the first trial
    for row in rows:
        filters, units, macs = int(row["variables.filters"]), int(row["variables.units"]), int(row["macs"])
        assert macs == 576 * filters + 16 * filters * units + 10 * units
        if (filters, units) in OVER_BUDGET:  # pruned before it was built: a reason, no run directory
            assert row["state"] == "pruned" and row["run_dir"] == "" and row["val_accuracy"] == ""
            assert row["reason"] == f"budget: macs {macs:,} > max_macs 20,000"
            assert not (directory / f"trial-{int(row['number']):04d}").exists()
            assert f"trial {row['number']} pruned before training: budget: macs {macs:,}" in out
        else:
            run = directory / row["run_dir"]
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["parameters"] == int(row["params"])
            history = list(csv.DictReader(io.StringIO((run / "history.csv").read_text())))
            assert float(row["val_accuracy"]) == pytest.approx(max(float(h["val_accuracy"]) for h in history),
                                                               abs=1e-5)
    assert not (directory / ".partial").exists()
    assert (directory / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # best.yaml: the best trial's values, no search section, ready for train (it loads and validates)
    best = max((r for r in rows if r["state"] == "complete"),  # fewer MACs among equals
               key=lambda r: (float(r["val_accuracy"]), -int(r["macs"])))
    code, validated, _ = cli("validate", str(directory / "best.yaml"))
    assert code == 0 and validated.startswith(f"tiny: ok (input [8, 8, 1] -> output [10], depth 3, "
                                              f"{int(best['params']):,} params")
    text = (directory / "best.yaml").read_text()
    assert "search:" not in text and f"best trial ({best['number']})" in text and "epochs: 5" in text
    assert f"variables: {{filters: {best['variables.filters']}, units: {best['variables.units']}}}" in text
    # live progress: one line per trial, k of N, the best so far
    first_trained = min(int(row["number"]) for row in rows if row["run_dir"])  # trial 0 may be over budget
    assert f"trial {first_trained}: training variables.filters=" in out
    assert f"[6 of 6; best {float(best['val_accuracy']):.4f} (trial {best['number']})]" in out
    assert "6 trials finished" in out and f"best: trial {best['number']}" in out
    # the report reads the storage alone, and rewrites the same files
    (directory / "trials.csv").unlink()
    code, report, err = cli("search-report", str(directory))
    assert code == 0, err
    assert rows_of(directory) == rows and "best, Pareto front" in report


def test_two_workers_on_one_sqlite_file_finish_n_trials_together(family, tmp_path):
    workers = [search(str(family), "--trials", "3", "--epochs", "1", "--output", "shared", cwd=tmp_path)
               for _ in range(2)]
    try:
        outputs = [finish(worker)[0] for worker in workers]
    finally:  # a worker that failed leaves the other running: stop it, not a later test's warnings
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    directory = tmp_path / "shared"
    rows = rows_of(directory)
    check_finished(rows, 3, {p.name for p in directory.glob("trial-*")})
    trained = [set(line.split()[1].rstrip(":") for line in out.splitlines() if ": training " in line)
               for out in outputs]
    assert not trained[0] & trained[1] and len(trained[0] | trained[1]) == 3  # each trial trained once
    for out in outputs:  # both stop together at N, with the same final table
        assert "3 trials finished" in out


def _postgres_binaries() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 (initdb + pg_ctl in a temporary folder), stopped after."""
    binaries = _postgres_binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (tools/install-postgres.sh installs Debian's postgresql as root)")
    folder = Path(tempfile.mkdtemp(prefix="blockbuilder-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        if shutil.which("runuser") is None:
            pytest.skip("running as root without 'runuser' to start PostgreSQL as another user")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = folder / "data"
    subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "blockbuilder", "--auth=trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options,
                    "-w", "start"], check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql://blockbuilder@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_workers_on_postgresql_each_with_its_own_directory(family, tmp_path, postgres_url):
    """Two machines: the same command with one database and a directory each; the study reaches N once."""
    workers = [search(str(family), "--trials", "3", "--epochs", "1", "--output", f"machine{i}", "--storage",
                      postgres_url, cwd=tmp_path) for i in (1, 2)]
    for worker in workers:
        finish(worker)
    run_dirs = [{p.name for p in (tmp_path / f"machine{i}").glob("trial-*")} for i in (1, 2)]
    assert not run_dirs[0] & run_dirs[1] and len(run_dirs[0] | run_dirs[1]) == 3  # each trial trained once
    for i in (1, 2):  # each machine's report shows the whole study
        check_finished(rows_of(tmp_path / f"machine{i}"), 3, run_dirs[0] | run_dirs[1])
    record = json.loads((tmp_path / "machine1" / "search.json").read_text())
    assert record["storage"] == postgres_url


def test_kill_9_mid_search_then_rerun_completes_n_trials_without_duplicates(family, tmp_path):
    first = search(str(family), "--trials", "3", "--output", "killed", cwd=tmp_path)
    directory = tmp_path / "killed"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # kill while the second trained trial is half-way
        # after one trained trial (trial 0 may have been pruned by the budget: it then has no directory)
        partial = list((directory / ".partial").glob("trial-*/*")) if any(directory.glob("trial-*")) else []
        if partial or first.poll() is not None:
            break
        time.sleep(0.05)
    if not partial:
        first.kill()
        out, err = first.communicate(timeout=60)  # closes the pipes too
        pytest.fail(f"the search never reached its second trial (exit {first.returncode}): {err[-2000:]}")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    interrupted = int(partial[0].parent.name.removeprefix("trial-"))
    out, _ = finish(search(str(family), "--trials", "3", "--output", "killed", cwd=tmp_path))
    assert f"trial {interrupted} was interrupted: marked failed, queued to run again" in out
    rows = rows_of(directory)
    check_finished(rows, 3, {p.name for p in directory.glob("trial-*")})
    failed = [r for r in rows if r["state"] == "failed"]
    assert [int(r["number"]) for r in failed] == [interrupted]
    assert failed[0]["reason"].startswith("interrupted")
    rerun = [r for r in rows if r["state"] != "failed" and r["run_dir"] and all(
        r[key] == failed[0][key] for key in ("variables.filters", "variables.units", "train.optimizer.learning_rate"))]
    assert len(rerun) == 1 and int(rerun[0]["number"]) > interrupted  # the same values, run again
    assert not (directory / ".partial").exists()
    for run in directory.glob("trial-*"):  # no half-written run directory
        assert json.loads((run / "metrics.json").read_text())["epochs_completed"] >= 1
