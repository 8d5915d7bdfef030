#!/usr/bin/env bash
# The GPU path in one command, on a machine with one CUDA GPU (see benchmarks/gpu_check.py):
# 20 bf16 training steps of a preset, 32 prompts of batched generation, a 5-shot eval of ~50 docs
# with both eval backends; prints tokens/s, peak GPU memory and whether the backends agree.
#   benchmarks/gpu_check.sh                                  # embedded SmolLM2-135M, LoRA preset
#   benchmarks/gpu_check.sh --model hf:meta-llama/Meta-Llama-3-8B --data-dir ../shared/data
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
test -x "$PY" || { echo "no $PY: run 'make setup TORCH=torch EXTRAS=dev,gpu' first" >&2; exit 2; }
exec "$PY" benchmarks/gpu_check.py "$@"
