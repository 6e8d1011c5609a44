#!/usr/bin/env bash
# Multi-GPU training with torchrun.
#   bash tools/dist_train.sh CONFIG GPUS [train.py args ...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -euo pipefail
source "$(dirname "$0")/_dist.sh"

dist_require_args 2 "CONFIG GPUS [tools/train.py args ...]" "$@"
CONFIG=$1
GPUS=$2
shift 2
dist_exec "$GPUS" train.py "$CONFIG" --launcher pytorch "$@"
