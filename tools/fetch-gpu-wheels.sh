#!/usr/bin/env bash
# Download (here, with network) the Python 3.12 manylinux wheels that the GPU check machine lacks,
# into .whl/ (ignored by git; carried with the working tree). That machine has numpy, h5py, rich,
# ml-dtypes, absl-py, PyYAML, scikit-learn, matplotlib, JAX (CUDA) and PyTorch, but no Keras and
# no pydantic. Pure-Python wheels are fetched as py3-none-any.
#
#   tools/fetch-gpu-wheels.sh            # then: bench/gpu_check.sh on the GPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
mkdir -p .whl
# keras needs (beyond what the machine has): namex, optree, packaging; blockbuilder needs pydantic.
PACKAGES=(keras namex optree packaging pydantic pydantic-core annotated-types typing-extensions
          typing-inspection)
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --implementation cp \
    --dest .whl "${PACKAGES[@]}"
du -sh .whl
ls .whl
