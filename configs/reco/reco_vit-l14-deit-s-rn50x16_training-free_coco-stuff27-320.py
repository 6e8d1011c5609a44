# ReCo on COCO-Stuff-27 (the curated val2017 list at 320 x 320): predicted over the 171 fine
# names as ReCo prompts them, folded to the 27 coarse classes by the metric. Paper: 46.1 aAcc /
# 26.3 mIoU.
_base_ = [
    '../_base_/models/reco_vit-l14-336_deit-s-sin_rn50x16.py',
    '../_base_/datasets/coco_stuff27.py', '../_base_/default_runtime.py'
]

model = dict(
    class_names='{{fileDirname}}/../../densevl/datasets/names/coco_stuff171_reco.txt')
test_evaluator = dict(_delete_=True, **_base_.reco_evaluator)
val_evaluator = test_evaluator
