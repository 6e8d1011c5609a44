#!/usr/bin/env bash
# Sets up .venv with the stack densevl is measured on (CPU machine, Python 3.11).
#
# mmcv 2.1.0 has no wheel for torch 2.14, so it is built from its sdist with its ops:
# its setup.py asks for -std=c++17 but torch >= 2.4 headers need C++20, and its build
# needs setuptools < 81. The built wheel is kept in $DENSEVL_CACHE (outside the repo),
# so a second set-up takes seconds while a fresh machine still builds it (~30 min, 2 cores).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${DENSEVL_VENV:-$here/.venv}
cache=${DENSEVL_CACHE:-$HOME/.cache/densevl}
python=${PYTHON:-python3}
mkdir -p "$cache/wheels"

log() { printf '[install] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip)
export PIP_DISABLE_PIP_VERSION_CHECK=1

stamp="$venv/.densevl-stack"
want_stamp="stack-v2 $(sha1sum "$here/tools/install.sh" | cut -c1-12)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  log "stack already installed in $venv"
else
  # mmcv 2.1.0's setup.py imports pkg_resources, gone from setuptools >= 81: every install
  # line repeats the pin so no dependency upgrades it away.
  pin=("setuptools<81" wheel)
  "${pip[@]}" install -q "${pin[@]}"
  log "torch 2.14.1 + torchvision 0.29.1"
  "${pip[@]}" install -q "${pin[@]}" torch==2.14.1 torchvision==0.29.1
  log "mmengine, open_clip and friends"
  "${pip[@]}" install -q "${pin[@]}" mmengine==0.10.7 open_clip_torch==3.3.0 "pycocotools>=2.0.7" \
    "opencv-python>=4.8" ftfy regex "Pillow>=10" "scikit-image>=0.22" \
    "matplotlib>=3.7" "scipy>=1.10" "pytest>=8" "ruff>=0.6" ninja segment-anything==1.0 \
    "faiss-cpu>=1.8" "timm>=0.9"
  # ReCo's DenseCRF: pydensecrf2 is an sdist, built here (Cython, about a minute)
  "${pip[@]}" install -q "${pin[@]}" pydensecrf2==1.1

  mmcv_whl=$(ls "$cache"/wheels/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$mmcv_whl" ]; then
    log "building mmcv 2.1.0 with its CPU ops from the sdist (about 30 minutes on 2 cores)"
    work=$(mktemp -d)
    "${pip[@]}" download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" mmcv==2.1.0
    tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
    sed -i 's/-std=c++17/-std=c++20/g' "$work"/mmcv-2.1.0/setup.py
    (cd "$work"/mmcv-2.1.0 && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "$venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" .)
    # Move into the cache only once complete, so an interrupted build is never reused.
    cp "$work"/dist/mmcv-2.1.0-*.whl "$cache/wheels/.partial.whl"
    mmcv_whl="$cache/wheels/$(basename "$work"/dist/mmcv-2.1.0-*.whl)"
    mv "$cache/wheels/.partial.whl" "$mmcv_whl"
    rm -rf "$work"
  fi
  log "mmcv from $mmcv_whl"
  "${pip[@]}" install -q --no-deps "$mmcv_whl"
  "${pip[@]}" install -q "${pin[@]}" addict yapf termcolor packaging rich
  log "mmsegmentation 1.2.2 + mmdet 3.3.0"
  "${pip[@]}" install -q "${pin[@]}" mmsegmentation==1.2.2 mmdet==3.3.0
  # gradio 6 needs huggingface_hub >= 1.16, which only transformers 5 accepts
  log "the web demo: gradio (densevl[web]) + selenium; tokenizers (ALBEF); transformers (GLIP, G-DINO)"
  "${pip[@]}" install -q "${pin[@]}" gradio==6.31.0 selenium==4.51.0 tokenizers==0.23.3 \
    transformers==5.25.0
  echo "$want_stamp" > "$stamp"
fi

# The web demo's browser test drives Debian's headless Chromium (no browser download): the
# packages are installed only when a binary is missing, so a rerun costs nothing.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  as_root=""                                   # root, or a password-less sudo
  if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then as_root="sudo -n"; fi
  if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" = 0 ] || [ -n "$as_root" ]; }; then
    log "chromium + chromium-driver (Debian packages, for tests/test_web_demo.py)"
    $as_root apt-get update -qq
    $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium chromium-driver >/dev/null
  else
    log "WARNING: chromium / chromedriver missing and apt-get unusable here (neither root nor"
    log "  password-less sudo): install Debian's chromium and chromium-driver (Ubuntu's chromium"
    log "  is a snap, which containers lack), or tests/test_web_demo.py fails"
  fi
fi

# densevl with its compiled ops: C++ always, CUDA too where nvcc exists (objects kept in
# build/, so a rerun recompiles only what changed; DENSEVL_WITH_CUDA / TORCH_CUDA_ARCH_LIST
# pass through to setup.py).
log "densevl (editable, with its C++/CUDA ops)"
MAX_JOBS=${MAX_JOBS:-$(nproc)} "${pip[@]}" install -q --no-deps --no-build-isolation -e "$here"
want_backends="'cpp'"
if command -v nvcc >/dev/null 2>&1 && [ "${DENSEVL_WITH_CUDA:-}" != 0 ]; then
  want_backends="'cpp', 'cuda'"
fi
"$venv/bin/python" -c "from densevl.ops import available_backends as b; \
missing = {$want_backends} - set(b()); \
assert not missing, f'compiled ops missing: {sorted(missing)} (have {b()}); see the build log above'"
"$venv/bin/python" -c "import torch, mmcv, mmengine, mmseg, mmdet, open_clip, faiss, timm, pydensecrf.densecrf, gradio, selenium, tokenizers, transformers, densevl; from mmcv.ops import nms; print('[install] ok: torch', torch.__version__, 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'mmdet', mmdet.__version__, 'open_clip', open_clip.__version__, 'gradio', gradio.__version__)"
