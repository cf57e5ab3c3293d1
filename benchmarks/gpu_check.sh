#!/usr/bin/env bash
# The GPU checks, in one run on a CUDA machine that has torch (run from the repository root):
#   bash benchmarks/gpu_check.sh
# Pruner plan/observe cost and observe()'s host-sync check, loader throughput, the harness's
# overhead, speedup efficiency and host syncs per epoch with bf16 + channels_last, and the
# loaders' GPU tests. Only torch, numpy, scipy and pytest are needed (no MLflow, no FFCV).
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0
step() { echo; echo "== $*"; "$@" || status=1; }
step python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
step python3 benchmarks/pruners.py --device cuda
step python3 benchmarks/loaders.py --device cuda
step python3 benchmarks/harness.py --device cuda --dataset synthetic --model resnet18 \
  --subset 10000 --rounds 9 --batch-size 512
step python3 -m pytest -q -p no:cacheprovider tests/test_datasets_loaders.py \
  tests/test_pruner_contract.py -k "gpu or cuda"
exit $status
