"""Put this folder first on PYTHONPATH and Python behaves as if TensorFlow were not installed.

``importlib.util.find_spec("tensorflow")`` says None (PyTorch asks) and ``import tensorflow`` (or
tensorflow_datasets, ...) raises ModuleNotFoundError. The tests and bench/bench_accuracy.py use it
to show that the JAX and PyTorch backends never need TensorFlow:

    PYTHONPATH=tools/without_tensorflow KERAS_BACKEND=jax blockbuilder train lenet5
"""

import sys
from importlib.machinery import PathFinder


class _PathFinderWithoutTensorFlow(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name == "tensorflow" or name.startswith(("tensorflow.", "tensorflow_")):
            return None
        return PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [_PathFinderWithoutTensorFlow if finder is PathFinder else finder for finder in sys.meta_path]
