# ReCo on Cityscapes-27 (val, 500 images at 320 x 320). Paper: 74.6 aAcc / 19.3 mIoU.
# The vocabulary is the dataset's classes (tools/test.py sets them; the inferencer takes texts).
_base_ = [
    '../_base_/models/reco_vit-l14-336_deit-s-sin_rn50x16.py',
    '../_base_/datasets/cityscapes27.py', '../_base_/default_runtime.py'
]

test_evaluator = dict(_delete_=True, **_base_.reco_evaluator)
val_evaluator = test_evaluator
