# OVSeg Swin-B + CLIP ViT-L/14 (ov-seg configs/ovseg_swinB_vitL_bs32_120k.yaml): trained on
# COCO-Stuff-171 (short side a random choice of 320, 384, ..., 1280, long side at most 2560,
# 640-px crops; 120k iterations of 32, AdamW lr 6e-5, weight decay 0.01, the backbone at full
# lr), tested on ADE20K-150 at short side 640 (λ 0.7). The *_test-*.py configs beside it test on
# ADE-847, PC-459, PC-59 and VOC-20 (paper: 9.0 / 12.4 / 29.6 / 55.7 / 94.5 mIoU on
# A-847 / PC-459 / A-150 / PC-59 / VOC-20).
_base_ = [
    '../_base_/models/ovseg_swin-b-clip-vit-l14.py', '../_base_/datasets/coco_stuff171_train.py',
    '../_base_/schedules/schedule_120k.py'
]
optim_wrapper = dict(optimizer=dict(lr=6e-5, weight_decay=0.01))
train_pipeline = _base_.train_pipeline
train_pipeline[2] = dict(type='RandomChoiceResize', scales=[64 * x for x in range(5, 21)],
                         resize_type='ResizeShortestEdge', max_size=2560)
train_pipeline[3].crop_size = (640, 640)  # RandomCrop
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=_base_.ovseg_test_pipeline))
test_dataloader = val_dataloader
