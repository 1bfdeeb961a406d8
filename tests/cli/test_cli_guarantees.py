"""Arguments first, TensorFlow second: every command reports a bad argument without importing TensorFlow.

The cases run in one child process in which importing ``tensorflow``, ``keras`` or ``jax`` is refused and
recorded, so a command that reached for TensorFlow before checking its arguments is caught here even
if it would have said the right thing (after 3–9 s). Each case must exit 1 (a bad file or failed work)
or 2 (bad usage) with one line on stderr and nothing on stdout. Timing is in ``bench/bench_cli.py``.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO

BLOCKER = '''
import importlib.abc, sys

HEAVY = {"tensorflow", "keras", "jax", "tf_keras"}
ATTEMPTS = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HEAVY:
            ATTEMPTS.append(name)
            raise ImportError(f"import of {name} refused by the test")
        return None

sys.meta_path.insert(0, Refuse())
'''

DRIVER = BLOCKER + '''
import contextlib, io, json
from blockbuilder.cli.main import main

results = {}
for name, argv in json.loads(sys.argv[1]).items():
    ATTEMPTS.clear()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit:
            code = exit.code
        except BaseException as error:
            code = f"raised {type(error).__name__}: {error}"
    results[name] = {"code": code, "out": out.getvalue(), "err": err.getvalue(), "heavy": sorted(set(ATTEMPTS))}
print(json.dumps(results))
'''

LENET = (REPO / "architectures" / "lenet5.yaml").read_text()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def fake_model(path: Path) -> Path:
    """A zip archive named like a model: enough for every check, never loaded (no TensorFlow here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("guarantees")
    files = {"root": root}
    files["empty"] = root / "empty.yaml"
    files["empty"].write_text("")
    files["bad"] = root / "bad.yaml"
    files["bad"].write_text("name: bad\ninput: [32, 32, 1]\nnetwork:\n  - conv: {filters: -3}\n")
    files["run"] = root / "run"
    fake_model(files["run"] / "model.keras")
    (files["run"] / "resolved.yaml").write_text(LENET)
    files["latin1_run"] = root / "latin1_run"
    fake_model(files["latin1_run"] / "model.keras")
    (files["latin1_run"] / "resolved.yaml").write_bytes("name: caf\u00e9\n".encode("latin-1"))
    files["not_zip"] = root / "not_zip.keras"
    files["not_zip"].write_text("not a zip archive")
    files["taken"] = root / "taken"
    (files["taken"] / "saved_model.pb").parent.mkdir()
    (files["taken"] / "saved_model.pb").write_bytes(b"")
    files["garbage_savedmodel"] = root / "garbage_savedmodel"
    (files["garbage_savedmodel"] / "assets").mkdir(parents=True)
    (files["garbage_savedmodel"] / "saved_model.pb").write_bytes(b"\x08\x01")
    (files["garbage_savedmodel"] / "assets" / "blockbuilder.json").write_text("{not json")
    files["digit"] = root / "digit.png"
    from PIL import Image

    Image.new("L", (8, 8), 255).save(files["digit"])
    files["text_png"] = root / "notes.png"
    files["text_png"].write_text("not an image")
    files["bomb"] = root / "bomb.png"
    header = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    files["bomb"].write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    files["a_file"] = root / "a_file"
    files["a_file"].write_text("a file, not a folder")
    with socket.socket() as taken:  # a port in use while the cases run
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        files["port"] = Path(str(taken.getsockname()[1]))
        yield files


def cases(f: dict[str, Path]) -> dict[str, tuple[list[str], int, str]]:
    """name -> (argv, exit code, the one stderr line; ending in "..." when only its start is fixed)."""
    root, run, digit = f["root"], f["run"], f["digit"]
    missing = root / "missing"
    no_folder = f["a_file"] / "x"
    return {
        "summary-empty": (["summary", f["empty"]], 1, f"{f['empty']}:1:1: missing required key 'input'"),
        "summary-bad": (["summary", f["bad"]], 1,
                        f"{f['bad']}:4:21: network[0].conv.filters: expected a positive integer, got -3"),
        "summary-missing": (["summary", missing / "a.yaml"], 2, "blockbuilder summary: error: no file or zoo "
                            f"architecture called '{missing / 'a.yaml'}'; 'blockbuilder zoo' lists the zoo"),
        "build-empty": (["build", f["empty"]], 1, f"{f['empty']}:1:1: missing required key 'input'"),
        "build-format": (["build", "lenet5", "-o", root / "x.h5"], 2,
                         f"blockbuilder build: error: --output must end in .keras, got '{root / 'x.h5'}'"),
        "build-unwritable": (["build", "lenet5", "-o", no_folder / "m.keras"], 1,
                             f"blockbuilder build: error: cannot write {no_folder / 'm.keras'}: Not a directory"),
        "build-proc": (["build", "lenet5", "-o", "/proc/x/m.keras"], 1,
                       "blockbuilder build: error: cannot write /proc/x/m.keras: No such file or directory"),
        "train-empty": (["train", f["empty"]], 1, f"{f['empty']}:1:1: missing required key 'input'"),
        "train-missing": (["train", missing / "a.yaml"], 2, "blockbuilder train: error: no file or zoo "
                          f"architecture called '{missing / 'a.yaml'}'; 'blockbuilder zoo' lists the zoo"),
        "train-export-format": (["train", "lenet5", "--export", "tfjs"], 1, "blockbuilder train: error: unknown "
                                "export format 'tfjs' (choose from savedmodel, keras, onnx, litert)"),
        "export-missing": (["export", missing, "-o", root / "out"], 1,
                           f"blockbuilder export: error: {missing}: no such file or directory"),
        "export-not-zip": (["export", f["not_zip"], "-o", root / "out"], 1, "blockbuilder export: error: "
                           f"{f['not_zip']}: cannot read model (not a valid .keras archive)"),
        "export-existing": (["export", run, "-o", f["taken"]], 1,
                            f"blockbuilder export: error: {f['taken']}: already exists (use --force to replace it)"),
        "export-format": (["export", run, "-o", root / "out", "--format", "tfjs"], 2,
                          "blockbuilder export: error: argument --format/-f: invalid choice: 'tfjs' (choose from ..."),
        "export-not-utf8": (["export", f["latin1_run"], "-o", root / "out"], 1, "blockbuilder export: error: "
                            f"{f['latin1_run'] / 'resolved.yaml'}: not UTF-8 text (invalid continuation byte at "
                            "byte 9)"),
        "export-proc": (["export", run, "-o", "/proc/x"], 1,
                        "blockbuilder export: error: cannot write /proc/x: No such file or directory"),
        "predict-missing-model": (["predict", missing, digit], 1,
                                  f"blockbuilder predict: error: {missing}: no such file or directory"),
        "predict-garbage-metadata": (["predict", f["garbage_savedmodel"], digit], 1, "blockbuilder predict: error: "
                                     f"{f['garbage_savedmodel'] / 'assets' / 'blockbuilder.json'}: damaged metadata "
                                     "(not JSON: Expecting property name enclosed in double quotes: line 1 column 2 "
                                     "(char 1))"),
        "predict-missing-image": (["predict", run, root / "gone.png"], 1, "blockbuilder predict: error: "
                                  f"{root / 'gone.png'}: cannot read image (no such file or directory)"),
        "predict-not-an-image": (["predict", run, f["text_png"]], 1, "blockbuilder predict: error: "
                                 f"{f['text_png']}: cannot read image (unknown image format)"),
        "predict-bomb": (["predict", run, f["bomb"]], 1, f"blockbuilder predict: error: {f['bomb']}: image too "
                         "large (3,600,000,000 pixels, at most 67,108,864)"),
        "predict-top": (["predict", run, digit, "--top", "0"], 2,
                        "blockbuilder predict: error: argument --top: expected a positive integer, got 0"),
        "features-missing-model": (["features", missing, "--image", digit, "-o", root / "f.png"], 1,
                                   f"blockbuilder features: error: {missing}: no such file or directory"),
        "features-bomb": (["features", run, "--image", f["bomb"], "-o", root / "f.png"], 1,
                          f"blockbuilder features: error: {f['bomb']}: image too large (3,600,000,000 pixels, "
                          "at most 67,108,864)"),
        "features-format": (["features", run, "--image", digit, "-o", root / "f.jpg"], 2,
                            f"blockbuilder features: error: --output must end in .png, got '{root / 'f.jpg'}'"),
        "features-unwritable": (["features", run, "--image", digit, "-o", no_folder / "f.png"], 1,
                                f"blockbuilder features: error: cannot write {no_folder / 'f.png'}: Not a directory"),
        "explore-missing": (["explore", missing], 1, f"blockbuilder explore: error: {missing}: no such file or "
                            "directory"),
        "explore-port": (["explore", run, "--port", "70000"], 2, "blockbuilder explore: error: argument --port: "
                         "expected a port number from 0 to 65535, got 70000"),
        "explore-port-in-use": (["explore", run, "--port", f["port"]], 1, "blockbuilder explore: error: cannot serve "
                                f"on 127.0.0.1:{f['port']}: Address already in use"),
        "draw-empty": (["draw", f["empty"], "-o", root / "d.svg"], 1, f"{f['empty']}:1:1: missing required key "
                       "'input'"),
        "draw-format": (["draw", "lenet5", "-o", root / "d.gif"], 2, "blockbuilder draw: error: cannot tell the "
                        f"format of '{root / 'd.gif'}': use a name ending in .svg, .png, .html"),
        "draw-unwritable": (["draw", "lenet5", "-o", no_folder / "d.svg"], 1,
                            f"blockbuilder draw: error: cannot write {no_folder / 'd.svg'}: Not a directory"),
        # commands of other parts of blockbuilder keep the same promise
        "search-empty": (["search", f["empty"]], 1, f"{f['empty']}:1:1: missing required key 'input'"),
        "search-report-missing": (["search-report", missing], 2,
                                  f"blockbuilder search-report: error: {missing} is not a search directory..."),
        "embed-missing-image": (["embed", "lenet5", "--block", "conv1", "-o", root / "e.npy", root / "gone.png"], 1,
                                f"blockbuilder embed: error: {root / 'gone.png'}: cannot read image (no such file "
                                "or directory)"),
        "compare-missing": (["compare", "lenet5", "nosuchnet"], 2, "blockbuilder compare: error: no file or zoo "
                            "architecture called 'nosuchnet'; 'blockbuilder zoo' lists the zoo"),
        "compare-format": (["compare", "lenet5", "-o", root / "c.jpg"], 2, "blockbuilder compare: error: cannot "
                           f"tell the chart format of '{root / 'c.jpg'}': use a name ending in .png or .svg"),
    }


@pytest.fixture(scope="module")
def results(files) -> dict[str, dict]:
    argvs = {name: [str(a) for a in argv] for name, (argv, _, _) in cases(files).items()}
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(argvs)], capture_output=True, text=True,
                          env=env, timeout=300, cwd=files["root"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


CASES = list(cases({key: Path("/x") for key in ("root", "run", "digit", "a_file", "empty", "bad", "latin1_run",
                                                 "not_zip", "taken", "garbage_savedmodel", "text_png", "bomb",
                                                 "port")}))


@pytest.mark.parametrize("name", CASES)
def test_bad_argument_is_reported_without_tensorflow(files, results, name: str) -> None:
    argv, code, line = cases(files)[name]
    got = results[name]
    if f"unknown command '{argv[0]}'" in got["err"]:
        pytest.skip(f"'{argv[0]}' is not a command of this checkout")

    assert got["heavy"] == [], f"imported {got['heavy']} before reporting the error"
    assert got["code"] == code, got["err"]
    assert got["out"] == ""
    last = got["err"].splitlines()[-1] if got["err"] else ""
    assert last.startswith(line[:-3]) if line.endswith("...") else last == line  # "...": argparse's wording varies
    if code == 1:  # argparse's own errors (exit 2) print the usage first; everything else is one line
        assert got["err"] == line + "\n"


def test_the_real_entry_point_too(files, tmp_path: Path) -> None:
    """``python -m blockbuilder`` with TensorFlow's import refused by a sitecustomize module."""
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    bomb, run = files["bomb"], files["run"]

    done = subprocess.run([sys.executable, "-m", "blockbuilder", "predict", str(run), str(bomb)],
                          capture_output=True, text=True, env=env, timeout=120)

    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"blockbuilder predict: error: {bomb}: image too large (3,600,000,000 pixels, "
                           "at most 67,108,864)\n")
