#!/usr/bin/env bash
# OVSeg on the proving ground, one seed, every stage into one folder:
#   1. the proposal network, trained on the seen classes (tools/train.py);
#   2. region-noun pairs mined from the train split's captions with it (tools/mine_region_nouns.py);
#   3. mask prompts tuned on the packaged tiny CLIP, the tiny CLIP fine-tuned on the pairs, and
#      mask prompts tuned on the fine-tuned one (tools/train.py, configs/ovseg/clip-*_clip-synthetic-tiny_5ep_region-nouns.py).
# Then `tools/benchmark_quality.py --work-dirs ROOT` evaluates every OVSeg variant.
#
# Usage: bash tools/ovseg_proving_ground.sh SEED [ROOT]   (ROOT default work_dirs/seed$SEED)
# Needs data/synthetic (tools/make_synthetic_dataset.py --out data/synthetic). A finished stage
# (its output file exists) is not run again.
set -euo pipefail
seed=${1:?usage: bash tools/ovseg_proving_ground.sh SEED [ROOT]}
root=${2:-work_dirs/seed$seed}
py=${PYTHON:-.venv/bin/python}
# one thread a process: the small models of the proving ground gain nothing from more, and
# several processes sharing a machine lose a lot to threads that wait for each other
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

ovseg=ovseg_clip-synthetic-tiny_400it_synthetic-64
ft=clip-finetune_clip-synthetic-tiny_5ep_region-nouns
mpt=clip-mpt_clip-synthetic-tiny_5ep_region-nouns
ft_mpt=clip-finetune-mpt_clip-synthetic-tiny_5ep_region-nouns
pairs=$root/region_nouns/region_nouns.csv

if [ ! -f "$root/$ovseg/iter_400.pth" ]; then
  $py tools/train.py configs/ovseg/$ovseg.py --work-dir "$root/$ovseg" \
      --cfg-options randomness.seed="$seed"
fi
if [ ! -f "$pairs" ]; then
  $py tools/mine_region_nouns.py configs/ovseg/$ovseg.py "$root/$ovseg/iter_400.pth" \
      --captions data/synthetic/coco/captions_train.json --images data/synthetic/images/train \
      --out "$root/region_nouns" --batch-size 32
fi
tune() {   # tune CONFIG RUN [cfg-options...]
  local config=$1 run=$2
  shift 2
  if [ ! -f "$root/$run/clip.pth" ]; then
    $py tools/train.py "configs/ovseg/$config.py" --work-dir "$root/$run" --cfg-options \
        randomness.seed="$seed" train_dataloader.dataset.ann_file="$pairs" "$@"
  fi
}
tune $mpt $mpt
tune $ft $ft
tune $mpt $ft_mpt model.clip.pretrained="$root/$ft/clip.pth"
