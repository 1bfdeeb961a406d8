"""Every command that reads a file, given each kind of bad file, fails in one line: no hang, no traceback.

One table: each reader (a command and the file it reads) meets each fault (missing, a directory, a FIFO, an
empty file, garbage bytes, a truncated file, a foreign file with the right name). Every case runs in a
process of its own (forked from one that has imported the command line, :data:`DRIVER`), many at once, and
must exit 1 or 2 within ``TIMEOUT`` seconds with exactly one line on stderr that names the file. A hang is
killed and fails its case, not the suite. Below the table, the exact messages of the faults of issue 19.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import REPO

TIMEOUT = 10  # seconds per case; a command that waits on a FIFO is killed after this
FAULTS = ("missing", "directory", "fifo", "empty", "garbage", "truncated", "foreign")
LENET = (REPO / "architectures" / "lenet5.yaml").read_bytes()


# -- sample files: a valid one of each kind (its first half is the truncated file) and a foreign one --------


def _h5(fill: Callable[..., None]) -> bytes:
    import h5py

    stream = io.BytesIO()
    with h5py.File(stream, "w") as f:
        fill(f)
    return stream.getvalue()


def _keras_weights(f, values=None) -> None:
    """Keras 3's weights layout: ``layers/<key>/vars/<i>``, the layer's name in ``vars``' attributes."""
    variables = f.create_group("layers/conv2d/vars")
    variables.attrs["name"] = "conv1"
    variables["0"] = np.zeros((5, 5, 1, 6), np.float32) if values is None else values
    variables["1"] = np.zeros((6,), np.float32)


def _zip(members: dict[str, bytes]) -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return stream.getvalue()


def _png() -> bytes:
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32), dtype=np.uint8)).save(stream, "PNG")
    return stream.getvalue()


def _onnx() -> bytes:
    """A model of 8x8 grey images with 64 classes (its pixels) that onnxruntime runs: no TensorFlow."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8, 8, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 64])
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["y"])], "pixels", [x], [y])
    return bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())


def _npz(**arrays) -> bytes:
    stream = io.BytesIO()
    np.savez(stream, **arrays)
    return stream.getvalue()


def samples() -> dict[str, tuple[bytes, bytes]]:
    """kind -> (a valid file, a foreign file of the same name)."""
    weights = _h5(_keras_weights)
    keras_zip = _zip({"metadata.json": b'{"keras_version": "3.0.0"}', "config.json": b'{"class_name": "x"}',
                      "model.weights.h5": weights})
    text = b"plain text, not this kind of file\n"
    return {
        "yaml": (LENET, b"services:\n  web:\n    image: nginx\n"),  # YAML, not an architecture
        "keras": (keras_zip, _zip({"hello.txt": b"a zip archive, not a Keras model"})),
        "h5": (weights, _h5(lambda f: f.create_dataset("data", data=np.arange(10)))),  # HDF5, not weights
        "onnx": (_onnx(), text),
        "tflite": (b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4, text),
        "png": (_png(), text),
        "json": (json.dumps({"class_names": ["a", "b"], "dataset": "digits", "test": {"accuracy": 0.5}}).encode(),
                 b'"a JSON string, not metrics"\n'),
        "npz": (_npz(x=np.zeros((4, 32, 32, 1), np.uint8), y=np.arange(4) % 2), text),
    }


def make_fault(path: Path, fault: str, kind: str, sample: dict[str, tuple[bytes, bytes]]) -> None:
    """Put the fault at ``path`` (``missing``: leave nothing there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    good, foreign = sample[kind]
    if fault == "directory":
        path.mkdir()
    elif fault == "fifo":
        os.mkfifo(path)
    elif fault != "missing":
        path.write_bytes({"empty": b"", "garbage": random.Random(19).randbytes(4096),
                          "truncated": good[:len(good) // 2], "foreign": foreign}[fault])


# -- the readers ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reader:
    """A command and the file it reads.

    Attributes:
        argv: The command line; ``{P}`` is the bad file, ``{C}`` the case's folder, ``{IMG}`` a good image,
            ``{RUN}`` a run directory whose model is a fake (enough for every check before TensorFlow), ``{ONNX}``
            a model of images that onnxruntime runs.
        file: The bad file's path in the case's folder.
        kind: Its kind (which sample it is made from).
        around: Good files beside it, in the case's folder (name -> kind).
    """

    argv: str
    file: str
    kind: str
    around: tuple[tuple[str, str], ...] = ()


USES = {"uses": "extends: lenet5\nweights: {file}\n",
        "data": "extends: lenet5\nclasses: 2\ntrain: {{dataset: 'npz:{file}', epochs: 1}}\n"}
RUN_FILES = (("run/resolved.yaml", "yaml"), ("run/metrics.json", "json"), ("run/model.keras", "keras"))


def _beside(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple(item for item in RUN_FILES if item[0] not in names)


READERS = {
    # architecture files
    "validate": Reader("validate {P}", "arch.yaml", "yaml"),
    "resolve": Reader("resolve {P}", "arch.yaml", "yaml"),
    "summary": Reader("summary {P}", "arch.yaml", "yaml"),
    "build": Reader("build {P} -o {C}/m.keras", "arch.yaml", "yaml"),
    "draw": Reader("draw {P} -o {C}/d.svg", "arch.yaml", "yaml"),
    "train": Reader("train {P} -o {C}/out", "arch.yaml", "yaml"),
    "profile": Reader("profile {P}", "arch.yaml", "yaml"),
    "search": Reader("search {P} --output {C}/search", "arch.yaml", "yaml"),
    "compare": Reader("compare {P}", "arch.yaml", "yaml"),
    # weights: in a file, and --weights
    "train-weights:-keras": Reader("train {C}/uses.yaml -o {C}/out", "w.keras", "keras", (("uses.yaml", "uses"),)),
    "train-weights:-h5": Reader("train {C}/uses.yaml -o {C}/out", "w.weights.h5", "h5", (("uses.yaml", "uses"),)),
    "summary--weights-keras": Reader("summary lenet5 --weights {P}", "w.keras", "keras"),
    "build--weights-h5": Reader("build lenet5 --weights {P} -o {C}/m.keras", "w.h5", "h5"),
    "embed--weights-keras": Reader("embed lenet5 --weights {P} {IMG} --block conv1 -o {C}/e.npy", "w.keras", "keras"),
    # models
    "export-keras": Reader("export {P} -o {C}/out", "m.keras", "keras"),
    "export-run": Reader("export {C}/run -o {C}/out --verify", "run/model.keras", "keras", _beside("run/model.keras")),
    "predict-keras": Reader("predict {P} {IMG}", "m.keras", "keras"),
    "predict-onnx": Reader("predict {P} {IMG}", "m.onnx", "onnx"),
    "predict-tflite": Reader("predict {P} {IMG}", "m.tflite", "tflite"),
    "predict-run": Reader("predict {C}/run {IMG}", "run/model.keras", "keras", _beside("run/model.keras")),
    "features-keras": Reader("features {P} --image {IMG} -o {C}/f.png", "m.keras", "keras"),
    "embed-keras": Reader("embed {P} {IMG} --block conv1 -o {C}/e.npy", "m.keras", "keras"),
    "explore-keras": Reader("explore {P} --port 0", "m.keras", "keras"),
    "evaluate-model": Reader("evaluate {C}/run", "run/model.keras", "keras", _beside("run/model.keras")),
    # images
    "predict-image": Reader("predict {ONNX} {P}", "i.png", "png"),
    "features-image": Reader("features {RUN} --image {P} -o {C}/f.png", "i.png", "png"),
    "embed-image": Reader("embed lenet5 {P} --block conv1 -o {C}/e.npy", "i.png", "png"),
    # run directories and data
    "report-metrics": Reader("report {C}/run", "run/metrics.json", "json", _beside("run/metrics.json")),
    "compare-metrics": Reader("compare {C}/run", "run/metrics.json", "json", _beside("run/metrics.json")),
    "evaluate-metrics": Reader("evaluate {C}/run", "run/metrics.json", "json", _beside("run/metrics.json")),
    "train-data-npz": Reader("train {C}/data.yaml -o {C}/out", "d.npz", "npz", (("data.yaml", "data"),)),
    "search-report": Reader("search-report {C}/search", "search/search.json", "json"),
}

#: Cases that fail for a cause outside this change's files (strict: each must be removed once it passes).
KNOWN: dict[str, str] = {}

CASES = [pytest.param(reader, fault, id=f"{reader}-{fault}",
                      marks=[pytest.mark.xfail(reason=KNOWN[f"{reader}-{fault}"], strict=True)]
                      if f"{reader}-{fault}" in KNOWN else [])
         for reader in READERS for fault in FAULTS]


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: still running after TIMEOUT seconds
    out: str
    err: str
    seconds: float


#: Runs the cases given as JSON on stdin, each in its own process forked from this one once it has imported
#: the command line (what ``python -m blockbuilder`` does, without its 0.3 s start for each of 200 cases),
#: with stdout and stderr at the file level (what TensorFlow or a C library writes is seen too); kills a
#: case still running after TIMEOUT seconds; prints {id: [code or None, seconds]}.
DRIVER = """
import json, os, signal, sys, time, traceback
import h5py, PIL.Image  # what most cases import: once here, not in each
import blockbuilder.images, blockbuilder.language.architecture
import blockbuilder.serving.predict, blockbuilder.transfer.weights
from blockbuilder.cli.main import main

assert "tensorflow" not in sys.modules and "keras" not in sys.modules

cases, timeout, width = json.load(sys.stdin), float(sys.argv[1]), int(sys.argv[2])
waiting, running, done = list(cases), {}, {}
while waiting or running:
    while waiting and len(running) < width:
        case = waiting.pop()
        pid = os.fork()
        if pid == 0:
            os.chdir(case["cwd"])
            for fd, name in ((1, "out"), (2, "err")):
                os.dup2(os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            code = 1
            try:
                code = main(case["argv"])
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except BaseException:
                traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        running[pid] = (case["id"], time.monotonic())
    pid, status = os.waitpid(-1, os.WNOHANG)
    if pid:
        name, began = running.pop(pid)
        done[name] = [os.waitstatus_to_exitcode(status), time.monotonic() - began]
    for pid, (name, began) in list(running.items()):
        if time.monotonic() - began > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            del running[pid]
            done[name] = [None, timeout]
    time.sleep(0.005)
print(json.dumps(done))
"""


def run_all(cases: dict[str, tuple[list[str], Path]]) -> dict[str, Outcome]:
    """Run ``{id: (argv, folder)}``, several at a time, each case in its own process; its output in its folder."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    listed = [{"id": name, "argv": argv, "cwd": str(folder), "out": str(folder / ".stdout"),
               "err": str(folder / ".stderr")} for name, (argv, folder) in cases.items()]
    width = 4 * (os.cpu_count() or 2)  # a case that hangs only waits
    done = subprocess.run([sys.executable, "-c", DRIVER, str(TIMEOUT), str(width)], input=json.dumps(listed),
                          capture_output=True, text=True, env=env, timeout=TIMEOUT * len(cases) / width + 120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: Outcome(results[name][0], (folder / ".stdout").read_text(errors="replace"),
                          (folder / ".stderr").read_text(errors="replace"), results[name][1])
            for name, (_, folder) in cases.items()}


def _prepare(root: Path, shared: dict[str, Path], sample: dict[str, tuple[bytes, bytes]], reader: Reader,
             fault: str) -> tuple[list[str], Path]:
    folder = root / f"{len(list(root.iterdir()))}"
    folder.mkdir()
    bad = folder / reader.file
    for name, kind in reader.around:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(USES[kind].format(file=reader.file).encode() if kind in USES else sample[kind][0])
    make_fault(bad, fault, reader.kind, sample)
    words = {"P": bad, "C": folder, "IMG": shared["image"], "RUN": shared["run"], "ONNX": shared["onnx"]}
    return [word.format(**words) for word in reader.argv.split()], folder


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[tuple[str, str], tuple[Outcome, Path]]:
    root = tmp_path_factory.mktemp("faults")
    sample = samples()
    shared = {"image": root / "good.png", "run": root / "run", "onnx": root / "pixels.onnx"}
    shared["image"].write_bytes(sample["png"][0])
    shared["onnx"].write_bytes(sample["onnx"][0])
    for name, kind in RUN_FILES:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_bytes(sample[kind][0])
    cases_root = root / "cases"
    cases_root.mkdir()
    prepared = {f"{reader}-{fault}": _prepare(cases_root, shared, sample, READERS[reader], fault)
                for reader in READERS for fault in FAULTS}
    results = run_all(prepared)
    return {(reader, fault): (results[f"{reader}-{fault}"], prepared[f"{reader}-{fault}"][1] / READERS[reader].file)
            for reader in READERS for fault in FAULTS}


@pytest.mark.parametrize("reader, fault", CASES)
def test_a_bad_file_is_one_line_naming_it(outcomes, reader: str, fault: str) -> None:
    got, bad = outcomes[reader, fault]
    assert got.code is not None, f"still running after {TIMEOUT} s (stderr: {got.err[-300:]!r})"
    assert "Traceback" not in got.err, got.err[-2000:]
    assert got.code in (1, 2), got.err
    lines = got.err.splitlines()
    assert len(lines) == 1, got.err
    named = [bad.name] + ([str(bad.parent)] if "/" in READERS[reader].file else [])  # a run directory's file
    assert any(name in lines[0] for name in named), lines[0]


# -- the faults of issue 19, with their exact messages ----------------------------------------------------


def test_a_fifo_is_refused_before_it_is_opened_and_weights_at_their_line(tmp_path: Path) -> None:
    """Item 7: ``weights:`` naming a FIFO hung ``train`` (``.keras``); ``embed`` and ``predict`` hung on one."""
    for name in ("w.keras", "w.h5", "m.keras", "m.onnx", "m.tflite"):
        os.mkfifo(tmp_path / name)
    (tmp_path / "uses.yaml").write_text("extends: lenet5\nweights: w.keras\n")
    (tmp_path / "good.png").write_bytes(_png())
    fifo = "a named pipe (FIFO), not a file"
    cases = {
        "train": (["train", "uses.yaml", "-o", "out"], f"uses.yaml:2:10: weights w.keras: {fifo}"),
        "summary-weights": (["summary", "lenet5", "--weights", "w.h5"], f"blockbuilder summary: error: weights w.h5: "
                                                                        f"{fifo}"),
        "embed": (["embed", "m.keras", "good.png", "--block", "conv1", "-o", "e.npy"],
                  f"blockbuilder embed: error: m.keras: {fifo}"),
        "predict-onnx": (["predict", "m.onnx", "good.png"], f"blockbuilder predict: error: m.onnx: {fifo}"),
        "predict-tflite": (["predict", "m.tflite", "good.png"], f"blockbuilder predict: error: m.tflite: {fifo}"),
    }
    folders = {name: tmp_path / f"case-{name}" for name in cases}
    for folder in folders.values():  # each case its own folder (for its output), with links to the files
        folder.mkdir()
        for item in tmp_path.iterdir():
            if not item.name.startswith("case-"):
                (folder / item.name).symlink_to(item)

    got = run_all({name: (argv, folders[name]) for name, (argv, _) in cases.items()})

    assert {name: (outcome.code, outcome.err) for name, outcome in got.items()} == {
        name: (1, line + "\n") for name, (_, line) in cases.items()}


def _string_weights(f) -> None:
    _keras_weights(f, np.array([[b"abc"] * 6] * 25, dtype="S3").reshape(5, 5, 1, 6))


@pytest.mark.parametrize("suffix", [".weights.h5", ".keras"])
def test_a_string_where_a_weights_file_holds_numbers_is_one_line_naming_the_tensor(cli, tmp_path: Path,
                                                                                    suffix: str) -> None:
    """Item 9: ``ValueError: could not convert string to float: np.bytes_(b'abc')`` from ``variable.assign``."""
    weights = _h5(_string_weights)
    path = tmp_path / f"strings{suffix}"
    path.write_bytes(weights if suffix == ".weights.h5" else
                     _zip({"config.json": b"{}", "metadata.json": b"{}", "model.weights.h5": weights}))
    code, out, err = cli("build", "lenet5", "--weights", path, "-o", tmp_path / "m.keras")
    assert (code, err) == (1, f"blockbuilder build: error: {path}: tensor /layers/conv2d/vars/0 holds bytes, not "
                              "numbers\n")
    assert not (tmp_path / "m.keras").exists()


def test_a_huge_samples_is_refused_before_anything_is_allocated(cli, tmp_path: Path) -> None:
    """Item 12: ``export --verify --samples 100000000000`` raised ``_ArrayMemoryError: ... 373. TiB``."""
    code, out, err = cli("export", tmp_path / "m.keras", "-o", tmp_path / "out", "--verify",
                         "--samples", "100000000000")
    assert code == 2
    assert err.splitlines()[-1] == ("blockbuilder export: error: argument --samples: expected at most 1,024 random "
                                    "inputs, got 100,000,000,000")
    from blockbuilder.serving.export import export_model
    from blockbuilder.serving.source import ExportError

    with pytest.raises(ExportError, match=r"^--samples: expected from 1 to 1,024 random inputs, got 100,000,000,000$"):
        export_model(tmp_path / "missing.keras", "keras", tmp_path / "out.keras", verify=True, samples=10**11)


@pytest.mark.parametrize("case", [
    "validate-weights:-fifo",
    "train-npz-string-labels",
])
def test_what_is_left_to_other_modules(tmp_path: Path, case: str) -> None:
    """``validate`` ok is a promise (it says nothing of a FIFO in ``weights:``); a string is never a number."""
    os.mkfifo(tmp_path / "w.keras")
    (tmp_path / "uses.yaml").write_text("extends: lenet5\nweights: w.keras\n")
    (tmp_path / "labels.npz").write_bytes(_npz(x=np.zeros((4, 32, 32, 1), np.uint8), y=np.array([b"a", b"b"] * 2)))
    (tmp_path / "data.yaml").write_text(USES["data"].format(file="labels.npz"))
    argv = ["validate", "uses.yaml"] if case.startswith("validate") else ["train", "data.yaml", "-o", "out"]

    got = run_all({case: (argv, tmp_path)})[case]

    assert got.code == 1 and len(got.err.splitlines()) == 1 and "Traceback" not in got.err, got.err
    assert ("uses.yaml:2:10: weights w.keras: a named pipe" in got.err if case.startswith("validate")
            else "labels.npz" in got.err), got.err


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=8)))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_export_tolerance_is_a_finite_number_of_zero_or_more(cli, tmp_path: Path, text: str) -> None:
    """``--tolerance nan`` or ``-1`` could never be met: refused at the argument, like any word."""
    code, out, err = cli("export", tmp_path / "no-run", "--format", "keras", "-o", tmp_path / "x.keras",
                         "--verify", f"--tolerance={text}")
    try:
        accepted = math.isfinite(float(text)) and float(text) >= 0
    except ValueError:
        accepted = False
    assert code in (1, 2) and out == "" and "Traceback" not in err
    last = err.splitlines()[-1]  # argparse's own errors print the usage first, as every command's do
    assert last.startswith("blockbuilder export: error: ") and ("argument --tolerance" in last) is not accepted, err
    assert accepted or code == 2


def _zip_bomb(path: Path, inflated: int = 100 * 2**20) -> Path:
    """A ``.keras`` archive of a few hundred KB whose weights entry inflates to ``inflated`` bytes of zeros."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("model.weights.h5", "w", force_zip64=True) as entry:
            block = bytes(2**20)
            for _ in range(inflated // len(block)):
                entry.write(block)
    return path


def test_a_zip_bomb_is_refused_by_its_declared_sizes_before_anything_inflates(tmp_path: Path) -> None:
    bomb = _zip_bomb(tmp_path / "bomb.keras")
    assert bomb.stat().st_size < 2**20
    argvs = {"validate": ["validate", "uses.yaml"], "predict": ["predict", "bomb.keras", "x.png"],
             "summary": ["summary", "lenet5", "--weights", "bomb.keras"]}
    for name in argvs:  # each case writes its output in its own folder
        (tmp_path / name).mkdir()
        (tmp_path / name / "bomb.keras").symlink_to(bomb)
    (tmp_path / "validate" / "uses.yaml").write_text("extends: lenet5\nweights: bomb.keras\n")
    expected = ("its model.weights.h5 would inflate from {:,} to 104,857,600 bytes, more than 50x: not a model's "
                "archive (a zip bomb?)").format(zipfile.ZipFile(bomb).getinfo("model.weights.h5").compress_size)
    got = run_all({name: (argv, tmp_path / name) for name, argv in argvs.items()})
    assert got["validate"].code == 1 and got["validate"].err == (
        f"uses.yaml:2:10: weights bomb.keras: {bomb.name}: {expected}\n"), got["validate"].err
    for name in ("predict", "summary"):
        assert got[name].code in (1, 2) and got[name].err.count("\n") == 1, got[name].err
        assert expected in got[name].err and "Traceback" not in got[name].err, got[name].err
