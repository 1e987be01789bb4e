#!/usr/bin/env bash
# Neural renders on a GPU with generated checkpoints: prints Wav2Lip fps and GFPGAN ms per face.
#
#   scripts/gpu-check.sh                      # CUDA, checkpoints with random weights
#   scripts/gpu-check.sh --models data/models # the real files (wav2lip/, gfpgan/)
#   scripts/gpu-check.sh --device cpu --frames 8 --faces 1 --no-warmup
#
# Needs the neural extra (torch). Extra arguments go to `python -m avatarbot.pipeline.gpu_check`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
exec "$PYTHON" -m avatarbot.pipeline.gpu_check "$@"
