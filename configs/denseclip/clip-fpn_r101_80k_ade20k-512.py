# CLIP-FPN baseline: CLIP RN101 as a plain backbone + Semantic FPN, ADE20K-150, 512x512 crops,
# 80k iterations (paper: 42.7 mIoU).
_base_ = [
    '../_base_/models/clip-fpn_r50.py', '../_base_/datasets/ade20k_train.py',
    '../_base_/schedules/schedule_80k.py'
]

model = dict(clip=dict(model_name='RN101-quickgelu'))
