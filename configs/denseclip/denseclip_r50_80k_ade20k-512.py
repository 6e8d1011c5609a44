# DenseCLIP RN50 + Semantic FPN, ADE20K-150, 512x512 crops, 80k iterations (paper: 43.5 mIoU).
_base_ = [
    '../_base_/models/denseclip-fpn_r50.py', '../_base_/datasets/ade20k_train.py',
    '../_base_/schedules/schedule_80k.py'
]
