#!/usr/bin/env bash
# Multi-GPU evaluation with torchrun.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args ...]
# Training-free models need no checkpoint: pass "" as CHECKPOINT.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
source "$(dirname "$0")/_dist.sh"

dist_require_args 3 "CONFIG CHECKPOINT GPUS [tools/test.py args ...]" "$@"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
shift 3
dist_exec "$GPUS" test.py "$CONFIG" ${CHECKPOINT:+"$CHECKPOINT"} --launcher pytorch "$@"
