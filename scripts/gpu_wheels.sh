#!/usr/bin/env bash
# Wheels that a bare GPU image with its own torch lacks for scripts/gpu_check.py, made
# beforehand on a machine with network: copy the folder over and
#   pip install --no-index --no-deps .whl/*.whl
# Usage: scripts/gpu_wheels.sh [PYTHON_VERSION (default 3.12)] [DIR (default .whl)]
# antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 pins) exists only as an sdist, so its
# wheel is built here (it is pure Python: the wheel fits every Python 3).
set -euo pipefail
py="${1:-3.12}"
dir="${2:-.whl}"
mkdir -p "$dir"
download() {
  python -m pip download --no-deps --only-binary=:all: --python-version "$py" -d "$dir" "$@"
}
download hydra-core==1.3.2 omegaconf==2.3.0 albumentations==2.0.8
# albumentations 2.0.8's needs; compiled ones are picked for the target Python.
download albucore pydantic pydantic-core simsimd stringzilla \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
python -m pip wheel --no-deps -w "$dir" antlr4-python3-runtime==4.9.3
ls -1 "$dir"
