#!/usr/bin/env bash
# The prepared GPU check, one command (see docs/training.md, "GPUs and backends").
#
# On a GPU machine with Python 3.12, JAX (CUDA) and PyTorch but no Keras, pydantic or TensorFlow:
# installs blockbuilder from this working tree (pip install --no-deps --target) with the wheels of
# .whl/ (made by tools/fetch-gpu-wheels.sh, carried with the tree), then runs bench/gpu_check.py
# (8 minutes at most). Results: $OUT/gpu_check.json and $OUT/gpu_check.md (./gpu-check/ when $OUT is unset).
#
#   bench/gpu_check.sh            # full check on the GPU
#   bench/gpu_check.sh --smoke    # a few steps on CPU, float32 only (JAX and PyTorch where installed)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check}
mkdir -p "$OUT"
export OUT
SITE=$(mktemp -d)/site
if ! "$PYTHON" -c "import keras, pydantic" 2>/dev/null; then
    if ! ls .whl/*.whl >/dev/null 2>&1; then
        echo "gpu_check: Keras/pydantic missing and no wheels in .whl/ (run tools/fetch-gpu-wheels.sh where pip can download)" >&2
        exit 1
    fi
    "$PYTHON" -m pip install --quiet --no-deps --no-index --target "$SITE" .whl/*.whl
fi
# blockbuilder itself, from the working tree; without setuptools offline, run it from the source tree.
if ! "$PYTHON" -m pip install --quiet --no-deps --no-build-isolation --no-index --target "$SITE" . 2>/dev/null; then
    echo "gpu_check: could not pip-install the working tree; using it from the source tree" >&2
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 480 "$PYTHON" bench/gpu_check.py --budget-seconds 450 "$@"
