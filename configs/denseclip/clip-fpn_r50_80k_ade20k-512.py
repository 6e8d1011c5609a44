# CLIP-FPN baseline: CLIP RN50 as a plain backbone (no text, no score map) + Semantic FPN,
# ADE20K-150, 512x512 crops, 80k iterations (paper: 39.6 mIoU).
_base_ = [
    './_base_/denseclip_fpn.py', '../_base_/datasets/ade20k_train.py',
    '../_base_/schedules/schedule_80k.py'
]
model = dict(use_context=False, identity_loss=None, input_resolution=None)
