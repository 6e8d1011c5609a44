# Sourced by tools/dist_train.sh and tools/dist_test.sh: their argument check and the torchrun
# launch they share. Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT, set on every node.

# dist_require_args MIN USAGE ARGS...: exit 1 with "usage: $0 USAGE" when ARGS are fewer than MIN.
dist_require_args() {
    local min=$1 usage=$2
    shift 2
    if [ $# -lt "$min" ]; then
        echo "usage: $0 $usage" >&2
        exit 1
    fi
}

# dist_exec GPUS SCRIPT ARGS...: replace this shell with torchrun running tools/SCRIPT ARGS on
# GPUS processes per node, the repository first on PYTHONPATH.
dist_exec() {
    local gpus=$1 script=$2 tools_dir
    shift 2
    tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    PYTHONPATH="$tools_dir/..${PYTHONPATH:+:$PYTHONPATH}" \
    exec torchrun \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${PORT:-29500}" \
        --nproc_per_node="$gpus" \
        "$tools_dir/$script" "$@"
}
