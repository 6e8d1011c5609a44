#!/usr/bin/env bash
# The whole GPU check in one command, for a bare GPU machine holding a copy of the repo (its own
# Python, torch and nvcc; no mmcv, no network): builds densevl's ops for the GPU present, runs
# the op tests (CUDA against the references), the torch-only tests (`pytest -m torch_only`,
# tests/conftest.py), then the dense-inference benchmark (fp32, fp16) and the op benchmark on
# CUDA. Every step writes its log to $OUT as it runs and appends a line to $OUT/summary.txt, so
# a run cut short still reports what finished; the whole stays inside $GPU_CHECK_BUDGET_S.
#
#   tools/gpu_check.sh                   # on the GPU machine (.whl/ carried: open_clip, ftfy)
#   tools/gpu_check.sh --fetch-wheels    # here, once: download those wheels into .whl/
#   tools/gpu_check.sh --quick           # CPU rehearsal: --device cpu, small sizes
#   tools/gpu_check.sh --quick --simulate-bare   # ... with mmcv/mmengine/mmseg/mmdet blocked
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
python=${PYTHON:-python3}
quick=0
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --simulate-bare) export PYTHONPATH="$here/tests/no_openmmlab${PYTHONPATH:+:$PYTHONPATH}" ;;
    --fetch-wheels)
      # What the plain-PyTorch cores need beyond the GPU image (see KINDS.md's package list).
      exec "$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$here/.whl" \
        open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.5 ;;
    *) echo "unknown option $arg" >&2; exit 2 ;;
  esac
done
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
budget=${GPU_CHECK_BUDGET_S:-480}
start=$SECONDS
export PYTHONUNBUFFERED=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
summary="$out/summary.txt"
: > "$summary"
note() { echo "[gpu_check $((SECONDS - start))s] $*" | tee -a "$summary"; }

# step NAME LIMIT_S COMMAND...: runs COMMAND with its output in $out/NAME.log, bounded by
# LIMIT_S and by what is left of the budget; its status and RESULT lines go to the summary.
step() {
  local name=$1 limit=$2; shift 2
  local left=$((budget - (SECONDS - start)))
  if [ "$left" -lt 20 ]; then note "$name: SKIPPED (budget spent)"; return 1; fi
  [ "$limit" -gt "$left" ] && limit=$left
  note "$name: start (limit ${limit}s): $*"
  timeout --signal=INT --kill-after=10 "$limit" "$@" > >(tee "$out/$name.log") 2>&1
  local rc=$?
  grep -h '^RESULT\|passed\|failed' "$out/$name.log" | tail -n 3 >> "$summary"
  note "$name: $([ $rc -eq 0 ] && echo OK || echo "FAILED rc=$rc")"
  return $rc
}

if ! "$python" -c 'import open_clip' 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
  fi
  "$python" -c 'import open_clip' || { note 'open_clip missing: carry .whl (--fetch-wheels)'; exit 1; }
fi
device=$("$python" -c 'import torch; print("cuda" if torch.cuda.is_available() else "cpu")')
note "python $("$python" -V 2>&1), $("$python" -c 'import torch; print("torch", torch.__version__,
torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'), device $device"
if [ "$device" = cuda ]; then
  TORCH_CUDA_ARCH_LIST=$("$python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
  export TORCH_CUDA_ARCH_LIST DENSEVL_WITH_CUDA=1
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader | tee -a "$summary"
fi
[ "$device" = cpu ] && export DENSEVL_WITH_CUDA=0  # a CPU rehearsal builds no CUDA
[ "$quick" = 1 ] && [ "$device" = cpu ] || quick=0

# 1. The ops, built in place for this GPU (setup.py: C++ always, CUDA with DENSEVL_WITH_CUDA=1).
step build 240 env MAX_JOBS="$(nproc)" "$python" setup.py -q build_ext --inplace
step backends 60 "$python" -c "from densevl.ops import available_backends as b; print(b()); \
assert {'cpp'} | ({'cuda'} if '$device' == 'cuda' else set()) <= set(b()), b()"
# 2. The op tests (CUDA against the references), then every other torch-only test.
step op_tests 120 "$python" -m pytest -q -p no:cacheprovider -rs tests/test_ops.py
# (named by file: the other modules do not even import without OpenMMLab)
mapfile -t torch_only < <("$python" -c "import sys; sys.path.insert(0, 'tests')
from conftest import TORCH_ONLY_MODULES as m
print('\n'.join(f'tests/{n}.py' for n in sorted(m - {'test_ops'})))")
step torch_only_tests 150 "$python" -m pytest -q -p no:cacheprovider -rs -m torch_only \
  "${torch_only[@]}"
# 3. The benchmarks (RESULT lines; keys end in _cuda on the GPU).
if [ "$quick" = 1 ]; then
  dense=(--dense-size 336 --repeats 2 --threads 1) ops=(--quick --repeats 1 --threads 1)
else
  dense=(--repeats 10) ops=(--repeats 5)
fi
step dense_fp32 120 "$python" tools/benchmark_inference.py --cases dense --device "$device" "${dense[@]}"
step dense_fp16 120 "$python" tools/benchmark_inference.py --cases dense --device "$device" \
  --dtype fp16 "${dense[@]}"
step ops_bench 200 "$python" tools/benchmark_ops.py --device "$device" "${ops[@]}"
note "done in $((SECONDS - start))s; logs in $out"
