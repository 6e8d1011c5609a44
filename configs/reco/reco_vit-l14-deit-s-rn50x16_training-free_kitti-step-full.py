# ReCo on KITTI-STEP (val, 2,981 frames at full resolution, 19 classes). Paper: 70.6 aAcc /
# 29.8 mIoU.
# The vocabulary is the dataset's classes (tools/test.py sets them; the inferencer takes texts).
_base_ = [
    '../_base_/models/reco_vit-l14-336_deit-s-sin_rn50x16.py',
    '../_base_/datasets/kitti_step.py', '../_base_/default_runtime.py'
]

test_evaluator = dict(_delete_=True, **_base_.reco_evaluator)
val_evaluator = test_evaluator
