# CLIP-FPN baseline: CLIP RN50 as a plain backbone (no text, no score map) + Semantic FPN,
# ADE20K-150, 512x512 crops, 80k iterations (paper: 39.6 mIoU).
_base_ = [
    '../_base_/models/clip-fpn_r50.py', '../_base_/datasets/ade20k_train.py',
    '../_base_/schedules/schedule_80k.py'
]
