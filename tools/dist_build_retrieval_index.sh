#!/usr/bin/env bash
# Build a ReCo retrieval index with torchrun, one rank per GPU (gloo processes on a CPU machine).
#   bash tools/dist_build_retrieval_index.sh IMAGES OUT_DIR GPUS [build_retrieval_index.py args ...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node; OUT_DIR must be on a
# file system every node sees.
set -euo pipefail
source "$(dirname "$0")/_dist.sh"

dist_require_args 3 "IMAGES OUT_DIR GPUS [tools/build_retrieval_index.py args ...]" "$@"
# IMAGES OUT_DIR, then the launcher and the remaining arguments
dist_exec "$3" build_retrieval_index.py "$1" "$2" --launcher pytorch "${@:4}"
