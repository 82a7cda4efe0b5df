#!/usr/bin/env bash
# Wheels that a bare GPU image with its own torch lacks for scripts/gpu_check.py, made
# beforehand on a machine with network. Copy the folder over, then (see gpu_check.py's top)
#   pip install --no-index --no-deps --target .whl/site .whl/*.whl
#   PYTHONPATH=$PWD:$PWD/.whl/site python scripts/gpu_check.py
# Usage: scripts/gpu_wheels.sh [PYTHON_VERSION (default 3.12)] [DIR (default .whl)]
#
# The image is expected to hold torch (CUDA build), torchvision, timm, onnxruntime,
# tensorboard, OpenCV and NumPy, so those are not downloaded. Everything is fetched with
# --no-deps at versions that fit together (albumentations 2.0.8 pins albucore 0.0.24; the
# pydantic-core wheel is the one pydantic's own METADATA pins), since the target has no
# index to resolve against. antlr4-python3-runtime 4.9.3 (what omegaconf 2.3 pins) exists
# only as an sdist: its wheel is built here (pure Python, it fits every Python 3).
set -euo pipefail
py="${1:-3.12}"
dir="${2:-.whl}"
python="${PYTHON:-python}"
mkdir -p "$dir"
download() {
  "$python" -m pip download --no-deps --only-binary=:all: --python-version "$py" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d "$dir" "$@"
}
# Hydra and its needs (PyYAML and packaging: small, and no harm if the image has them).
download hydra-core==1.3.2 omegaconf==2.3.0 PyYAML packaging
"$python" -m pip wheel --no-deps -w "$dir" antlr4-python3-runtime==4.9.3
# albumentations and its needs.
download albumentations==2.0.8 albucore==0.0.24 simsimd stringzilla scipy \
  pydantic annotated-types typing-inspection typing-extensions
pydantic_wheel=$(ls "$dir"/pydantic-[0-9]*.whl | sort -V | tail -n 1)
core=$(unzip -p "$pydantic_wheel" '*.dist-info/METADATA' \
  | sed -n 's/^Requires-Dist: pydantic-core *(\{0,1\}==\([^ ;)]*\).*/\1/p')
if [ -z "$core" ]; then
  echo "no pydantic-core pin in $pydantic_wheel's METADATA" >&2
  exit 1
fi
download "pydantic-core==$core"
ls -1 "$dir"
