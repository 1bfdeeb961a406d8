"""Input pipeline speed per backend: this tree's one pipeline against the committed one, in one run.

Each measurement trains a small model (``lenet5`` on 32x32x3, so that feeding matters) with
``model.fit`` for a number of timed steps, in a fresh process, on the same data:

* ``arrays``: 8,192 images in memory (an ``npz:`` file), no augmentation;
* ``augment``: the same with ``[{random_crop: {padding: 4}}, flip, {translation: {factor: 0.1}}]``;
* ``files``: 2,048 PNG files (a ``folder:``), decoded every epoch (``cache: false``).

Pipelines: ``new`` (:mod:`blockbuilder.training.pipeline` of this tree, on every backend) and
``old``, the pipeline each backend had in the baseline tree (``--old``, default the last commit with two:
``tf.data`` on TensorFlow, NumPy on JAX and PyTorch). Runs are interleaved (``--repeats`` rounds of
every pipeline and backend) and the median of each is reported with its ratio new/old, measured in
the same run.

    python bench/bench_pipeline.py [--steps 60] [--repeats 3] [--cases arrays,augment,files]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
AUGMENT = [{"random_crop": {"padding": 4}}, "flip", {"translation": {"factor": 0.1}}]
SHAPE = (32, 32, 3)


def make_data(root: Path) -> None:
    """An ``npz`` of 8,192 images and a folder of 2,048 PNG files, 10 classes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    x = (rng.random((8192, *SHAPE)) * 255).astype(np.uint8)
    y = rng.integers(0, 10, len(x))
    np.savez(root / "data.npz", x=x, y=y)
    for i in range(2048):
        folder = root / "photos" / f"c{y[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(folder / f"{i}.png")


#: The training split of a child process, loaded at its first epoch (one pipeline and case per process).
_LOADED: dict[str, Any] = {}


def _batches(pipeline: str, case: str, root: Path, batch: int, epoch: int) -> Any:
    """One epoch of training batches: ``new`` (this tree's one pipeline) or ``old`` (the baseline tree's
    pipeline of this backend: ``tf.data`` on TensorFlow, NumPy elsewhere)."""
    import keras

    from blockbuilder.training.spec import AugmentationSpec

    source = f"folder:{root / 'photos'}" if case == "files" else f"npz:{root / 'data.npz'}"
    steps = [AugmentationSpec.model_validate(step) for step in AUGMENT] if case == "augment" else []
    if pipeline == "old" and keras.backend.backend() == "tensorflow":
        from blockbuilder.training import data, tfdata  # type: ignore[attr-defined]
        from blockbuilder.training.augment import Augmenter as TFAugmenter  # type: ignore[import-not-found]

        if "train" not in _LOADED:  # once per process, as the trainer loads its data once for every epoch
            splits: Any = data.load_splits(source, SHAPE, 10)
            _LOADED.update(train=splits.train if case == "files" else splits.train.cache(), size=splits.sizes["train"])
        augmenter: Any = TFAugmenter(steps, SHAPE) if steps else None
        return tfdata.train_batches(_LOADED["train"], batch, seed=0, epoch=epoch, augmentation=steps,
                                    input_shape=SHAPE, drop_remainder=True, augmenter=augmenter), _LOADED["size"]
    from blockbuilder.training import pipeline as numpy_pipeline

    if "train" not in _LOADED:
        splits = numpy_pipeline.load_splits(source, SHAPE, 10)
        _LOADED.update(train=splits.train if case == "files" else splits.train.cache(), size=splits.sizes["train"])
    train = _LOADED["train"]
    augmenter = numpy_pipeline.Augmenter(steps, SHAPE) if steps else None
    batches = numpy_pipeline.train_batches(train, batch, seed=0, epoch=epoch, augmentation=steps,
                                           input_shape=SHAPE, drop_remainder=True, augmenter=augmenter)
    feed = getattr(numpy_pipeline, "feed", None)  # as the trainer hands them to fit (the old tree had none)
    return (batches if feed is None else feed(batches)), _LOADED["size"]


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Images/s of ``model.fit``: the best of ``args.rounds`` epochs of ``args.steps`` steps, after 3 untimed ones."""
    tree = args.old if args.pipeline == "old" else args.new
    if tree:
        sys.path.insert(0, tree)
    import keras

    import blockbuilder
    from blockbuilder.training.optim import make_loss, make_metrics, make_optimizer

    keras.utils.set_random_seed(0)
    arch = blockbuilder.loads(f"extends: lenet5\ninput: {list(SHAPE)}\n")
    model = blockbuilder.build(arch)
    model.compile(optimizer=make_optimizer(arch.train, 1000), loss=make_loss(arch.train),
                  metrics=make_metrics(arch.train))
    root = Path(args.data)
    warm, size = _batches(args.pipeline, args.case, root, args.batch_size, 0)
    model.fit(warm, epochs=1, steps_per_epoch=3, verbose=0)
    steps = min(args.steps, size // args.batch_size)
    best = 0.0
    for epoch in range(1, args.rounds + 1):  # the best round: the least disturbed by other work on the machine
        data, _ = _batches(args.pipeline, args.case, root, args.batch_size, epoch)
        started = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        best = max(best, steps * args.batch_size / (time.perf_counter() - started))
    return {"backend": keras.backend.backend(), "pipeline": args.pipeline, "case": args.case,
            "images_per_second": round(best, 1)}


def _two_pipelines_commit() -> str:
    """The last commit with the two pipelines (``tf.data`` for TensorFlow beside the NumPy one)."""
    git = ["git", "-C", str(REPO)]
    if subprocess.run([*git, "cat-file", "-e", "HEAD:blockbuilder/training/tfdata.py"]).returncode == 0:
        return "HEAD"
    removed = subprocess.run([*git, "rev-list", "-n1", "HEAD", "--", "blockbuilder/training/tfdata.py"],
                             capture_output=True, text=True, check=True).stdout.strip()
    return f"{removed}~1"  # the commit before the one that removed it


def _archive_head(target: Path) -> str:
    """The baseline tree (``git archive``, :func:`_two_pipelines_commit`), whatever the working tree holds."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", _two_pipelines_commit(), "blockbuilder",
                              "architectures"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return str(target)


def run_child(backend: str, extra: list[str], timeout: float = 900) -> dict[str, Any]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", *extra]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {result.returncode}: {tail[0]}"}
    measured: dict[str, Any] = json.loads(lines[-1])
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement (default 60)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved processes of each (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs in each process, the best kept")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--cases", default="arrays,augment,files")
    parser.add_argument("--old", help="the baseline tree (default: `git archive` of the last commit with two "
                                      "pipelines)")
    parser.add_argument("--new", help="the tree to measure (default: this one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pipeline", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    backends = [b for b in args.backends.split(",") if importlib.util.find_spec(b) is not None]
    runs = [(b, p, c) for c in args.cases.split(",") for b in backends for p in ("old", "new")]
    results: dict[tuple[str, str, str], list[float]] = {run: [] for run in runs}
    with tempfile.TemporaryDirectory() as folder:
        make_data(Path(folder))
        old = args.old or _archive_head(Path(folder) / "old")
        for _ in range(args.repeats):
            for backend, pipeline, case in runs:
                extra = ["--pipeline", pipeline, "--case", case, "--data", folder, "--steps", str(args.steps),
                         "--batch-size", str(args.batch_size), "--old", old, "--rounds", str(args.rounds),
                         *(["--new", args.new] if args.new else [])]
                measured = run_child(backend, extra)
                if "error" in measured:
                    print(f"{backend} {pipeline} {case}: {measured['error']}")
                    continue
                results[(backend, pipeline, case)].append(measured["images_per_second"])
    print(f"\nlenet5 32x32x3, batch {args.batch_size}, {args.steps} timed steps, median of {args.repeats}\n")
    print(f"{'case':<10}{'backend':<12}{'pipeline':<10}{'images/s':>10}{'vs old':>9}")
    for backend, pipeline, case in runs:
        found = results[(backend, pipeline, case)]
        if not found:
            continue
        base = results.get((backend, "old", case)) or found
        ratio = statistics.median(found) / statistics.median(base)
        print(f"{case:<10}{backend:<12}{pipeline:<10}{statistics.median(found):>10.1f}{ratio:>8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
