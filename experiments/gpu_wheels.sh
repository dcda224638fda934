#!/usr/bin/env bash
# Wheels for the GPU machine, whose image has JAX, flax, optax, orbax, PyTorch, torchaudio and numba-cuda
# but not what jaxalign's training path imports besides: hydra-core, omegaconf (and its antlr4 runtime),
# tensorboardX. Run here, with network, from anywhere in the repo; they land in .whl/ (git-ignored),
# which experiments/gpu_check.sh installs into /tmp/site on the GPU machine (carry .whl there).
# praatio and espeakng-loader are not needed: no module on the train/benchmark path imports them at
# import time (jaxalign.data.espeak loads espeakng-loader only when spoken words are synthesised).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
# One version of each package: two would stop the whole install there.
rm -f .whl/hydra_core-*.whl .whl/omegaconf-*.whl .whl/antlr4_python3_runtime-*.whl .whl/tensorboardx-*.whl .whl/tensorboardX-*.whl

# The GPU image's Python is 3.12 on x86-64 Linux.
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
  hydra-core==1.3.8 omegaconf==2.3.1 tensorboardX==2.6.5
# omegaconf 2.3 pins antlr4-python3-runtime 4.9.*, which is published as a source archive only: build its
# pure-Python (py3-none-any) wheel here.
python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
ls -l .whl
